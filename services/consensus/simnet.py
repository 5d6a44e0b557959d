"""A deterministic, in-memory network for the consensus machine: the test transport adapter.

Why: agreement and validity must hold under *every* schedule, and the bugs that break them
hide in rare interleavings (a lost precommit, a validator that restarts between two rounds,
a proposer that says different things to different peers). This module runs n machines
(``machine.apply``) on virtual time with a seeded random generator, so a schedule that
breaks a property can be replayed exactly from its seed and settings; Hypothesis draws them.

What it simulates, the way the Kafka driver would behave:

- **Network**: every message gets a seeded delay in ``[min_delay_ms, max_delay_ms]``, so
  messages are reordered; each copy may be lost (``loss``) or duplicated (``duplicate``).
  Nodes call ``Resend`` on a timer when they have made no progress, which recovers losses.
- **Driver duties**: fake but checked signatures (a deterministic digest per signer and
  message), block building on ``RequestValue`` (value ids ``"<node>/h<h>/r<r>"`` are unique per
  node, height and round; a share ``invalid_rate`` of them is marked invalid, as if the
  builder were buggy), a validity verdict for each received proposal, timers, and
  persistence: the node's last state is its "disk".
- **Crash and restart**: a crashed node loses its timers and in-flight inputs; on restart it
  reloads its state through ``to_dict`` → JSON → ``from_dict`` (proving the state is
  serialisable), calls ``Resend`` and catches up on heights it missed from the **decided log**
  (the sealed-block store: each decision with its > 2/3 precommits), checking the commit
  before accepting it, as a real validator syncing blocks would.
- **Byzantine nodes** run an honest machine but tamper with what leaves it:
  ``"equivocate"`` sends a different proposal (a valid twin value) to half of its peers;
  ``"double_vote"`` sends half of its peers a conflicting vote (the equivocator's twin of the
  value if there is one, else nil for a value and a forged value for nil); ``"nil_voter"``
  turns every vote into nil. Byzantine nodes never write the decided log.
- **Observers**: extra nodes outside the validator set that only listen.

Caveat: the driver here is an idealisation (commit and block building take a fixed virtual
time, validity is a global lookup); it exists to stress the consensus rules, not the driver.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from .machine import (
    Broadcast,
    Decision,
    Evidence,
    Input,
    Output,
    Proposal,
    ProposalIn,
    Relay,
    RequestValue,
    Resend,
    ScheduleTimeout,
    StartHeight,
    State,
    TimeoutIn,
    TimingConfig,
    ValidatorInfo,
    ValidatorSet,
    ValueReady,
    Vote,
    VoteIn,
    apply,
    initial_state,
    message_to_dict,
    verify_commit,
)
from .machine_state import from_dict, to_dict

Behaviour = Literal["honest", "equivocate", "double_vote", "nil_voter"]

FIRST_HEIGHT = 1


@dataclass(frozen=True, slots=True)
class NetConfig:
    """Network and driver behaviour of one simulation (all times virtual milliseconds)."""

    min_delay_ms: int = 1
    max_delay_ms: int = 40
    loss: float = 0.0
    duplicate: float = 0.0
    resend_every_ms: int = 400
    build_ms: int = 5
    commit_ms: int = 3
    invalid_rate: float = 0.0


@dataclass(slots=True)
class Node:
    name: str
    behaviour: Behaviour = "honest"
    state: State | None = None  # None while crashed
    disk: State | None = None  # the last persisted state
    committed: dict[int, str] = field(default_factory=dict)  # the node's block store
    decided: dict[int, str] = field(default_factory=dict)  # its own machine's decisions
    incarnation: int = 0
    last_tick_view: tuple[int, int, str, bool] | None = None
    restarts: int = 0

    @property
    def alive(self) -> bool:
        return self.state is not None

    @property
    def honest(self) -> bool:
        return self.behaviour == "honest"

    @property
    def height(self) -> int:
        """Highest committed height (0 if none)."""
        return max(self.committed, default=0)


@dataclass(frozen=True, slots=True)
class _Deliver:
    node: int
    message: Proposal | Vote


@dataclass(frozen=True, slots=True)
class _Local:
    """An input the node's own driver produces (timer, built block, commit, tick)."""

    node: int
    incarnation: int
    what: TimeoutIn | ValueReady | StartHeight | Literal["tick"]


