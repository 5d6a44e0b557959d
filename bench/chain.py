"""Chain benchmark (``make bench``): sealed tx/s, latency at a fixed load, audit speed.

One run, on the real Tansu broker with four node processes (validator and services each), as
``traco up`` runs them:

1. sealed throughput: pre-signed ``chain.anchor`` transactions from 64 members are produced to
   the ``tx`` topic as fast as the broker takes them; the rate is transactions whose accepted
   receipt appeared on ``receipts``, divided by the time from the first produce to the last
   receipt;
2. latency: a fixed offered load (1,000 tx/s by default) for a few seconds, p50/p99 from
   produce to receipt;
3. audit: ``audit verify`` of the whole chain that the run produced, in tx/s;
4. each node process's CPU seconds while it sealed the throughput load, per transaction and as
   a multiple of one Ed25519 verification: the whole process, and apart from it the chain's own
   execution of ``chain.anchor`` (its rules and the commit of their state, which run in the
   validator's loop; ``traco_service_cpu{service="chain"}``), so that the validator's row is
   what ordering and sealing cost; and, after the warm-up, the CPU of the broker
   and of each node over a few seconds with no load (what a mesh at rest costs);
5. the Ed25519 ceiling measured in the same run: verifications/s on one core × cores ÷
   verifications per transaction (each of the n validators verifies each transaction once;
   the audit verifies it once).

Figures are printed as a table with each figure's ratio to its ceiling. This is not a test:
nothing here asserts, it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson
from costs import NodeCosts, at_rest, mean_part

from traco.core import crypto, gc_policy
from traco.core.adapters.factory import StorageConfig
from traco.core.adapters.kafka import KafkaEventBus
from traco.core.broker import TansuBroker, free_port_block
from traco.core.ports import OutgoingMessage
from traco.core.settings import Settings
from traco.schemas.genesis import Genesis, GenesisMember, GenesisValidator
from traco.schemas.tx import TxEnvelope, sign_tx
from traco.services.consensus import wire
from traco.services.consensus.audit import audit_chain
from traco.services.consensus.genesis import DataDir

CHAIN = "bench"
REST_S = 5.0
"""How long the mesh is watched doing nothing (after the warm-up, before the load)."""


def write_genesis(data_dir: Path, validators: int, members: int) -> tuple[Genesis, list[bytes]]:
    paths = DataDir(data_dir)
    paths.keys.mkdir(parents=True, exist_ok=True)
    vals = []
    for i in range(validators):
        key = crypto.generate_private_key()
        crypto.write_key_file(paths.validator_key(i), key)
        vals.append(GenesisValidator(name=f"validator-{i}", public_key=crypto.public_key(key).hex(), power=1))
    member_keys = [crypto.generate_private_key() for _ in range(members)]
    crypto.write_key_file(paths.member_key, member_keys[0])
    genesis = Genesis(
        chain_id=CHAIN,
        genesis_time=int(time.time() * 1000),
        validators=tuple(vals),
        members=tuple(
            GenesisMember(name=f"m{i}", public_key=crypto.public_key(k).hex()) for i, k in enumerate(member_keys)
        ),
    )
    paths.genesis.write_text(genesis.model_dump_json(indent=2))
    return genesis, member_keys


def make_txs(keys: list[bytes], count: int, start_nonce: dict[int, int], tag: str) -> list[TxEnvelope]:
    txs = []
    for i in range(count):
        member = i % len(keys)
        start_nonce[member] = start_nonce.get(member, 0) + 1
        label = f"{tag}-{i}"
        txs.append(
            sign_tx(
                keys[member],
                CHAIN,
                "chain.anchor",
                start_nonce[member],
                {"digest": hashlib.sha256(label.encode()).hexdigest(), "label": label},
            )
        )
    return txs


def to_messages(topics: wire.Topics, txs: list[TxEnvelope]) -> list[OutgoingMessage]:
    return [OutgoingMessage(topics.tx, tx.model_dump_json().encode(), tx.sender.encode()) for tx in txs]


class ReceiptWatch:
    """Records when each accepted receipt first appears on the receipts topic."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.rejected: dict[str, str] = {}

    async def run(self, bus: KafkaEventBus, topic: str) -> None:
        async for batch in bus.consume(topic, start="latest"):
            now = time.perf_counter()
            for message in batch:
                receipt = orjson.loads(message.value)
                if receipt["status"] == "accepted":
                    self.seen.setdefault(receipt["tx_id"], now)
                else:
                    self.rejected[receipt["tx_id"]] = receipt["code"]

    async def wait_for(self, ids: list[str], timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if all(i in self.seen or i in self.rejected for i in ids):
                return True
            await asyncio.sleep(0.05)
        return False


async def throughput(bus: KafkaEventBus, topics: wire.Topics, watch: ReceiptWatch, txs: list[TxEnvelope]) -> float:
    messages = to_messages(topics, txs)
    start = time.perf_counter()
    for i in range(0, len(messages), 2000):
        await bus.publish_many(messages[i : i + 2000])
    produced = time.perf_counter() - start
    ok = await watch.wait_for([t.tx_id for t in txs], timeout=300)
    end = max(watch.seen.get(t.tx_id, start) for t in txs)
    sealed = sum(1 for t in txs if t.tx_id in watch.seen)
    if not ok:
        print(f"  warning: only {sealed} of {len(txs)} receipts arrived", file=sys.stderr)
    print(f"  produced {len(txs)} txs in {produced:.2f}s; last receipt after {end - start:.2f}s")
    return sealed / (end - start)


async def latency(
    bus: KafkaEventBus, topics: wire.Topics, watch: ReceiptWatch, txs: list[TxEnvelope], rate: int
) -> list[float]:
    sent: dict[str, float] = {}
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    start = time.perf_counter()
    for i in range(0, len(txs), per_tick):
        chunk = txs[i : i + per_tick]
        target = start + (i // per_tick) * tick
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        for tx in chunk:
            sent[tx.tx_id] = now
        await bus.publish_many(to_messages(topics, chunk))
    await watch.wait_for(list(sent), timeout=120)
    return sorted(watch.seen[t] - s for t, s in sent.items() if t in watch.seen)


def ed25519_rate(seconds: float = 2.0) -> float:
    key = crypto.generate_private_key()
    pub = crypto.public_key(key)
    message = b"x" * 200
    sig = crypto.sign(key, message)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            crypto.verify(pub, message, sig)
        count += 500
    return count / (time.perf_counter() - start)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p * len(values)))]


