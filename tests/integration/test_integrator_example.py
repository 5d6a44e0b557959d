"""The integrators' example (examples/kafka_client.py) against a real mesh, as a bank runs it:
a separate process, given only what docs/integrators-guide.md says it needs (bootstrap, chain
id, node id, key file, the node's party API for the node key), with kafka-python and PyNaCl.

It must learn its nonce from the blocks, get its transaction sealed, print the very receipt the
node's own API holds, and check the node-signed checkpoint that covers it; a second run must
pick the next nonce by itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from tests.integration.mesh import MeshProcesses, running_nodes
from traco.core import crypto
from traco.services.consensus.genesis import DataDir, init_chain

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kafka_client.py"


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("integrator")
    genesis = init_chain(data_dir, f"ig{int(time.time() * 1000) % 10**8}", 4)
    with running_nodes(data_dir, tansu_broker, genesis) as processes:
        yield processes


def run_example(mesh: MeshProcesses, key: str, node: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    genesis = json.loads((mesh.data_dir / "genesis.json").read_text())
    index = int(node.removeprefix("n"))
    command = [
        sys.executable,
        str(EXAMPLE),
        "--bootstrap",
        mesh.bootstrap,
        "--chain",
        genesis["chain_id"],
        "--node",
        node,
        "--key",
        str(DataDir(mesh.data_dir).keys / f"{key}.key"),
        "--party-api",
        f"http://127.0.0.1:{mesh.api_port + 10 * index + 1}",
        *extra,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("receipt: ")]
    receipt = json.loads(lines[0].removeprefix("receipt: ")) if lines else None
    return result, receipt


def test_a_bank_signs_sends_and_reads_its_receipt_with_kafka_python(mesh: MeshProcesses) -> None:
    first, receipt = run_example(mesh, "exporter", "n1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert receipt is not None and receipt["status"] == "accepted" and receipt["code"] == "OK", first.stdout
    assert receipt["kind"] == "doc.register" and receipt["service"] == "doc" and receipt["height"] >= 1
    # the receipt it printed is the one the node holds (its own verified copy of the results)
    held = mesh.client().get_json(f"/tx/{receipt['tx_id']}")
    assert held == receipt
    assert "checkpoint verified: node n1, doc" in first.stdout
    exporter = crypto.public_key(crypto.read_key_file(DataDir(mesh.data_dir).keys / "exporter.key")).hex()
    assert f"sender {exporter}, next nonce 1 " in first.stdout

    second, again = run_example(mesh, "exporter", "n1", "--anchor")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "next nonce 2 " in second.stdout  # learnt from the block the first run sealed
    assert again is not None and again["status"] == "accepted" and again["kind"] == "chain.anchor"


def test_a_mistyped_node_id_is_named_and_creates_no_topic(mesh: MeshProcesses) -> None:
    result, receipt = run_example(mesh, "exporter", "n9")
    assert result.returncode != 0 and receipt is None
    assert "node.n9.receipts" in result.stderr + result.stdout
    client = KafkaConsumer(bootstrap_servers=mesh.bootstrap)
    try:
        assert not [t for t in client.topics() if ".node.n9." in t]
    finally:
        client.close()