@dataclass(frozen=True, slots=True)
class _Fault:
    node: int
    what: Literal["crash", "restart"]


_Event = _Deliver | _Local | _Fault


def fake_signature(message: Proposal | Vote) -> bytes:
    """What the simulated drivers "sign" with: a digest of the signer and the content."""
    unsigned = message_to_dict(replace(message, signature=b""))
    return hashlib.sha256(json.dumps(unsigned, sort_keys=True).encode()).digest()[:16]


def _signed(message: Proposal | Vote) -> Proposal | Vote:
    return replace(message, signature=fake_signature(message))


class Simulation:
    """n validators (plus optional observers) on one simulated network."""

    def __init__(
        self,
        powers: Sequence[int],
        *,
        seed: int,
        net: NetConfig | None = None,
        timing: TimingConfig | None = None,
        behaviours: dict[int, Behaviour] | None = None,
        observers: int = 0,
    ) -> None:
        self.rng = random.Random(seed)
        self.net = net or NetConfig()
        self.timing = timing or TimingConfig(propose_ms=200, prevote_ms=100, precommit_ms=100, delta_ms=100)
        names = [f"v{i}" for i in range(len(powers))]
        self.validators = ValidatorSet(tuple(ValidatorInfo(n, p) for n, p in zip(names, powers, strict=True)))
        behaviours = behaviours or {}
        self.nodes = [Node(name, behaviours.get(i, "honest")) for i, name in enumerate(names)]
        self.nodes += [Node(f"observer{i}") for i in range(observers)]
        self.now = 0
        self._queue: list[tuple[int, int, _Event]] = []
        self._seq = 0
        self.values: dict[str, bool] = {}  # every value ever built: is it valid?
        self.twins: dict[str, str] = {}  # equivocation pairs, both directions
        self.log: dict[int, Decision] = {}  # the decided log (sealed blocks with commits)
        self.evidence: list[Evidence] = []
        self.violations: list[str] = []
        self.steps = 0
        # A fixed split of the peers for Byzantine tampering: half see one story.
        order = list(range(len(self.nodes)))
        self.rng.shuffle(order)
        self._side_b = frozenset(order[: len(order) // 2])
        for i, node in enumerate(self.nodes):
            node.state = node.disk = initial_state(node.name, self.timing)
            self._feed(i, StartHeight(FIRST_HEIGHT, self.validators))
            self._push(self.rng.randint(1, self.net.resend_every_ms), _Local(i, 0, "tick"))

    # -- scheduling ---------------------------------------------------------------------------

    def _push(self, delay_ms: int, event: _Event) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay_ms, self._seq, event))

    def crash(self, node: int, at_ms: int) -> None:
        self._push(at_ms - self.now, _Fault(node, "crash"))

    def restart(self, node: int, at_ms: int) -> None:
        self._push(at_ms - self.now, _Fault(node, "restart"))

    def run(self, until_ms: int) -> None:
        """Process every event up to virtual time ``until_ms``."""
        while self._queue and self._queue[0][0] <= until_ms:
            when, _, event = heapq.heappop(self._queue)
            self.now = when
            self._dispatch(event)
        self.now = max(self.now, until_ms)

    def run_until(self, done: Callable[[], bool], limit_ms: int) -> bool:
        """Run until ``done()`` holds (checked after each event) or ``limit_ms`` passes."""
        while self._queue and self._queue[0][0] <= limit_ms:
            if done():
                return True
            when, _, event = heapq.heappop(self._queue)
            self.now = when
            self._dispatch(event)
        return done()

    def _dispatch(self, event: _Event) -> None:
        if isinstance(event, _Fault):
            if event.what == "crash":
                self._crash(event.node)
            else:
                self._restart(event.node)
            return
        node = self.nodes[event.node]
        if node.state is None:
            return  # crashed: in-flight input is lost
        if isinstance(event, _Deliver):
            self._receive(event.node, event.message)
        elif event.incarnation == node.incarnation:  # timers die with the process
            if event.what == "tick":
                self._tick(event.node)
            else:
                self._feed(event.node, event.what)

    # -- one node's driver --------------------------------------------------------------------

    def _feed(self, i: int, item: Input) -> None:
        node = self.nodes[i]
        assert node.state is not None
        node.state, outputs = apply(node.state, item)
        node.disk = node.state  # persisted before any output is acted on
        self.steps += 1
        for output in outputs:
            self._act(i, output)

    def _act(self, i: int, output: Output) -> None:
        node = self.nodes[i]
        if isinstance(output, Broadcast):
            self._broadcast(i, _signed(output.message))
        elif isinstance(output, Relay):
            for dst in range(len(self.nodes)):
                if dst != i:
                    self._send(dst, output.message)
        elif isinstance(output, ScheduleTimeout):
            timeout = TimeoutIn(output.step, output.height, output.round)
            self._push(output.duration_ms, _Local(i, node.incarnation, timeout))
        elif isinstance(output, RequestValue):
            value = self._build(node, output.height, output.round)
            ready = ValueReady(output.height, output.round, value)
            self._push(self.net.build_ms, _Local(i, node.incarnation, ready))
        elif isinstance(output, Decision):
            self._on_decision(i, output)
        else:
            self.evidence.append(output)

    def _build(self, node: Node, height: int, round: int) -> str:
        value = f"{node.name}/h{height}/r{round}"
        if value not in self.values:
            honest_builder = node.behaviour == "honest"
            broken = honest_builder and self.rng.random() < self.net.invalid_rate
            self.values[value] = not broken
            if node.behaviour == "equivocate":
                twin = value + "/twin"
                self.values[twin] = True
                self.twins[value], self.twins[twin] = twin, value
        return value

    def _receive(self, i: int, message: Proposal | Vote) -> None:
        if message.signature != fake_signature(message):
            self.violations.append(f"bad signature delivered to {self.nodes[i].name}")
            return
        if isinstance(message, Proposal):
            self._feed(i, ProposalIn(message, self.values.get(message.value_id, False)))
        else:
            self._feed(i, VoteIn(message))

    def _on_decision(self, i: int, decision: Decision) -> None:
        node = self.nodes[i]
        h, v = decision.height, decision.value_id
        if not verify_commit(self.validators, h, v, decision.precommits):
            self.violations.append(f"{node.name} decided {h} without a quorum commit")
        if node.decided.setdefault(h, v) != v:
            self.violations.append(f"{node.name} decided {h} twice: {node.decided[h]} / {v}")
        if node.honest and node.name in self.validators:
            sealed = self.log.setdefault(h, decision)
            if sealed.value_id != v:
                self.violations.append(f"fork at {h}: {sealed.value_id} vs {v} ({node.name})")
        commit = StartHeight(h + 1, self.validators)
        self._push(self.net.commit_ms, _Local(i, node.incarnation, commit))
        node.committed.setdefault(h, v)

    def _tick(self, i: int) -> None:
        node = self.nodes[i]
        self._sync(i)
        state = node.state
        assert state is not None
        view = (state.height, state.round, state.step, state.decision is None)
        if view == node.last_tick_view:
            self._feed(i, Resend())
        node.last_tick_view = view
        self._push(self.net.resend_every_ms, _Local(i, node.incarnation, "tick"))

    def _sync(self, i: int) -> None:
        """Catch up from the decided log, as a validator reads sealed blocks it missed."""
        node = self.nodes[i]
        while node.state is not None and node.state.height in self.log:
            h = node.state.height
            sealed = self.log[h]
            commit_ok = verify_commit(self.validators, h, sealed.value_id, sealed.precommits) and all(
                v.signature == fake_signature(v) for v in sealed.precommits
            )
            if not commit_ok:
                self.violations.append(f"{node.name} refused a bad commit for {h}")
                return
            if node.committed.setdefault(h, sealed.value_id) != sealed.value_id:
                self.violations.append(f"{node.name} committed {h} differently from the log")
            self._feed(i, StartHeight(h + 1, self.validators))

    def _crash(self, i: int) -> None:
        node = self.nodes[i]
        node.state = None
        node.incarnation += 1

    def _restart(self, i: int) -> None:
        node = self.nodes[i]
        if node.state is not None:
            return
        assert node.disk is not None
        node.state = from_dict(json.loads(json.dumps(to_dict(node.disk))))
        if node.state != node.disk:
            self.violations.append(f"{node.name}: state changed through to_dict/from_dict")
        node.incarnation += 1
        node.restarts += 1
        node.last_tick_view = None
        if node.height >= node.state.height:  # committed blocks the machine had not started
            self._feed(i, StartHeight(node.height + 1, self.validators))
        self._sync(i)
        self._feed(i, Resend())
        self._push(self.net.resend_every_ms, _Local(i, node.incarnation, "tick"))

    # -- network ------------------------------------------------------------------------------

    def _broadcast(self, src: int, message: Proposal | Vote) -> None:
        sender = self.nodes[src]
        for dst in range(len(self.nodes)):
            if dst == src or sender.honest:
                self._send(dst, message)  # a Byzantine node does not lie to itself
            elif sender.behaviour == "nil_voter" and isinstance(message, Vote):
                self._send(dst, _signed(replace(message, value_id=None)))
            else:
                self._send(dst, self._tamper(sender, message) if dst in self._side_b else message)

    def _tamper(self, sender: Node, message: Proposal | Vote) -> Proposal | Vote:
        """What a Byzantine sender tells the other half of the network."""
        if sender.behaviour == "equivocate" and isinstance(message, Proposal):
            twin = self.twins.get(message.value_id)
            if twin is not None:
                return _signed(replace(message, value_id=twin))
        elif sender.behaviour == "double_vote" and isinstance(message, Vote):
            v = message.value_id
            forged = f"forged/{sender.name}/h{message.height}/r{message.round}"
            other = self.twins.get(v, None) if v is not None else forged
            return _signed(replace(message, value_id=other))
        return message

    def _send(self, dst: int, message: Proposal | Vote) -> None:
        if self.rng.random() < self.net.loss:
            return
        copies = 2 if self.rng.random() < self.net.duplicate else 1
        for _ in range(copies):
            delay = self.rng.randint(self.net.min_delay_ms, self.net.max_delay_ms)
            self._push(delay, _Deliver(dst, message))

    # -- checks -------------------------------------------------------------------------------

    def honest_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.honest]

    def safety_violations(self) -> list[str]:
        """Agreement and validity over every honest node, plus anything seen during the run."""
        problems = list(self.violations)
        by_height: dict[int, set[str]] = {}
        for node in self.honest_nodes():
            for h, v in [*node.decided.items(), *node.committed.items()]:
                by_height.setdefault(h, set()).add(v)
        for h, values in sorted(by_height.items()):
            if len(values) > 1:
                problems.append(f"agreement broken at height {h}: {sorted(values)}")
            for v in values:
                if not self.values.get(v, False):
                    problems.append(f"height {h} decided {v!r}, never proposed as valid")
        return problems

    def min_height(self, nodes: Sequence[int]) -> int:
        """Lowest committed height among ``nodes``."""
        return min(self.nodes[i].height for i in nodes)

    def max_height(self) -> int:
        return max(n.height for n in self.nodes)
