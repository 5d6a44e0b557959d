"""The chain end to end: four validator processes and the API on the real Tansu broker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.mesh import MeshProcesses, running_mesh
from traco.cli.client import Client
from traco.core import crypto
from traco.core.adapters.factory import StorageConfig, open_block_store
from traco.core.adapters.kafka import KafkaEventBus
from traco.core.lightclient import verify_tx_proof
from traco.core.ports import OutgoingMessage
from traco.schemas.proof import TxProof
from traco.schemas.receipt import Receipt
from traco.schemas.tx import TxEnvelope, sign_tx
from traco.services.consensus import wire
from traco.services.consensus.genesis import DataDir, init_chain, load_genesis

pytestmark = pytest.mark.integration


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def anchor(client: Client, key: bytes, label: str) -> TxEnvelope:
    return client.send(key, "chain.anchor", {"digest": digest(label), "label": label})


def wait_all(client: Client, txs: list[TxEnvelope], timeout: float = 60) -> list[Receipt]:
    receipts = []
    for tx in txs:
        receipt = client.wait_receipt(tx.tx_id, timeout)
        assert receipt is not None, f"no receipt for {tx.tx_id}"
        receipts.append(receipt)
    return receipts


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("chain")
    chain_id = f"it{int(time.time() * 1000) % 10**8}"
    genesis = init_chain(data_dir, chain_id, 4, services=())
    with running_mesh(data_dir, tansu_broker, genesis, validators=4) as processes:
        yield processes


@pytest.fixture(scope="module")
def member_key(mesh: MeshProcesses) -> bytes:
    return crypto.read_key_file(DataDir(mesh.data_dir).member_key)


def test_anchors_are_sealed_with_receipts_and_proofs(mesh: MeshProcesses, member_key: bytes, tmp_path: Path) -> None:
    client = mesh.client()
    txs = [anchor(client, member_key, f"batch-{i}") for i in range(5)]
    receipts = wait_all(client, txs)
    assert all(r.accepted and r.code == "OK" and r.height is not None for r in receipts)

    block = client.get_json(f"/blocks/{receipts[0].height}")
    assert txs[0].tx_id in [t["tx_id"] for t in block["txs"]]
    assert len(block["commit"]["signatures"]) >= 3  # > 2/3 of four validators

    # Light-client check from the genesis alone; the results proof arrives one block later.
    deadline = time.monotonic() + 30
    while True:
        proof = TxProof.model_validate(client.get_json(f"/proofs/{txs[0].tx_id}"))
        if proof.result is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    genesis = load_genesis(DataDir(mesh.data_dir).genesis)
    assert verify_tx_proof(proof, genesis.validators, genesis.chain_id) is None
    assert proof.result is not None and proof.result.receipt.code == "OK"

    forged = proof.model_copy(update={"index": (proof.index + 1) % max(2, proof.header.tx_count)})
    if proof.header.tx_count > 1:
        assert verify_tx_proof(forged, genesis.validators, genesis.chain_id) is not None
    stripped = proof.model_copy(
        update={"commit": proof.commit.model_copy(update={"signatures": proof.commit.signatures[:2]})}
    )
    assert "2/3" in (verify_tx_proof(stripped, genesis.validators, genesis.chain_id) or "")


def test_the_same_anchor_twice_is_rejected(mesh: MeshProcesses, member_key: bytes) -> None:
    client = mesh.client()
    first = anchor(client, member_key, "once only")
    second = anchor(client, member_key, "once only")
    r1, r2 = wait_all(client, [first, second])
    assert r1.accepted
    assert not r2.accepted and r2.code == "DUPLICATE_ANCHOR"
    assert r2.height is not None  # a rejected transaction stays in the block


def test_api_refuses_bad_input_with_clear_errors(mesh: MeshProcesses, member_key: bytes) -> None:
    client = mesh.client()
    status = client.get_json("/status")

    def post(body: bytes) -> httpx.Response:
        return httpx.post(f"{mesh.url}/tx", content=body, timeout=10)

    r = post(b"{not json")
    assert r.status_code == 422 and r.json()["detail"]["code"] == "MALFORMED"

    r = post(json.dumps({"kind": "chain.anchor"}).encode())
    assert r.status_code == 422 and r.json()["detail"]["code"] == "MALFORMED"

    r = post(b"x" * (65 * 1024 + 10))
    assert r.status_code == 413 and r.json()["detail"]["code"] == "TOO_LARGE"

    sender = crypto.public_key(member_key).hex()
    nonce = client.next_nonce(sender)
    unknown = sign_tx(member_key, status["chain_id"], "chain.teleport", nonce, {})
    r = post(unknown.model_dump_json().encode())
    assert r.status_code == 400 and r.json()["detail"]["code"] == "UNKNOWN_KIND"

    good = sign_tx(
        member_key,
        status["chain_id"],
        "chain.anchor",
        nonce,
        {"digest": digest("sig"), "label": "sig"},
    )
    bad_sig = good.model_copy(update={"signature": ("00" if good.signature[:2] != "00" else "11") + good.signature[2:]})
    r = post(bad_sig.model_dump_json().encode())
    assert r.status_code == 401 and r.json()["detail"]["code"] == "INVALID_SIGNATURE"

    stranger = crypto.generate_private_key()
    r = post(
        sign_tx(stranger, status["chain_id"], "chain.anchor", 1, {"digest": digest("x"), "label": "x"})
        .model_dump_json()
        .encode()
    )
    assert r.status_code == 403 and r.json()["detail"]["code"] == "NOT_ADMITTED"

    r = post(good.model_dump_json().encode())
    assert r.status_code == 202
    assert client.wait_receipt(good.tx_id, 60) is not None
    replay = post(good.model_dump_json().encode())
    assert replay.status_code == 409 and replay.json()["detail"]["code"] == "DUPLICATE_TX"


def _hashes(data_dir: Path, component: str) -> list[str]:
    """Block hashes of one validator's store, read while it runs (SQLite WAL readers)."""
    store = open_block_store(StorageConfig(backend="sqlite", data_dir=data_dir), component, readonly=True)
    try:
        return [b.block_hash() for b in store.blocks(1, store.height())]
    finally:
        store.close()


