"""Document registry benchmark (``make bench``): registrations and pledges executed end to end,
and how fast each service rebuilds from an empty store.

On the real Tansu broker, with four validators, the party and doc services and the API (as
``traco up`` runs them): pre-signed ``doc.register`` transactions (the carrier registers bills
of lading held by the exporter) are produced to the ``tx`` topic with at most 900 in flight (the
mempool holds a sender's nonces up to 1,000 ahead; ``offer``), and the rate is receipts from the doc
service per second from the first produce to the last receipt; then the exporter pledges
every document to a bank, the same way. Before them the importer records ``party.delegate``
transactions (one per client it submits for), so the party service has work of its own.
Finally the mesh stops and the party and doc services are rebuilt in-process from the
broker's ``blocks`` and events topics into empty SQLite stores (as a node's): blocks/s and tx/s. Not a test:
it measures and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

from traco.core import crypto, gc_policy
from traco.core.adapters.kafka import KafkaEventBus
from traco.core.adapters.signer_file import KeySigner
from traco.core.adapters.sqlite import SqliteStateStore
from traco.core.broker import TansuBroker, free_port_block
from traco.core.errors import BusError
from traco.core.nodes import NodeKey
from traco.core.ports import OutgoingMessage
from traco.core.positions import last_message
from traco.core.service_runtime import ServiceRuntime, last_checkpoint
from traco.core.settings import Settings
from traco.core.topics import node_topic, topic
from traco.schemas.tx import TxEnvelope, sign_tx
from traco.services import registry
from traco.services.consensus import wire
from traco.services.consensus.genesis import DataDir, init_chain, load_genesis

IN_FLIGHT = 900
"""Transactions of one sender ``offer`` keeps sent but not yet sealed: under the chain's
``max_nonce_gap`` (1,000), so each of its nonces is admitted, never refused as too far ahead."""

TOP_UP = 100
"""``offer`` sends a sender's next transactions once this many (or all it has left) fit in its
window: a publish per receipt would cost the bench process more than the nodes' sends do."""


class Receipts:
    def __init__(self) -> None:
        self.seen: dict[str, tuple[float, str]] = {}
        self.arrived = asyncio.Event()

    async def run(self, bus: KafkaEventBus, topic: str) -> None:
        async for batch in bus.consume(topic, start="latest"):
            now = time.perf_counter()
            for message in batch:
                receipt = orjson.loads(message.value)
                if receipt.get("height") is not None:
                    self.seen.setdefault(receipt["tx_id"], (now, receipt["code"]))
            self.arrived.set()


async def offer(bus: KafkaEventBus, topics: wire.Topics, watch: Receipts, txs: list[TxEnvelope]) -> tuple[float, int]:
    """Produce each sender's transactions in order with at most ``IN_FLIGHT`` of them sent and
    unsealed, topping up as receipts arrive; return (tx/s from first produce to last receipt,
    accepted count).

    Why windows and not waves: a wave waited for its last receipt before the next was sent, so
    the chain ran dry between waves (a height proposed empty, the next wave's transactions a
    height later), and the rate measured that pause as much as the mesh. A window per sender
    keeps the mempool fed as a steady stream of clients does, each within its nonce gap."""
    start = time.perf_counter()
    deadline = start + 300
    queues: dict[str, list[TxEnvelope]] = {}
    for tx in txs:
        queues.setdefault(tx.sender, []).append(tx)
    sent = dict.fromkeys(queues, 0)
    unsealed: dict[str, set[str]] = {sender: set() for sender in queues}
    while time.perf_counter() < deadline:
        chunk: list[TxEnvelope] = []
        for sender, queue in queues.items():
            room, left = IN_FLIGHT - len(unsealed[sender]), len(queue) - sent[sender]
            if left and room >= min(TOP_UP, left):
                part = queue[sent[sender] : sent[sender] + room]
                chunk += part
                unsealed[sender].update(t.tx_id for t in part)
                sent[sender] += len(part)
        if chunk:
            await bus.publish_many(
                [OutgoingMessage(topics.tx, t.model_dump_json().encode(), t.sender.encode()) for t in chunk]
            )
        if not any(unsealed.values()):
            break
        watch.arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.arrived.wait(), timeout=1.0)
        for sender, ids in unsealed.items():
            unsealed[sender] = {i for i in ids if i not in watch.seen}
    done = [watch.seen[t.tx_id] for t in txs if t.tx_id in watch.seen]
    end = max((at for at, _ in done), default=start)
    accepted = sum(1 for _, code in done if code == "OK")
    return (len(done) / (end - start) if end > start else 0.0), accepted


