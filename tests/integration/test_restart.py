"""Nothing sealed is lost when the broker is new; the audit finds any tampered block."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.mesh import MeshProcesses
from tests.integration.test_chain import anchor, wait_all
from traco.cli.up import create_topics
from traco.core import crypto
from traco.core.adapters.kafka import KafkaEventBus
from traco.core.broker import TansuBroker
from traco.schemas.tx import sign_tx
from traco.services.consensus import wire
from traco.services.consensus.genesis import DataDir, init_chain

pytestmark = pytest.mark.integration


async def heights_on_topic(bootstrap: str, chain_id: str, expect: int, timeout: float = 30) -> set[int]:
    bus = KafkaEventBus(bootstrap, client_id="test-reader")
    await bus.start()
    seen: set[int] = set()
    try:

        async def read() -> None:
            async with contextlib.aclosing(bus.consume(wire.Topics(chain_id).blocks, start="earliest")) as stream:
                async for batch in stream:
                    for message in batch:
                        seen.add(int((message.key or b"0").decode()))
                    if len(seen) >= expect:
                        return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(read(), timeout)
        return seen
    finally:
        await bus.stop()


async def produce_raw(bootstrap: str, topic: str, value: bytes) -> None:
    from traco.core.ports import OutgoingMessage

    bus = KafkaEventBus(bootstrap, client_id="test-writer")
    await bus.start()
    try:
        await bus.publish(OutgoingMessage(topic, value, b"junk"))
    finally:
        await bus.stop()


def start_mesh(data_dir: Path, bootstrap: str, chain_id: str) -> MeshProcesses:
    asyncio.run(create_topics(bootstrap, chain_id, 4))
    mesh = MeshProcesses(data_dir, bootstrap)
    for i in range(4):
        mesh.start_validator(i)
    mesh.start_api()
    return mesh


def test_new_broker_gets_the_sealed_chain_back_and_the_chain_continues(tmp_path: Path) -> None:
    chain_id = "restart"
    init_chain(tmp_path, chain_id, 4, services=())
    key = crypto.read_key_file(DataDir(tmp_path).member_key)

    with TansuBroker(log_path=tmp_path / "broker-1.log") as broker:
        mesh = start_mesh(tmp_path, broker.bootstrap, chain_id)
        try:
            client = mesh.client()
            first = [anchor(client, key, f"before-{i}") for i in range(3)]
            receipts = wait_all(client, first)
            assert all(r.accepted for r in receipts)
            height_before = client.get_json("/status")["height"]
        finally:
            mesh.stop_all()

    # The API's own copy is deleted too: it must rebuild from what validators republish.
    shutil.rmtree(tmp_path / "consensus")
    with TansuBroker(log_path=tmp_path / "broker-2.log") as broker:
        mesh = start_mesh(tmp_path, broker.bootstrap, chain_id)
        try:
            client = mesh.client()
            heights = asyncio.run(heights_on_topic(broker.bootstrap, chain_id, height_before))
            assert set(range(1, height_before + 1)) <= heights
            old = client.wait_receipt(first[0].tx_id, 30)
            assert old is not None and old.accepted
            later = anchor(client, key, "after the new broker")
            (receipt,) = wait_all(client, [later])
            assert receipt.accepted and (receipt.height or 0) > height_before

            # A message nobody can decode goes to the dead-letter topic, and the chain goes on.
            asyncio.run(produce_raw(broker.bootstrap, wire.Topics(chain_id).tx, b"\x00not json"))
            status = client.get_json("/status")
            nonce = client.next_nonce(crypto.public_key(key).hex())
            # Submitted straight to Kafka, a forged envelope gets a rejection receipt.
            forged = sign_tx(key, chain_id, "chain.anchor", nonce, {"digest": "ab" * 32, "label": "f"})
            forged = forged.model_copy(update={"signature": "00" * 64})
            asyncio.run(produce_raw(broker.bootstrap, wire.Topics(chain_id).tx, forged.model_dump_json().encode()))
            refusal = client.wait_receipt(forged.tx_id, 30)
            assert refusal is not None and refusal.code == "INVALID_SIGNATURE" and refusal.height is None
            dlq = asyncio.run(read_dlq(broker.bootstrap, chain_id))
            assert any(b"not json" in d or "AG5vdCBqc29u" in d.decode() for d in dlq)
            assert client.get_json("/status")["height"] >= status["height"]
        finally:
            mesh.stop_all()

    # The audit passes on the real chain and names the height of a tampered block.
    audit = [
        sys.executable,
        "-m",
        "traco.cli.main",
        "audit",
        "verify",
        "--data-dir",
        str(tmp_path),
        "--component",
        "validator-0",
    ]
    ok = subprocess.run(audit, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout

    tampered = tmp_path / "tampered"
    shutil.copytree(tmp_path / "validator-0", tampered / "validator-0")
    shutil.copy(tmp_path / "genesis.json", tampered / "genesis.json")
    db = sqlite3.connect(tampered / "validator-0" / "blocks.sqlite")
    height = receipts[1].height
    (block,) = db.execute("SELECT block FROM blocks WHERE height = ?", (height,)).fetchone()
    db.execute(
        "UPDATE blocks SET block = ? WHERE height = ?",
        (block.replace("before-1", "before-X"), height),
    )
    db.commit()
    db.close()
    bad = subprocess.run(
        [*audit[:-4], "--data-dir", str(tampered), "--component", "validator-0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0
    assert f"FAILED at height {height}" in bad.stdout


async def read_dlq(bootstrap: str, chain_id: str, timeout: float = 20) -> list[bytes]:
    bus = KafkaEventBus(bootstrap, client_id="test-dlq")
    await bus.start()
    found: list[bytes] = []
    try:
        deadline = time.monotonic() + timeout

        async def read() -> None:
            async with contextlib.aclosing(bus.consume(wire.Topics(chain_id, "n0").dlq, start="earliest")) as stream:
                async for batch in stream:
                    found.extend(m.value for m in batch)
                    if found:
                        return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(read(), max(0.1, deadline - time.monotonic()))
        return found
    finally:
        await bus.stop()
