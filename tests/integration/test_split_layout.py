"""The split layout (architecture: Nodes): a node's validator, its party and doc replicas and its API
as separate processes (``traco serve validator|party|doc|consensus``), as an operator may run
them as pods of their own. The validator and the API take the services' results only from
checkpoints signed by their node key: a forged checkpoint or receipt on the node's topics,
written first with a plain producer, changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.mesh import MeshProcesses, running_mesh
from tests.integration.test_registry import Cast, bill_of_lading
from traco.core import crypto
from traco.core.topics import topic
from traco.schemas.events import BlockProcessed, checkpoint_sign_bytes
from traco.services.consensus.genesis import init_chain, load_genesis

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("split")
    genesis = init_chain(data_dir, f"sp{int(time.time() * 1000) % 10**8}", 1)
    with running_mesh(data_dir, tansu_broker, genesis, validators=1) as processes:
        yield processes


async def produce(bootstrap: str, messages: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for name, value in messages:
            await producer.send_and_wait(name, value, key=b"forged")
    finally:
        await producer.stop()


def test_results_come_only_from_the_nodes_signed_checkpoints(mesh: MeshProcesses) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    genesis = load_genesis(mesh.data_dir / "genesis.json")
    assert bill_of_lading(cast, client, "split")[0]
    height = client.get_json("/status")["height"]

    # forgeries for the next heights, ahead of the real ones: a checkpoint signed by another
    # key, one that claims to be n0's with a bad signature, and sealed-looking receipts
    stranger = crypto.generate_private_key()
    forged: list[tuple[str, bytes]] = []
    for h in range(height + 1, height + 6):
        for service in ("party", "doc"):
            checkpoint = BlockProcessed(service=service, height=h, state_digest="00" * 32)
            signature = crypto.sign(stranger, checkpoint_sign_bytes(genesis.chain_id, "n0", checkpoint, ()))
            message = {"type": "SignedCheckpoint", "node": "n0", "checkpoint": checkpoint.json_value()}
            message["signature"] = signature.hex()
            forged.append((topic(genesis.chain_id, f"node.n0.events.{service}"), json.dumps(message).encode()))
    asyncio.run(produce(mesh.bootstrap, forged))

    for label in ("after-1", "after-2"):
        assert bill_of_lading(cast, client, label)[0]  # sealed and executed: the forgeries were ignored
    later = client.get_json("/status")["height"]
    block = client.get_json(f"/blocks/{later}")
    assert block["header"]["last_results_root"] != "00" * 32
    assert all(mesh.alive(name) for name in mesh.procs), {n: mesh.log(n)[-1500:] for n in mesh.procs}
    # every header commits to what an auditor's replay of the services computes: no forged
    # checkpoint made it into a results root
    command = [sys.executable, "-m", "traco.cli.main", "audit", "verify", "--component", "validator-0"]
    done = subprocess.run([*command, "--data-dir", str(mesh.data_dir)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
