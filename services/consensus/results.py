"""Collecting a block's results from the executing services (architecture: Consensus, Nodes, Execution).

Header H commits, in ``last_results_root``, to the results of block H-1: the receipts of all
its transactions in block order (the chain's own and each service's), then the checkpoints
``BlockProcessed{service, height, state_digest}`` of the chain and of each executing service in
the genesis order. The chain executes its own kinds at once; the services publish their
receipts and checkpoints on Kafka. This module gathers them per height and says when a
height's results are complete, so that a validator proposes or votes for H only then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from traco.core.boundary import Rejected, decode_model
from traco.core.nodes import check_signed
from traco.core.ports import BusMessage
from traco.schemas.block import SealedBlock
from traco.schemas.events import BlockProcessed, SignedCheckpoint
from traco.schemas.receipt import Receipt
from traco.services.consensus import rules

if TYPE_CHECKING:
    from traco.services.consensus.ledger import Ledger


Results = tuple[list[Receipt], list[BlockProcessed]]


def encode_results(receipts: Sequence[Receipt], checkpoints: Sequence[BlockProcessed]) -> bytes:
    """How a node records a block's complete results (``results/<height>`` in its store)."""
    return b"".join(
        (
            b'{"receipts":[',
            b",".join(r.json_bytes for r in receipts),
            b'],"checkpoints":[',
            b",".join(c.json_bytes for c in checkpoints),
            b"]}",
        )
    )  # the JSON each receipt was published and stored as, not encoded again


def decode_results(raw: bytes) -> Results:
    data = orjson.loads(raw)
    return (
        [Receipt.model_validate(r) for r in data["receipts"]],
        [BlockProcessed.model_validate(c) for c in data["checkpoints"]],
    )


def service_of(kind: str) -> str:
    """The service that executes a kind: the part before the first dot (``doc.register`` → doc)."""
    return kind.split(".", 1)[0]


@dataclass
class PendingResults:
    """The results of one block while the services' parts are still arriving."""

    height: int
    services: tuple[str, ...]
    chain_receipts: list[Receipt]
    chain_checkpoint: BlockProcessed
    expected: dict[str, tuple[str, int]]  # tx_id -> (service, index), for service kinds
    receipts: dict[str, Receipt] = field(default_factory=dict)
    checkpoints: dict[str, BlockProcessed] = field(default_factory=dict)

    @classmethod
    def for_block(
        cls,
        block: SealedBlock,
        services: tuple[str, ...],
        chain_receipts: Sequence[Receipt],
        chain_checkpoint: BlockProcessed,
    ) -> PendingResults:
        expected = {
            tx.tx_id: (service_of(tx.kind), index)
            for index, tx in enumerate(block.txs)
            if service_of(tx.kind) in services
        }
        return cls(block.height, services, list(chain_receipts), chain_checkpoint, expected)

    def offer_receipt(self, receipt: Receipt) -> bool:
        """Keep a service's receipt if it is one this block is waiting for (first one wins)."""
        want = self.expected.get(receipt.tx_id)
        if want is None or receipt.height != self.height or receipt.tx_id in self.receipts:
            return False
        service, index = want
        if receipt.service != service or receipt.index != index:
            return False
        self.receipts[receipt.tx_id] = receipt
        return True

    def offer_checkpoint(self, checkpoint: BlockProcessed) -> bool:
        if checkpoint.height != self.height or checkpoint.service not in self.services:
            return False
        self.checkpoints.setdefault(checkpoint.service, checkpoint)
        return True

    @property
    def complete(self) -> bool:
        return len(self.receipts) == len(self.expected) and len(self.checkpoints) == len(self.services)

    def missing(self) -> str:
        services = [s for s in self.services if s not in self.checkpoints]
        return f"{len(self.expected) - len(self.receipts)} receipts, checkpoints of {services or 'none'}"

    def leaves(self) -> tuple[list[Receipt], list[BlockProcessed]]:
        """Receipts in block order, then checkpoints: chain first, then services in order."""
        receipts = sorted([*self.chain_receipts, *self.receipts.values()], key=lambda r: r.index or 0)
        checkpoints = [self.chain_checkpoint, *(self.checkpoints[s] for s in self.services)]
        return receipts, checkpoints

    def root(self) -> str:
        receipts, checkpoints = self.leaves()
        return rules.results_root(receipts, checkpoints)


def offer_results(ledger: Ledger, kind: str, batch: Sequence[BusMessage]) -> bool:
    """Feed receipts (``kind="receipts"``) or checkpoints from a services' events topic to the
    ledger; True if the tip's results became complete. Other messages are skipped cheaply, and
    nothing undecodable is taken (whoever checks the topic dead-letters it)."""
    if ledger.trusted_node is not None:
        return _offer_signed(ledger, kind, batch, *ledger.trusted_node)
    completed = False
    for message in batch:
        if kind == "receipts":
            if b'"height":null' in message.value:
                continue
            receipt = decode_model(Receipt, message.value, 1 << 20)
            if not isinstance(receipt, Rejected):
                completed |= ledger.offer_receipt(receipt)
        else:
            if b'"BlockProcessed"' not in message.value:
                continue
            checkpoint = decode_model(BlockProcessed, message.value, 4096)
            if not isinstance(checkpoint, Rejected):
                completed |= ledger.offer_checkpoint(checkpoint)
    return completed


def _offer_signed(ledger: Ledger, kind: str, batch: Sequence[BusMessage], node_id: str, public_key: str) -> bool:
    """Results only from checkpoints the trusted node signed, with the receipts they carry
    (which must hash to their ``receipts_root``): whatever else is on a topic is ignored."""
    if kind != "checkpoints":
        return False
    completed = False
    for message in batch:
        if b'"SignedCheckpoint"' not in message.value:
            continue
        signed = decode_model(SignedCheckpoint, message.value, 64 << 20)
        if isinstance(signed, Rejected) or check_signed(ledger.genesis.chain_id, signed, node_id, public_key):
            continue
        for receipt in signed.receipts:
            completed |= ledger.offer_receipt(receipt)
        completed |= ledger.offer_checkpoint(signed.checkpoint)
    return completed
