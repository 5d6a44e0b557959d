"""Metrics, probes and one trace in the split layout (``traco serve validator|party|doc|consensus``),
where every hop between the validator, the services and the API is a Kafka message.

Every process serves ``/livez``, ``/readyz`` and ``/metrics`` (the validator on its own port,
``api_port + 9`` for node 0), its metrics move after a transaction, and the transaction's spans
— exported by all four processes to an in-test OTLP receiver — form one trace from ``POST /tx``
to the doc service's receipt on the node's receipts topic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.mesh import MeshProcesses, running_mesh
from tests.integration.otlp_receiver import OtlpReceiver
from tests.integration.test_observability import eventually, receipt_traceparents, register, value
from tests.integration.test_registry import Cast
from traco.core.topics import topic
from traco.services.consensus.genesis import init_chain

pytestmark = pytest.mark.integration

PROCESSES = {"consensus-api": 0, "party-n0": 1, "doc-n0": 2, "validator-0": 9}  # port offsets
SERVICE_NAMES = {"traco-consensus-api", "traco-party-n0", "traco-doc-n0", "traco-validator-0"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as found:
        yield found


@pytest.fixture(scope="module")
def split(
    tansu_broker: str, tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver
) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("observability-split")
    genesis = init_chain(data_dir, f"os{int(time.time() * 1000) % 10**8}", 1)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    with running_mesh(data_dir, tansu_broker, genesis, validators=1, env=env) as processes:
        yield processes


def port_url(mesh: MeshProcesses, process: str) -> str:
    return f"http://127.0.0.1:{mesh.api_port + PROCESSES[process]}"


def samples(mesh: MeshProcesses, process: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{port_url(mesh, process)}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def answers(mesh: MeshProcesses, process: str, path: str) -> int:
    try:
        return httpx.get(f"{port_url(mesh, process)}{path}", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_every_split_process_serves_probes_and_metrics_that_move(split: MeshProcesses) -> None:
    for process in PROCESSES:
        eventually(lambda p=process: answers(split, p, "/livez") == 200, f"{process} live")  # type: ignore[misc]
        eventually(lambda p=process: answers(split, p, "/readyz") == 200, f"{process} ready")  # type: ignore[misc]
    chain_id = split.client().get_json("/status")["chain_id"]
    before = {p: samples(split, p) for p in PROCESSES}
    register(Cast(split.data_dir), split.client(), "split-metrics")

    def moved() -> bool:
        now = {p: samples(split, p) for p in PROCESSES}
        return (
            value(now["validator-0"], "traco_block_height", chain=chain_id, node="n0")
            > value(before["validator-0"], "traco_block_height", chain=chain_id, node="n0")
            and value(now["consensus-api"], "traco_block_height", chain=chain_id, node="n0")
            > value(before["consensus-api"], "traco_block_height", chain=chain_id, node="n0")
            and all(
                value(now[f"{s}-n0"], "traco_service_height", service=s, node="n0")
                > value(before[f"{s}-n0"], "traco_service_height", service=s, node="n0")
                for s in ("party", "doc")
            )
            and value(now["validator-0"], "traco_sealed_transactions_total", chain=chain_id) >= 1
        )

    eventually(moved, "the heights of the validator, the API and both services to move")


def test_one_trace_across_the_split_processes(split: MeshProcesses, receiver: OtlpReceiver) -> None:
    chain_id = split.client().get_json("/status")["chain_id"]
    tx_id = register(Cast(split.data_dir), split.client(), "split-traced")
    trace_ids: list[str] = []

    def submitted() -> bool:
        trace_ids[:] = [s.trace_id for s in receiver.spans() if s.attributes.get("traco.tx_id") == tx_id]
        return bool(trace_ids)

    eventually(submitted, "the tx.submit span")
    trace_id = trace_ids[0]

    def complete() -> bool:
        spans = list(receiver.trace(trace_id))
        return {s.service for s in spans} >= SERVICE_NAMES and any(s.name.startswith("execute doc") for s in spans)

    eventually(complete, "spans of the API, the validator and both services")
    time.sleep(1.0)
    spans = list(receiver.trace(trace_id))
    ids = {s.span_id for s in spans}
    assert [s.name for s in spans if not s.parent_id] == ["POST /tx"]
    orphans = [s for s in spans if s.parent_id and s.parent_id not in ids]
    assert not orphans, orphans
    names = {(s.service, s.name.split(" ")[0]) for s in spans}
    for expected in [
        ("traco-validator-0", "commit"),
        ("traco-party-n0", "execute"),
        ("traco-doc-n0", "execute"),
        ("traco-doc-n0", "receive"),
    ]:
        assert expected in names, (expected, sorted(names))
    parents = asyncio.run(receipt_traceparents(split.bootstrap, topic(chain_id, "node.n0.receipts"), tx_id))
    assert parents, "no traced receipt"
    assert all(p.decode().split("-")[1] == trace_id and p.decode().split("-")[2] in ids for p in parents), parents
