"""Executing one sealed block for one service, purely: what ``ServiceRuntime`` stores and publishes.

Kept apart from the runtime's I/O so that the runtime, a replaying auditor and the tests run
the same function: ``execute_service_block(domain, block, own, upstream, prev_digest, …)``.

A height runs in four phases, always in this order (architecture: Execution):

1. **outcomes** of the commands this service sent two heights ago (``on_command_outcome``);
2. **commands** other services addressed to it at the previous height, each decided by the
   same rules as a transaction, with a receipt of its own and a ``CommandOutcome`` event;
3. the block's **transactions** of its kinds, in block order;
4. its **clauses** (``end_block``), each firing with a system receipt naming the clause.

Event positions follow the phases, so position order is emission order: phases 1 and 2 have no
transaction index (they sort first), phase 3 carries each transaction's index, and phase 4 the
index one past the block's last transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from traco.core import commands as cmd
from traco.core.domain import (
    Accepted,
    BlockContext,
    ClauseEffect,
    Command,
    CommandOutcome,
    DictState,
    Domain,
    Event,
    Outcome,
    Rejected,
    StateView,
    TxContext,
    execute_one,
    upstream_views,
)
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


def next_digest(prev_digest: str, events: Sequence[DomainEvent]) -> str:
    """``state_digest_H = SHA-256(state_digest_{H-1} ‖ canonical events of H)`` (architecture: Execution).

    The canonical form of the list is built from each event's own canonical bytes (RFC 8785
    writes an array as its elements' forms joined by commas in brackets): each event's form is
    computed once and kept on it, and signing the checkpoint (``event_hash``) uses the same."""
    body = b"[" + b",".join(e.canonical_bytes() for e in events) + b"]"
    return hashlib.sha256(bytes.fromhex(prev_digest) + body).hexdigest()


def contexts(block: SealedBlock, kinds: frozenset[str], rules: int = 1) -> list[TxContext]:
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
            rules=rules,
        )
        for index, tx in enumerate(block.txs)
        if tx.kind in kinds
    ]


@dataclass
class _Height:
    """What one height of one service accumulates while its phases run."""

    domain: Domain
    block: SealedBlock
    overlay: DictState
    receipts: list[Receipt] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)

    @property
    def service(self) -> str:
        return self.domain.service

    def record(self, events: Sequence[Event], tx_id: str | None, tx_index: int | None, first: int = 0) -> int:
        """Turn a step's events into positioned domain events; returns the next event index."""
        n = first
        for event in events:
            self.events.append(
                DomainEvent(
                    type=event.type,
                    version=event.version,
                    service=self.service,
                    height=self.block.height,
                    tx_id=tx_id,
                    tx_index=tx_index,
                    event_index=n,
                    aggregate_id=event.aggregate_id,
                    data=dict(event.data),
                )
            )
            n += 1
        return n

    def command_events(
        self, commands: Sequence[Command], authority: str, tx_index: int | None, first: int
    ) -> list[Event]:
        """The ``Command`` events of ``commands`` sent from position ``(height, tx_index, first…)``."""
        chain = self.block.header.chain_id
        where = -1 if tx_index is None else tx_index
        return [
            cmd.command_event(
                self.service,
                command,
                authority,
                cmd.system_id(cmd.COMMAND_PURPOSE, chain, self.service, self.block.height, where, first + n),
            )
            for n, command in enumerate(commands)
        ]

    def receipt(self, tx: TxContext, outcome: Outcome, index: int | None) -> Receipt:
        if isinstance(outcome, Accepted):
            return Receipt(
                tx_id=tx.tx_id,
                kind=tx.kind,
                status=ReceiptStatus.ACCEPTED,
                code="OK",
                height=tx.height,
                index=index,
                service=self.service,
                result=dict(outcome.result),
            )
        return Receipt(
            tx_id=tx.tx_id,
            kind=tx.kind,
            status=ReceiptStatus.REJECTED,
            code=outcome.code,
            message=outcome.message,
            height=tx.height,
            index=index,
            service=self.service,
        )


def _apply(domain: Domain, overlay: DictState, events: Sequence[Event]) -> None:
    for event in events:
        overlay.apply(domain.mutate(overlay, event))


