"""Metrics, traces and probes of a running mesh on the real broker (operator's guide: Observability).

Four nodes, each one process as ``traco up`` starts them, every one exporting its spans over
OTLP/HTTP to a receiver inside the test. What an operator relies on is checked from outside,
as Prometheus, a trace backend and Kubernetes would see it:

- ``/metrics`` of every process moves: the height after a transaction, the dead-letter count
  after a hostile message written with a plain Kafka producer; every metric the Grafana
  dashboard queries exists in a real ``/metrics``;
- one transaction submitted with ``POST /tx`` gives ONE trace: spans of every node, each
  span's parent among the trace's spans, down to the receipts on every node's receipts topic;
- ``/livez`` and ``/readyz`` answer, and ``/readyz`` says 503 (with the reason) while a node
  that restarted behind the chain catches up, then 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.mesh import MeshProcesses, running_nodes
from tests.integration.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.integration.test_registry import Cast, bill_of_lading
from traco.cli.client import Client
from traco.core.topics import topic
from traco.services.consensus.genesis import init_chain

pytestmark = pytest.mark.integration

NODES = ("n0", "n1", "n2", "n3")
DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "traco-dashboard.json"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as found:
        yield found


@pytest.fixture(scope="module")
def mesh(
    tansu_broker: str, tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver
) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("observability")
    chain_id = f"ob{int(time.time() * 1000) % 10**8}"
    genesis = init_chain(data_dir, chain_id, 4)
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export finished spans within 0.2 s
        "TRACO_LOG_FORMAT": "json",
    }
    with running_nodes(data_dir, tansu_broker, genesis, node_env={n: otel for n in NODES}) as processes:
        yield processes


def url(mesh: MeshProcesses, node: str) -> str:
    return f"http://127.0.0.1:{mesh.api_port + 10 * NODES.index(node)}"


def scrape(mesh: MeshProcesses, node: str) -> Samples:
    text = httpx.get(f"{url(mesh, node)}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def eventually(check: Callable[[], bool], what: str, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


async def produce(bootstrap: str, name: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(name, value, key=b"hostile")
    finally:
        await producer.stop()


async def receipt_traceparents(bootstrap: str, name: str, tx_id: str) -> list[bytes]:
    """The ``traceparent`` of every receipt of ``tx_id`` on receipts topic ``name``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or {0}]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        found: list[bytes] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(*tps, timeout_ms=500)).values():
                found += [
                    value
                    for r in records
                    if r.key == tx_id.encode()
                    for key, value in r.headers
                    if key == "traceparent"
                ]
        return found
    finally:
        await consumer.stop()


def register(cast: Cast, client: Client, label: str) -> str:
    """Register a bill of lading (party and doc execute it); its transaction id."""
    payload = {
        "file_hash": hashlib.sha256(f"B/L {label} {time.time_ns()}".encode()).hexdigest(),
        "type": "bill_of_lading",
        "business_key": {"namespace": "MAEU", "reference": f"BL-{label}-{time.time_ns()}"},
        "holder": cast.pub("exporter"),
    }
    tx = client.send(cast.key("carrier"), "doc.register", payload)
    receipt = client.wait_receipt(tx.tx_id, 60)
    assert receipt is not None and receipt.accepted, receipt
    return tx.tx_id


def test_every_process_serves_metrics_that_move(mesh: MeshProcesses) -> None:
    chain_id = mesh.client().get_json("/status")["chain_id"]
    before = {node: scrape(mesh, node) for node in NODES}
    for node, samples in before.items():
        # what the old hand-written text exposed is still there, now as OpenTelemetry instruments
        for name in ("traco_block_height", "traco_results_diverged", "traco_node_executing", "traco_mempool_size"):
            assert any(n == name for n, _ in samples), f"{node} lacks {name}"
    heights = {node: value(before[node], "traco_block_height", node=node) for node in NODES}

    bill_of_lading(Cast(mesh.data_dir), mesh.client(), "metrics")

    def every_node_moved() -> bool:
        now = {node: scrape(mesh, node) for node in NODES}
        return all(
            value(now[n], "traco_block_height", chain=chain_id, node=n) > heights[n]
            and value(now[n], "traco_sealed_transactions_total", chain=chain_id)
            > value(before[n], "traco_sealed_transactions_total", chain=chain_id)
            and value(now[n], "traco_service_height", service="doc", node=n) > heights[n]
            # the CPU of doc's replica, and of the chain's own execution in the validator, apart
            and value(now[n], "traco_service_cpu_seconds_total", service="doc", node=n)
            > value(before[n], "traco_service_cpu_seconds_total", service="doc", node=n)
            and value(now[n], "traco_service_cpu_seconds_total", service="chain", node=n)
            > value(before[n], "traco_service_cpu_seconds_total", service="chain", node=n)
            for n in NODES
        )

    eventually(every_node_moved, "the height, sealed transactions, doc height and CPU of every node to move")
    after = scrape(mesh, "n0")
    assert value(after, "traco_commit_latency_seconds_count") >= 1
    assert value(after, "traco_rounds_per_height_count") >= 1
    assert value(after, "traco_consumer_lag_heights", service="doc", node="n0") == 0

    # a hostile message, written with a plain Kafka producer: every node dead-letters it
    tx_topic = topic(chain_id, "tx")
    dead = {n: value(scrape(mesh, n), "traco_dead_letters_total", topic=tx_topic) for n in NODES}
    asyncio.run(produce(mesh.bootstrap, tx_topic, b"not JSON at all"))

    def every_node_counted() -> bool:
        now = {n: scrape(mesh, n) for n in NODES}
        return all(
            value(now[n], "traco_dead_letters_total", topic=tx_topic, reason="malformed") >= dead[n] + 1 for n in NODES
        )

    eventually(every_node_counted, "every node to count the hostile message as a dead letter")