REBUILD_TIMEOUT_S = float(os.environ.get("TRACO_BENCH_REBUILD_TIMEOUT_S", "180"))
"""How long a rebuild may take before the benchmark reports how far it got."""


async def rebuild(bootstrap: str, data_dir: Path, service: str, height: int) -> tuple[float, float, int]:
    paths = DataDir(data_dir)
    genesis = load_genesis(paths.genesis)
    # the fetch wait of a node's own bus, as a node rebuilding an empty store has (a reader that
    # joins a bus's shared fetch waits for the fetch in flight first: decision 0006)
    node_wait = Settings.model_fields["kafka_fetch_wait_ms"].default
    bus = KafkaEventBus(bootstrap, client_id=f"rebuild-{service}", fetch_max_wait_ms=node_wait)
    await bus.start()
    # a replica of node n0's service, trusting n0's signed checkpoints for its upstreams (its
    # republished outputs are byte-identical to n0's, so readers drop them as duplicates)
    runtime = ServiceRuntime(
        registry.domain(service),
        genesis,
        SqliteStateStore(data_dir / "rebuilt" / service / "state.sqlite"),  # an empty store, as a node's
        bus,
        registry.upstream_domains(service),
        registry.genesis_events(genesis),
        node=NodeKey("n0", KeySigner(crypto.read_key_file(paths.validator_key(0)))),
        commanders=registry.commander_domains(service, registry.runnable(genesis)),
        order=registry.runnable(genesis),
        schedule=registry.schedule(genesis),
    )
    # The mesh may have stopped between storing a block and publishing it or its outputs (a
    # restart would republish them): rebuild up to what reached the topics, or the wait would
    # never end.
    published = await last_checkpoint(bus, node_topic(genesis.chain_id, "n0", f"events.{service}"))
    last_block = await last_message(bus, topic(genesis.chain_id, "blocks"))
    block_height = int(last_block.key) if last_block is not None and last_block.key and last_block.key.isdigit() else 0
    height = min(height, published, block_height)
    start = time.perf_counter()
    task = asyncio.create_task(runtime.run())
    try:
        if not await runtime.wait_for_height(height, REBUILD_TIMEOUT_S):
            followed = {u.topic: u.completed for u in (*runtime.upstream.values(), *runtime.commanders.values())}
            print(
                f"  warning: the {service} rebuild reached {runtime.height} of {height} in {REBUILD_TIMEOUT_S:.0f} s "
                f"(blocks held from {min(runtime.early, default=None)}, {len(runtime.early)} of them; "
                f"upstream checkpoints {followed})",
                file=sys.stderr,
            )
    finally:
        task.cancel()  # the runtime's loops first, so no reader sees the bus stop under it
        with contextlib.suppress(asyncio.CancelledError, BusError):
            await task
        await bus.stop()
    seconds = time.perf_counter() - start
    txs = sum(len(runtime.store.receipts(h)) for h in range(1, runtime.height + 1))
    return runtime.height / seconds, txs / seconds, runtime.height


