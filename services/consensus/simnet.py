"""A deterministic, in-memory network for the consensus machine: the test transport adapter.

Why: agreement and validity must hold under *every* schedule, and the bugs that break them
hide in rare interleavings (a lost precommit, a validator that restarts between two rounds,
a proposer that says different things to different peers). This module runs n machines
(``machine.apply``) on virtual time with a seeded random generator, so a schedule that
breaks a property can be replayed exactly from its seed and settings; Hypothesis draws them.

What it simulates, the way the Kafka driver would behave:

- **Network**: every message gets a seeded delay in ``[min_delay_ms, max_delay_ms]``, so
  messages are reordered; each copy may be lost (``loss``), duplicated (``duplicate``) or
  delayed far beyond the timeouts (``late``: up to ``late_ms`` more). Nodes call ``Resend``
  on a timer when they have made no progress, which recovers losses.
- **Partitions that heal** (``partition``, and ``cut`` for one-way links): for a window of
  virtual time messages do not cross between groups. A cut may cover only one height, some
  rounds and some kinds of message (proposal, prevote, precommit, or the sealed block a
  node publishes, which others then cannot sync). A cut message is lost, arrives after the
  heal (``hold``: a broker's backlog read by a consumer that reconnects) or arrives
  ``delay_ms`` late. This is what makes locks matter: some validators lock on a value in a
  round whose polka or commit the others only learn rounds later, or never.
- **Driver duties**: fake but checked signatures (a deterministic digest per signer and
  message), block building on ``RequestValue`` (value ids ``"<node>/h<h>/r<r>"`` are unique per
  node, height and round; a share ``invalid_rate`` of them is marked invalid, as if the
  builder were buggy), a validity verdict for each received proposal, timers, and
  persistence: the node's last state is its "disk".
- **Crash and restart**: a crashed node loses its timers and in-flight inputs; on restart it
  reloads its state through ``to_dict`` → JSON → ``from_dict`` (proving the state is
  serialisable), calls ``Resend`` and catches up on heights it missed from the **decided log**
  (the sealed-block store: each decision with its > 2/3 precommits), checking the commit
  before accepting it, as a real validator syncing blocks would. A crash with ``amnesia``
  loses the disk too: the node restarts from an empty machine at the height after its last
  committed block, free to vote again in a round it already voted in. Such a node is
  *faulty* (it may sign conflicting votes), so it counts against f like a Byzantine one.
  ``crash_after`` crashes a node at a step of its own (say, right after it precommitted).
- **Byzantine nodes** run an honest machine but tamper with what leaves it. The peers are
  split once into two halves (``split``, side B; seeded when not given):
  ``"equivocate"`` sends side B a different proposal (a valid twin value);
  ``"double_vote"`` sends side B a conflicting vote (the equivocator's twin of the value if
  there is one, else nil for a value and a forged value for nil); ``"nil_voter"`` turns
  every vote into nil; ``"withhold"`` sends its precommits to side B only ``withhold_ms``
  late (never, if 0); ``"twin"`` runs two honest machines under the one key (the Twins
  method of Bano et al.): they build different valid values, propose and vote
  independently, and so equivocate the way a real attacker would, with votes that are each
  correct for what that copy saw. Both talk to everyone (each peer keeps whichever proposal
  reaches it first) unless ``split_brain`` gives them a plan: per round of one height, whom
  each copy talks to and whom it withholds its precommits from (``SplitRound``). Byzantine
  nodes never write the decided log.
- **Validator-set changes** (``set_changes``): powers per node from a height on; every
  node's driver starts each height with the set the schedule gives for it (all nodes agree
  on the schedule, as they would reading it from the chain). A node whose power is 0 at a
  height is an observer there. Commits are checked against the set of their own height.
- **Observers**: extra nodes outside the validator set that only listen.

Caveat: the driver here is an idealisation (commit and block building take a fixed virtual
time, validity is a global lookup); it exists to stress the consensus rules, not the driver.
"""

from __future__ import annotations