def test_crash_one_validator_chain_keeps_sealing_then_restart_all_without_fork(
    mesh: MeshProcesses, member_key: bytes
) -> None:
    client = mesh.client()
    before = [anchor(client, member_key, f"pre-crash-{i}") for i in range(3)]
    mesh.kill("validator-3")  # SIGKILL mid-stream: a crash, not a clean stop
    during = [anchor(client, member_key, f"crashed-{i}") for i in range(6)]
    receipts = wait_all(client, before + during)
    assert all(r.accepted for r in receipts), [r.code for r in receipts]
    height_while_down = max(r.height or 0 for r in receipts)

    for i in range(3):
        mesh.kill(f"validator-{i}")
    for i in range(4):
        mesh.start_validator(i)
    after = [anchor(client, member_key, f"restarted-{i}") for i in range(4)]
    last = wait_all(client, after)
    assert all(r.accepted for r in last)
    top = max(r.height or 0 for r in last)
    assert top > height_while_down

    # validator-3 missed several heights: it catches up from the blocks topic. The others store
    # the last block a moment after the receipts say it is sealed (a loaded machine shows it),
    # so every store is given the same time to reach the top.
    deadline = time.monotonic() + 60
    names = [f"validator-{i}" for i in range(4)]
    while time.monotonic() < deadline and any(len(_hashes(mesh.data_dir, n)) < top for n in names):
        time.sleep(0.5)
    stores = {name: _hashes(mesh.data_dir, name) for name in names}
    api_chain = [client.get_json(f"/blocks/{h}")["header"] for h in range(1, top + 1)]
    assert all(len(h) >= top for h in stores.values()), {k: len(v) for k, v in stores.items()}
    reference = stores["validator-0"][:top]
    for name, hashes in stores.items():
        assert hashes[:top] == reference, f"{name} forked"
    assert [h["prev_hash"] for h in api_chain[1:]] == reference[: top - 1]


def test_a_trace_follows_a_transaction_from_submission_to_its_receipt(mesh: MeshProcesses, member_key: bytes) -> None:
    client = mesh.client()
    status = client.get_json("/status")
    nonce = client.next_nonce(crypto.public_key(member_key).hex())
    tx = sign_tx(member_key, status["chain_id"], "chain.anchor", nonce, {"digest": digest("traced"), "label": "traced"})
    traceparent = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    topics = wire.Topics(status["chain_id"], "n0")  # node n0's receipts

    async def submit_and_read() -> bytes | None:
        bus = KafkaEventBus(mesh.bootstrap, client_id="trace-test")
        await bus.start()
        try:
            await bus.publish(
                OutgoingMessage(
                    topics.tx, tx.model_dump_json().encode(), tx.sender.encode(), {"traceparent": traceparent}
                )
            )
            async with asyncio.timeout(60):
                # aclosing: leaving the loop early must close the consumer now, not at garbage collection
                async with contextlib.aclosing(bus.consume(topics.receipts, start="earliest")) as stream:
                    async for batch in stream:
                        for message in batch:
                            if message.key == tx.tx_id.encode():
                                return message.header("traceparent")
        finally:
            await bus.stop()
        return None

    assert asyncio.run(submit_and_read()) == traceparent


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "traco.cli.main", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_readme_tour_works_from_the_command_line(mesh: MeshProcesses, tmp_path: Path) -> None:
    common = ["--data-dir", str(mesh.data_dir), "--api", mesh.url]
    payload = json.dumps({"digest": digest("cli tour"), "label": "cli tour"})
    sent = run_cli("tx", "send", "--kind", "chain.anchor", "--payload", payload, *common)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    tx_id = sent.stdout.split()[0]
    assert '"code": "OK"' in sent.stdout

    again = run_cli("tx", "send", "--kind", "chain.anchor", "--payload", payload, *common)
    assert again.returncode == 1 and "DUPLICATE_ANCHOR" in again.stderr

    proof_file = tmp_path / "proof.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the receipt part needs the next block
        assert run_cli("proof", tx_id, "--out", str(proof_file), *common).returncode == 0
        if json.loads(proof_file.read_text())["result"] is not None:
            break
        time.sleep(0.3)
    genesis = str(DataDir(mesh.data_dir).genesis)
    ok = run_cli("verify-proof", str(proof_file), "--genesis", genesis)
    assert ok.returncode == 0 and "VALID" in ok.stdout and "receipt OK" in ok.stdout.replace("\n", " ")

    forged = json.loads(proof_file.read_text())
    forged["tx"]["payload"]["label"] = "forged"
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    bad = run_cli("verify-proof", str(tmp_path / "forged.json"), "--genesis", genesis)
    assert bad.returncode == 1 and "INVALID" in bad.stderr

    status = run_cli("chain", "status", *common)
    assert status.returncode == 0 and json.loads(status.stdout)["height"] >= 1
    assert run_cli("block", "show", "999999", *common).returncode == 1

    key = tmp_path / "new.key"
    assert run_cli("keys", "new", "--out", str(key)).returncode == 0
    shown = run_cli("keys", "show", str(key), "--data-dir", str(mesh.data_dir))
    assert shown.stdout.strip().startswith(f"traco:{json.loads(status.stdout)['chain_id']}:")
    assert run_cli("keys", "new", "--out", str(key)).returncode == 1  # never overwrites a key
