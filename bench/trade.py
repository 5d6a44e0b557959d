"""Token benchmark (``make bench``): TRC transfers executed end to end by four nodes, and how
fast the trade service rebuilds from an empty store, beside the same run's Ed25519 figure.

On the real Tansu broker, four nodes as ``traco up`` runs them: two custodians attest a reserve,
one mints TRC to the importer and the exporter; then pre-signed ``trade.transfer`` transactions
between them (at most 900 in flight, ``registry.offer``: the mempool holds a sender's nonces up
to 1,000 ahead) are produced to the ``tx`` topic, and the rate is node n0's trade receipts per
second from the first produce to the last receipt. The mesh stops and trade is rebuilt
in-process from the broker's ``blocks`` and n0's events topics into an empty store. Each
node's CPU seconds over the transfers, per transfer, show what a transfer costs a node.
Not a test: it measures and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chain import ed25519_rate
from costs import NodeCosts, mean_part
from registry import Receipts, _chain_height, offer, rebuild

from traco.core import crypto, gc_policy
from traco.core.adapters.kafka import KafkaEventBus
from traco.core.broker import TansuBroker, free_port_block
from traco.core.settings import Settings
from traco.schemas.tx import TxEnvelope, sign_tx
from traco.services.consensus import wire
from traco.services.consensus.genesis import DataDir, init_chain

MINTED = 10_000_000_00


def transfers(keys: dict[str, bytes], chain_id: str, count: int) -> list[TxEnvelope]:
    """``count`` transfers, alternating importer -> exporter and exporter -> importer."""
    nonces = {"importer": 0, "exporter": 0}
    out = []
    for i in range(count):
        sender, to = ("importer", "exporter") if i % 2 == 0 else ("exporter", "importer")
        nonces[sender] += 1
        payload = {"token": "TRC", "to": to, "amount": 1 + i % 7, "memo": f"bench {i}"}
        out.append(sign_tx(keys[sender], chain_id, "trade.transfer", nonces[sender], payload))
    return out


async def main_async(args: argparse.Namespace) -> int:
    from traco.cli.up import Mesh

    with tempfile.TemporaryDirectory(prefix="traco-bench-trade-") as tmp:
        data_dir = Path(args.data_dir or tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        with TansuBroker(log_path=data_dir / "broker.log") as broker:
            genesis = init_chain(data_dir, "benchtrade", args.nodes)
            settings = Settings(data_dir=data_dir, kafka_bootstrap=broker.bootstrap, api_port=free_port_block(64))
            mesh = Mesh(settings)
            names = ("custodian", "custodian-2", "importer", "exporter")
            keys = {n: crypto.read_key_file(DataDir(data_dir).keys / f"{n}.key") for n in names}
            try:
                await asyncio.to_thread(mesh.start, args.nodes)
                topics = wire.Topics(genesis.chain_id, "n0")
                bus = KafkaEventBus(broker.bootstrap, client_id="bench")
                await bus.start()
                watch = Receipts()
                watcher = asyncio.create_task(watch.run(bus, topics.receipts))
                await asyncio.sleep(2)
                attest = {"reserve": 2 * MINTED, "as_of": int(time.time() * 1000) - 5_000, "seq": 1}
                setup = [
                    sign_tx(keys["custodian"], genesis.chain_id, "trade.trc.attest", 1, attest),
                    sign_tx(keys["custodian-2"], genesis.chain_id, "trade.trc.attest", 1, attest),
                ]
                await offer(bus, topics, watch, setup)
                mints = [
                    sign_tx(keys["custodian"], genesis.chain_id, "trade.trc.mint", 2 + i, {"to": who, "amount": MINTED})
                    for i, who in enumerate(("importer", "exporter"))
                ]
                _, minted = await offer(bus, topics, watch, mints)
                txs = transfers(keys, genesis.chain_id, args.transfers)
                print(f"{minted} mints; {len(txs)} transfers…")
                costs = NodeCosts({name: proc.pid for name, proc in mesh.children.items()}, settings.api_port)
                cpu_before = costs.sample()
                rate, accepted = await offer(bus, topics, watch, txs)
                cpu_after = costs.sample()
                watcher.cancel()
                await bus.stop()
            finally:
                await asyncio.to_thread(mesh.stop)
            height = _chain_height(data_dir)
            print("rebuilding trade from the topics into an empty store…")
            rebuilt = await rebuild(broker.bootstrap, data_dir, "trade", height)
    ed = ed25519_rate()
    cores = os.cpu_count() or 1
    rows = [
        ("Ed25519 verify, one core (same run)", f"{ed:,.0f}/s"),
        (f"trade.transfer end to end, {args.nodes} nodes ({accepted} accepted)", f"{rate:,.0f} tx/s"),
        (f"trade rebuild ({rebuilt[2]} blocks)", f"{rebuilt[0]:,.0f} blocks/s, {rebuilt[1]:,.0f} tx/s"),
    ]
    costs_rows = NodeCosts.rows(cpu_before, cpu_after, accepted, ed, "transfer")
    rows += [(name, f"{value} = {ratio}") for name, value, ratio in costs_rows]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure (' + str(cores) + ' cores)'.ljust(width)}  value")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    if args.json:
        parts = NodeCosts.per_part(cpu_before, cpu_after, accepted)
        figures = {
            "nodes": args.nodes,
            "ed25519_per_s": ed,
            "transfers_per_s": rate,
            "validator_us": mean_part(parts, "validator"),
            "trade_us": mean_part(parts, "trade"),
            "process_us": mean_part(parts, "process"),
            "rebuild_per_s": rebuilt[1],
        }
        Path(args.json).write_text(json.dumps(figures))
    return 0 if accepted == args.transfers else 1


def main() -> int:
    # the rebuild runs in this process: with `traco serve`'s cycle-collector settings
    gc_policy.tune()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transfers", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=4, help="validator nodes in the mesh")
    parser.add_argument("--data-dir", help="keep the run's data and logs here")
    parser.add_argument("--json", help="also write the figures to this file (bench/scaling.py reads it)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
