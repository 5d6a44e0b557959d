"""What a validator's own steps cost per transaction, in one quiet process (decision 0008).

The validator's target (issue: performance) is 1.5 Ed25519 verifications of CPU per sealed
transaction: one for the signature, half of one for everything else. ``make bench`` measures
the validator in the mesh, where four nodes and the broker share two cores; this takes the
blocks a finished ``bench/chain.py --data-dir D`` run kept and puts every transaction through
the validator's per-transaction steps with the project's own functions, step by step, with
nothing else running — the least those steps can cost here:

- **decode**: ``validity.decode_tx`` on the envelope's bytes, as the intake reads them;
- **signature**: ``SignatureCache.verify`` of the envelope, once (what the intake's first
  ``check_tx`` spends beside the rule, leaving the verdict cached);
- **admission**: ``TxIntake.admit`` itself: the sealed and pending lookups, the validity rule
  (its verdict cached) and ``Mempool.add``;
- **mempool**: the proposer's ``select`` with ``TxIntake.recheck`` of each transaction and, once the
  block is sealed, ``remove_sealed``;
- **proposal**: building the block (``proposals.build``: the transactions' root) and
  checking another's (``validity.check_block_txs``, verdicts cached). A validator does one
  or the other for a block; both are counted, so this is a little more than any one does;
- **apply**: ``Ledger.apply`` without the chain's own execution (``Ledger.execution_cpu``,
  the row ``make bench`` shows apart): the block store and the ledger's bookkeeping;
- **outputs**: the chain's receipts as bus messages (``wire.chain_outputs``).

What it leaves out, each measured elsewhere in decision 0008: the Kafka client reading the
transaction and writing its receipt (about 4 µs a record each way in a quiet process), the
consensus messages (per block, not per transaction) and the event loop.

    python bench/chain.py --data-dir /tmp/run && python bench/validator.py /tmp/run

Not a test: it measures and prints.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain import ed25519_rate

from traco.core import gc_policy
from traco.core.adapters.memory import MemoryEventBus
from traco.core.adapters.sqlite import SqliteStateStore
from traco.core.adapters.sqlite_blocks import SqliteBlockStore
from traco.core.ports import BusMessage
from traco.schemas.block import SealedBlock
from traco.schemas.tx import TxEnvelope
from traco.services.consensus import proposals, validity, wire
from traco.services.consensus.genesis import DataDir, load_genesis
from traco.services.consensus.intake import TxIntake
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.mempool import Mempool

T = TypeVar("T")
STEPS = ("decode", "signature", "admission", "mempool", "proposal", "apply", "outputs")


class Clock:
    """Thread CPU seconds per step."""

    def __init__(self) -> None:
        self.spent = dict.fromkeys(STEPS, 0.0)

    def time(self, step: str, work: Callable[..., T], *args: Any) -> T:
        started = time.thread_time()
        done = work(*args)
        self.spent[step] += time.thread_time() - started
        return done


def run_block(clock: Clock, intake: TxIntake, block: SealedBlock) -> None:
    """One block's transactions through the validator's steps, in the order a proposer meets them."""
    ledger, mempool, cache = intake.ledger, intake.mempool, intake.signatures
    genesis = ledger.genesis
    kinds = ledger.kinds_at(block.height)
    admitted = ledger.admitted

    def never_sealed(tx_id: str) -> bool:
        return False  # what the proposal check asks of pending transactions: they are not

    decoded: list[TxEnvelope] = []
    for offset, submitted in enumerate(block.txs):
        raw = submitted.json_bytes
        tx = clock.time("decode", validity.decode_tx, raw, genesis.params.max_tx_bytes)
        assert isinstance(tx, TxEnvelope), tx
        verified = clock.time("signature", cache.verify, tx, bytes.fromhex(tx.tx_id))
        message = BusMessage(intake.topics.tx, 0, offset, tx.sender.encode(), raw)
        refusal = clock.time("admission", intake.admit, tx, message)
        if not verified or refusal is not None:
            sys.exit(f"transaction {tx.tx_id} of block {block.height} is refused: {refusal}")
        decoded.append(tx)
    params = genesis.params
    chosen = clock.time(
        "mempool", mempool.select, ledger.chain_nonce, params.max_block_txs, params.max_block_bytes, intake.recheck
    )
    assert len(chosen.txs) == len(decoded) and not chosen.refused
    header = block.header
    clock.time(
        "proposal", proposals.build, genesis, ledger, 0, header.time, header.proposer, chosen.txs, ledger.tip.validators
    )
    problem = clock.time(
        "proposal", validity.check_block_txs, genesis, admitted, decoded, ledger.chain_nonce, never_sealed, cache, kinds
    )
    assert problem is None, problem
    execution = ledger.execution_cpu
    applied = clock.time("apply", ledger.apply, block)
    clock.spent["apply"] -= ledger.execution_cpu - execution
    clock.time("mempool", mempool.remove_sealed, block.txs, ledger.chain_nonce)
    receipts = applied.result.receipts
    events = applied.result.events
    checkpoint = ledger.checkpoint(block.height)
    assert checkpoint is not None
    clock.time("outputs", wire.chain_outputs, intake.topics, block, receipts, events, checkpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="a bench/chain.py --data-dir (its n0-chain block store is read)")
    args = parser.parse_args()
    gc_policy.tune()  # as `traco serve` runs
    paths = DataDir(args.data_dir)
    genesis = load_genesis(paths.genesis)
    kept = SqliteBlockStore(args.data_dir / "n0-chain" / "blocks.sqlite", readonly=True)
    clock = Clock()
    txs = 0
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(
            genesis, SqliteBlockStore(Path(tmp) / "blocks.sqlite"), SqliteStateStore(Path(tmp) / "state.sqlite")
        )
        mempool = Mempool(genesis.params.max_nonce_gap)
        topics = wire.Topics(genesis.chain_id, "n0")
        signatures = validity.SignatureCache()
        intake = TxIntake(genesis, ledger, MemoryEventBus(), topics, mempool, signatures, lambda partition: True)
        for block in kept.blocks(1, kept.height()):
            run_block(clock, intake, block)
            txs += len(block.txs)
        chain_us = 1e6 * ledger.execution_cpu / max(txs, 1)
        ledger.blocks.close()
        ledger.state.close()
    verify_us = 1e6 / ed25519_rate()
    print(f"{txs:,} transactions; Ed25519 verify {verify_us:.1f} µs (same run); CPU (thread time) per transaction:")
    beside = 0.0
    for step, seconds in clock.spent.items():
        us = 1e6 * seconds / max(txs, 1)
        beside += 0 if step == "signature" else us
        print(f"  {step:18} {us:7.1f} µs")
    print(f"  {'all but the signature':18} {beside:7.1f} µs = {beside / verify_us:.2f} × one verify")
    print(f"  (the chain's own execution, apart: {chain_us:.1f} µs)")


if __name__ == "__main__":
    main()
