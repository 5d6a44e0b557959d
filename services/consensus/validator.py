"""A validator: the asyncio driver around the pure consensus machine (DESIGN §6).

It moves bytes between Kafka and ``machine.apply``: transactions from ``tx`` into the mempool,
signed proposals and votes over ``consensus``, sealed blocks to ``blocks``, receipts to
``receipts``. Everything that decides anything is pure (``machine``, ``rules``, ``mempool``);
this module only feeds inputs, signs outputs, runs timers and stores.

Caveats worth knowing:
- The machine state is persisted (fsync) before any message the validator signs leaves the
  process, so a validator that crashes and restarts never signs two different votes for one
  height and round.
- The proposer of the deciding round publishes the sealed block; every other validator that
  decided publishes it too if it has not shown up on ``blocks`` after ``publish_grace_s``, so a
  proposer that crashes right after deciding loses nothing. Duplicates are harmless: readers
  dedupe by height.
- Refusal receipts and dead letters for a ``tx`` partition are written by one validator
  (partition mod n), so they are not written n times; if it is down they wait for its return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from traco.core import crypto
from traco.core.ports import BusMessage, EventBus, OutgoingMessage, StateStore
from traco.core.positions import last_message
from traco.core.topics import topic
from traco.schemas.block import Commit, CommitSig, SealedBlock, proposal_sign_bytes, vote_sign_bytes
from traco.schemas.consensus import BlockRequest, ProposalMessage, VoteMessage
from traco.schemas.genesis import Genesis, ValidatorPower
from traco.schemas.receipt import Code
from traco.schemas.tx import TxEnvelope
from traco.services.consensus import machine as m
from traco.services.consensus import machine_state, rules, wire
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.mempool import Mempool
from traco.services.consensus.results import offer_results
from traco.services.consensus.rules import Refusal

log = logging.getLogger(__name__)

STATE_META_KEY = "consensus_state"
TX_REPORTED_KEY = "tx_reported_offsets"
TICK_S = 0.1
RESEND_AFTER_S = 2.0


@dataclass
class ValidatorConfig:
    index: int
    private_key: bytes
    timing: m.TimingConfig
    empty_block_interval_s: float = 0.0
    publish_grace_s: float = 1.0


@dataclass
class _Candidate:
    """A block this node knows by hash: proposed by someone, maybe decided later."""

    header: Any
    txs: tuple[TxEnvelope, ...]
    next_validators: tuple[ValidatorPower, ...] | None  # what the sealed block carries


@dataclass
class _Stats:
    decided: int = 0
    started: float = field(default_factory=time.monotonic)


class Validator:
    def __init__(self, genesis: Genesis, ledger: Ledger, bus: EventBus, config: ValidatorConfig) -> None:
        self.genesis = genesis
        self.ledger = ledger
        self.bus = bus
        self.config = config
        self.topics = wire.Topics(genesis.chain_id)
        self.me = crypto.public_key(config.private_key).hex()
        self._vset: tuple[tuple[ValidatorPower, ...], m.ValidatorSet, list[str]] | None = None
        self.mempool = Mempool(genesis.params.max_nonce_gap)
        self.candidates: dict[str, _Candidate] = {}
        self.future_proposals: list[ProposalMessage] = []
        self.future_blocks: dict[int, SealedBlock] = {}
        self.blocks_topic_height = 0
        self.pending_publish: dict[int, tuple[float, Any]] = {}
        self.want_value: tuple[int, int] | None = None
        self.last_had_txs = False
        self.last_progress = time.monotonic()
        self.last_block_at = time.monotonic()
        self.seen_height_traffic: set[int] = set()
        self.party_topic = topic(genesis.chain_id, "events.party")
        self.answered: dict[int, float] = {}
        # Consensus traffic, blocks and timers go before transactions: a backlog of submitted
        # transactions must never delay a vote (that would stall the chain under load).
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.tx_inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=4)
        self.wakeup = asyncio.Event()
        self.reported = self._load_reported()
        self.state = self._load_machine()
        self.stats = _Stats()
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: list[asyncio.TimerHandle] = []

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
        one validator of the current set each, so they are not written n times."""
        members = self._current_set()[2]
        return self.me in members and number % len(members) == members.index(self.me)

    def _ready(self) -> bool:
        """Whether this node may propose or vote on the next height: it holds the results of the
        tip and, with a party service, the party state of the tip (admission and the next
        validator set are judged on it)."""
        admitted = self.ledger.admitted
        return self.ledger.tip.results_root is not None and (
            not admitted.follows_party or admitted.height >= self.ledger.height
        )

    def _next_validators(self, height: int) -> tuple[ValidatorPower, ...]:
        """The set from ``height + 1`` on: as the party service scheduled it, else unchanged."""
        return self.ledger.admitted.validators(height + 1) or self.ledger.tip.validators

    # ------------------------------------------------------------------ start-up

    def _load_machine(self) -> m.State:
        raw = self.store.get_meta(STATE_META_KEY)
        if raw is not None:
            state = machine_state.from_dict(orjson.loads(raw))
            if state.height == self.ledger.height + 1 and state.validators is not None:
                return state
        return m.initial_state(self.me, self.config.timing)

    def _load_reported(self) -> dict[int, int]:
        raw = self.store.get_meta(TX_REPORTED_KEY)
        return {int(k): v for k, v in orjson.loads(raw).items()} if raw else {}

    async def _forget_reports_of_another_broker(self) -> None:
        """Reported offsets belong to one broker's log. A partition that now ends before what
        we reported is a new log (a new broker): report it again from its start."""
        ends = await self.bus.end_offsets(self.topics.tx)
        stale = [p for p, offset in self.reported.items() if offset > ends.get(p, 0)]
        if stale:
            log.info("tx partitions %s are new logs; refusals are reported from their start", stale)
            self.reported = {p: o for p, o in self.reported.items() if p not in stale}

    async def run(self) -> None:
        """Run until cancelled."""
        await self._forget_reports_of_another_broker()
        await self._republish_missing_blocks()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._pump(self.topics.tx, "tx", "earliest", self.tx_inbox, max_batch=200)),
            loop.create_task(
                self._pump(self.topics.consensus, "consensus", await self._recent(self.topics.consensus), self.inbox)
            ),
            loop.create_task(self._pump(self.topics.blocks, "block", "earliest", self.inbox)),
            loop.create_task(self._ticker()),
        ]
        for topic_name, kind in self._results_topics():
            self._tasks.append(loop.create_task(self._pump(topic_name, kind, "earliest", self.inbox)))
        if self._running_height() == self.ledger.height + 1:
            await self._feed(m.Resend())
        try:
            while True:
                kind, item = await self._next_input()
                await self._handle(kind, item)
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for timer in self._timers:
                timer.cancel()

    async def _recent(self, topic_name: str) -> dict[int, int]:
        """Start reading consensus traffic a little before the end: old heights are useless."""
        ends = await self.bus.end_offsets(topic_name)
        return {p: max(0, end - 5000) for p, end in ends.items()}

    async def _next_input(self) -> tuple[str, Any]:
        """The next thing to handle: consensus traffic first, then a batch of transactions."""
        while True:
            if not self.inbox.empty():
                return self.inbox.get_nowait()
            if not self.tx_inbox.empty():
                return self.tx_inbox.get_nowait()
            self.wakeup.clear()
            await self.wakeup.wait()

    def _post(self, item: tuple[str, Any]) -> None:
        self.inbox.put_nowait(item)
        self.wakeup.set()

    async def _pump(
        self,
        topic_name: str,
        kind: str,
        start: Any,
        queue: asyncio.Queue[tuple[str, Any]],
        max_batch: int = 500,
    ) -> None:
        async for batch in self.bus.consume(topic_name, start=start, max_batch=max_batch):
            await queue.put((kind, batch))  # the bounded tx queue pushes back on the reader
            self.wakeup.set()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._post(("tick", None))

    async def _republish_missing_blocks(self) -> None:
        """After a broker restart the ``blocks`` topic may be behind our store: fill it in.

        Validators wait a little by index so that normally only one of them does the work.
        """
        await asyncio.sleep(0.5 * self.config.index)
        last = await last_height_on_topic(self.bus, self.topics.blocks)
        self.blocks_topic_height = last
        if last < self.ledger.height:
            log.info("republishing blocks %d..%d to %s", last + 1, self.ledger.height, self.topics.blocks)
            await self.republish(last + 1, self.ledger.height)

    async def republish(self, start: int, end: int) -> None:
        batch: list[OutgoingMessage] = []
        for block in self.ledger.blocks.blocks(start, end):
            receipts, checkpoints = self.ledger.chain_results(block.height)
            events = self.store.events(block.height)
            batch += wire.block_outputs(self.topics, block, receipts, events, checkpoints[0])
            if len(batch) >= 500:
                await self.bus.publish_many(batch)
                batch = []
        if batch:
            await self.bus.publish_many(batch)

    def _results_topics(self) -> list[tuple[str, str]]:
        """With executing services, their receipts and checkpoints are part of each block's results."""
        if not self.ledger.services:
            return []
        topics = [(self.topics.receipts, "receipts")]
        return topics + [(topic(self.genesis.chain_id, f"events.{s}"), "checkpoints") for s in self.ledger.services]

    # ------------------------------------------------------------------ dispatch

    async def _handle(self, kind: str, item: Any) -> None:
        if kind == "tx":
            await self._on_tx_batch(item)
        elif kind == "consensus":
            for message in item:
                await self._on_consensus(message)
        elif kind == "block":
            for message in item:
                await self._on_block_message(message)
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
        await self._maybe_start_height()
        await self._maybe_propose()

    async def _feed(self, event: Any) -> None:
        """Apply one input to the machine and carry out what it asks for."""
        self.state, outputs = m.apply(self.state, event)
        broadcasts = [o for o in outputs if isinstance(o, m.Broadcast)]
        if broadcasts:
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
        self._timers.append(loop.call_later(timeout.duration_ms / 1000, self._post, ("timeout", event)))

    async def _broadcast(self, message: m.Proposal | m.Vote) -> None:
        if isinstance(message, m.Proposal):
            await self._broadcast_proposal(message)
        else:
            await self._broadcast_vote(message)

    async def _relay(self, message: m.Proposal | m.Vote) -> None:
        """Forward another validator's message as it was signed (the machine's gossip)."""
        if isinstance(message, m.Vote):
            await self.bus.publish(wire.consensus_message(self.topics, wire.vote_message(message)))
            return
        candidate = self.candidates.get(message.value_id)
        if candidate is not None:
            wire_msg = wire.proposal_message(message, candidate.header, candidate.txs)
            await self.bus.publish(wire.consensus_message(self.topics, wire_msg))

    async def _broadcast_proposal(self, message: m.Proposal) -> None:
        candidate = self.candidates.get(message.value_id)
        if candidate is None:
            # After a restart the machine may re-propose a block this process no longer holds;
            # without it the round times out and another proposer takes over.
            log.warning("cannot (re)propose block %s…: its content is not held", message.value_id[:16])
            return
        sign_bytes = proposal_sign_bytes(
            self.genesis.chain_id, message.height, message.round, message.value_id, message.valid_round
        )
        signature = crypto.sign(self.config.private_key, sign_bytes)
        signed = m.Proposal(message.height, message.round, message.value_id, message.valid_round, self.me, signature)
        wire_msg = wire.proposal_message(signed, candidate.header, candidate.txs)
        await self.bus.publish(wire.consensus_message(self.topics, wire_msg))
        await self._feed(m.ProposalIn(signed, True))

    async def _broadcast_vote(self, message: m.Vote) -> None:
        sign_bytes = vote_sign_bytes(
            self.genesis.chain_id, message.kind, message.height, message.round, message.value_id
        )
        signature = crypto.sign(self.config.private_key, sign_bytes)
        signed = m.Vote(message.kind, message.height, message.round, message.value_id, self.me, signature)
        await self.bus.publish(wire.consensus_message(self.topics, wire.vote_message(signed)))
        await self._feed(m.VoteIn(signed))

    # ------------------------------------------------------------------ transactions

    async def _on_tx_batch(self, batch: Sequence[BusMessage]) -> None:
        refusals: list[OutgoingMessage] = []
        reported_changed = False
        for message in batch:
            duty = self._duty(message.partition) and message.offset >= self.reported.get(message.partition, 0)
            decoded = rules.decode_tx(message.value, self.genesis.params.max_tx_bytes + 1024)
            if isinstance(decoded, Refusal):
                if duty:
                    await self.bus.dead_letter(message, f"{decoded.code.value}: {decoded.message}", self.topics.dlq)
            else:
                refusal = self._admit(decoded, message)
                if refusal is not None and duty:
                    receipt = rules.refusal_receipt(decoded.tx_id, decoded.kind, refusal)
                    self.store.put_rejection(receipt)
                    refusals.append(wire.receipt_message(self.topics, receipt))
            if duty:
                self.reported[message.partition] = message.offset + 1
                reported_changed = True
        if refusals:
            await self.bus.publish_many(refusals)
        if reported_changed:
            self.store.set_meta(TX_REPORTED_KEY, orjson.dumps({str(k): v for k, v in self.reported.items()}))

    def _admit(self, tx: TxEnvelope, message: BusMessage) -> Refusal | None:
        """Mempool admission. Exact replays of a pending or sealed envelope are dropped silently:
        they have the same id, so their receipt is the original's."""
        if tx.tx_id in self.mempool or self.ledger.is_sealed(tx.tx_id):
            return None
        refusal = rules.stateless_check(tx, self.genesis, self.ledger.admitted, size=len(message.value))
        if refusal is not None:
            return refusal
        return self.mempool.add(
            tx, len(message.value), message.partition, self.ledger.chain_nonce(tx.sender), message.header("traceparent")
        )

    # ------------------------------------------------------------------ consensus traffic

    async def _on_consensus(self, message: BusMessage) -> None:
        decoded = wire.decode_consensus(message.value)
        if isinstance(decoded, str):
            if self._duty(message.offset):
                await self.bus.dead_letter(message, decoded, self.topics.dlq)
            return
        if isinstance(decoded, BlockRequest):
            await self._on_block_request(decoded)
            return
        sender = decoded.proposer if isinstance(decoded, ProposalMessage) else decoded.validator
        if sender == self.me or sender not in self.vset:
            return
        if decoded.height > self.ledger.height:
            self.seen_height_traffic.add(decoded.height)
        if isinstance(decoded, VoteMessage):
            sign_bytes = vote_sign_bytes(
                self.genesis.chain_id,
                decoded.kind,
                decoded.height,
                decoded.round,
                decoded.block_hash,
            )
            signature = bytes.fromhex(decoded.signature)
            if not crypto.verify(bytes.fromhex(sender), sign_bytes, signature):
                log.warning("dropping vote with a bad signature from %s", sender[:16])
                return
            await self._feed(
                m.VoteIn(
                    m.Vote(
                        decoded.kind,
                        decoded.height,
                        decoded.round,
                        decoded.block_hash,
                        sender,
                        signature,
                    )
                )
            )
        else:
            await self._on_proposal(decoded)

    async def _on_proposal(self, proposal: ProposalMessage) -> None:
        if proposal.height <= self.ledger.height:
            return
        if proposal.height > self.ledger.height + 1 or not self._ready():
            # too early: for a future height, or before the services' results of the tip are in
            self.future_proposals.append(proposal)
            self.future_proposals = self.future_proposals[-64:]
            return
        sign_bytes = proposal_sign_bytes(
            self.genesis.chain_id,
            proposal.height,
            proposal.round,
            proposal.block_hash,
            proposal.valid_round,
        )
        signature = bytes.fromhex(proposal.signature)
        if not crypto.verify(bytes.fromhex(proposal.proposer), sign_bytes, signature):
            log.warning("dropping proposal with a bad signature from %s", proposal.proposer[:16])
            return
        upcoming = self._next_validators(proposal.height)
        problem = self._check_proposal(proposal, upcoming)
        if problem:
            log.warning(
                "invalid proposal %d/%d from %s: %s",
                proposal.height,
                proposal.round,
                proposal.proposer[:16],
                problem,
            )
        else:
            carried = rules.carried_validators(self.ledger.tip.validators, upcoming)
            self.candidates[proposal.block_hash] = _Candidate(proposal.header, proposal.txs, carried)
        await self._feed(
            m.ProposalIn(
                m.Proposal(
                    proposal.height,
                    proposal.round,
                    proposal.block_hash,
                    proposal.valid_round,
                    proposal.proposer,
                    signature,
                ),
                problem is None,
            )
        )

    def _check_proposal(self, proposal: ProposalMessage, upcoming: tuple[ValidatorPower, ...]) -> str | None:
        """Why this validator refuses the proposal; ``upcoming`` is the set it expects from the
        height after the proposal's (the header must commit to it)."""
        header = proposal.header
        if header.block_hash() != proposal.block_hash:
            return "block_hash is not the hash of the header"
        if proposal.valid_round < 0:
            if header.proposer != proposal.proposer or header.round != proposal.round:
                return "a new block's header must name this proposer and round"
        elif header.round > proposal.valid_round or header.proposer != self.vset.proposer(header.height, header.round):
            # a re-proposed block (Tendermint's validValue) keeps the header it was built with
            return "a re-proposed block's header is not from the round and proposer that built it"
        problem = rules.check_header(
            self.genesis,
            self.ledger.tip,
            header,
            proposal.txs,
            now_ms=_now_ms(),
            next_validators=upcoming,
        )
        if problem:
            return problem
        return rules.check_block_txs(
            self.genesis,
            self.ledger.admitted,
            proposal.txs,
            self.ledger.state.get,
            self.ledger.is_sealed,
            verified=self.mempool.signature_checked,
        )

    async def _on_block_request(self, request: BlockRequest) -> None:
        end = min(request.to_height, self.ledger.height, request.from_height + 199)
        if request.from_height > end:
            return
        now = time.monotonic()
        if self.answered.get(request.from_height, 0.0) > now - 2.0:
            return  # already answered this gap a moment ago
        self.answered = {h: t for h, t in self.answered.items() if t > now - 2.0}
        self.answered[request.from_height] = now
        await self.republish(request.from_height, end)

    # ------------------------------------------------------------------ proposing and deciding

    async def _maybe_start_height(self) -> None:
        """Start the next height only when there is something to seal (no empty blocks).

        Reasons to start: a transaction is ready, the last block had transactions (the next
        header must commit their results), another validator is already at that height, or
        the configured empty-block interval has passed.
        """
        next_height = self.ledger.height + 1
        if self._running_height() == next_height or not self._ready():
            return  # running already, or the services have not yet reported the tip's results
        interval = self.config.empty_block_interval_s
        if (
            self.last_had_txs
            or next_height in self.seen_height_traffic
            or self.mempool.has_ready(self.ledger.chain_nonce)
            or (interval > 0 and time.monotonic() - self.last_block_at >= interval)
        ):
            await self._feed(m.StartHeight(next_height, self.vset))
            self.last_progress = time.monotonic()

    async def _maybe_propose(self) -> None:
        if self.want_value is None:
            return
        height, round_ = self.want_value
        if height != self.ledger.height + 1 or height != self._running_height():
            self.want_value = None
            return
        if not self._ready():
            return  # asked again once the services' results of the tip are in
        self.want_value = None
        params = self.genesis.params
        txs = self.mempool.select(self.ledger.chain_nonce, params.max_block_txs, params.max_block_bytes)
        upcoming = self._next_validators(height)
        header = rules.build_header(self.genesis, self.ledger.tip, round_, _now_ms(), self.me, txs, upcoming)
        block_hash = header.block_hash()
        carried = rules.carried_validators(self.ledger.tip.validators, upcoming)
        self.candidates[block_hash] = _Candidate(header, tuple(txs), carried)
        await self._feed(m.ValueReady(height, round_, block_hash))

    async def _on_decision(self, decision: m.Decision) -> None:
        if decision.height <= self.ledger.height:
            return  # already committed (Resend repeats an uncommitted decision only)
        candidate = self.candidates.get(decision.value_id)
        if candidate is None:
            log.error(
                "decided %d on a block this node never saw; waiting for it on %s",
                decision.height,
                self.topics.blocks,
            )
            return
        commit = Commit(
            height=decision.height,
            round=decision.round,
            block_hash=decision.value_id,
            signatures=tuple(
                CommitSig(validator=v.validator, signature=v.signature.hex())
                for v in decision.precommits
                if v.value_id == decision.value_id
            ),
        )
        block = SealedBlock(
            header=candidate.header, txs=candidate.txs, commit=commit, next_validators=candidate.next_validators
        )
        await self._commit(block, publish_now=candidate.header.proposer == self.me)

    async def _commit(self, block: SealedBlock, publish_now: bool) -> None:
        started = time.monotonic()
        traces = {tx.tx_id: t for tx in block.txs if (t := self.mempool.traceparent(tx.tx_id))}
        applied = self.ledger.apply(block)
        self.ledger.admitted.at_time(block.header.time)
        self.ledger.admitted.advance(self.ledger.height)
        log.info(
            "sealed %d: %d txs, round %d, mempool %d, applied in %.0f ms",
            block.height,
            len(block.txs),
            block.header.round,
            len(self.mempool),
            (time.monotonic() - started) * 1000,
        )
        self.stats.decided += 1
        self.candidates.clear()
        self.seen_height_traffic = {h for h in self.seen_height_traffic if h > block.height}
        stale = self.mempool.remove_sealed(block.txs, self.ledger.chain_nonce)
        self.last_had_txs = bool(block.txs)
        self.last_block_at = self.last_progress = time.monotonic()
        outputs = wire.block_outputs(
            self.topics,
            block,
            applied.result.receipts,
            applied.result.events,
            applied.result.checkpoint,
            traces,
        )
        if publish_now:
            await self.bus.publish_many(outputs)
            self.blocks_topic_height = max(self.blocks_topic_height, block.height)
        elif self.blocks_topic_height < block.height:
            self.pending_publish[block.height] = (
                time.monotonic() + self.config.publish_grace_s,
                outputs,
            )
        refusals = []
        for pending in stale:
            if self._duty(pending.partition):
                receipt = rules.refusal_receipt(
                    pending.tx.tx_id,
                    pending.tx.kind,
                    Refusal(
                        Code.NONCE_REUSED,
                        f"nonce {pending.tx.nonce} was used by another transaction",
                    ),
                )
                self.store.put_rejection(receipt)
                refusals.append(wire.receipt_message(self.topics, receipt))
        if refusals:
            await self.bus.publish_many(refusals)
        await self._apply_buffered()

    async def _apply_buffered(self) -> None:
        """Blocks and proposals that arrived early, now that the tip has moved."""
        while (block := self.future_blocks.pop(self.ledger.height + 1, None)) is not None:
            await self._try_sync(block)
        self.future_blocks = {h: b for h, b in self.future_blocks.items() if h > self.ledger.height}
        proposals, self.future_proposals = self.future_proposals, []
        for proposal in proposals:
            if proposal.height == self.ledger.height + 1:
                await self._on_proposal(proposal)
            elif proposal.height > self.ledger.height + 1:
                self.future_proposals.append(proposal)

    # ------------------------------------------------------------------ the blocks topic

    async def _on_block_message(self, message: BusMessage) -> None:
        decoded = wire.decode_block(message.value)
        if isinstance(decoded, str):
            if self._duty(message.offset):
                await self.bus.dead_letter(message, decoded, self.topics.dlq)
            return
        self.blocks_topic_height = max(self.blocks_topic_height, decoded.height)
        self.pending_publish.pop(decoded.height, None)
        if decoded.height == self.ledger.height + 1:
            await self._try_sync(decoded)
        elif decoded.height > self.ledger.height + 1 and len(self.future_blocks) < 1000:
            self.future_blocks[decoded.height] = decoded

    async def _try_sync(self, block: SealedBlock) -> None:
        """A sealed block this validator did not decide itself (it was down or slow)."""
        problem = self.ledger.check_sealed(block)
        if problem:
            log.warning("ignoring block %d from the blocks topic: %s", block.height, problem)
            return
        log.info("syncing block %d from the blocks topic", block.height)
        await self._commit(block, publish_now=False)
        self.state = m.initial_state(self.me, self.config.timing)

    # ------------------------------------------------------------------ housekeeping

    async def _on_tick(self) -> None:
        now = time.monotonic()
        for height, (deadline, outputs) in list(self.pending_publish.items()):
            if height <= self.blocks_topic_height:
                del self.pending_publish[height]
            elif now >= deadline:
                log.info("proposer did not publish block %d; publishing it", height)
                del self.pending_publish[height]
                await self.bus.publish_many(outputs)
        if self.future_blocks and now - self.last_progress > RESEND_AFTER_S:
            missing = self.ledger.height + 1
            await self.bus.publish(
                wire.consensus_message(
                    self.topics,
                    BlockRequest(
                        from_height=missing,
                        to_height=min(self.future_blocks) - 1,
                        requester=self.me,
                    ),
                )
            )
            self.last_progress = now
        elif self._running_height() == self.ledger.height + 1 and now - self.last_progress > RESEND_AFTER_S:
            self.last_progress = now
            await self._feed(m.Resend())


def _now_ms() -> int:
    return int(time.time() * 1000)


async def last_height_on_topic(bus: EventBus, blocks_topic: str) -> int:
    """The height of the last message on the ``blocks`` topic (0 when empty)."""
    message = await last_message(bus, blocks_topic)
    try:
        return int((message.key or b"0").decode()) if message is not None else 0
    except ValueError:
        return 0
