"""Key custody on the real broker (docs/key-custody.md).

Nodes layout, four nodes: n0 signs votes, proposals and checkpoints with a key inside SoftHSM2
(``TRACO_SIGNER=pkcs11``; its key file is deleted after ``traco keys hsm-import``), n1 reads an
encrypted key from a read-only "Secret mount" outside the data dir (``TRACO_NODE_KEY_FILE``,
``TRACO_KEY_PASSPHRASE_FILE``), n2 and n3 keep the development cast's plaintext keys. The chain
seals, each node's API serves receipts (which it takes only from checkpoints its own key
signed), and commits carry n0's and n1's precommits.

Split layout, one validator: validator-0 reads its encrypted key from ``TRACO_NODE_KEY_FILE``
and n0's party and doc processes sign their checkpoints in the HSM.

A node whose key cannot be opened stops at once with one line saying why.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import softhsm as hsm
from tests.integration.mesh import MeshProcesses, running_nodes
from tests.integration.test_registry import Cast, bill_of_lading, send
from traco.cli.client import Client
from traco.cli.up import create_topics
from traco.core import crypto, keyfile
from traco.schemas.receipt import Receipt
from traco.services.consensus.genesis import DataDir, init_chain, load_genesis

pytestmark = pytest.mark.integration

PASS = "node passphrase for tests"


def new_token(softhsm: hsm.SoftHsm, directory: Path) -> dict[str, str]:
    """The environment of a fresh token in ``directory``: only processes started by the test
    load the module with it (this process keeps the session's token)."""
    if not softhsm.eddsa:
        pytest.skip("this SoftHSM2 build does not offer CKM_EDDSA (built without OpenSSL Ed25519)")
    module, conf = hsm.make_token(directory, "nodes")
    return {
        **softhsm.env(),
        "SOFTHSM2_CONF": str(conf),
        "TRACO_PKCS11_MODULE": str(module),
        "TRACO_PKCS11_TOKEN_LABEL": "nodes",
    }


def hsm_import(key_file: Path, label: str, env: dict[str, str]) -> None:
    """What an operator runs: ``traco keys hsm-import``, then the file is destroyed."""
    command = [sys.executable, "-m", "traco.cli.main", "keys", "hsm-import", str(key_file), "--label", label]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == keyfile.inspect(key_file).public_key.hex()
    key_file.unlink()


def secret_mount(directory: Path, key_file: Path) -> tuple[Path, Path]:
    """Like a Kubernetes Secret volume: an encrypted key and its passphrase, read-only; the
    plaintext is destroyed."""
    directory.mkdir()
    mounted, passphrase = directory / "node.key", directory / "passphrase"
    level = keyfile.LEVELS[keyfile.SERVICE_LEVEL]
    keyfile.write_encrypted_key_file(mounted, crypto.read_key_file(key_file), PASS, level)
    passphrase.write_text(PASS + "\n")
    for path in (mounted, passphrase):
        path.chmod(0o400)
    directory.chmod(0o500)
    key_file.unlink()
    return mounted, passphrase


@pytest.fixture(scope="module")
def nodes(tansu_broker: str, softhsm: hsm.SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    token = new_token(softhsm, tmp_path_factory.mktemp("token"))
    data_dir = tmp_path_factory.mktemp("custody")
    genesis = init_chain(data_dir, f"kc{int(time.time() * 1000) % 10**8}", 4)
    keys = DataDir(data_dir)
    hsm_import(keys.validator_key(0), "n0", token)
    mounted, passphrase = secret_mount(tmp_path_factory.mktemp("secrets") / "n1", keys.validator_key(1))
    n1 = {"TRACO_NODE_KEY_FILE": str(mounted), "TRACO_KEY_PASSPHRASE_FILE": str(passphrase)}
    with running_nodes(data_dir, tansu_broker, genesis, node_env={"n0": token, "n1": n1}) as processes:
        yield processes


def register(cast: Cast, client: Client, label: str) -> Receipt:
    """A bill of lading registered by the carrier (executed by the doc service of every node)."""
    payload = {
        "file_hash": hashlib.sha256(f"B/L {label} {time.time_ns()}".encode()).hexdigest(),
        "type": "bill_of_lading",
        "business_key": {"namespace": "MAEU", "reference": f"BL-{label}-{time.time_ns()}"},
        "holder": cast.pub("exporter"),
    }
    receipt = send(client, cast.key("carrier"), "doc.register", payload)
    assert receipt.accepted and receipt.service == "doc", receipt
    return receipt


def test_nodes_sign_through_the_hsm_and_an_encrypted_mounted_key(nodes: MeshProcesses) -> None:
    cast, client = Cast(nodes.data_dir), nodes.client()
    keys = DataDir(nodes.data_dir)
    assert not keys.validator_key(0).exists() and not keys.validator_key(1).exists()  # nothing copied back
    # n0's API answers with receipts only from checkpoints n0's key (in the HSM) signed
    receipts = [register(cast, client, label) for label in ("hsm-1", "hsm-2", "hsm-3")]
    with Client(f"http://127.0.0.1:{nodes.api_port + 10}") as n1_api:  # n1's API: its own checkpoints
        for receipt in receipts:
            seen = n1_api.wait_receipt(receipt.tx_id, 30)
            assert seen is not None and seen.accepted and seen.height == receipt.height

    validators = [v.public_key for v in load_genesis(keys.genesis).validators]
    top = max(r.height or 0 for r in receipts)
    signers = {
        s["validator"] for h in range(1, top + 1) for s in client.get_json(f"/blocks/{h}")["commit"]["signatures"]
    }
    assert {validators[0], validators[1]} <= signers, "n0's and n1's precommits are in the commits"
    assert all(nodes.alive(name) for name in nodes.procs), {n: nodes.log(n)[-1500:] for n in nodes.procs}
    assert "is not encrypted" not in nodes.log("node-n1") + nodes.log("node-n0")


def test_split_layout_validator_from_a_mounted_key_and_services_through_the_hsm(
    tansu_broker: str, softhsm: hsm.SoftHsm, tmp_path: Path
) -> None:
    token = new_token(softhsm, tmp_path / "token")
    data_dir = tmp_path / "split"
    genesis = init_chain(data_dir, f"ks{int(time.time() * 1000) % 10**8}", 1)
    keys = DataDir(data_dir)
    shutil.copy(keys.validator_key(0), tmp_path / "for-hsm.key")
    hsm_import(tmp_path / "for-hsm.key", "n0", token)
    mounted, passphrase = secret_mount(tmp_path / "secrets", keys.validator_key(0))
    asyncio.run(create_topics(tansu_broker, genesis.chain_id, 4, ["n0"]))
    processes = MeshProcesses(data_dir, tansu_broker)
    try:
        for service in genesis.params.services:
            processes.start(f"{service}-n0", service, "--node", "n0", **token)
        processes.start(
            "validator-0",
            "validator",
            "--index",
            "0",
            TRACO_NODE_KEY_FILE=str(mounted),
            TRACO_KEY_PASSPHRASE_FILE=str(passphrase),
        )
        processes.start_api()
        cast, client = Cast(data_dir), processes.client()
        for label in ("split-hsm-1", "split-hsm-2"):
            assert bill_of_lading(cast, client, label)[0]  # results taken only from n0-signed checkpoints
        assert all(processes.alive(n) for n in processes.procs), {n: processes.log(n)[-1500:] for n in processes.procs}
    finally:
        processes.stop_all()


def serve_node_fails(data_dir: Path, node: str, env: dict[str, str]) -> str:
    """Start ``traco serve node`` and return its stderr; it must exit 1 at once, in one line."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACO_")}
    done = subprocess.run(
        [sys.executable, "-m", "traco.cli.main", "serve", "node", "--node", node, "--data-dir", str(data_dir)],
        env={**clean, "TRACO_KAFKA_BOOTSTRAP": "127.0.0.1:1", **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


def test_a_node_whose_key_cannot_be_opened_stops_with_one_line(softhsm: hsm.SoftHsm, tmp_path: Path) -> None:
    token = new_token(softhsm, tmp_path / "token")
    init_chain(tmp_path, "kx", 2)
    keys = DataDir(tmp_path)
    mounted, _ = secret_mount(tmp_path / "secrets", keys.validator_key(1))
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    line = serve_node_fails(
        tmp_path, "n1", {"TRACO_NODE_KEY_FILE": str(mounted), "TRACO_KEY_PASSPHRASE_FILE": str(wrong)}
    )
    assert line == f"error: the passphrase does not open {mounted} (or its encrypted part was changed)"
    line = serve_node_fails(tmp_path, "n1", {"TRACO_NODE_KEY_FILE": str(mounted)})
    assert line.startswith("error: ") and "TRACO_KEY_PASSPHRASE_FILE" in line
    line = serve_node_fails(tmp_path, "n0", {**token, "TRACO_PKCS11_PIN": "000000"})
    assert "does not log into token 'nodes'" in line
    line = serve_node_fails(tmp_path, "n0", token)  # no key labelled n0 on this module's token
    assert "holds no private and public key pair labelled 'n0'" in line
