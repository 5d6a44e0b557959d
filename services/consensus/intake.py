"""A validator's transaction intake: the ``tx`` topic into the mempool (CometBFT's mempool reactor).

Every message on ``tx`` passes one boundary (``validity.decode_tx``) and one rule
(``validity.check_tx``); what fails becomes a dead letter (undecodable) or a refusal receipt
(decodable but invalid). Refusal receipts and dead letters of a partition are written by one
validator of the current set (partition mod n, ``duty``), so they are not written n times; the
offsets it has reported are stored, so a restart does not report them twice.

Before a block is built, ``recheck`` judges each offered transaction again against the state
of now (a member removed or a key rotated since admission): see ``mempool.select``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import orjson

from traco.core.ports import BusMessage, EventBus, OutgoingMessage
from traco.schemas.genesis import Genesis
from traco.schemas.receipt import Code
from traco.schemas.tx import TxEnvelope
from traco.services.consensus import rules, validity, wire
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.mempool import Mempool, Pending
from traco.services.consensus.validity import Refusal, SignatureCache

log = logging.getLogger(__name__)

TX_REPORTED_KEY = "tx_reported_offsets"


class TxIntake:
    def __init__(
        self,
        genesis: Genesis,
        ledger: Ledger,
        bus: EventBus,
        topics: wire.Topics,
        mempool: Mempool,
        signatures: SignatureCache,
        duty: Callable[[int], bool],
    ) -> None:
        self.genesis = genesis
        self.ledger = ledger
        self.bus = bus
        self.topics = topics
        self.mempool = mempool
        self.signatures = signatures
        self.duty = duty
        self.reported = self._load_reported()

    def _load_reported(self) -> dict[int, int]:
        raw = self.ledger.state.get_meta(TX_REPORTED_KEY)
        return {int(k): v for k, v in orjson.loads(raw).items()} if raw else {}

    async def forget_reports_of_another_broker(self) -> None:
        """Reported offsets belong to one broker's log. A partition that now ends before what
        we reported is a new log (a new broker): report it again from its start."""
        ends = await self.bus.end_offsets(self.topics.tx)
        stale = [p for p, offset in self.reported.items() if offset > ends.get(p, 0)]
        if stale:
            log.info("tx partitions %s are new logs; refusals are reported from their start", stale)
            self.reported = {p: o for p, o in self.reported.items() if p not in stale}

    async def on_batch(self, batch: Sequence[BusMessage]) -> None:
        """Admit a batch. The reported offsets are stored (an fsync) only after a batch that
        reported something: re-reading a batch that reported nothing reports nothing either
        (its transactions are pending or sealed by then, and those are dropped silently)."""
        refusals: list[OutgoingMessage] = []
        dead_letters = 0
        for message in batch:
            duty = self.duty(message.partition) and message.offset >= self.reported.get(message.partition, 0)
            decoded = validity.decode_tx(message.value, self.genesis.params.max_tx_bytes)
            if isinstance(decoded, Refusal):
                if duty:
                    await self.bus.dead_letter(message, f"{decoded.code.value}: {decoded.message}", self.topics.dlq)
                    dead_letters += 1
            else:
                refusal = self.admit(decoded, message)
                if refusal is not None and duty:
                    refusals.append(self._refusal(decoded, refusal))
            if duty:
                self.reported[message.partition] = message.offset + 1
        if refusals:
            await self.bus.publish_many(refusals)
        if refusals or dead_letters:
            self.ledger.state.set_meta(TX_REPORTED_KEY, orjson.dumps({str(k): v for k, v in self.reported.items()}))

    def admit(self, tx: TxEnvelope, message: BusMessage) -> Refusal | None:
        """Mempool admission. Exact replays of a pending or sealed envelope are dropped silently:
        they have the same id, so their receipt is the original's. Only a nonce the sender has
        already used can belong to a sealed transaction (the id commits to sender and nonce),
        so a new one costs no lookup in the block store."""
        chain_nonce = self.ledger.chain_nonce(tx.sender)
        if tx.tx_id in self.mempool or (tx.nonce <= chain_nonce and self.ledger.is_sealed(tx.tx_id)):
            return None
        refusal = self.recheck(tx)
        if refusal is not None:
            return refusal
        return self.mempool.add(
            tx,
            message.partition,
            chain_nonce,
            self.ledger.admitted.member_of(tx.sender),
            message.header("traceparent"),
        )

    def recheck(self, tx: TxEnvelope) -> Refusal | None:
        """The validity rule against the state of now (cached signature verdicts make it cheap)."""
        kinds = self.ledger.kinds_at(self.ledger.height + 1)
        return validity.check_tx(tx, self.genesis, self.ledger.admitted, self.signatures, kinds)

    def _refusal(self, tx: TxEnvelope, refusal: Refusal) -> OutgoingMessage:
        receipt = rules.refusal_receipt(tx.tx_id, tx.kind, refusal)
        self.ledger.state.put_rejection(receipt)
        return wire.receipt_message(self.topics, receipt)

    async def refuse_pending(self, refused: Sequence[tuple[Pending, Refusal]]) -> None:
        """Receipts for pending transactions that became invalid (the partition's duty only)."""
        out = [self._refusal(p.tx, r) for p, r in refused if self.duty(p.partition)]
        if out:
            await self.bus.publish_many(out)

    async def purge(self) -> None:
        """Drop and refuse the pending transactions of senders no longer admitted."""
        dropped = self.mempool.purge_senders(lambda sender: sender in self.ledger.admitted)
        if dropped:
            log.info("dropped %d pending transactions of senders no longer admitted", len(dropped))
            refusal = Refusal(Code.NOT_ADMITTED, "the sender is no longer an admitted member key")
            await self.refuse_pending([(p, refusal) for p in dropped])
