"""A validator: the asyncio driver around the pure consensus machine (architecture: Consensus, Nodes).

It moves inputs into ``machine.apply`` and carries out what the machine asks for. The jobs are
split as CometBFT splits a node into reactors, one module each:

- ``intake.py``: the ``tx`` topic → validity rule → mempool; refusal receipts, dead letters;
- ``proposals.py``: building this node's block, judging others' proposals, signing;
- ``sync.py``: sealed blocks from ``blocks`` that this node did not decide;
- ``publisher.py``: blocks and chain outputs onto the topics; republishing;
- ``results.py`` (through the ledger): the services' results each header commits to;
- this module: the inbox, the machine, timers, and the order in which all of that happens,
  with two parts of its own that work on its state (each a function of the ``Validator``
  that one of its methods delegates to): ``traffic.py``, consensus messages in and out
  (votes, proposals, compact ones completed or asked for, this node's block built and
  signed), and ``heights.py``, when the next height starts and the commit path of a
  decided or synced block.

Caveats worth knowing:
- The machine state is persisted (fsync) before any message the validator signs leaves the
  process, so a validator that crashes and restarts never signs two different votes for one
  height and round.
- Every message is handled inside one guard: whatever a message makes go wrong, it is logged
  and dead-lettered and the loop goes on (architecture: Kafka is not trusted). Readers run supervised: one that fails
  is restarted with back-off, one that keeps failing stops the process with an error.
- Consensus traffic, blocks and timers are handled before transactions: a backlog of submitted
  transactions must never delay a vote.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from traco.core.ports import BusMessage, EventBus, Signer, StartAt, StateStore
from traco.core.positions import loop_time
from traco.core.supervise import run_all, supervised
from traco.core.topics import node_topic, topic
from traco.schemas.block import SealedBlock
from traco.schemas.consensus import ProposalMessage
from traco.schemas.genesis import Genesis, ValidatorPower
from traco.services.consensus import compact, heights, machine_state, telemetry, traffic, wire
from traco.services.consensus import machine as m
from traco.services.consensus.deadletters import DeadLetters
from traco.services.consensus.inbox import Inbox
from traco.services.consensus.intake import TxIntake
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.mempool import Mempool
from traco.services.consensus.proposals import Candidate
from traco.services.consensus.publisher import Publisher
from traco.services.consensus.results import offer_results
from traco.services.consensus.sync import BlockSync
from traco.services.consensus.validity import SignatureCache

log = logging.getLogger(__name__)

STATE_META_KEY = "consensus_state"
TICK_S = 0.1
RESEND_AFTER_S = 2.0
PURGE_EVERY_S = 5.0


@dataclass
class ValidatorConfig:
    index: int
    signer: Signer  # the validator's key: in memory, or an HSM's (never a raw key then)
    timing: m.TimingConfig
    empty_block_interval_s: float | None = None
    """None: the chain's parameter (genesis, then the council's); a value overrides it (tests)."""
    publish_grace_s: float = 1.0
    max_pending_per_member: int | None = None
    compact_proposals: bool = True
    """Propose by leaf hashes (``compact.py``); False sends every transaction in the proposal."""


@dataclass
class _Stats:
    decided: int = 0
    started: float = field(default_factory=time.monotonic)


class Validator:
    def __init__(
        self,
        genesis: Genesis,
        ledger: Ledger,
        bus: EventBus,
        config: ValidatorConfig,
        node_id: str | None = None,
        after_commit: Callable[[SealedBlock], Awaitable[None]] | None = None,
        work_pending: Callable[[], bool] | None = None,
    ) -> None:
        """Inside a node (``node_id``), the node's services run in this process: ``after_commit``
        executes them and hands their results to the ledger, so no result is read from a topic;
        refusals, dead letters and the chain's outputs go to the node's own topics."""
        self.genesis = genesis
        self.ledger = ledger
        self.bus = bus
        self.config = config
        self.node_id = node_id
        self.after_commit = after_commit
        self.work_pending = work_pending
        """Whether the block just executed left work for the next height (a command sent, an
        outcome to report back: ``Node.commands_pending``): then the next height starts at once,
        as after a block with transactions, rather than after the empty-block interval."""
        self.topics = wire.Topics(genesis.chain_id, node_id)
        self.me = config.signer.public_key.hex()
        self._vset: tuple[tuple[ValidatorPower, ...], m.ValidatorSet, list[str]] | None = None
        self.signatures = SignatureCache()
        self.mempool = Mempool(genesis.params.max_nonce_gap, max_per_member=config.max_pending_per_member)
        self.intake = TxIntake(genesis, ledger, bus, self.topics, self.mempool, self.signatures, self._duty)
        self.publisher = Publisher(ledger, bus, self.topics, config.publish_grace_s, own_outputs=node_id is not None)
        self.dead_letters = DeadLetters(ledger.state, bus, self.topics.dlq)
        self.sync = BlockSync(
            ledger, self.topics, bus, self.publisher, self.me, self._dead_letter_duty, self._commit_synced
        )
        self.candidates: dict[str, Candidate] = {}
        self.compact = compact.CompactProposals(self.me)
        self.future_proposals: list[ProposalMessage] = []
        self.want_value: tuple[int, int] | None = None
        self.last_had_txs = False
        self.last_progress = self.last_block_at = self.last_purge = 0.0  # loop time; set in run()
        self.seen_height_traffic: set[int] = set()
        self.party_topic = self._service_topic("party")
        self.inbox = Inbox(bus, self._handle, self._after_each, self._dead_letter)
        self.state = self._load_machine()
        self.stats = _Stats()
        self._timers: list[asyncio.TimerHandle] = []
        telemetry.watch(self)

    # ------------------------------------------------------------------ who and when

    def _running_height(self) -> int:
        """The height the machine is working on, 0 before its first StartHeight."""
        return self.state.height if self.state.validators is not None else 0

    @property
    def store(self) -> StateStore:
        return self.ledger.state

    @property
    def vset(self) -> m.ValidatorSet:
        """The validator set of the height after the tip (it changes only by council vote)."""
        return self._current_set()[1]

    def _current_set(self) -> tuple[tuple[ValidatorPower, ...], m.ValidatorSet, list[str]]:
        """The tip's next validator set, as the machine takes it and as an address list; cached
        until the tip announces another set."""
        current = self.ledger.tip.validators
        if self._vset is None or self._vset[0] is not current:
            vset = m.ValidatorSet(tuple(m.ValidatorInfo(v.public_key, v.power) for v in current))
            self._vset = (current, vset, [v.address for v in vset.validators])
        return self._vset

    def _duty(self, number: int) -> bool:
        """Whether this validator writes the refusal or dead letter for a partition or offset:
        in a node, always (each node records what it refused); otherwise one validator of the
        current set each, so they are not written n times to the shared topics."""
        if self.node_id is not None:
            return True
        members = self._current_set()[2]
        return self.me in members and number % len(members) == members.index(self.me)

    def _ready(self) -> bool:
        """Whether this node may propose or vote on the next height: it holds the results of the
        tip and, with a party service, the party state of the tip (admission and the next
        validator set are judged on it)."""
        admitted = self.ledger.admitted
        return self.ledger.tip.results_root is not None and (
            not admitted.follows_party or admitted.party_height >= self.ledger.height
        )

    def _next_validators(self, height: int) -> tuple[ValidatorPower, ...]:
        """The set from ``height + 1`` on: as the party service scheduled it, else unchanged."""
        return self.ledger.admitted.validators(height + 1) or self.ledger.tip.validators

    def _load_machine(self) -> m.State:
        raw = self.store.get_meta(STATE_META_KEY)
        if raw is not None:
            state = machine_state.from_dict(orjson.loads(raw))
            if state.height == self.ledger.height + 1 and state.validators is not None:
                return state
        return m.initial_state(self.me, self.config.timing)

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Run until cancelled; raises ``SupervisorGaveUp`` if a reader keeps failing."""
        self.last_progress = self.last_block_at = self.last_purge = loop_time()
        await self.intake.forget_reports_of_another_broker()
        await self.publisher.fill_topic(self.config.index)
        loop = asyncio.get_running_loop()
        recent = await self._recent(self.topics.consensus)
        readers: list[tuple[str, str, StartAt, int]] = [
            (self.topics.tx, "tx", "earliest", 200),
            (self.topics.consensus, "consensus", recent, 500),
        ]
        readers += [(self.topics.blocks, "block", "earliest", 500)]
        readers += [(name, kind, "earliest", 500) for name, kind in self._results_topics()]
        tasks = [
            loop.create_task(supervised(f"reader of {name}", self.inbox.reader(name, kind, start, batch)))
            for name, kind, start, batch in readers
        ]
        tasks.append(loop.create_task(supervised("ticker", lambda: self.inbox.ticker(TICK_S))))
        tasks.append(loop.create_task(self._main_loop()))
        try:
            await run_all(tasks)
        finally:
            for timer in self._timers:
                timer.cancel()

    async def _main_loop(self) -> None:
        if self._running_height() == self.ledger.height + 1:
            await self._feed(m.Resend())
        await self.inbox.loop()

    async def _recent(self, topic_name: str) -> dict[int, int]:
        """Start reading consensus traffic a little before the end: old heights are useless."""
        ends = await self.bus.end_offsets(topic_name)
        return {p: max(0, end - 5000) for p, end in ends.items()}

    def _results_topics(self) -> list[tuple[str, str]]:
        """With executing services, their receipts and checkpoints are part of each block's results."""
        if not self.ledger.services or self.after_commit is not None:
            return []
        checkpoints = [(self._service_topic(s), "checkpoints") for s in self.ledger.services]
        if self.ledger.trusted_node is not None:
            return checkpoints  # signed checkpoints carry their receipts
        return [(self.topics.receipts, "receipts"), *checkpoints]

    def _service_topic(self, service: str) -> str:
        """Where this validator's node publishes a service's events and checkpoints."""
        if self.node_id is not None:
            return node_topic(self.genesis.chain_id, self.node_id, f"events.{service}")
        return topic(self.genesis.chain_id, f"events.{service}")

    # ------------------------------------------------------------------ dispatch

    async def _after_each(self) -> None:
        await self._maybe_start_height()
        await self._maybe_propose()

    async def _dead_letter(self, message: BusMessage, reason: str) -> None:
        await self.dead_letters.send(message, reason)

    async def _dead_letter_duty(self, message: BusMessage, reason: str) -> None:
        """Dead letters of ``consensus`` and ``blocks``: one validator per offset writes them."""
        if self._duty(message.offset):
            await self.dead_letters.send(message, reason)

    async def _handle(self, kind: str, item: Any) -> None:
        if kind == "tx":
            await self.intake.on_batch(item)
            for full in self.compact.take_completed(self.mempool):
                await self._on_proposal(full)  # a compact proposal whose transactions came in
        elif kind == "consensus":
            for message in item:
                await self._on_consensus(message)
        elif kind == "block":
            self.sync.note(item)
            for message in item:
                await self.sync.on_message(message)
        elif kind in ("receipts", "checkpoints"):
            party_before = self.ledger.admitted.height
            if kind == "checkpoints" and item and item[0].topic == self.party_topic:
                self.ledger.admitted.offer(item, self.ledger.height)
            if offer_results(self.ledger, kind, item) or self.ledger.admitted.height > party_before:
                await self._apply_buffered()  # proposals that waited for these results
        elif kind == "timeout":
            await self._feed(item)
        elif kind == "tick":
            await self._on_tick()

    async def _feed(self, event: Any) -> None:
        """Apply one input to the machine and carry out what it asks for."""
        self.state, outputs = m.apply(self.state, event)
        if any(isinstance(o, m.Broadcast) for o in outputs):
            # Persist before anything signed leaves: no double signing after a crash.
            self.store.set_meta(STATE_META_KEY, orjson.dumps(machine_state.to_dict(self.state)))
        for output in outputs:
            if isinstance(output, m.Broadcast):
                await self._broadcast(output.message)
            elif isinstance(output, m.ScheduleTimeout):
                self._schedule(output)
            elif isinstance(output, m.RequestValue):
                self.want_value = (output.height, output.round)
            elif isinstance(output, m.Relay):
                await self._relay(output.message)
            elif isinstance(output, m.Decision):
                await self._on_decision(output)
            elif isinstance(output, m.Evidence):
                log.warning("equivocation evidence: %s / %s", output.first, output.second)

    def _schedule(self, timeout: m.ScheduleTimeout) -> None:
        event = m.TimeoutIn(timeout.step, timeout.height, timeout.round)
        loop = asyncio.get_running_loop()
        self._timers = [t for t in self._timers if not t.cancelled()][-64:]
        self._timers.append(loop.call_later(timeout.duration_ms / 1000, self.inbox.post, ("timeout", event)))

    # ------------------------------------------------------------------ consensus traffic (traffic.py)
    # These stay methods, each a one-line delegate: they are where the parts call each other,
    # where BlockSync calls back, and what tests and a test's Byzantine subclass reach.

    async def _on_consensus(self, message: BusMessage) -> None:
        await traffic.on_consensus(self, message)

    async def _on_proposal(self, proposal: ProposalMessage) -> None:
        await traffic.on_proposal(self, proposal)

    def _check_proposal(self, proposal: ProposalMessage, upcoming: tuple[ValidatorPower, ...]) -> str | None:
        return traffic.check_proposal(self, proposal, upcoming)

    async def _maybe_propose(self) -> None:
        await traffic.maybe_propose(self)

    async def _broadcast(self, message: m.Proposal | m.Vote) -> None:
        await traffic.broadcast(self, message)

    async def _relay(self, message: m.Proposal | m.Vote) -> None:
        await traffic.relay(self, message)

    # ------------------------------------------------------------------ starting and committing heights (heights.py)

    async def _maybe_start_height(self) -> None:
        await heights.maybe_start_height(self)

    async def _on_decision(self, decision: m.Decision) -> None:
        await heights.on_decision(self, decision)

    async def _commit_synced(self, block: SealedBlock) -> None:
        await heights.commit_synced(self, block)

    async def _commit(self, block: SealedBlock, publish_now: bool) -> None:
        await heights.commit(self, block, publish_now)

    async def _apply_commit(self, block: SealedBlock, publish_now: bool, traces: dict[str, bytes]) -> None:
        await heights.apply_commit(self, block, publish_now, traces)

    async def _apply_buffered(self) -> None:
        await heights.apply_buffered(self)

    # ------------------------------------------------------------------ housekeeping

    async def _on_tick(self) -> None:
        now = loop_time()
        await self.publisher.on_tick()
        for request in self.compact.stale(now):
            await self.bus.publish(wire.consensus_message(self.topics, request))
        if now - self.last_purge > PURGE_EVERY_S:
            self.last_purge = now
            await self.intake.purge()
        if await self.sync.request_gap(RESEND_AFTER_S, self.last_progress):
            self.last_progress = now
        elif self._running_height() == self.ledger.height + 1 and now - self.last_progress > RESEND_AFTER_S:
            self.last_progress = now
            await self._feed(m.Resend())