async def main_async(args: argparse.Namespace) -> int:
    from traco.cli.up import Mesh

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="traco-bench-") as tmp:
        data_dir = Path(args.data_dir or tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        genesis, keys = write_genesis(data_dir, args.validators, 64)
        broker = TansuBroker(log_path=data_dir / "broker.log")
        broker.start()
        settings = Settings(
            data_dir=data_dir,
            kafka_bootstrap=broker.bootstrap,
            api_port=free_port_block(64),
            chain_id=CHAIN,
        )
        mesh = Mesh(settings)
        nonces: dict[int, int] = {}
        try:
            await asyncio.to_thread(mesh.start, args.validators)
            topics = wire.Topics(CHAIN, "n0")  # node n0's receipts: what a member reads
            bus = KafkaEventBus(broker.bootstrap, client_id="bench", linger_ms=5)
            await bus.start()
            watch = ReceiptWatch()
            watcher = asyncio.create_task(watch.run(bus, topics.receipts))
            await asyncio.sleep(2)
            warm = make_txs(keys, 200, nonces, "warm")
            await throughput(bus, topics, watch, warm)
            node_pids = {name: p.pid for name, p in mesh.children.items()}
            broker_pid = {"broker": broker.pid} if broker.pid is not None else {}
            rest = await at_rest({**node_pids, **broker_pid}, REST_S)
            print(f"offering {args.txs} signed chain.anchor transactions as fast as possible…")
            costs = NodeCosts(node_pids, settings.api_port)
            cpu_before = costs.sample()
            sealed_rate = await throughput(bus, topics, watch, make_txs(keys, args.txs, nonces, "load"))
            cpu_after = costs.sample()
            print(f"offering {args.rate} tx/s for {args.seconds}s…")
            lat = await latency(bus, topics, watch, make_txs(keys, args.rate * args.seconds, nonces, "lat"), args.rate)
            print(f"offering {args.light_rate} tx/s for {args.seconds}s…")
            light_txs = make_txs(keys, args.light_rate * args.seconds, nonces, "light")
            light = await latency(bus, topics, watch, light_txs, args.light_rate)
            watcher.cancel()
            await bus.stop()
        finally:
            await asyncio.to_thread(mesh.stop)
            broker.stop()
        config = StorageConfig(backend="sqlite", data_dir=data_dir)
        start = time.perf_counter()
        report = audit_chain(config, "n0-chain", genesis, workers=cores, replay=False)
        audit_s = time.perf_counter() - start
        audit_rate = report.txs / audit_s if audit_s else 0.0
        start = time.perf_counter()
        replayed = audit_chain(config, "n0-chain", genesis, workers=cores, replay=True)
        replay_s = time.perf_counter() - start
        replay_rate = replayed.txs / replay_s if replay_s else 0.0
        verify = ed25519_rate()
        chain_ceiling = verify * cores / args.validators
        audit_ceiling = verify * cores / 1
        rows = [
            ("Ed25519 verify, one core", f"{verify:,.0f}/s", ""),
            (
                f"chain ceiling ({cores} cores ÷ {args.validators} verifications/tx)",
                f"{chain_ceiling:,.0f} tx/s",
                "1.00",
            ),
            (
                "sealed (offered as fast as taken)",
                f"{sealed_rate:,.0f} tx/s",
                f"{sealed_rate / chain_ceiling:.2f}",
            ),
            (f"latency p50 at {args.rate} tx/s", f"{percentile(lat, 0.5) * 1000:,.0f} ms", ""),
            (
                f"latency p99 at {args.rate} tx/s",
                f"{percentile(lat, 0.99) * 1000:,.0f} ms",
                f"({len(lat)} receipts)",
            ),
            (f"latency p50 at {args.light_rate} tx/s", f"{percentile(light, 0.5) * 1000:,.0f} ms", ""),
            (f"latency p99 at {args.light_rate} tx/s", f"{percentile(light, 0.99) * 1000:,.0f} ms", ""),
            (
                "audit verify --replay (also re-executes every block)",
                f"{replay_rate:,.0f} tx/s",
                f"{replay_rate / audit_ceiling:.2f} of {audit_ceiling:,.0f}",
            ),
            (
                f"audit verify --no-replay ({report.height} blocks, {report.txs} txs, "
                f"{'OK' if report.ok else 'FAILED'})",
                f"{audit_rate:,.0f} tx/s",
                f"{audit_rate / audit_ceiling:.2f} of {audit_ceiling:,.0f}",
            ),
        ]
        nodes_at_rest = [share for name, share in rest.items() if name != "broker"]
        rows += [
            (
                f"at rest ({REST_S:.0f} s, no load): the broker",
                f"{rest.get('broker', 0.0):.0%} of a core",
                "",
            ),
            (
                "at rest: each node (mean)",
                f"{sum(nodes_at_rest) / len(nodes_at_rest):.1%} of a core",
                "",
            ),
        ]
        rows += NodeCosts.rows(cpu_before, cpu_after, args.txs, verify, "sealed tx")
        width = max(len(r[0]) for r in rows)
        print()
        print(f"{'measure'.ljust(width)}  {'value':>16}  ratio to ceiling")
        for name, value, ratio in rows:
            print(f"{name.ljust(width)}  {value:>16}  {ratio}")
        print()
        print(f"sealed: {sealed_rate:,.0f} tx/s")
        print(
            f"latency: p50 {percentile(lat, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(lat, 0.99) * 1000:.0f} ms at {args.rate} tx/s"
        )
        print(f"audit: {audit_rate:,.0f} tx/s ({audit_rate / audit_ceiling:.0%} of the verification ceiling)")
        print(f"audit with replay: {replay_rate:,.0f} tx/s ({replay_rate / audit_ceiling:.0%})")
        if args.json:
            parts = NodeCosts.per_part(cpu_before, cpu_after, args.txs)
            figures = {
                "validators": args.validators,
                "ed25519_per_s": verify,
                "sealed_per_s": sealed_rate,
                "validator_us": mean_part(parts, "validator"),
                "chain_us": mean_part(parts, "chain"),
                "process_us": mean_part(parts, "process"),
                "latency_p99_ms": percentile(lat, 0.99) * 1000,
                "replay_per_s": replay_rate,
            }
            Path(args.json).write_text(orjson.dumps(figures).decode())
        return 0 if report.ok and replayed.ok else 1


def main() -> int:
    # the audit runs in this process: with `traco audit verify`'s cycle-collector settings
    gc_policy.tune()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--light-rate", type=int, default=250, help="a second, sustainable load")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--data-dir", help="keep the run's data and logs here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the figures to this file (bench/scaling.py reads it)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
