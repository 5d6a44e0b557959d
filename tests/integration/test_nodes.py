"""Nodes on the real broker (architecture: Nodes): results that every validator checked.

One node's doc replica computes something else (the fault injected in its rules, so its
events, receipts and digests all differ). Its validator prevotes nil on the next height, the
other three keep sealing, it reports the divergence (log and its own dead-letter topic) and
stops instead of forking, and the audit of its record names the height. Two honest nodes run
under different ``PYTHONHASHSEED`` values and agree on every digest and root.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.mesh import MeshProcesses, running_nodes
from tests.integration.test_registry import Cast, bill_of_lading
from traco.cli.client import Client
from traco.core.adapters.factory import StorageConfig, open_state_store
from traco.core.service_runtime import checkpoint_key
from traco.core.topics import topic
from traco.services.consensus.genesis import init_chain, load_genesis

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("nodes")
    chain_id = f"nd{int(time.time() * 1000) % 10**8}"
    genesis = init_chain(data_dir, chain_id, 4)
    with running_nodes(
        data_dir,
        tansu_broker,
        genesis,
        modules={"n3": "tests.integration.divergent_node"},
        node_env={"n1": {"PYTHONHASHSEED": "1"}, "n2": {"PYTHONHASHSEED": "2024"}},
    ) as processes:
        yield processes


async def read_topic(bootstrap: str, name: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(name, 0)]
        consumer.assign(tps)
        end = (await consumer.end_offsets(tps))[tps[0]]
        await consumer.seek_to_beginning(*tps)
        out: list[bytes] = []
        deadline = time.monotonic() + 20
        while await consumer.position(tps[0]) < end and time.monotonic() < deadline:
            batch = await consumer.getmany(*tps, timeout_ms=500)
            out += [r.value for records in batch.values() for r in records]
        return out
    finally:
        await consumer.stop()


def test_a_diverging_node_is_outvoted_reports_it_and_the_audit_names_the_height(mesh: MeshProcesses) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    genesis = load_genesis(mesh.data_dir / "genesis.json")
    assert bill_of_lading(cast, client, "diverging")[0]  # n3's replica marks this one
    for label in ("after-1", "after-2"):
        assert bill_of_lading(cast, client, label)[0]  # the other three keep sealing
    height = client.get_json("/status")["height"]

    # n3 reports the divergence in its own dead-letter topic (and log) and stopped
    deadline = time.monotonic() + 30
    letters: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        raw = asyncio.run(read_topic(mesh.bootstrap, topic(genesis.chain_id, "node.n3.dlq")))
        letters = [json.loads(r) for r in raw]
        if any("results diverge" in str(letter["error"]) for letter in letters):
            break
        time.sleep(0.5)
    assert any("results diverge" in str(letter["error"]) for letter in letters), letters
    assert "results diverge" in mesh.log("node-n3")
    assert mesh.alive("node-n3")  # stopped executing, not crashed
    with Client(f"http://127.0.0.1:{mesh.api_port + 30}") as n3:
        reported = n3.get_json("/status")["node"]
        metrics = n3.http.get("/metrics").text
    assert reported["id"] == "n3" and reported["executing"] is False and reported["diverged_at"] is not None
    assert "traco_results_diverged 1" in metrics and "traco_node_executing 0" in metrics
    with Client(mesh.url) as n0:
        assert "traco_results_diverged 0" in n0.http.get("/metrics").text

    # its validator prevoted nil on a proposal over the honest results
    n3_key = genesis.validators[3].public_key
    votes = [json.loads(v) for v in asyncio.run(read_topic(mesh.bootstrap, topic(genesis.chain_id, "consensus")))]
    nil_prevotes = [
        v for v in votes if v.get("type") == "vote" and v["validator"] == n3_key and v["kind"] == "prevote"
        and v["block_hash"] is None
    ]  # fmt: skip
    assert nil_prevotes, "n3 never prevoted nil"
    sealed_by = {
        s["validator"] for h in range(2, height + 1) for s in client.get_json(f"/blocks/{h}")["commit"]["signatures"]
    }
    assert sealed_by  # the chain sealed without needing n3

    # the audit of n3's own record names the height; n0's record audits clean
    def audit(node: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "traco.cli.main", "--node", node, "audit", "verify"]
        return subprocess.run(
            [*command, "--data-dir", str(mesh.data_dir)], capture_output=True, text=True, timeout=120, check=False
        )

    honest = audit("n0")
    assert honest.returncode == 0, honest.stdout + honest.stderr
    diverged = audit("n3")
    assert diverged.returncode == 1, diverged.stdout + diverged.stderr
    assert "DIVERGED" in diverged.stdout or "FAILED" in diverged.stdout, diverged.stdout
    assert "doc" in diverged.stdout


def test_nodes_under_different_hash_seeds_agree_on_every_digest_and_root(mesh: MeshProcesses) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    bill_of_lading(cast, client, "seeds")
    height = client.get_json("/status")["height"]
    config = StorageConfig(backend="sqlite", data_dir=mesh.data_dir)

    def checkpoints(node: str, service: str) -> list[bytes | None]:
        deadline = time.monotonic() + 30
        while True:
            store = open_state_store(config, f"{node}-{service}", readonly=True)
            try:
                if store.height() >= height or time.monotonic() > deadline:
                    return [store.get(checkpoint_key(h)) for h in range(1, height + 1)]
            finally:
                store.close()
            time.sleep(0.3)

    for service in ("party", "doc"):
        reference = checkpoints("n0", service)
        assert all(reference), f"n0 lacks {service} checkpoints"
        assert checkpoints("n1", service) == reference  # PYTHONHASHSEED=1
        assert checkpoints("n2", service) == reference  # PYTHONHASHSEED=2024