def _begin(
    run: _Height,
    upstream: Mapping[str, StateView],
    outcomes: Sequence[CommandOutcome],
    requests: Sequence[cmd.CommandRequest],
    ctx: BlockContext,
    seed: Sequence[Event] = (),
) -> None:
    """Phase 0, at a service's activation by an upgrade: its genesis section, as events (so its
    downstreams' projections see them); phases 1 and 2: what became of this service's
    commands, then the commands sent to it."""
    _apply(run.domain, run.overlay, seed)
    n = run.record(seed, None, None)
    on_outcome = getattr(run.domain, "on_command_outcome", None)
    for reported in outcomes:
        if on_outcome is None:
            continue
        events = tuple(on_outcome(run.overlay, upstream, reported, ctx))
        _apply(run.domain, run.overlay, events)
        n = run.record(events, reported.command_id, None, n)
    accepted_kinds: frozenset[str] = getattr(run.domain, "command_kinds", frozenset())
    for request in requests:
        tx = TxContext(
            chain_id=ctx.chain_id,
            height=ctx.height,
            index=-1,
            time=ctx.time,
            tx_id=request.command_id,
            sender=request.authority,
            kind=request.kind,
            payload=request.payload,
            origin=request.origin,
            rules=ctx.rules,
        )
        outcome: Outcome
        if request.kind not in accepted_kinds:
            outcome = Rejected("UNKNOWN_COMMAND", f"{run.service} takes no {request.kind!r} command")
        else:
            outcome = execute_one(run.domain, run.overlay, upstream, tx)
        run.receipts.append(run.receipt(tx, outcome, None))
        own = outcome.events if isinstance(outcome, Accepted) else ()
        result = outcome.result if isinstance(outcome, Accepted) else {}
        code = "OK" if isinstance(outcome, Accepted) else outcome.code
        report = cmd.outcome_event(request, isinstance(outcome, Accepted), code, result)
        n = run.record((*own, report), request.command_id, None, n)


def _transactions(run: _Height, upstream: Mapping[str, StateView], ctx: BlockContext) -> None:
    """Phase 3: the block's transactions of this service's kinds."""
    for tx in contexts(run.block, run.domain.kinds, ctx.rules):
        outcome = execute_one(run.domain, run.overlay, upstream, tx)
        run.receipts.append(run.receipt(tx, outcome, tx.index))
        if isinstance(outcome, Accepted):
            n = run.record(outcome.events, tx.tx_id, tx.index)
            if outcome.commands:
                sent = run.command_events(outcome.commands, tx.sender, tx.index, n)
                run.record(sent, tx.tx_id, tx.index, n)


def _clauses(run: _Height, upstream: Mapping[str, StateView], ctx: BlockContext) -> None:
    """Phase 4: the service's clauses, after the block's transactions."""
    end_block = getattr(run.domain, "end_block", None)
    if end_block is None:
        return
    effects: Sequence[ClauseEffect] = end_block(run.overlay, upstream, ctx)
    index = ctx.tx_count
    n = 0
    for effect in effects:
        _apply(run.domain, run.overlay, effect.events)
        clause_id = cmd.system_id(cmd.CLAUSE_PURPOSE, ctx.chain_id, run.service, ctx.height, effect.clause, n)
        n = run.record(effect.events, clause_id, index, n)
        authority = effect.authority or cmd.service_authority(run.service)
        sent = run.command_events(effect.commands, authority, index, n)
        n = run.record(sent, clause_id, index, n)
        run.receipts.append(
            Receipt(
                tx_id=clause_id,
                kind=f"{run.service}.clause.{effect.clause}",
                status=ReceiptStatus.ACCEPTED,
                code="OK",
                height=ctx.height,
                service=run.service,
                result={"clause": effect.clause, "subject": effect.subject},
            )
        )


def execute_service_block(
    domain: Domain,
    block: SealedBlock,
    own: StateView,
    upstream: Mapping[str, StateView],
    prev_digest: str,
    requests: Sequence[cmd.CommandRequest] = (),
    outcomes: Sequence[CommandOutcome] = (),
    rules: int = 1,
    dormant: bool = False,
    seed: Sequence[Event] = (),
) -> ServiceBlockResult:
    """Run ``domain`` over one height: outcomes of its commands, commands sent to it, its
    transactions in ``block``, its clauses, under version ``rules`` of its rules. Returns
    receipts, events, writes and checkpoint. A ``dormant`` service (not yet activated by an
    upgrade) does nothing: its digest chain moves on over no events. ``seed``: the genesis
    events of a service an upgrade activates at this height."""
    header = block.header
    ctx = BlockContext(header.chain_id, block.height, header.time, len(block.txs), rules)
    run = _Height(domain, block, DictState(base=own))
    upstream = upstream_views(upstream)
    if not dormant:
        _begin(run, upstream, outcomes, requests, ctx, seed)
        _transactions(run, upstream, ctx)
        _clauses(run, upstream, ctx)
    digest = next_digest(prev_digest, run.events)
    checkpoint = BlockProcessed(service=domain.service, height=block.height, state_digest=digest)
    return ServiceBlockResult(block.height, tuple(run.receipts), tuple(run.events), run.overlay.data, checkpoint)
