"""Backup and restore of a node's stores, and every refusal, on real SQLite files.

The node's stores are written as a node writes them: a real signed chain (``ServiceChain``)
under ``n1-chain`` and the real party and doc runtimes on SQLite under ``n1-party`` and
``n1-doc``. The running-node case (backup while it writes, restore, catch up with the others)
is ``tests/integration/test_backup_restore.py``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.consensus.servicechain import ServiceChain
from traco.core.adapters.sqlite import SqliteBlockStore, SqliteStateStore
from traco.core.service_runtime import ServiceRuntime
from traco.services import registry
from traco.services.consensus.genesis import DataDir, init_chain
from traco.services.node.backup import MANIFEST, BackupError, backup_node, restore_node, verify_backup


class NodeStores(ServiceChain):
    """``ServiceChain`` with node n1's layout: chain and services in SQLite under the data dir."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, "bk", component="n1-chain")
        self.runtimes = {
            name: ServiceRuntime(
                registry.domain(name),
                self.genesis,
                SqliteStateStore(data_dir / f"n1-{name}" / "state.sqlite"),
                next(iter(self.runtimes.values())).bus,
                registry.upstream_domains(name),
                registry.genesis_events(self.genesis),
            )
            for name in self.genesis.params.services
        }

    def close(self) -> None:
        super().close()
        for runtime in self.runtimes.values():
            runtime.store.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeStores]:
    stores = NodeStores(tmp_path / "data")
    for i in range(3):
        stores.seal([stores.register(f"bl-{i}")])
    yield stores
    stores.close()


def test_backup_and_restore_round_trip(node: NodeStores, tmp_path: Path) -> None:
    manifest = backup_node(node.data_dir, "n1", tmp_path / "backup")
    assert manifest.node_id == "n1" and manifest.chain_id == "bk"
    assert manifest.genesis_hash == node.genesis.genesis_hash()
    assert manifest.block_height == 3 and manifest.block_hash == node.blocks[-1].block_hash()
    heights = {(s.component, s.kind): s.height for s in manifest.stores}
    assert heights == {
        ("n1-trade", "state"): 3,
        ("n1-doc", "state"): 3,
        ("n1-party", "state"): 3,
        ("n1-chain", "state"): 3,
        ("n1-chain", "blocks"): 3,
    }
    order = ["n1-trade", "n1-doc", "n1-party", "n1-chain", "n1-chain"]  # downstream first, block store last
    assert [s.component for s in manifest.stores] == order
    # never a key: no key file, and no file holds a key's bytes
    keys = [p.read_bytes() for p in DataDir(node.data_dir).keys.glob("*.key")]
    copied = [p for p in (tmp_path / "backup").rglob("*") if p.is_file()]
    assert not any("keys" in p.parts for p in copied)
    assert not any(key in p.read_bytes() for p in copied for key in keys)

    restored = restore_node(tmp_path / "backup", tmp_path / "restored")
    assert restored.key_file == tmp_path / "restored" / "keys" / "validator-1.key"
    blocks = SqliteBlockStore(tmp_path / "restored" / "n1-chain" / "blocks.sqlite")
    doc = SqliteStateStore(tmp_path / "restored" / "n1-doc" / "state.sqlite")
    try:
        assert blocks.height() == 3 and blocks.header(3) == node.blocks[-1].header
        assert doc.height() == 3
        assert doc.state_digest(3) == node.runtimes["doc"].store.state_digest(3)
    finally:
        blocks.close()
        doc.close()
    assert (tmp_path / "restored" / "genesis.json").read_bytes() == DataDir(node.data_dir).genesis.read_bytes()


def test_a_backup_taken_while_blocks_are_written_is_consistent(node: NodeStores, tmp_path: Path) -> None:
    """Blocks keep being sealed and executed while the copy runs; every copy opens, and the
    services are never ahead of the chain state, nor that of the block store."""
    stop = threading.Event()
    sealed: list[int] = []

    def writer() -> None:
        i = 0
        while not stop.is_set() and i < 40:
            node.seal([node.register(f"more-{i}")])
            sealed.append(i)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        manifests = [backup_node(node.data_dir, "n1", tmp_path / f"b{i}") for i in range(4)]
    finally:
        stop.set()
        thread.join()
    assert sealed, "nothing was written during the backups"
    for i, manifest in enumerate(manifests):
        verify_backup(tmp_path / f"b{i}")  # every file opens at the height the manifest records
        by_kind = {(s.component, s.kind): s.height for s in manifest.stores}
        assert by_kind[("n1-doc", "state")] <= by_kind[("n1-party", "state")] <= by_kind[("n1-chain", "state")]
        assert by_kind[("n1-chain", "state")] <= by_kind[("n1-chain", "blocks")]


def test_restore_refuses_a_non_empty_target(node: NodeStores, tmp_path: Path) -> None:
    backup_node(node.data_dir, "n1", tmp_path / "backup")
    target = tmp_path / "busy"
    target.mkdir()
    (target / "n1-chain").mkdir()
    with pytest.raises(BackupError, match=r"--data-dir .*busy is not empty \(n1-chain\)"):
        restore_node(tmp_path / "backup", target)
    assert [p.name for p in target.iterdir()] == ["n1-chain"]  # left as it was


