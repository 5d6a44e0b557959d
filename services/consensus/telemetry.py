"""A validator's metrics and spans, kept out of the driver (``validator.py``).

What it reports (operator's guide: Observability), all through :mod:`traco.core.metrics`:

- at each commit: transactions sealed (tx/s), blocks, rounds the height took, and every
  validator of the height's set whose precommit is not in the commit the block was sealed with
  (a decider's commit holds the precommits it had when it reached the quorum, as CometBFT's
  ``missing_validators`` reads a block's last commit);
- at each decision: the commit latency, from the proposal's header time to now (the proposer's
  clock against this one's: skew between machines shows here);
- read at scrape: the height, the mempool, handler failures, whether this node's results
  diverged, and its lag behind the highest sealed height it has seen (``consensus``).

``highest_seen`` is also what ``GET /readyz`` compares the heights with; ``validator_health``
and ``follower_health`` are what the split layout's validator and consensus API processes
answer it with.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from traco.core import metrics
from traco.core.lightclient import verify_commit
from traco.core.probes import Health
from traco.schemas.block import BlockHeader, SealedBlock
from traco.services.consensus import rules

if TYPE_CHECKING:
    from traco.services.consensus.follower import Follower
    from traco.services.consensus.validator import Validator


def node_label(validator: Validator) -> str:
    return validator.node_id if validator.node_id is not None else f"validator-{validator.config.index}"


def highest_seen(validator: Validator) -> int:
    """The highest sealed height this validator knows of: its own tip, or a block on ``blocks``
    whose commit verified against the current set (``BlockSync.note``)."""
    return max(validator.ledger.height, validator.sync.highest_seen, validator.publisher.topic_height)


def watch(validator: Validator) -> None:
    """Register the validator's gauges (read at each scrape, for as long as it exists)."""
    chain = validator.genesis.chain_id
    node = node_label(validator)
    metrics.BLOCK_HEIGHT.watch(validator, lambda v: [(v.ledger.height, {"chain": chain, "node": node})])
    metrics.MEMPOOL_SIZE.watch(validator, lambda v: [(len(v.mempool), {})])
    metrics.HANDLER_FAILURES.watch(validator, lambda v: [(v.inbox.failures, {})])
    metrics.RESULTS_DIVERGED.watch(validator, lambda v: [(0 if v.sync.diverged_at is None else 1, {})])
    metrics.CONSUMER_LAG.watch(
        validator, lambda v: [(highest_seen(v) - v.ledger.height, {"service": "consensus", "node": node})]
    )
    metrics.SERVICE_CPU.watch(
        validator, lambda v: [(v.ledger.execution_cpu, {"service": rules.CHAIN_SERVICE, "node": node})]
    )
    # Counters appear once they have a value: these start at 0 so dashboards and alerts find them.
    metrics.DIVERGENCES.add(0)
    for member in validator.ledger.tip.validators:
        metrics.MISSED_VOTES.add(0, {"validator": member.public_key[:16]})


def decided(header: BlockHeader) -> None:
    """This validator decided the block with ``header`` now."""
    metrics.COMMIT_LATENCY.record(max(0.0, time.time() - header.time / 1000))


def committed(validator: Validator, block: SealedBlock) -> None:
    """Before ``block`` is applied (the tip's set is the set that had to sign it)."""
    chain = validator.genesis.chain_id
    metrics.BLOCKS_COMMITTED.add(1, {"chain": chain})
    metrics.SEALED_TXS.add(len(block.txs), {"chain": chain})
    metrics.ROUNDS_PER_HEIGHT.record(block.commit.round + 1)
    signed = {s.validator for s in block.commit.signatures}
    for member in validator.ledger.tip.validators:
        if member.public_key not in signed:
            metrics.MISSED_VOTES.add(1, {"validator": member.public_key[:16]})


def block_attributes(block: SealedBlock) -> dict[str, int | str]:
    return {
        "traco.block.height": block.height,
        "traco.block.round": block.commit.round,
        "traco.block.tx_count": len(block.txs),
        "traco.block.proposer": block.header.proposer[:16],
    }


def validator_health(validator: Validator) -> Health:
    """A validator process's progress (``GET /readyz``); one whose results diverged is not ready."""
    diverged = validator.sync.diverged_at
    problems = [] if diverged is None else [f"this node's results diverge from the chain's at height {diverged}"]
    return Health(highest_seen(validator), {"consensus": validator.ledger.height}, problems)


def follower_health(follower: Follower) -> Health:
    """The consensus API's progress: its ledger against the highest block it holds ahead of it
    whose commit verifies against the current set (a forged height does not count)."""
    ledger = follower.ledger
    seen = ledger.height
    for height in sorted(follower.early, reverse=True)[:3]:
        block = follower.early[height]
        if verify_commit(block.header, block.commit, ledger.tip.validators) is None:
            seen = height
            break
    return Health(seen, {"consensus": ledger.height})


def watch_follower(follower: Follower, node: str) -> None:
    """The gauges of a consensus API running as a process of its own."""
    chain = follower.ledger.genesis.chain_id
    metrics.BLOCK_HEIGHT.watch(follower, lambda f: [(f.ledger.height, {"chain": chain, "node": node})])
    metrics.CONSUMER_LAG.watch(
        follower,
        lambda f: [(follower_health(f).highest_seen - f.ledger.height, {"service": "consensus-api", "node": node})],
    )
