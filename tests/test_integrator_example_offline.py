"""The parts of examples/kafka_client.py that need no broker agree with the project: it opens the
key files the project writes (plaintext and encrypted), signs exactly the signing vectors, and
computes Merkle roots and checkpoint checks as the nodes do. The broker half runs in
tests/integration/test_integrator_example.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from traco.core import crypto, keyfile, merkle
from traco.core.nodes import NodeKey
from traco.schemas.events import BlockProcessed, DomainEvent
from traco.schemas.receipt import Receipt, ReceiptStatus

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kafka_client_example", ROOT / "examples" / "kafka_client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_it_opens_plaintext_and_encrypted_key_files(
    example: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = hashlib.sha256(b"integrator key").digest()
    crypto.write_key_file(tmp_path / "plain.key", seed, development=True)
    assert example.load_key(str(tmp_path / "plain.key")).encode() == seed
    keyfile.write_encrypted_key_file(tmp_path / "sealed.key", seed, "correct horse", keyfile.MIN_LIMITS)
    (tmp_path / "passphrase").write_text("correct horse\n")
    monkeypatch.delenv("TRACO_KEY_PASSPHRASE", raising=False)
    monkeypatch.setenv("TRACO_KEY_PASSPHRASE_FILE", str(tmp_path / "passphrase"))
    assert example.load_key(str(tmp_path / "sealed.key")).encode() == seed
    monkeypatch.setenv("TRACO_KEY_PASSPHRASE", "wrong")
    with pytest.raises(SystemExit, match="wrong passphrase"):
        example.load_key(str(tmp_path / "sealed.key"))


def test_it_signs_the_vectors(example: ModuleType) -> None:
    vectors = json.loads((ROOT / "docs" / "signing-vectors.json").read_text(encoding="utf-8"))["vectors"]
    import nacl.signing

    for vector in vectors:
        given = vector["input"]
        key = nacl.signing.SigningKey(bytes.fromhex(given["seed_hex"]))
        envelope = example.sign(key, given["chain_id"], given["kind"], given["nonce"], given["payload"])
        assert envelope == vector["expected"]["envelope"], vector["name"]


def test_merkle_roots_and_checkpoint_checks_agree_with_the_nodes(example: ModuleType) -> None:
    for n in range(0, 9):
        leaves = [bytes([i]) * (i + 1) for i in range(n)]
        assert example.merkle_root(leaves) == merkle.root(leaves)
    receipts = [
        Receipt(tx_id=f"{i:064x}", kind="doc.register", status=ReceiptStatus.ACCEPTED, code="OK", height=5, index=i,
                service="doc", message="ok")
        for i in range(3)
    ]  # fmt: skip
    events = [
        DomainEvent(type="X", service="doc", height=5, tx_id=f"{i:064x}", tx_index=i, aggregate_id="a")
        for i in range(3)
    ]
    root = merkle.root([r.leaf_bytes() for r in receipts]).hex()
    checkpoint = BlockProcessed(service="doc", height=5, state_digest="ab" * 32, receipts_root=root)
    seed = hashlib.sha256(b"node key").digest()

    class Signer:
        public_key = crypto.public_key(seed)

        def sign(self, message: bytes) -> bytes:
            return crypto.sign(seed, message)

    signed = NodeKey("n1", Signer()).sign("main", checkpoint, receipts, events)  # type: ignore[arg-type]
    forged = signed.model_copy(update={"signature": "00" * 64})
    messages = [json.loads(m.model_dump_json()) for m in (*events, forged, signed)]
    receipt = json.loads(receipts[1].model_dump_json())
    found, covered = example.check_checkpoint("main", "n1", Signer.public_key.hex(), messages, receipt)
    assert found["signature"] == signed.signature and len(covered) == 3
    with pytest.raises(SystemExit, match="not the node key"):
        example.check_checkpoint("main", "n1", crypto.public_key(b"\x01" * 32).hex(), messages, receipt)
    with pytest.raises(SystemExit, match="does not cover"):
        example.check_checkpoint("main", "n1", Signer.public_key.hex(), messages, {**receipt, "code": "FORGED"})
