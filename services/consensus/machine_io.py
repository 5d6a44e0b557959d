"""What the consensus machine (``machine.py``) takes in, gives out and keeps: its inputs, its
outputs, its state and its timing. Plain frozen values, kept apart from the rules that turn
one into the other, so a driver, the simulator and ``machine_state`` (the state as JSON) can
name them without the algorithm, and ``machine.py`` holds the paper's rules alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .votes import EMPTY_ROUND, Proposal, RoundVotes, ValidatorSet, Vote

Step = Literal["propose", "prevote", "precommit"]

MAX_ROUNDS_AHEAD = 100
MAX_PENDING_PER_SENDER = 300


@dataclass(frozen=True, slots=True)
class TimingConfig:
    """Timeout of a step in round r: ``base + r * delta_ms`` (the paper's timeoutX(r))."""

    propose_ms: int = 1000
    prevote_ms: int = 500
    precommit_ms: int = 500
    delta_ms: int = 500

    def timeout_ms(self, step: Step, round: int) -> int:
        base = {
            "propose": self.propose_ms,
            "prevote": self.prevote_ms,
            "precommit": self.precommit_ms,
        }[step]
        return base + round * self.delta_ms


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, slots=True)
class StartHeight:
    height: int
    validators: ValidatorSet


@dataclass(frozen=True, slots=True)
class ProposalIn:
    proposal: Proposal
    valid: bool  # the driver's verdict on the block behind proposal.value_id


@dataclass(frozen=True, slots=True)
class VoteIn:
    vote: Vote


@dataclass(frozen=True, slots=True)
class TimeoutIn:
    step: Step
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ValueReady:
    height: int
    round: int
    value_id: str


@dataclass(frozen=True, slots=True)
class Resend:
    pass


Input = StartHeight | ProposalIn | VoteIn | TimeoutIn | ValueReady | Resend


# ---------------------------------------------------------------------------------------------
# Outputs


@dataclass(frozen=True, slots=True)
class Broadcast:
    message: Proposal | Vote


@dataclass(frozen=True, slots=True)
class Relay:
    """Forward another validator's message exactly as received: it is already signed by its
    author, and must not be signed again. Only ``Resend`` produces it (the paper's gossip)."""

    message: Proposal | Vote


@dataclass(frozen=True, slots=True)
class RequestValue:
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    step: Step
    height: int
    round: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Decision:
    """``value_id`` is decided at ``height``; ``precommits`` (> 2/3 of the power) prove it."""

    height: int
    round: int
    value_id: str
    precommits: tuple[Vote, ...]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two conflicting signed messages from one sender for the same height/round/step."""

    first: Proposal | Vote
    second: Proposal | Vote


Output = Broadcast | Relay | RequestValue | ScheduleTimeout | Decision | Evidence


# ---------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True, slots=True)
class State:
    """The paper's process state (lines 1-9) plus the message log of the current height.

    ``prevote_timer``, ``precommit_timer`` and ``polka_seen`` record that the "for the first
    time" rules of lines 34, 47 and 36 have fired in the current round. ``sent`` is what this
    validator said at this height: it is what ``Resend`` repeats and what guarantees one vote
    per (round, step); the messages themselves count only once they come back signed.
    """

    address: str
    config: TimingConfig
    validators: ValidatorSet | None = None  # None until the first StartHeight
    height: int = 0
    round: int = 0
    step: Step = "propose"
    locked_value: str | None = None
    locked_round: int = -1
    valid_value: str | None = None
    valid_round: int = -1
    rounds: Mapping[int, RoundVotes] = field(default_factory=dict)
    awaiting_value: bool = False
    prevote_timer: bool = False
    precommit_timer: bool = False
    polka_seen: bool = False
    decision: Decision | None = None
    pending: Mapping[str, tuple[ProposalIn | VoteIn, ...]] = field(default_factory=dict)
    sent: tuple[Proposal | Vote, ...] = ()  # our own messages of this height, unsigned

    @property
    def is_validator(self) -> bool:
        return self.validators is not None and self.address in self.validators

    def round_votes(self, round: int) -> RoundVotes:
        return self.rounds.get(round, EMPTY_ROUND)


def initial_state(address: str, config: TimingConfig | None = None) -> State:
    """A machine that has not started: it waits for ``StartHeight``."""
    return State(address=address, config=config or TimingConfig())


def started(state: State) -> bool:
    """Has the machine been given its first ``StartHeight``?"""
    return state.validators is not None


def height_of(state: State) -> int:
    """The height the machine is working on (or has decided and waits to leave)."""
    return state.height