async def main_async(args: argparse.Namespace) -> int:
    from traco.cli.up import Mesh

    with tempfile.TemporaryDirectory(prefix="traco-bench-registry-") as tmp:
        data_dir = Path(args.data_dir or tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        with TansuBroker(log_path=data_dir / "broker.log") as broker:
            genesis = init_chain(data_dir, "benchreg", 4)
            settings = Settings(data_dir=data_dir, kafka_bootstrap=broker.bootstrap, api_port=free_port_block(64))
            mesh = Mesh(settings)
            keys = {
                n: crypto.read_key_file(DataDir(data_dir).keys / f"{n}.key")
                for n in ("carrier", "exporter", "importer", "bank-a")
            }
            pub = {n: crypto.public_key(k).hex() for n, k in keys.items()}
            try:
                await asyncio.to_thread(mesh.start, 4)
                topics = wire.Topics(genesis.chain_id, "n0")
                bus = KafkaEventBus(broker.bootstrap, client_id="bench")
                await bus.start()
                watch = Receipts()
                watcher = asyncio.create_task(watch.run(bus, topics.receipts))
                await asyncio.sleep(2)
                delegate_until = int(time.time() * 1000) + 30 * 86_400_000
                delegations = [
                    sign_tx(
                        keys["importer"],
                        genesis.chain_id,
                        "party.delegate",
                        i + 1,
                        {"principal": f"client {i}", "kinds": ["doc.register"], "expires_at": delegate_until},
                    )
                    for i in range(args.delegations)
                ]
                print(f"recording {args.delegations} delegations…")
                party_rate, party_ok = await offer(bus, topics, watch, delegations)
                registrations = []
                for i in range(args.docs):
                    payload = {
                        "file_hash": hashlib.sha256(f"bench document {i} {time.time_ns()}".encode()).hexdigest(),
                        "type": "bill_of_lading",
                        "business_key": {"namespace": "MAEU", "reference": f"BENCH{i}X{time.time_ns()}"},
                        "holder": pub["exporter"],
                    }
                    registrations.append(sign_tx(keys["carrier"], genesis.chain_id, "doc.register", i + 1, payload))
                print(f"registering {args.docs} documents…")
                reg_rate, reg_ok = await offer(bus, topics, watch, registrations)
                expires = int(time.time() * 1000) + 86_400_000
                pledges = [
                    sign_tx(
                        keys["exporter"],
                        genesis.chain_id,
                        "doc.pledge",
                        i + 1,
                        {
                            "doc_id": tx.tx_id,
                            "financier": pub["bank-a"],
                            "amount": 100_000,
                            "currency": "USD",
                            "expires_at": expires,
                        },
                    )
                    for i, tx in enumerate(registrations)
                ]
                print(f"pledging {args.docs} documents…")
                pledge_rate, pledge_ok = await offer(bus, topics, watch, pledges)
                watcher.cancel()
                await bus.stop()
            finally:
                await asyncio.to_thread(mesh.stop)
            status_height = _chain_height(data_dir)
            print("rebuilding party and doc from the topics into empty stores…")
            party = await rebuild(broker.bootstrap, data_dir, "party", status_height)
            doc = await rebuild(broker.bootstrap, data_dir, "doc", status_height)
    cores = os.cpu_count() or 1
    rows = [
        (f"party.delegate end to end ({party_ok} accepted)", f"{party_rate:,.0f} tx/s"),
        (f"doc.register end to end ({reg_ok} accepted)", f"{reg_rate:,.0f} tx/s"),
        (f"doc.pledge end to end ({pledge_ok} accepted)", f"{pledge_rate:,.0f} tx/s"),
        (f"party rebuild ({party[2]} blocks)", f"{party[0]:,.0f} blocks/s, {party[1]:,.0f} tx/s"),
        (f"doc rebuild ({doc[2]} blocks)", f"{doc[0]:,.0f} blocks/s, {doc[1]:,.0f} tx/s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure (' + str(cores) + ' cores)'.ljust(width)}  value")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    return 0 if (reg_ok, pledge_ok, party_ok) == (args.docs, args.docs, args.delegations) else 1


def _chain_height(data_dir: Path) -> int:
    from traco.core.adapters.factory import StorageConfig, open_block_store

    store = open_block_store(StorageConfig(backend="sqlite", data_dir=data_dir), "n0-chain", readonly=True)
    try:
        return store.height()
    finally:
        store.close()


def main() -> int:
    # the rebuilds run in this process: with `traco serve`'s cycle-collector settings
    gc_policy.tune()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--delegations", type=int, default=1000, help="party.delegate transactions (party's load)")
    parser.add_argument("--data-dir", help="keep the run's data and logs here")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
