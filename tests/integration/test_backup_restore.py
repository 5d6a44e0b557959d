"""Backup of a running node, restore into an empty data dir, catch up (the operator's path).

Four nodes on the real broker. Node n1 is backed up with ``traco backup`` while it runs and
transactions keep arriving, then stopped; the others seal more blocks without it. ``traco
restore`` puts the backup into an empty data dir, the operator puts the node key back where
restore says, and n1 starts from there: it re-executes from its own blocks, syncs the blocks
it missed, executes them, and ends with the same blocks and the same signed checkpoints
(state digests and roots) as n0 at every height. Then n2 is stopped, so no block can be sealed
without n1's vote, and the chain still seals: the restored node votes again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.mesh import MeshProcesses, running_nodes
from tests.integration.test_registry import Cast, bill_of_lading
from traco.cli.client import Client
from traco.core.adapters.factory import StorageConfig, open_block_store, open_state_store
from traco.core.service_runtime import checkpoint_key
from traco.services.consensus.genesis import DataDir, init_chain, load_genesis

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def traco(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "traco.cli.main", *args], capture_output=True, text=True, timeout=120, check=False
    )


def height_of(url: str) -> int:
    with Client(url) as client:
        return int(client.get_json("/status")["height"])


def wait_for_height(url: str, height: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = height_of(url)
            if isinstance(last, int) and last >= height:
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{url} did not reach height {height} (last: {last!r})")


def checkpoints(data_dir: Path, component: str, height: int) -> list[bytes | None]:
    """The signed checkpoints 1..height of a service store, waiting until it has them."""
    config = StorageConfig(backend="sqlite", data_dir=data_dir)
    deadline = time.monotonic() + 60
    while True:
        store = open_state_store(config, component, readonly=True)
        try:
            if store.height() >= height or time.monotonic() > deadline:
                return [store.get(checkpoint_key(h)) for h in range(1, height + 1)]
        finally:
            store.close()
        time.sleep(0.3)


def block_hashes(data_dir: Path, component: str, height: int) -> list[str | None]:
    store = open_block_store(StorageConfig(backend="sqlite", data_dir=data_dir), component, readonly=True)
    try:
        return [(h.block_hash() if (h := store.header(i)) else None) for i in range(1, height + 1)]
    finally:
        store.close()


@pytest.fixture
def mesh(tansu_broker: str, tmp_path: Path) -> Iterator[MeshProcesses]:
    data_dir = tmp_path / "data"
    genesis = init_chain(data_dir, f"br{int(time.time() * 1000) % 10**8}", 4)
    with running_nodes(data_dir, tansu_broker, genesis) as processes:
        yield processes


def test_a_node_restored_from_a_backup_catches_up_and_votes(mesh: MeshProcesses, tmp_path: Path) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    n1_url = f"http://127.0.0.1:{mesh.api_port + 10}"
    for label in ("first", "second"):
        bill_of_lading(cast, client, label)

    # back up n1 while it runs and another transaction is being sealed
    backup = tmp_path / "backup"
    done = traco("backup", "--node", "n1", "--out", str(backup), "--data-dir", str(mesh.data_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["node_id"] == "n1" and manifest["block_height"] >= 2
    assert not (backup / "keys").exists()
    bill_of_lading(cast, client, "after the backup")

    mesh.stop("node-n1")
    for label in ("n1 down 1", "n1 down 2"):
        bill_of_lading(cast, client, label)  # three of four still seal
    behind = height_of(mesh.url)
    assert behind > manifest["block_height"]

    # restore into an empty data dir; put the key back where restore says
    restored = tmp_path / "restored"
    done = traco("restore", "--from", str(backup), "--data-dir", str(restored))
    assert done.returncode == 0, done.stdout + done.stderr
    key_file = restored / "keys" / "validator-1.key"
    assert f"put the node key back before starting it: {key_file}" in done.stdout
    assert not key_file.exists()
    key_file.parent.mkdir()
    shutil.copyfile(DataDir(mesh.data_dir).validator_key(1), key_file)
    refused = traco("restore", "--from", str(backup), "--data-dir", str(restored))
    assert refused.returncode == 1 and "is not empty" in refused.stderr

    mesh.start_node("n1", TRACO_DATA_DIR=str(restored))
    wait_for_height(n1_url, behind)
    bill_of_lading(cast, client, "n1 back")
    height = height_of(mesh.url)
    wait_for_height(n1_url, height)

    # same blocks, same signed checkpoints (digests, receipts and state roots) at every height
    assert block_hashes(restored, "n1-chain", height) == block_hashes(mesh.data_dir, "n0-chain", height)
    for service in ("party", "doc"):
        reference = checkpoints(mesh.data_dir, f"n0-{service}", height)
        assert all(reference), f"n0 lacks {service} checkpoints"
        restored_n1 = checkpoints(restored, f"n1-{service}", height)
        n1_before = checkpoints(mesh.data_dir, f"n1-{service}", manifest["block_height"])
        assert restored_n1 == reference, service
        assert n1_before == reference[: len(n1_before)]
    with Client(n1_url) as n1:
        assert n1.get_json("/status")["node"]["executing"] is True

    # without n2, every block needs n1's vote: the restored validator takes part again
    mesh.stop("node-n2")
    assert bill_of_lading(cast, client, "needs n1")[0]
    sealed = height_of(mesh.url)
    with Client(mesh.url) as n0:
        signers = {s["validator"] for s in n0.get_json(f"/blocks/{sealed}")["commit"]["signatures"]}
    n1_key = load_genesis(mesh.data_dir / "genesis.json").validators[1].public_key
    assert n1_key in signers