import bisect
import heapq
import json
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
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
    Step,
    TimeoutIn,
    TimingConfig,
    ValidatorInfo,
    ValidatorSet,
    ValueReady,
    Vote,
    VoteIn,
    apply,
    initial_state,
    verify_commit,
)
from .machine_state import from_dict, to_dict
from .simnet_net import Behaviour, Cut, Kind, NetConfig, Node, SplitRound, fake_signature, kind_of

FIRST_HEIGHT = 1
_STEPS: tuple[Step, ...] = ("propose", "prevote", "precommit")


@dataclass(frozen=True, slots=True)
class _Deliver:
    src: int
    node: int
    message: Proposal | Vote
    delayed: bool = False  # already held back by a cut: deliver it now


@dataclass(frozen=True, slots=True)
class _Local:
    """An input the node's own driver produces (timer, built block, commit, tick)."""

    node: int
    incarnation: int
    what: TimeoutIn | ValueReady | StartHeight | Literal["tick"]


@dataclass(frozen=True, slots=True)
class _Fault:
    node: int
    what: Literal["crash", "amnesia", "restart"]


_Event = _Deliver | _Local | _Fault


def _signed(message: Proposal | Vote) -> Proposal | Vote:
    return replace(message, signature=fake_signature(message))


def _validator_set(names: Sequence[str], powers: Sequence[int]) -> ValidatorSet:
    return ValidatorSet(tuple(ValidatorInfo(n, p) for n, p in zip(names, powers, strict=True) if p > 0))


