"""Trade-flow benchmark (``make bench``): matched orders and pledge-backed loans end to end with
four nodes, and the exposure query over 10,000 loans, beside the same run's Ed25519 figure.

On the real Tansu broker, four nodes as ``traco up`` runs them (party, doc and trade on every
node): custodians mint TRC; then

- **orders**: bank-b places N resting sell orders of one Coco lot on COCO/TRC; then the importer
  and bank-a (``--buyers 2``, the default; ``--buyers 1``: the importer alone) place N buy
  orders in turn, each matching one of them at once. The rate is matched orders per second: N
  over the time from the first buy produced to its last receipt (every match is settled inside
  its block, so the receipt is the settlement). Why two buyers: ``registry.offer`` keeps at
  most 900 of a sender's transactions in flight (the chain's nonce gap is 1,000), and the
  heights in the pipeline share them, so one buyer's orders went in as blocks of 200 to 700,
  each dearer per order than a bigger one (decision 0008, eleventh round). A market has many
  traders; two are enough to keep the mempool ahead of the blocks.
- **loans**: the carrier registers N bills of lading held by the exporter, the exporter asks
  for financing on each, bank-a offers on each; then the exporter accepts all N. The rate is
  loans per second from the first accept produced until the last loan is disbursed (active) on
  node n0 — each loan is three heights: the accept, doc's pledge, trade's payment.

Beside each rate, each part of a node (its validator with the Kafka client, each service
replica; ``costs.py``) is shown in CPU µs per matched order and per loan, the mean of the four
nodes, as a multiple of one Ed25519 verification: a per-part figure varies far less from run
to run than a rate on two shared cores does.

Then, in process, 10,000 loans are made by the real rules (register, request, offer, accept,
the three heights; some repaid, some defaulted) on the whole dev chain (``tests/trade/story.py``),
the trade state is written to a SQLite state store, and ``GET /risk/{member}``'s view is timed
400 times per member (p50, p99). Not a test: it measures and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain import ed25519_rate, percentile
from costs import NodeCosts, Sample, mean_rows
from registry import Receipts, offer

from traco.cli.client import Client
from traco.core import crypto, gc_policy
from traco.core.adapters.kafka import KafkaEventBus
from traco.core.adapters.sqlite import SqliteStateStore
from traco.core.broker import TansuBroker, free_port_block
from traco.core.ports import StateBatch
from traco.core.settings import Settings
from traco.schemas.tx import TxEnvelope, sign_tx
from traco.services.consensus import wire
from traco.services.consensus.genesis import DataDir, init_chain
from traco.services.trade import risk

BUYERS = ("importer", "bank-a")
"""Who buys, in turn: the two members the bench mints TRC to."""

NAMES = ("custodian", "custodian-2", "importer", "exporter", "bank-a", "bank-b", "carrier")


class Signer:
    def __init__(self, keys: dict[str, bytes], chain_id: str) -> None:
        self.keys, self.chain_id, self.nonces = keys, chain_id, dict.fromkeys(keys, 0)

    def __call__(self, who: str, kind: str, payload: dict[str, object]) -> TxEnvelope:
        self.nonces[who] += 1
        return sign_tx(self.keys[who], self.chain_id, kind, self.nonces[who], payload)


def bill_payload(reference: str, holder_key: str) -> dict[str, object]:
    """A bill of lading held by ``holder_key``, registered by the carrier."""
    return {
        "file_hash": hashlib.sha256(reference.encode()).hexdigest(),
        "type": "bill_of_lading",
        "business_key": {"namespace": "MAEU", "reference": reference},
        "holder": holder_key,
    }


def bill(sign: Signer, n: int, tag: str) -> TxEnvelope:
    return sign(
        "carrier", "doc.register", bill_payload(f"BENCH-{tag}-{n}", crypto.public_key(sign.keys["exporter"]).hex())
    )


Costs = dict[str, dict[str, float]]
"""``{node: {part: µs per transaction}}`` (``NodeCosts.per_part``)."""


async def mesh_rates(args: argparse.Namespace) -> tuple[float, int, float, int, Costs, Costs]:
    from traco.cli.up import Mesh

    with tempfile.TemporaryDirectory(prefix="traco-bench-flows-") as tmp:
        data_dir = Path(args.data_dir or tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        with TansuBroker(log_path=data_dir / "broker.log") as broker:
            genesis = init_chain(data_dir, "benchflows", 4)
            port = free_port_block(64)
            mesh = Mesh(Settings(data_dir=data_dir, kafka_bootstrap=broker.bootstrap, api_port=port))
            keys = {n: crypto.read_key_file(DataDir(data_dir).keys / f"{n}.key") for n in NAMES}
            sign = Signer(keys, genesis.chain_id)
            try:
                await asyncio.to_thread(mesh.start, 4)
                topics = wire.Topics(genesis.chain_id, "n0")
                bus = KafkaEventBus(broker.bootstrap, client_id="bench-flows")
                await bus.start()
                watch = Receipts()
                watcher = asyncio.create_task(watch.run(bus, topics.receipts))
                await asyncio.sleep(2)
                attest: dict[str, object] = {"reserve": 10**15, "as_of": int(time.time() * 1000) - 5_000, "seq": 1}
                await offer(bus, topics, watch, [sign(c, "trade.trc.attest", attest) for c in NAMES[:2]])
                mints = [
                    sign("custodian", "trade.trc.mint", {"to": w, "amount": 10**12}) for w in ("importer", "bank-a")
                ]
                await offer(bus, topics, watch, mints)

                n = args.orders
                sells = [
                    sign(
                        "bank-b",
                        "trade.order.place",
                        {"order_id": f"s{i}", "pair": "COCO/TRC", "side": "sell", "price": 25, "qty": 10_000},
                    )
                    for i in range(n)
                ]
                buys = [
                    sign(
                        BUYERS[i % args.buyers],
                        "trade.order.place",
                        {"order_id": f"b{i}", "pair": "COCO/TRC", "side": "buy", "price": 25, "qty": 10_000},
                    )
                    for i in range(n)
                ]
                print(f"{n} resting sells…")
                await offer(bus, topics, watch, sells)
                print(f"{n} matching buys…")
                costs = NodeCosts({name: proc.pid for name, proc in mesh.children.items()}, port)
                before = costs.sample()
                order_rate, matched = await offer(bus, topics, watch, buys)
                order_costs = NodeCosts.per_part(before, await settled(costs), matched)

                m = args.loans
                print(f"{m} bills, requests and offers…")
                regs = [bill(sign, i, "M") for i in range(m)]
                await offer(bus, topics, watch, regs)
                until = int(time.time() * 1000) + 3_600_000
                requests = [
                    sign(
                        "exporter",
                        "trade.finance.request",
                        {
                            "request_id": f"r{i}",
                            "doc_id": t.tx_id,
                            "token": "TRC",
                            "amount": 1_000_000,
                            "tenor_ms": 86_400_000,
                            "offers_until": until,
                        },
                    )
                    for i, t in enumerate(regs)
                ]
                await offer(bus, topics, watch, requests)
                offers = [
                    sign(
                        "bank-a",
                        "trade.finance.offer",
                        {"offer_id": f"o{i}", "request_id": f"r{i}", "rate_bp": 650, "valid_until": until},
                    )
                    for i in range(m)
                ]
                await offer(bus, topics, watch, offers)
                accepts = [sign("exporter", "trade.finance.accept", {"request_id": f"r{i}"}) for i in range(m)]
                print(f"{m} acceptances…")
                trade = Client(f"http://127.0.0.1:{port + 3}")
                before = costs.sample()
                start = time.perf_counter()
                await offer(bus, topics, watch, accepts)
                disbursed = 0
                while time.perf_counter() - start < 300:
                    last = trade.get_json(f"/loans/r{m - 1}")
                    if last["status"] in ("active", "refused"):
                        break
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - start
                loan_costs = NodeCosts.per_part(before, await settled(costs), m)
                disbursed = sum(
                    1 for i in range(0, m, max(1, m // 50)) if trade.get_json(f"/loans/r{i}")["status"] == "active"
                )
                loans_rate = m / elapsed
                trade.close()
                watcher.cancel()
                await bus.stop()
                return order_rate, matched, loans_rate, disbursed * max(1, m // 50), order_costs, loan_costs
            finally:
                await asyncio.to_thread(mesh.stop)


async def settled(costs: NodeCosts) -> dict[str, Sample]:
    """A sample once the nodes have finished what the load left them (the empty blocks after it
    cost a few ms each; the last heights' execution must be counted)."""
    await asyncio.sleep(1.0)
    return costs.sample()


def exposure_query(loans: int) -> tuple[float, float, int]:
    """10,000 loans by the real rules on the whole dev chain, the state in SQLite, the risk view timed."""
    from tests.trade.story import Story

    with tempfile.TemporaryDirectory(prefix="traco-bench-risk-") as tmp:
        story = Story(Path(tmp) / "chain")
        story.fund_trc(**{"bank-a": 10**13, "bank-b": 10**13})
        story.set_flows(loan_grace_ms=1_000)
        batch = 500
        for start in range(0, loans, batch):
            span = range(start, min(loans, start + batch))
            regs = [bill_story(story, i) for i in span]
            story.block(*regs)
            until = story.tip.time + 3_600_000
            story.block(
                *(
                    story.tx(
                        "exporter",
                        "trade.finance.request",
                        {
                            "request_id": f"r{i}",
                            "doc_id": t.tx_id,
                            "token": "TRC",
                            "amount": 1_000 + i,
                            "tenor_ms": 3_600_000 if i % 5 else 500,
                            "offers_until": until,
                        },
                    )
                    for i, t in zip(span, regs, strict=True)
                )
            )
            story.block(
                *(
                    story.tx(
                        "bank-a" if i % 3 else "bank-b",
                        "trade.finance.offer",
                        {"offer_id": f"o{i}", "request_id": f"r{i}", "rate_bp": 500 + i % 300, "valid_until": until},
                    )
                    for i in span
                )
            )
            story.block(*(story.tx("exporter", "trade.finance.accept", {"request_id": f"r{i}"}) for i in span))
            story.idle(2)
        story.idle(2, dt=2_000)  # the short loans default
        path = Path(tmp) / "risk.sqlite"
        store = SqliteStateStore(path)
        store.commit(
            StateBatch(height=1, writes=dict(story.trade.scan("")), receipts=(), events=(), state_digest="00" * 32)
        )
        timings: list[float] = []
        for _ in range(400):
            for member in ("bank-a", "bank-b", "exporter"):
                t0 = time.perf_counter()
                risk.risk_view(store, member)
                timings.append(time.perf_counter() - t0)
        active = risk.risk_view(store, "exporter")["loans"]["count_borrowed"]
        store.close()
        timings.sort()
        return statistics.median(timings) * 1e3, percentile(timings, 0.99) * 1e3, active


def bill_story(story: object, n: int) -> TxEnvelope:
    payload = bill_payload(f"RISK-{n}", story.pub("exporter"))  # type: ignore[attr-defined]
    return story.tx("carrier", "doc.register", payload)  # type: ignore[attr-defined,no-any-return]


def main() -> int:
    # the exposure query runs in this process: with `traco serve`'s cycle-collector settings
    gc_policy.tune()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1500)
    parser.add_argument("--buyers", type=int, choices=(1, 2), default=2, help="members placing the buy orders")
    parser.add_argument("--loans", type=int, default=600)
    parser.add_argument("--risk-loans", type=int, default=10_000)
    parser.add_argument("--data-dir", help="keep the run's data and logs here")
    args = parser.parse_args()
    order_rate, matched, loans_rate, disbursed, order_costs, loan_costs = asyncio.run(mesh_rates(args))
    print(f"exposure: {args.risk_loans} loans by the rules…")
    p50, p99, active = exposure_query(args.risk_loans)
    ed = ed25519_rate()
    cores = os.cpu_count() or 1
    rows = [
        ("Ed25519 verify, one core (same run)", f"{ed:,.0f}/s"),
        (
            f"matched orders end to end, 4 nodes, {args.buyers} buyer(s) ({matched} of {args.orders} accepted)",
            f"{order_rate:,.0f}/s (target 1,000)",
        ),
        (
            f"loans end to end, 4 nodes (accept to disbursed; ~{disbursed} of {args.loans} active)",
            f"{loans_rate:,.0f}/s (target 300)",
        ),
        *mean_rows(order_costs, ed, "matched order"),
        *mean_rows(loan_costs, ed, "loan"),
        (
            f"exposure query, SQLite, {args.risk_loans} loans ({active} borrowed live)",
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (target p99 < 50)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure (' + str(cores) + ' cores)'.ljust(width)}  value")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
