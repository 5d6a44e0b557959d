"""The consensus machine's state as plain JSON (str, int, bool, None, lists, dicts with str
keys): what a validator fsyncs before any message it signs leaves the process, and reads back
after a restart, so it never signs two different votes for one height and round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .machine_io import Decision, ProposalIn, State, Step, TimingConfig, VoteIn
from .votes import Proposal, RoundVotes, ValidatorInfo, ValidatorSet, message_from_dict, message_to_dict, vote_from_dict

STATE_VERSION = 1


def to_dict(state: State) -> dict[str, Any]:
    """JSON-ready form of ``state``; ``from_dict(to_dict(s)) == s``."""
    vs = state.validators
    return {
        "version": STATE_VERSION,
        "address": state.address,
        "config": {
            "propose_ms": state.config.propose_ms,
            "prevote_ms": state.config.prevote_ms,
            "precommit_ms": state.config.precommit_ms,
            "delta_ms": state.config.delta_ms,
        },
        "validators": None if vs is None else [{"address": v.address, "power": v.power} for v in vs.validators],
        "height": state.height,
        "round": state.round,
        "step": state.step,
        "locked_value": state.locked_value,
        "locked_round": state.locked_round,
        "valid_value": state.valid_value,
        "valid_round": state.valid_round,
        "rounds": [votes.to_dict(r) for r, votes in sorted(state.rounds.items())],
        "awaiting_value": state.awaiting_value,
        "prevote_timer": state.prevote_timer,
        "precommit_timer": state.precommit_timer,
        "polka_seen": state.polka_seen,
        "decision": None if state.decision is None else _decision_to_dict(state.decision),
        "pending": [
            {"sender": sender, "items": [_pending_to_dict(item) for item in queue]}
            for sender, queue in state.pending.items()
        ],
        "sent": [message_to_dict(m) for m in state.sent],
    }


def from_dict(data: Mapping[str, Any]) -> State:
    """Inverse of :func:`to_dict`; tallies are recomputed from the stored votes."""
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported consensus state version {data.get('version')!r}")
    vs = (
        None
        if data["validators"] is None
        else ValidatorSet(tuple(ValidatorInfo(str(v["address"]), int(v["power"])) for v in data["validators"]))
    )
    rounds: dict[int, RoundVotes] = {}
    if vs is not None:
        for entry in data["rounds"]:
            rounds[int(entry["round"])] = RoundVotes.from_dict(entry, vs)
    decision = data["decision"]
    return State(
        address=str(data["address"]),
        config=TimingConfig(**{k: int(v) for k, v in data["config"].items()}),
        validators=vs,
        height=int(data["height"]),
        round=int(data["round"]),
        step=_step(data["step"]),
        locked_value=data["locked_value"],
        locked_round=int(data["locked_round"]),
        valid_value=data["valid_value"],
        valid_round=int(data["valid_round"]),
        rounds=rounds,
        awaiting_value=bool(data["awaiting_value"]),
        prevote_timer=bool(data["prevote_timer"]),
        precommit_timer=bool(data["precommit_timer"]),
        polka_seen=bool(data["polka_seen"]),
        decision=None if decision is None else _decision_from_dict(decision),
        pending={
            str(entry["sender"]): tuple(_pending_from_dict(item) for item in entry["items"])
            for entry in data["pending"]
        },
        sent=tuple(message_from_dict(m) for m in data["sent"]),
    )


def _step(value: object) -> Step:
    if value == "propose":
        return "propose"
    if value == "prevote":
        return "prevote"
    if value == "precommit":
        return "precommit"
    raise ValueError(f"unknown step {value!r}")


def _decision_to_dict(decision: Decision) -> dict[str, Any]:
    return {
        "height": decision.height,
        "round": decision.round,
        "value_id": decision.value_id,
        "precommits": [message_to_dict(v) for v in decision.precommits],
    }


def _decision_from_dict(data: Mapping[str, Any]) -> Decision:
    return Decision(
        height=int(data["height"]),
        round=int(data["round"]),
        value_id=str(data["value_id"]),
        precommits=tuple(vote_from_dict(v) for v in data["precommits"]),
    )


def _pending_to_dict(item: ProposalIn | VoteIn) -> dict[str, Any]:
    if isinstance(item, ProposalIn):
        return {"message": message_to_dict(item.proposal), "valid": item.valid}
    return {"message": message_to_dict(item.vote)}


def _pending_from_dict(data: Mapping[str, Any]) -> ProposalIn | VoteIn:
    message = message_from_dict(data["message"])
    if isinstance(message, Proposal):
        return ProposalIn(message, bool(data["valid"]))
    return VoteIn(message)