def test_every_metric_the_dashboard_queries_exists(mesh: MeshProcesses) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    queried = {name for expr in exprs for name in re.findall(r"\btraco_[a-z_]+", expr)}
    assert len(queried) >= 10, queried
    exposed = {name for name, _ in scrape(mesh, "n0")}
    # histograms are queried as _bucket, _sum and _count; all are samples of the family
    missing = sorted(queried - exposed)
    assert not missing, f"the dashboard queries metrics no process exposes: {missing}"


def test_one_trace_runs_from_post_tx_to_the_receipts_of_every_node(mesh: MeshProcesses, receiver: OtlpReceiver) -> None:
    chain_id = mesh.client().get_json("/status")["chain_id"]
    tx_id = register(Cast(mesh.data_dir), mesh.client(), "traced")
    submits: list[ReceivedSpan] = []

    def submitted() -> bool:
        submits[:] = [s for s in receiver.spans() if s.name == "tx.submit" and s.attributes["traco.tx_id"] == tx_id]
        return bool(submits)

    eventually(submitted, "the tx.submit span of the transaction")
    trace_id = submits[0].trace_id

    def complete() -> bool:
        spans = list(receiver.trace(trace_id))
        services = {s.service for s in spans}
        executed = {(s.service, s.name.split()[1]) for s in spans if s.name.startswith("execute ")}
        return services >= {f"traco-node-{n}" for n in NODES} and all(
            (f"traco-node-{n}", svc) in executed for n in NODES for svc in ("party", "doc")
        )

    eventually(complete, "spans of every node executing the transaction")
    time.sleep(1.0)  # the last batches of spans
    spans = list(receiver.trace(trace_id))
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_id]
    # the root is the server span of POST /tx (FastAPI's own); tx.submit descends from it
    assert [r.name for r in roots] == ["POST /tx"], roots
    by_id = {s.span_id: s for s in spans}
    ancestor = submits[0]
    while ancestor.parent_id:
        ancestor = by_id[ancestor.parent_id]
    assert ancestor == roots[0]
    orphans = [s for s in spans if s.parent_id and s.parent_id not in ids]
    assert not orphans, f"spans whose parent is not in the trace: {orphans}"
    for node in NODES:
        names = {s.name for s in spans if s.service == f"traco-node-{node}"}
        assert f"receive {topic(chain_id, 'tx')}" in names, (node, names)  # the tx reached its validator
        assert any(n.startswith("commit ") for n in names), (node, names)  # it sealed it
    # the receipts every node published carry the transaction's trace
    for node in NODES:
        parents = asyncio.run(receipt_traceparents(mesh.bootstrap, topic(chain_id, f"node.{node}.receipts"), tx_id))
        assert parents, f"no traced receipt of {tx_id} on node {node}'s receipts"
        for traceparent in parents:
            _, trace, span, _ = traceparent.decode().split("-")
            assert trace == trace_id and span in ids, (node, traceparent)


def test_probes_answer_and_readiness_reports_a_node_that_lags(mesh: MeshProcesses) -> None:
    for node in NODES:
        live = httpx.get(f"{url(mesh, node)}/livez", timeout=5)
        assert live.status_code == 200 and live.json() == {"live": True}
    eventually(
        lambda: all(httpx.get(f"{url(mesh, n)}/readyz", timeout=5).status_code == 200 for n in NODES),
        "every node ready",
    )
    cast, client = Cast(mesh.data_dir), mesh.client()
    mesh.stop("node-n3")
    for label in ("lag-1", "lag-2", "lag-3", "lag-4"):  # three of four validators keep sealing
        bill_of_lading(cast, client, label)
    tip = client.get_json("/status")["height"]
    # n3 comes back behind, executing each block slowly: not ready until it has caught up
    mesh.start_node("n3", "tests.integration.lagging_node", TRACO_TEST_EXECUTE_DELAY_S="1.5")
    seen: list[dict[str, object]] = []

    def lagging() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"{url(mesh, 'n3')}/readyz", timeout=5)
            if answer.status_code == 503:
                seen.append(answer.json())
                return True
        return False

    eventually(lagging, "n3 to say it is not ready while it lags", timeout=60)
    body = seen[-1]
    assert body["ready"] is False and int(str(body["highest_seen"])) >= tip - 1, body
    assert any("behind the highest sealed height seen" in str(r) for r in body["reasons"]), body  # type: ignore[attr-defined]
    eventually(
        lambda: httpx.get(f"{url(mesh, 'n3')}/readyz", timeout=5).status_code == 200, "n3 ready again", timeout=90
    )
    assert httpx.get(f"{url(mesh, 'n3')}/livez", timeout=5).status_code == 200
    # the stopped validator's missing precommits were counted by the others
    missed = scrape(mesh, "n0")
    assert sum(v for (n, _), v in missed.items() if n == "traco_missed_votes_total") >= 1
