"""A height on a validator: when the next one starts, and the commit path once it is decided.

Part of the validator's driver (``validator.py``), which delegates these steps here and keeps
all the state: each function takes the ``Validator`` as a method takes ``self``.

- start: the next height starts when there is something to seal or time has passed (the
  reasons are listed in ``maybe_start_height``);
- commit: a decision becomes a sealed block carrying the precommits that decided it. A decided
  block and one synced from the ``blocks`` topic then go the same way, in one trace span that
  continues their transactions' traces: applied to the ledger, executed by the node's services
  (``after_commit``), the mempool rid of what was sealed (a pending transaction whose nonce was
  taken is refused), published, and the blocks and proposals that arrived early replayed.

Records are logged under the validator's logger name, so the driver's log is one source.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from traco.core import tracing
from traco.core.positions import loop_time
from traco.schemas.block import Commit, CommitSig, SealedBlock
from traco.schemas.receipt import Code
from traco.services.consensus import machine as m
from traco.services.consensus import telemetry
from traco.services.consensus.validity import Refusal

if TYPE_CHECKING:
    from traco.services.consensus.validator import Validator

log = logging.getLogger("traco.services.consensus.validator")  # one logger for the whole driver


async def maybe_start_height(validator: Validator) -> None:
    """Start the next height when there is something to seal, or time to pass.

    Reasons to start: a transaction is ready, the last block had transactions (the next
    header must commit their results) or sent commands between services (their targets
    execute them at the next height, and the senders see the outcome at the one after),
    another validator is already at that height, or the chain's empty-block interval has
    passed (a chain parameter, so clauses such as hold expiry fire on an idle chain;
    decision 0017).
    """
    next_height = validator.ledger.height + 1
    if validator._running_height() == next_height or not validator._ready():
        return  # running already, or the services have not yet reported the tip's results
    interval = validator.config.empty_block_interval_s
    if interval is None:
        genesis_ms = validator.genesis.params.empty_block_interval
        interval = validator.ledger.admitted.empty_block_interval_ms(genesis_ms) / 1000
    if (
        validator.last_had_txs
        or next_height in validator.seen_height_traffic
        or validator.mempool.has_ready(validator.ledger.chain_nonce)
        or (interval > 0 and loop_time() - validator.last_block_at >= interval)
    ):
        await validator._feed(m.StartHeight(next_height, validator.vset))
        validator.last_progress = loop_time()


async def on_decision(validator: Validator, decision: m.Decision) -> None:
    if decision.height <= validator.ledger.height:
        return  # already committed (Resend repeats an uncommitted decision only)
    candidate = validator.candidates.get(decision.value_id)
    if candidate is None:
        log.error(
            "decided %d on a block this node never saw; waiting for it on %s", decision.height, validator.topics.blocks
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
    telemetry.decided(block.header)
    await validator._commit(block, publish_now=candidate.header.proposer == validator.me)


async def commit_synced(validator: Validator, block: SealedBlock) -> None:
    """A block from the topic, already checked: applied as if decided, machine restarted."""
    await validator._commit(block, publish_now=False)
    validator.state = m.initial_state(validator.me, validator.config.timing)


async def commit(validator: Validator, block: SealedBlock, publish_now: bool) -> None:
    """Within one span continuing the block's transactions' traces (kept from intake), which
    the node's services and the receipts carry on."""
    traces = {tx.tx_id: t for tx in block.txs if (t := validator.mempool.traceparent(tx.tx_id))}
    telemetry.committed(validator, block)
    attributes = telemetry.block_attributes(block)
    span = tracing.block_span(f"commit {block.height}", list(traces.values()), attributes)
    with span, tracing.carrying_tx_traces(traces):
        await validator._apply_commit(block, publish_now, traces)


async def apply_commit(validator: Validator, block: SealedBlock, publish_now: bool, traces: dict[str, bytes]) -> None:
    started = time.perf_counter()
    applied = validator.ledger.apply(block)
    validator.ledger.admitted.at_time(block.header.time)
    if validator.after_commit is not None:
        await validator.after_commit(block)  # the node's services execute it: results, admission
    validator.ledger.admitted.advance(validator.ledger.height)
    log.info(
        "sealed %d: %d txs, round %d, mempool %d, applied in %.0f ms",
        block.height,
        len(block.txs),
        block.header.round,
        len(validator.mempool),
        (time.perf_counter() - started) * 1000,
    )
    validator.stats.decided += 1
    validator.candidates.clear()
    validator.compact.forget(block.height)
    validator.seen_height_traffic = {h for h in validator.seen_height_traffic if h > block.height}
    stale = validator.mempool.remove_sealed(block.txs, validator.ledger.chain_nonce)
    validator.last_had_txs = bool(block.txs) or (validator.work_pending is not None and validator.work_pending())
    validator.last_block_at = validator.last_progress = loop_time()
    await validator.publisher.committed(block, applied.result, traces, publish_now)
    if stale:
        await validator.intake.refuse_pending(
            [(p, Refusal(Code.NONCE_REUSED, f"nonce {p.tx.nonce} was used by another transaction")) for p in stale]
        )
    await validator._apply_buffered()


async def apply_buffered(validator: Validator) -> None:
    """Blocks and proposals that arrived early, now that the tip has moved."""
    await validator.sync.apply_early()
    waiting, validator.future_proposals = validator.future_proposals, []
    for proposal in waiting:
        if proposal.height == validator.ledger.height + 1:
            await validator._on_proposal(proposal)
        elif proposal.height > validator.ledger.height + 1:
            validator.future_proposals.append(proposal)