def test_backup_refuses_a_non_empty_out_and_an_unknown_node(node: NodeStores, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old-backup").write_text("x")
    with pytest.raises(BackupError) as caught:
        backup_node(node.data_dir, "n9", out)
    assert "--out" in str(caught.value) and "no node 'n9'" in str(caught.value)  # both named at once


def test_restore_refuses_a_damaged_or_incomplete_backup(node: NodeStores, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    backup_node(node.data_dir, "n1", backup)
    conn = sqlite3.connect(backup / "n1-doc" / "state.sqlite")  # a changed state
    with conn:
        conn.execute("UPDATE state SET value = X'00' WHERE key = (SELECT key FROM state LIMIT 1)")
    conn.close()
    (backup / "n1-party" / "state.sqlite").unlink()
    with pytest.raises(BackupError) as caught:
        restore_node(backup, tmp_path / "restored")
    problems = caught.value.problems
    assert any("n1-doc/state.sqlite does not match its SHA-256" in p for p in problems), problems
    assert any("n1-party/state.sqlite is missing" in p for p in problems), problems
    assert not (tmp_path / "restored").exists()  # nothing written

    (backup / MANIFEST).unlink()
    with pytest.raises(BackupError, match=r"no manifest\.json: not a backup, or an incomplete one"):
        restore_node(backup, tmp_path / "restored")


def test_restore_refuses_another_chains_genesis(node: NodeStores, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    backup_node(node.data_dir, "n1", backup)
    other = init_chain(tmp_path / "other", "other", 4)
    with pytest.raises(BackupError, match=r"genesis hash .* another chain"):
        restore_node(backup, tmp_path / "r1", genesis_file=tmp_path / "other" / "genesis.json")

    # the backup's own genesis swapped (and the manifest's file digest forged to match it)
    shutil.copyfile(tmp_path / "other" / "genesis.json", backup / "genesis.json")
    manifest = json.loads((backup / MANIFEST).read_text())
    manifest["genesis_sha256"] = hashlib.sha256((backup / "genesis.json").read_bytes()).hexdigest()
    (backup / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BackupError) as caught:
        restore_node(backup, tmp_path / "r2")
    message = str(caught.value)
    assert f"genesis.json has hash {other.genesis_hash()}" in message
    assert "is for chain 'other'" in message


def test_restore_refuses_services_ahead_of_the_block_store(node: NodeStores, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    backup_node(node.data_dir, "n1", backup)
    manifest = json.loads((backup / MANIFEST).read_text())
    for store in manifest["stores"]:
        if store["component"] == "n1-doc":
            store["height"] = 9
    (backup / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BackupError) as caught:
        restore_node(backup, tmp_path / "restored")
    assert "the n1-doc store is at height 9, beyond the block store's 3" in str(caught.value)


def test_restore_refuses_a_block_store_of_another_chain(node: NodeStores, tmp_path: Path) -> None:
    """Files and manifest consistent with each other, but the blocks do not start at the genesis."""
    backup = tmp_path / "backup"
    backup_node(node.data_dir, "n1", backup)
    elsewhere = NodeStores(tmp_path / "elsewhere")  # same chain id, other genesis (other keys)
    try:
        for i in range(3):
            elsewhere.seal([elsewhere.register(f"x-{i}")])
        other = backup_node(elsewhere.data_dir, "n1", tmp_path / "other-backup")
    finally:
        elsewhere.close()
    shutil.copyfile(tmp_path / "other-backup" / "n1-chain" / "blocks.sqlite", backup / "n1-chain" / "blocks.sqlite")
    manifest = json.loads((backup / MANIFEST).read_text())
    theirs = next(s for s in other.stores if s.kind == "blocks")
    for store in manifest["stores"]:
        if store["kind"] == "blocks":
            store.update(height=theirs.height, sha256=theirs.sha256, bytes=theirs.bytes)
    manifest.update(block_height=theirs.height, block_hash=other.block_hash)
    (backup / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="does not start at the genesis"):
        restore_node(backup, tmp_path / "restored")


def test_the_commands_list_every_problem_and_exit_1(node: NodeStores, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from traco.cli.main import app

    runner = CliRunner()
    done = runner.invoke(
        app, ["backup", "--node", "n1", "--out", str(tmp_path / "b"), "--data-dir", str(node.data_dir)]
    )
    assert done.exit_code == 0, done.output
    assert "n1-chain/blocks.sqlite" in done.output and "the node key is not in the backup" in done.output
    (tmp_path / "b" / "genesis.json").write_text("{}")
    (tmp_path / "b" / "n1-doc" / "state.sqlite").unlink()
    done = runner.invoke(app, ["restore", "--from", str(tmp_path / "b"), "--data-dir", str(tmp_path / "b")])
    assert done.exit_code == 1
    for problem in ("problems:", "is not empty", "genesis.json does not match", "n1-doc/state.sqlite is missing"):
        assert problem in done.output, done.output
    cassandra = runner.invoke(
        app,
        ["backup", "--node", "n1", "--out", str(tmp_path / "c"), "--data-dir", str(node.data_dir)],
        env={"TRACO_STORAGE": "cassandra"},
    )
    assert cassandra.exit_code == 1 and "nodetool snapshot" in cassandra.output
