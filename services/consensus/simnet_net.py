"""What a consensus simulation (``simnet.py``) is made of: the network's settings and its
cuts, the nodes with their behaviours, the split-brain plan of Byzantine twins, and the fake
signatures the simulated drivers sign with. The simulation itself, its clock and its event
queue, are ``simnet.py``'s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Literal

from .machine import Proposal, State, Vote, message_to_dict

Behaviour = Literal["honest", "equivocate", "double_vote", "nil_voter", "withhold", "twin"]


@dataclass(frozen=True, slots=True)
class NetConfig:
    """Network and driver behaviour of one simulation (all times virtual milliseconds)."""

    min_delay_ms: int = 1
    max_delay_ms: int = 40
    loss: float = 0.0
    duplicate: float = 0.0
    late: float = 0.0  # share of message copies delayed beyond the timeouts ...
    late_ms: int = 1500  # ... by up to this much more
    withhold_ms: int = 2000  # how late a "withhold" validator's precommits reach side B; 0: never
    resend_every_ms: int = 400
    build_ms: int = 5
    commit_ms: int = 3
    invalid_rate: float = 0.0


Kind = Literal["proposal", "prevote", "precommit", "block"]
KINDS: tuple[Kind, ...] = ("proposal", "prevote", "precommit", "block")


@dataclass(frozen=True, slots=True)
class Cut:
    """From ``start_ms`` to ``end_ms`` nothing crosses the directed ``links`` (src, dst):
    a partition, a one-way link failure, a withheld vote. Optionally only for one height,
    some rounds and some kinds of message ("block": a sealed block its writer published, so
    a node on the other side cannot sync it; blocks have no round). Cut messages are lost;
    with ``hold`` they arrive after the heal, with ``delay_ms`` that much later."""

    start_ms: int
    end_ms: int
    links: frozenset[tuple[int, int]]
    hold: bool = False
    delay_ms: int = 0
    height: int | None = None
    rounds: frozenset[int] | None = None
    kinds: frozenset[Kind] | None = None

    def cuts(self, src: int, dst: int, at_ms: int, height: int, round: int | None, kind: Kind) -> bool:
        return (
            self.start_ms <= at_ms < self.end_ms
            and (src, dst) in self.links
            and (self.height is None or height == self.height)
            and (self.rounds is None or round is None or round in self.rounds)
            and (self.kinds is None or kind in self.kinds)
        )


def kind_of(message: Proposal | Vote) -> Kind:
    return message.kind if isinstance(message, Vote) else "proposal"


@dataclass(slots=True)
class Node:
    name: str
    behaviour: Behaviour = "honest"
    state: State | None = None  # None while crashed
    disk: State | None = None  # the last persisted state; None after an amnesic crash
    committed: dict[int, str] = field(default_factory=dict)  # the node's block store
    decided: dict[int, str] = field(default_factory=dict)  # its own machine's decisions
    incarnation: int = 0
    last_tick_view: tuple[int, int, str, bool] | None = None
    restarts: int = 0
    amnesic: bool = False  # has lost its disk once: faulty from then on
    builder_tag: str = ""  # told apart from a twin of the same key in the values it builds

    @property
    def alive(self) -> bool:
        return self.state is not None

    @property
    def honest(self) -> bool:
        return self.behaviour == "honest" and not self.amnesic

    @property
    def height(self) -> int:
        """Highest committed height (0 if none)."""
        return max(self.committed, default=0)


def fake_signature(message: Proposal | Vote) -> bytes:
    """What the simulated drivers "sign" with: a digest of the signer and the content."""
    unsigned = message_to_dict(replace(message, signature=b""))
    return hashlib.sha256(json.dumps(unsigned, sort_keys=True).encode()).digest()[:16]


@dataclass(frozen=True, slots=True)
class SplitRound:
    """What the Byzantine twins say to whom in one round of a split-brain attack.

    The first copies talk only to ``first``, the second copies only to ``second``; the
    first copies' precommits reach only ``first_precommits`` (withheld from the rest of
    ``first``), and the second copies' prevotes reach ``second_prevotes_late`` late.
    """

    first: frozenset[int]
    second: frozenset[int]
    first_precommits: frozenset[int] | None = None
    second_prevotes_late: frozenset[int] = frozenset()


__all__ = ["KINDS", "Behaviour", "Cut", "Kind", "NetConfig", "Node", "SplitRound", "fake_signature", "kind_of"]
