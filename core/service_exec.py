"""Executing one sealed block for one service, purely: what ``ServiceRuntime`` stores and publishes.

Kept apart from the runtime's I/O so that the runtime, a replaying auditor and the tests run
the same function: ``execute_service_block(domain, block, own, upstream, prev_digest)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from traco.core.canonical import canonicalize
from traco.core.domain import Accepted, Domain, StateView, TxContext, run_block
from traco.schemas.block import SealedBlock
from traco.schemas.events import BlockProcessed, DomainEvent
from traco.schemas.receipt import Receipt, ReceiptStatus

GENESIS_DIGEST = "0" * 64


@dataclass(frozen=True)
class ServiceBlockResult:
    """One block's effect on one service: stored in one transaction, then published."""

    height: int
    receipts: tuple[Receipt, ...]
    events: tuple[DomainEvent, ...]
    writes: Mapping[str, bytes | None]
    checkpoint: BlockProcessed


def next_digest(prev_digest: str, events: tuple[DomainEvent, ...] | list[DomainEvent]) -> str:
    """``state_digest_H = SHA-256(state_digest_{H-1} ‖ canonical events of H)`` (DESIGN §7)."""
    body = bytes.fromhex(prev_digest) + canonicalize([e.json_value() for e in events])
    return hashlib.sha256(body).hexdigest()


def contexts(block: SealedBlock, kinds: frozenset[str]) -> list[TxContext]:
    """The block's transactions of these kinds, as the rules see them."""
    return [
        TxContext(
            chain_id=block.header.chain_id,
            height=block.height,
            index=index,
            time=block.header.time,
            tx_id=tx.tx_id,
            sender=tx.sender,
            kind=tx.kind,
            payload=tx.payload,
        )
        for index, tx in enumerate(block.txs)
        if tx.kind in kinds
    ]


def execute_service_block(
    domain: Domain,
    block: SealedBlock,
    own: StateView,
    upstream: Mapping[str, StateView],
    prev_digest: str,
) -> ServiceBlockResult:
    """Run ``domain`` over its transactions in ``block``: receipts, events, writes, checkpoint."""
    outcomes, writes = run_block(domain, own, upstream, contexts(block, domain.kinds))
    receipts: list[Receipt] = []
    events: list[DomainEvent] = []
    for tx, outcome in outcomes:
        if isinstance(outcome, Accepted):
            receipts.append(
                Receipt(
                    tx_id=tx.tx_id,
                    kind=tx.kind,
                    status=ReceiptStatus.ACCEPTED,
                    code="OK",
                    message="",
                    height=tx.height,
                    index=tx.index,
                    service=domain.service,
                    result=dict(outcome.result),
                )
            )
            events.extend(
                DomainEvent(
                    type=e.type,
                    version=e.version,
                    service=domain.service,
                    height=tx.height,
                    tx_id=tx.tx_id,
                    tx_index=tx.index,
                    event_index=n,
                    aggregate_id=e.aggregate_id,
                    data=dict(e.data),
                )
                for n, e in enumerate(outcome.events)
            )
        else:
            receipts.append(
                Receipt(
                    tx_id=tx.tx_id,
                    kind=tx.kind,
                    status=ReceiptStatus.REJECTED,
                    code=outcome.code,
                    message=outcome.message,
                    height=tx.height,
                    index=tx.index,
                    service=domain.service,
                )
            )
    digest = next_digest(prev_digest, events)
    checkpoint = BlockProcessed(service=domain.service, height=block.height, state_digest=digest)
    return ServiceBlockResult(block.height, tuple(receipts), tuple(events), writes, checkpoint)
