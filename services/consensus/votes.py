"""Vote bookkeeping for the Tendermint state machine in :mod:`.machine`.

Why this module exists: the consensus rules (``machine.py``) only ever ask questions like
"is there a proposal from the right proposer in round r?", "do prevotes for v in round r carry
more than 2/3 of the power?" or "have validators holding more than 1/3 said anything in round
r?". This module answers each of them with a dictionary lookup, by keeping running tallies as
messages arrive instead of rescanning a message log. It also holds the things those questions
are about: the weighted validator set (with its proposer rotation) and the two signed message
types, ``Proposal`` and ``Vote``.

Everything is an immutable value. Adding a vote returns a new :class:`Tally`; the old one is
untouched, so ``apply(state, input)`` stays pure. The price is a copy of one round's votes of
one kind per counted vote (O(n) for n validators), which is cheap next to verifying the vote's
signature and keeps the code obvious.

Caveats:
- Signatures are opaque bytes. They are carried so that a decision can include its commit, but
  two votes that differ only in their signature are the *same* vote (a duplicate, not an
  equivocation): the machine never judges signatures, the driver does.
- ``verify_commit`` checks voting power only; the caller must check the signatures.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache, reduce
from math import gcd
from typing import Any, Literal, NamedTuple

VoteKind = Literal["prevote", "precommit"]
VOTE_KINDS: tuple[VoteKind, ...] = ("prevote", "precommit")


# ---------------------------------------------------------------------------------------------
# Validators and the proposer rotation


@dataclass(frozen=True, slots=True)
class ValidatorInfo:
    """One validator: its address (hex public key) and its voting power (> 0)."""

    address: str
    power: int


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """The validators of one height, in canonical order (sorted by address).

    The order given is normalised, so every node that is told the same members and powers
    derives the same proposer sequence.

    Proposer rotation (``proposer``): a weighted round robin over a cycle of
    ``total_power / g`` slots, where ``g`` is the gcd of all powers. A validator with reduced
    weight ``w`` owns the ``w`` slots at the positions ``(2j + 1) / 2w`` (``j = 0 .. w-1``) of a
    unit interval; the cycle lists all slots in position order (ties by address). This is
    stride scheduling / Sainte-Laguë interleaving, the same idea as Tendermint's
    proposer-priority algorithm: in every cycle each validator proposes exactly ``power / g``
    times, evenly spread rather than in bursts. Round ``r`` of height ``h`` uses slot
    ``(h + r) mod len(cycle)``, so a round that fails moves to the next slot's validator.

    The cycle is computed on first use, in O(total/g · log n) time (about one second for
    10^6 total power, microseconds for typical sets) and shared between equal sets; each
    lookup after that is an array index. Positions are compared as floats: with powers up to
    10^6, distinct positions differ by more than 10^-13, far above double rounding, and
    Python's int division is correctly rounded, so the order is identical on every platform.
    """

    validators: tuple[ValidatorInfo, ...]
    _power: dict[str, int] = field(init=False, repr=False, compare=False)
    _total: int = field(init=False, repr=False, compare=False)
    _cycle: array[int] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.validators, key=lambda v: v.address))
        power: dict[str, int] = {}
        for v in ordered:
            if v.power <= 0:
                raise ValueError(f"validator {v.address!r} has non-positive power {v.power}")
            if v.address in power:
                raise ValueError(f"validator {v.address!r} appears twice")
            power[v.address] = v.power
        if not power:
            raise ValueError("a validator set needs at least one validator")
        object.__setattr__(self, "validators", ordered)
        object.__setattr__(self, "_power", power)
        object.__setattr__(self, "_total", sum(power.values()))
        object.__setattr__(self, "_cycle", None)

    @property
    def total_power(self) -> int:
        return self._total

    @property
    def quorum(self) -> int:
        """Smallest power strictly greater than 2/3 of the total (the paper's 2f+1)."""
        return self._total * 2 // 3 + 1

    @property
    def one_third_plus(self) -> int:
        """Smallest power strictly greater than 1/3 of the total (the paper's f+1)."""
        return self._total // 3 + 1

    def power_of(self, address: str) -> int:
        """Voting power of ``address``; 0 if it is not a validator."""
        return self._power.get(address, 0)

    def __contains__(self, address: object) -> bool:
        return address in self._power

    def proposer(self, height: int, round: int) -> str:
        cycle = self._cycle
        if cycle is None:
            cycle = _proposer_cycle(tuple(v.power for v in self.validators))
            object.__setattr__(self, "_cycle", cycle)
        return self.validators[cycle[(height + round) % len(cycle)]].address


def _slots(index: int, weight: int) -> Iterator[tuple[float, int]]:
    denominator = 2 * weight
    for j in range(weight):
        yield (2 * j + 1) / denominator, index


@lru_cache(maxsize=16)
def _proposer_cycle(powers: tuple[int, ...]) -> array[int]:
    g = reduce(gcd, powers)
    streams = [_slots(i, p // g) for i, p in enumerate(powers)]
    return array("I", (index for _, index in heapq.merge(*streams)))


# ---------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True, slots=True)
class Proposal:
    """⟨PROPOSAL, height, round, value_id, valid_round⟩ signed by ``proposer``."""

    height: int
    round: int
    value_id: str
    valid_round: int
    proposer: str
    signature: bytes = b""

    def same_as(self, other: Proposal) -> bool:
        """Equal apart from the signature."""
        return (
            self.height == other.height
            and self.round == other.round
            and self.value_id == other.value_id
            and self.valid_round == other.valid_round
            and self.proposer == other.proposer
        )


@dataclass(frozen=True, slots=True)
class Vote:
    """⟨PREVOTE|PRECOMMIT, height, round, value_id⟩ signed by ``validator``; None is nil."""

    kind: VoteKind
    height: int
    round: int
    value_id: str | None
    validator: str
    signature: bytes = b""

    def same_as(self, other: Vote) -> bool:
        """Equal apart from the signature."""
        return (
            self.kind == other.kind
            and self.height == other.height
            and self.round == other.round
            and self.value_id == other.value_id
            and self.validator == other.validator
        )


Message = Proposal | Vote


def message_to_dict(message: Message) -> dict[str, Any]:
    """JSON-ready form of a proposal or vote (signature as hex)."""
    if isinstance(message, Proposal):
        return {
            "type": "proposal",
            "height": message.height,
            "round": message.round,
            "value_id": message.value_id,
            "valid_round": message.valid_round,
            "proposer": message.proposer,
            "signature": message.signature.hex(),
        }
    return {
        "type": "vote",
        "kind": message.kind,
        "height": message.height,
        "round": message.round,
        "value_id": message.value_id,
        "validator": message.validator,
        "signature": message.signature.hex(),
    }


def message_from_dict(data: Mapping[str, Any]) -> Message:
    """Inverse of :func:`message_to_dict`; raises ValueError on a malformed message."""
    signature = bytes.fromhex(str(data.get("signature", "")))
    if data["type"] == "proposal":
        return Proposal(
            height=int(data["height"]),
            round=int(data["round"]),
            value_id=str(data["value_id"]),
            valid_round=int(data["valid_round"]),
            proposer=str(data["proposer"]),
            signature=signature,
        )
    if data["type"] == "vote":
        value_id = data["value_id"]
        return Vote(
            kind=vote_kind(data["kind"]),
            height=int(data["height"]),
            round=int(data["round"]),
            value_id=None if value_id is None else str(value_id),
            validator=str(data["validator"]),
            signature=signature,
        )
    raise ValueError(f"unknown message type {data['type']!r}")


def vote_from_dict(data: Mapping[str, Any]) -> Vote:
    message = message_from_dict(data)
    if not isinstance(message, Vote):
        raise ValueError("expected a vote")
    return message


def proposal_from_dict(data: Mapping[str, Any]) -> Proposal:
    message = message_from_dict(data)
    if not isinstance(message, Proposal):
        raise ValueError("expected a proposal")
    return message


def vote_kind(value: object) -> VoteKind:
    if value == "prevote":
        return "prevote"
    if value == "precommit":
        return "precommit"
    raise ValueError(f"unknown vote kind {value!r}")


# ---------------------------------------------------------------------------------------------
# Tallies


class Added(NamedTuple):
    """Result of :meth:`Tally.add`."""

    tally: Tally
    counted: bool  # a new validator's vote: the tally's power changed
    conflict: Vote | None  # the first vote, when this one is a new equivocation by its sender


@dataclass(frozen=True, slots=True)
class Tally:
    """Votes of one kind in one round, with running sums.

    ``power`` maps a value id (None for nil) to the power of the validators that voted for
    it; ``total`` is the power of every validator that voted at all (the paper's ``⟨…, *⟩``).
    ``votes`` holds each validator's first vote.

    A second, different vote from a validator is equivocation: it is reported once (the
    caller turns it into ``Evidence``), and it is *also counted for its value* if that value
    already has counted support (``extra``). Why count it: the paper counts every message
    received, per sender and value, and its liveness needs that. A double voter that shows
    half of the network a polka for v and the other half nil would otherwise leave the second
    half unable to verify, ever, the polka that a locked proposer keeps citing (line 28) —
    the simulator found exactly that livelock. Safety does not need the exclusion: a quorum
    for v and one for w still intersect in more than f of the power, so some honest validator
    would have to vote both. Memory stays bounded: values enter ``power`` only through first
    votes (at most n of them), so each equivocator adds at most n extra votes per tally, and
    votes for forged values nobody else voted are never stored.
    """

    votes: Mapping[str, Vote] = field(default_factory=dict)
    extra: Mapping[str, tuple[Vote, ...]] = field(default_factory=dict)
    power: Mapping[str | None, int] = field(default_factory=dict)
    total: int = 0
    equivocators: frozenset[str] = frozenset()

    def power_for(self, value_id: str | None) -> int:
        return self.power.get(value_id, 0)

    def add(self, vote: Vote, weight: int) -> Added:
        first = self.votes.get(vote.validator)
        if first is None:
            votes = dict(self.votes)
            votes[vote.validator] = vote
            power = dict(self.power)
            power[vote.value_id] = power.get(vote.value_id, 0) + weight
            return Added(replace(self, votes=votes, power=power, total=self.total + weight), True, None)
        if first.same_as(vote):
            return Added(self, False, None)
        seconds = self.extra.get(vote.validator, ())
        if any(v.value_id == vote.value_id for v in seconds):
            return Added(self, False, None)
        conflict = None if vote.validator in self.equivocators else first
        changed = replace(self, equivocators=self.equivocators | {vote.validator})
        if vote.value_id not in self.power:
            return Added(changed, False, conflict)
        extra = dict(self.extra)
        extra[vote.validator] = (*seconds, vote)
        power = dict(self.power)
        power[vote.value_id] += weight
        return Added(replace(changed, extra=extra, power=power), True, conflict)

    def all_votes(self) -> list[Vote]:
        """Every counted vote: first votes, then the counted conflicting ones."""
        return [*self.votes.values(), *(v for seconds in self.extra.values() for v in seconds)]

    def votes_for(self, value_id: str | None) -> tuple[Vote, ...]:
        """The counted votes for ``value_id`` (one per validator), ordered by validator."""
        return tuple(
            sorted(
                (v for v in self.all_votes() if v.value_id == value_id),
                key=lambda v: v.validator,
            )
        )


EMPTY_TALLY = Tally()


@dataclass(frozen=True, slots=True)
class RoundVotes:
    """Everything heard in one round of the current height.

    ``sender_power`` is the power of the distinct validators that sent any message in the
    round (proposal, prevote or precommit): the paper's ``f+1 ⟨*, h, round, *, *⟩`` (line 55).
    """

    proposal: Proposal | None = None
    proposal_valid: bool = False
    proposal_equivocated: bool = False
    prevotes: Tally = EMPTY_TALLY
    precommits: Tally = EMPTY_TALLY
    sender_power: int = 0

    def tally(self, kind: VoteKind) -> Tally:
        return self.prevotes if kind == "prevote" else self.precommits

    def has_sent(self, address: str) -> bool:
        return (
            address in self.prevotes.votes
            or address in self.precommits.votes
            or (self.proposal is not None and self.proposal.proposer == address)
        )

    def add_vote(self, vote: Vote, weight: int) -> tuple[RoundVotes, Added]:
        new_sender = not self.has_sent(vote.validator)
        added = self.tally(vote.kind).add(vote, weight)
        if added.tally is self.tally(vote.kind):
            return self, added
        changed = (
            replace(self, prevotes=added.tally) if vote.kind == "prevote" else replace(self, precommits=added.tally)
        )
        if new_sender:
            changed = replace(changed, sender_power=changed.sender_power + weight)
        return changed, added

    def add_proposal(self, proposal: Proposal, valid: bool, weight: int) -> tuple[RoundVotes, Proposal | None]:
        """Record the round's proposal; returns the first proposal if this one conflicts."""
        first = self.proposal
        if first is None:
            new_sender = not self.has_sent(proposal.proposer)
            changed = replace(self, proposal=proposal, proposal_valid=valid)
            if new_sender:
                changed = replace(changed, sender_power=changed.sender_power + weight)
            return changed, None
        if first.same_as(proposal) or self.proposal_equivocated:
            return self, None
        return replace(self, proposal_equivocated=True), first

    def to_dict(self, round: int) -> dict[str, Any]:
        """JSON-ready form; the tallies are not stored but recounted by ``from_dict``."""
        return {
            "round": round,
            "proposal": None if self.proposal is None else message_to_dict(self.proposal),
            "proposal_valid": self.proposal_valid,
            "proposal_equivocated": self.proposal_equivocated,
            "votes": [  # first votes before conflicting ones, so from_dict recounts the same
                message_to_dict(v) for tally in (self.prevotes, self.precommits) for v in tally.votes.values()
            ]
            + [
                message_to_dict(v)
                for tally in (self.prevotes, self.precommits)
                for seconds in tally.extra.values()
                for v in seconds
            ],
            "prevote_equivocators": sorted(self.prevotes.equivocators),
            "precommit_equivocators": sorted(self.precommits.equivocators),
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any], validators: ValidatorSet) -> RoundVotes:
        votes = EMPTY_ROUND
        if data["proposal"] is not None:
            proposal = proposal_from_dict(data["proposal"])
            power = validators.power_of(proposal.proposer)
            votes, _ = votes.add_proposal(proposal, bool(data["proposal_valid"]), power)
        for item in data["votes"]:
            vote = vote_from_dict(item)
            votes, _ = votes.add_vote(vote, validators.power_of(vote.validator))
        prevote_eq = frozenset(str(a) for a in data["prevote_equivocators"])
        precommit_eq = frozenset(str(a) for a in data["precommit_equivocators"])
        return replace(
            votes,
            proposal_equivocated=bool(data["proposal_equivocated"]),
            prevotes=replace(votes.prevotes, equivocators=prevote_eq),
            precommits=replace(votes.precommits, equivocators=precommit_eq),
        )


EMPTY_ROUND = RoundVotes()


def verify_commit(validators: ValidatorSet, height: int, value_id: str, precommits: Sequence[Vote]) -> bool:
    """True if ``precommits`` are a well-formed commit of ``value_id`` at ``height``.

    All must be precommits for that value at that height in one round, from distinct members
    of ``validators``, together holding more than 2/3 of the power. Signatures are the
    caller's to check (the machine carries them but never looks inside).
    """
    rounds = {v.round for v in precommits}
    if len(rounds) != 1:
        return False
    seen: set[str] = set()
    power = 0
    for vote in precommits:
        if (
            vote.kind != "precommit"
            or vote.height != height
            or vote.value_id != value_id
            or vote.validator in seen
            or vote.validator not in validators
        ):
            return False
        seen.add(vote.validator)
        power += validators.power_of(vote.validator)
    return power >= validators.quorum
