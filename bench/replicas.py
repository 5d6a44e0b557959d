"""What each service replica costs per transaction, in one quiet process (decision 0008).

A node's replicas run inside its process, beside the validator, on two cores shared with three
other nodes and the broker, so their figure in ``make bench`` moves with everything else that
hour. This replays the blocks a finished benchmark kept (``bench/trade.py --data-dir D``, or
any bench with ``--data-dir``) through every service replica the way a node runs them
(with ``services/node/node.py``'s own functions: each service executes the block, builds its
outputs, and hands its events to the services downstream in memory) into empty SQLite stores, and prints each
replica's thread time per transaction of the block range. No broker, no other process: an
A/B of a change to the replicas' path shows here within a few percent, where the mesh's
figure moves by a fifth between hours.

What it leaves out: the Kafka client publishing the outputs (the node's send, counted in the
validator's row of ``make bench``) and the block's arrival.

    python bench/trade.py --data-dir /tmp/run && python bench/replicas.py /tmp/run --from 4

``--from H`` counts only heights from H on (the transfers, not the mints before them); the
blocks before it are executed all the same, as the state they build is the state H reads.
``--to H`` stops after height H (one phase of ``bench/flows.py``: its buys, not its loans).
``--runs N`` replays N times and prints each replica's median and range: one replay moves by a
few per cent from run to run, so an A/B of a small change needs several.
For where the time goes, run it under ``py-spy record`` (``make profile`` does the same for a
node in the mesh).

Not a test: it measures and prints.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from traco.core import crypto, gc_policy
from traco.core.adapters.signer_file import KeySigner
from traco.core.adapters.sqlite import SqliteStateStore
from traco.core.adapters.sqlite_blocks import SqliteBlockStore
from traco.core.nodes import NodeKey
from traco.core.service_runtime import ServiceRuntime
from traco.services import registry
from traco.services.consensus.genesis import DataDir, load_genesis
from traco.services.node.node import feed_upstreams, hand_over, replicas


def node_replicas(data_dir: Path, stores: Path) -> dict[str, ServiceRuntime]:
    """Node n0's replicas, as ``Node`` builds them, over empty stores under ``stores``."""
    paths = DataDir(data_dir)
    genesis = load_genesis(paths.genesis)
    key = NodeKey("n0", KeySigner(crypto.read_key_file(paths.validator_key(0))))
    store_of = {name: SqliteStateStore(stores / name / "state.sqlite") for name in registry.runnable(genesis)}
    return replicas(genesis, key, store_of, None)  # type: ignore[arg-type]  # built and timed, never sent


def replay(data_dir: Path, blocks: SqliteBlockStore, start: int, end: int) -> tuple[int, dict[str, float]]:
    """One replay of heights 1..``end`` into empty stores: the transactions counted (from
    ``start`` on) and each replica's thread time over them."""
    with tempfile.TemporaryDirectory() as tmp:
        runtimes = node_replicas(data_dir, Path(tmp))
        cpu = dict.fromkeys(runtimes, 0.0)
        txs = 0
        for block in blocks.blocks(1, end):
            counted = block.height >= start
            txs += len(block.txs) if counted else 0
            for name, runtime in runtimes.items():
                feed_upstreams(runtimes, runtime, block.height)
                problem = runtime.check(block)
                if problem:
                    sys.exit(f"{name} refuses block {block.height}: {problem}")
                started = time.thread_time()
                result = runtime.execute(block)
                runtime.outputs(result.receipts, result.events, result.checkpoint)
                if counted:
                    cpu[name] += time.thread_time() - started
                hand_over(runtimes, name, result)
        for runtime in runtimes.values():
            runtime.store.close()
    return txs, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="a benchmark's --data-dir (its n0-chain block store is read)")
    parser.add_argument("--from", dest="start", type=int, default=1, help="count heights from this one on")
    parser.add_argument("--to", dest="end", type=int, default=0, help="stop after this height (default: the last)")
    parser.add_argument("--runs", type=int, default=1, help="replay this many times; print the median and range")
    args = parser.parse_args()
    gc_policy.tune()  # as `traco serve` runs
    blocks = SqliteBlockStore(args.data_dir / "n0-chain" / "blocks.sqlite", readonly=True)
    end = min(args.end or blocks.height(), blocks.height())
    runs = [replay(args.data_dir, blocks, args.start, end) for _ in range(max(args.runs, 1))]
    txs = runs[0][0]
    print(f"{txs:,} transactions at heights {args.start}..{end}, CPU (thread time) per transaction:")
    for name in runs[0][1]:
        each = sorted(1e6 * cpu[name] / max(txs, 1) for _, cpu in runs)
        spread = f"  (median of {len(each)}; {each[0]:.1f}–{each[-1]:.1f})" if len(each) > 1 else ""
        print(f"  {name:8} {statistics.median(each):8.1f} µs{spread}")


if __name__ == "__main__":
    main()