class Simulation:
    """n validators (plus optional observers and Byzantine twins) on one simulated network.

    Node indices: validators ``0 .. len(powers)-1`` (a power of 0 is a node outside the
    genesis set, for ``set_changes``), then ``observers``, then the second copy of each
    ``"twin"`` validator (``twin_of`` maps it to the first). ``split`` is side B of the
    tampering behaviours (node indices; a seeded half when not given).
    """

    def __init__(
        self,
        powers: Sequence[int],
        *,
        seed: int,
        net: NetConfig | None = None,
        timing: TimingConfig | None = None,
        behaviours: Mapping[int, Behaviour] | None = None,
        observers: int = 0,
        split: Collection[int] | None = None,
        set_changes: Mapping[int, Sequence[int]] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.net = net or NetConfig()
        self.timing = timing or TimingConfig(propose_ms=200, prevote_ms=100, precommit_ms=100, delta_ms=100)
        names = [f"v{i}" for i in range(len(powers))]
        changes = sorted({FIRST_HEIGHT: powers, **(set_changes or {})}.items())
        self._set_heights = [h for h, _ in changes]
        self._sets = [_validator_set(names, p) for _, p in changes]
        self.validators = self._sets[0]
        behaviours = behaviours or {}
        self.nodes = [Node(name, behaviours.get(i, "honest"), builder_tag=name) for i, name in enumerate(names)]
        self.nodes += [Node(f"observer{i}", builder_tag=f"observer{i}") for i in range(observers)]
        self.twin_of: dict[int, int] = {}
        for i in sorted(i for i, b in behaviours.items() if b == "twin"):
            self.twin_of[len(self.nodes)] = i
            self.nodes.append(Node(names[i], "twin", builder_tag=f"{names[i]}'"))
        self.now = 0
        self._queue: list[tuple[int, int, _Event]] = []
        self._seq = 0
        self.cuts: list[Cut] = []
        self._triggers: list[tuple[int, tuple[int, int, int], int, bool]] = []
        self.values: dict[str, bool] = {}  # every value ever built: is it valid?
        self.twin_values: dict[str, str] = {}  # an equivocator's value pairs, both directions
        self.log: dict[int, Decision] = {}  # the decided log (sealed blocks with commits)
        self._writers: dict[int, list[int]] = {}  # who published each sealed block
        self.evidence: list[Evidence] = []
        self.violations: list[str] = []
        self.steps = 0
        # A fixed split of the peers for Byzantine tampering: half see one story.
        order = list(range(len(self.nodes)))
        self.rng.shuffle(order)
        self._side_b = frozenset(order[: len(order) // 2] if split is None else split)
        for i, node in enumerate(self.nodes):
            node.state = node.disk = initial_state(node.name, self.timing)
            self._feed(i, StartHeight(FIRST_HEIGHT, self.validators))
            self._push(self.rng.randint(1, self.net.resend_every_ms), _Local(i, 0, "tick"))

    def validators_at(self, height: int) -> ValidatorSet:
        """The validator set of ``height`` under the schedule every node follows."""
        return self._sets[max(0, bisect.bisect_right(self._set_heights, height) - 1)]

    # -- scheduling ---------------------------------------------------------------------------

    def _push(self, delay_ms: int, event: _Event) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay_ms, self._seq, event))

    def crash(self, node: int, at_ms: int, *, amnesia: bool = False) -> None:
        """Stop ``node`` at ``at_ms``; with ``amnesia`` it also loses its persisted state."""
        self._push(at_ms - self.now, _Fault(node, "amnesia" if amnesia else "crash"))

    def restart(self, node: int, at_ms: int) -> None:
        self._push(at_ms - self.now, _Fault(node, "restart"))

    def crash_after(
        self, node: int, height: int, round: int, step: Step, *, down_ms: int, amnesia: bool = False
    ) -> None:
        """Crash ``node`` once its machine has reached ``step`` of ``round`` at ``height`` (it
        has sent what that step sends), and restart it ``down_ms`` later."""
        self._triggers.append((node, (height, round, _STEPS.index(step)), down_ms, amnesia))

    def partition(
        self,
        groups: Iterable[Iterable[int]],
        start_ms: int,
        end_ms: int,
        *,
        hold: bool = False,
        height: int | None = None,
        rounds: Iterable[int] | None = None,
        kinds: Iterable[Kind] | None = None,
    ) -> None:
        """Split the network into ``groups`` (a node in none is alone) from ``start_ms`` until
        it heals at ``end_ms``; with ``height``/``rounds``/``kinds``, only for those messages."""
        group_of = {i: g for g, members in enumerate(groups) for i in members}
        everyone = range(len(self.nodes))
        links = [(a, b) for a in everyone for b in everyone if group_of.get(a, -1 - a) != group_of.get(b, -1 - b)]
        self.cut(links, start_ms, end_ms, hold=hold, height=height, rounds=rounds, kinds=kinds)

    def cut(
        self,
        links: Iterable[tuple[int, int]],
        start_ms: int,
        end_ms: int,
        *,
        hold: bool = False,
        delay_ms: int = 0,
        height: int | None = None,
        rounds: Iterable[int] | None = None,
        kinds: Iterable[Kind] | None = None,
    ) -> None:
        """Cut the directed ``links`` (src, dst): a withheld vote, a one-way link failure."""
        only_rounds = None if rounds is None else frozenset(rounds)
        only_kinds = None if kinds is None else frozenset(kinds)
        links = frozenset((a, b) for a, b in links if a != b)
        self.cuts.append(Cut(start_ms, end_ms, links, hold, delay_ms, height, only_rounds, only_kinds))

    def split_brain(
        self,
        height: int,
        plan: Sequence[SplitRound],
        *,
        isolate: Collection[int] = (),
        heal_ms: int,
        late_ms: int = 300,
        hold: bool = True,
    ) -> None:
        """Play ``plan[r]`` in round r of ``height`` until ``heal_ms``, with every ``"twin"``.

        This is how a Byzantine proposer makes locks matter: by showing different valid
        values to different parts of the network and withholding votes, it gets some honest
        validators to lock on one value while the next proposers see a polka for another,
        or none. ``isolate`` lists honest nodes cut off right after they vote in the attacked
        height (their precommits and sealed block reach no one until the heal), so the
        others cannot simply copy their decision and must rely on their locks.
        """
        everyone = range(len(self.nodes))
        firsts, seconds = set(self.twin_of.values()), set(self.twin_of)

        def talk(copies: set[int], to: Collection[int], kinds: Iterable[Kind] | None, r: int) -> None:
            allowed = set(to) | copies
            links = [(z, j) for z in copies for j in everyone if j not in allowed]
            self.cut(links, 0, heal_ms, hold=hold, height=height, rounds=[r], kinds=kinds)

        for r, step in enumerate(plan):
            if step.first_precommits is None:
                talk(firsts, step.first, None, r)
            else:
                talk(firsts, step.first, ("proposal", "prevote"), r)
                talk(firsts, step.first_precommits, ("precommit",), r)
            talk(seconds, step.second, None, r)
            late = [(z, j) for z in seconds for j in step.second_prevotes_late]
            self.cut(late, 0, heal_ms, delay_ms=late_ms, height=height, rounds=[r], kinds=("prevote",))
        cut_off = [(i, j) for i in isolate for j in everyone]
        self.cut(cut_off, 0, heal_ms, hold=hold, height=height, kinds=("precommit", "block"))

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
            if event.what == "restart":
                self._restart(event.node)
            else:
                self._crash(event.node, amnesia=event.what == "amnesia")
            return
        node = self.nodes[event.node]
        if node.state is None:
            return  # crashed: in-flight input is lost
        if isinstance(event, _Deliver):
            m = event.message
            cut = next(
                (c for c in self.cuts if c.cuts(event.src, event.node, self.now, m.height, m.round, kind_of(m))), None
            )
            if cut is None or event.delayed:
                self._receive(event.node, event.message)
            elif cut.delay_ms > 0:
                self._push(cut.delay_ms, replace(event, delayed=True))
            elif cut.hold:
                self._push(cut.end_ms - self.now + self.rng.randint(0, self.net.max_delay_ms), event)
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
        if self._triggers:
            self._fire_triggers(i, node.state)

    def _fire_triggers(self, i: int, state: State) -> None:
        where = (state.height, state.round, _STEPS.index(state.step))
        for trigger in [t for t in self._triggers if t[0] == i and where >= t[1]]:
            self._triggers.remove(trigger)
            _, _, down_ms, amnesia = trigger
            self._push(0, _Fault(i, "amnesia" if amnesia else "crash"))
            self._push(down_ms, _Fault(i, "restart"))

    def _act(self, i: int, output: Output) -> None:
        node = self.nodes[i]
        if isinstance(output, Broadcast):
            self._broadcast(i, _signed(output.message))
        elif isinstance(output, Relay):
            for dst in range(len(self.nodes)):
                if dst != i:
                    self._send(i, dst, output.message)
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
        value = f"{node.builder_tag}/h{height}/r{round}"
        if value not in self.values:
            honest_builder = node.behaviour == "honest"
            broken = honest_builder and self.rng.random() < self.net.invalid_rate
            self.values[value] = not broken
            if node.behaviour == "equivocate":
                twin = value + "/twin"
                self.values[twin] = True
                self.twin_values[value], self.twin_values[twin] = twin, value
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
        validators = self.validators_at(h)
        if not verify_commit(validators, h, v, decision.precommits):
            self.violations.append(f"{node.name} decided {h} without a quorum commit")
        if node.decided.setdefault(h, v) != v:
            self.violations.append(f"{node.name} decided {h} twice: {node.decided[h]} / {v}")
        if node.honest and node.name in validators:
            self._writers.setdefault(h, []).append(i)
            sealed = self.log.setdefault(h, decision)
            if sealed.value_id != v:
                self.violations.append(f"fork at {h}: {sealed.value_id} vs {v} ({node.name})")
        commit = StartHeight(h + 1, self.validators_at(h + 1))
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
            writers = self._writers.get(h, [])
            if writers and all(any(c.cuts(w, i, self.now, h, None, "block") for c in self.cuts) for w in writers):
                return  # every published copy of the block is on the other side of a cut
            sealed = self.log[h]
            commit_ok = verify_commit(self.validators_at(h), h, sealed.value_id, sealed.precommits) and all(
                v.signature == fake_signature(v) for v in sealed.precommits
            )
            if not commit_ok:
                self.violations.append(f"{node.name} refused a bad commit for {h}")
                return
            if node.committed.setdefault(h, sealed.value_id) != sealed.value_id:
                self.violations.append(f"{node.name} committed {h} differently from the log")
            self._feed(i, StartHeight(h + 1, self.validators_at(h + 1)))

    def _crash(self, i: int, *, amnesia: bool) -> None:
        node = self.nodes[i]
        node.state = None
        node.incarnation += 1
        if amnesia:
            node.disk = None
            node.amnesic = True

    def _restart(self, i: int) -> None:
        node = self.nodes[i]
        if node.state is not None:
            return
        if node.disk is None:  # amnesia: only the block store survived
            node.state = initial_state(node.name, self.timing)
        else:
            node.state = from_dict(json.loads(json.dumps(to_dict(node.disk))))
            if node.state != node.disk:
                self.violations.append(f"{node.name}: state changed through to_dict/from_dict")
        node.incarnation += 1
        node.restarts += 1
        node.last_tick_view = None
        if node.height >= node.state.height:  # committed blocks the machine had not started
            self._feed(i, StartHeight(node.height + 1, self.validators_at(node.height + 1)))
        self._sync(i)
        self._feed(i, Resend())
        self._push(self.net.resend_every_ms, _Local(i, node.incarnation, "tick"))

    # -- network ------------------------------------------------------------------------------

    def _broadcast(self, src: int, message: Proposal | Vote) -> None:
        sender = self.nodes[src]
        for dst in range(len(self.nodes)):
            if dst == src or sender.behaviour in ("honest", "twin"):
                self._send(src, dst, message)  # a Byzantine node does not lie to itself
            elif sender.behaviour == "nil_voter" and isinstance(message, Vote):
                self._send(src, dst, _signed(replace(message, value_id=None)))
            elif sender.behaviour == "withhold":
                withheld = dst in self._side_b and isinstance(message, Vote) and message.kind == "precommit"
                if not withheld:
                    self._send(src, dst, message)
                elif self.net.withhold_ms > 0:
                    self._send(src, dst, message, extra_ms=self.net.withhold_ms)
            else:
                self._send(src, dst, self._tamper(sender, message) if dst in self._side_b else message)

    def _tamper(self, sender: Node, message: Proposal | Vote) -> Proposal | Vote:
        """What a Byzantine sender tells the other half of the network."""
        if sender.behaviour == "equivocate" and isinstance(message, Proposal):
            twin = self.twin_values.get(message.value_id)
            if twin is not None:
                return _signed(replace(message, value_id=twin))
        elif sender.behaviour == "double_vote" and isinstance(message, Vote):
            v = message.value_id
            forged = f"forged/{sender.name}/h{message.height}/r{message.round}"
            other = self.twin_values.get(v, None) if v is not None else forged
            return _signed(replace(message, value_id=other))
        return message

    def _send(self, src: int, dst: int, message: Proposal | Vote, *, extra_ms: int = 0) -> None:
        if self.rng.random() < self.net.loss:
            return
        copies = 2 if self.rng.random() < self.net.duplicate else 1
        for _ in range(copies):
            delay = self.rng.randint(self.net.min_delay_ms, self.net.max_delay_ms) + extra_ms
            if self.net.late > 0 and self.rng.random() < self.net.late:
                delay += self.rng.randint(self.net.max_delay_ms, self.net.late_ms)
            self._push(delay, _Deliver(src, dst, message))

    # -- checks -------------------------------------------------------------------------------

    def honest_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.honest]

    def honest_validators(self, height: int) -> list[int]:
        """Indices of the honest nodes that are validators at ``height``."""
        validators = self.validators_at(height)
        return [i for i, n in enumerate(self.nodes) if n.honest and n.name in validators]

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

    def min_height(self, nodes: Iterable[int]) -> int:
        """Lowest committed height among ``nodes``."""
        return min(self.nodes[i].height for i in nodes)

    def max_height(self) -> int:
        return max(n.height for n in self.nodes)
