"""Backup and restore of one node's stores (``traco backup`` / ``traco restore``).

Why: a node's block store and service stores are SQLite files in WAL mode under the data dir
(``<id>-chain/blocks.sqlite`` and ``state.sqlite``, ``<id>-<service>/state.sqlite``). Copying
them with ``cp`` while the node runs can tear a file, or miss commits still in the ``-wal``
file. Losing them is recoverable (another node's blocks, a replay), but slow; a backup is the
fast way back.

How it stays consistent while the node runs:

* Each file is copied with SQLite's online backup API in one step: the copy is the database
  as of one committed transaction, WAL contents included, never a torn file. It is then
  switched to ``journal_mode=DELETE`` so it is one self-contained file with a stable SHA-256.
* Files are copied downstream first: the service stores in reverse upstream order (doc, then
  party), then the chain state, then the block store last. A node writes a block before
  executing it and executes upstream services first, and heights only grow, so every copy is
  at or below the height of each copy made after it: every service store is at or below the
  chain state, which is at or below the block store, as after a crash. On start a node
  re-executes the chain state and its services from its own blocks up to its block store's
  height (``Ledger._catch_up_state``, ``Node.catch_up``), then syncs newer blocks from the
  others. Restore refuses a backup where that order does not hold.
* The manifest (``manifest.json``, written last: a backup without one is incomplete) records
  the chain id, the node id, the genesis hash, each store's height, the block store's tip hash
  and every file's SHA-256. Restore checks all of that before it writes anything, refuses a
  non-empty target, and checks that the stores' chain starts at that genesis.

What is never in a backup: the node's private key (nor any key). Restore names the key file
the operator must put back (or mount and name with ``TRACO_NODE_KEY_FILE``).

Caveats: SQLite only (on Cassandra use its own snapshots: ``nodetool snapshot``). A
restored validator has forgotten the votes it signed after the backup (its double-signing
guard is in the chain state): restore it only once the chain has sealed past the height it
was at when it stopped, so it never votes again on a height it already voted on.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from traco.core.adapters.sqlite import SqliteBlockStore, SqliteStateStore
from traco.schemas.genesis import Genesis
from traco.services import registry
from traco.services.consensus.genesis import DataDir, load_genesis
from traco.services.node.node import node_components

FORMAT = "traco-node-backup/1"
MANIFEST = "manifest.json"
GENESIS = "genesis.json"

StoreKind = Literal["blocks", "state"]


class BackupError(Exception):
    """A backup or restore that cannot be done; ``problems`` names every reason at once."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class StoreCopy:
    """One copied SQLite file: which store of which component, its height and digest."""

    component: str
    kind: StoreKind
    file: str  # relative to the backup (and to the data dir): "<component>/<kind>.sqlite"
    height: int
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    format: str
    chain_id: str
    node_id: str
    genesis_hash: str
    genesis_sha256: str
    created_at: str
    block_height: int
    block_hash: str | None
    stores: tuple[StoreCopy, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            raw = json.loads(text)
            stores = tuple(StoreCopy(**entry) for entry in raw.pop("stores"))
            manifest = cls(stores=stores, **raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BackupError([f"{MANIFEST} is not a TRACO node backup manifest: {exc}"]) from exc
        if manifest.format != FORMAT:
            raise BackupError([f"{MANIFEST} has format {manifest.format!r}; this TRACO reads {FORMAT!r}"])
        return manifest


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    data_dir: Path
    key_file: Path  # where the node expects its key (unless TRACO_NODE_KEY_FILE names one)


# ---------------------------------------------------------------------------------- backup


def backup_node(data_dir: Path, node_id: str, out: Path) -> Manifest:
    """Copy node ``node_id``'s stores and the genesis from ``data_dir`` into ``out`` (which
    must not exist or be empty), consistently while the node runs; return the manifest."""
    paths = DataDir(data_dir)
    genesis = load_genesis(paths.genesis)
    problems = _empty_target_problems(out, "--out")
    try:
        genesis.node(node_id)
    except KeyError as exc:
        problems.append(str(exc.args[0]))
    order = _backup_order(genesis, node_id)
    missing = [
        str(paths.component(c) / f"{k}.sqlite") for c, k in order if not (paths.component(c) / f"{k}.sqlite").is_file()
    ]
    if missing and not problems:
        problems.append(f"node {node_id} has no stores at {', '.join(missing)} (has it run with this data dir?)")
    if problems:
        raise BackupError(problems)
    out.mkdir(parents=True, exist_ok=True)
    copies = [
        _copy_store(paths.component(component) / f"{kind}.sqlite", out, component, kind) for component, kind in order
    ]
    shutil.copyfile(paths.genesis, out / GENESIS)
    blocks = next(c for c in copies if c.kind == "blocks")
    manifest = Manifest(
        format=FORMAT,
        chain_id=genesis.chain_id,
        node_id=node_id,
        genesis_hash=genesis.genesis_hash(),
        genesis_sha256=_sha256(out / GENESIS),
        created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        block_height=blocks.height,
        block_hash=_tip_hash(out / blocks.file),
        stores=tuple(copies),
    )
    problems = _order_problems(manifest)
    if problems:  # cannot happen with the copy order above; refuse rather than write a bad backup
        raise BackupError(problems)
    temporary = out / f".{MANIFEST}.partial"
    temporary.write_text(manifest.to_json())
    os.replace(temporary, out / MANIFEST)
    return manifest


def _backup_order(genesis: Genesis, node_id: str) -> list[tuple[str, StoreKind]]:
    """Downstream first, the block store last (see the module docstring)."""
    components = node_components(node_id, registry.runnable(genesis))
    services = sorted(registry.runnable(genesis), key=_upstream_rank, reverse=True)
    order: list[tuple[str, StoreKind]] = [(components[s], "state") for s in services]
    return [*order, (components["chain"], "state"), (components["chain"], "blocks")]


def _upstream_rank(service: str) -> int:
    return registry.ORDER.index(service) if service in registry.ORDER else len(registry.ORDER)


def _copy_store(source: Path, out: Path, component: str, kind: StoreKind) -> StoreCopy:
    relative = f"{component}/{kind}.sqlite"
    target = out / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()
    return StoreCopy(component, kind, relative, _height(target, kind), _sha256(target), target.stat().st_size)


def _height(path: Path, kind: StoreKind) -> int:
    store = SqliteBlockStore(path, readonly=True) if kind == "blocks" else SqliteStateStore(path, readonly=True)
    try:
        return store.height()
    finally:
        store.close()


def _tip_hash(path: Path) -> str | None:
    store = SqliteBlockStore(path, readonly=True)
    try:
        header = store.header(store.height()) if store.height() else None
        return header.block_hash() if header else None
    finally:
        store.close()


# --------------------------------------------------------------------------------- restore


def verify_backup(source: Path, genesis_file: Path | None = None) -> Manifest:
    """Check a backup without writing anything: manifest, every file's SHA-256, the genesis
    (and ``genesis_file``'s, when given) and the heights' order. Raises ``BackupError``."""
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise BackupError([f"{source} has no {MANIFEST}: not a backup, or an incomplete one"])
    manifest = Manifest.from_json(manifest_path.read_text())
    problems: list[str] = []
    for relative, expected in [(GENESIS, manifest.genesis_sha256), *((s.file, s.sha256) for s in manifest.stores)]:
        path = source / relative
        if ".." in Path(relative).parts or Path(relative).is_absolute():
            problems.append(f"{MANIFEST} names a file outside the backup: {relative}")
        elif not path.is_file():
            problems.append(f"{relative} is missing")
        elif _sha256(path) != expected:
            problems.append(f"{relative} does not match its SHA-256 in the manifest (changed or damaged)")
    genesis = _genesis_problems(source / GENESIS, manifest, problems)
    if genesis_file is not None:
        try:
            trusted = load_genesis(genesis_file).genesis_hash()
            if trusted != manifest.genesis_hash:
                problems.append(
                    f"{genesis_file} has genesis hash {trusted}, the backup {manifest.genesis_hash}: another chain"
                )
        except (OSError, ValueError) as exc:
            problems.append(f"{genesis_file}: {exc}")
    problems += _order_problems(manifest)
    if not problems:
        problems += _store_problems(source, manifest, genesis)
    if problems:
        raise BackupError(problems)
    return manifest


def restore_node(source: Path, data_dir: Path, genesis_file: Path | None = None) -> Restored:
    """Put the backup in ``source`` into ``data_dir`` (which must not exist or be empty),
    after checking all of it; the node then catches up from its blocks when it starts."""
    problems = _empty_target_problems(data_dir, "--data-dir")
    try:
        manifest = verify_backup(source, genesis_file)
    except BackupError as exc:
        raise BackupError(problems + exc.problems) from None
    if problems:
        raise BackupError(problems)
    data_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for relative in [GENESIS, *(s.file for s in manifest.stores)]:
            target = data_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, target)
            written.append(target)
        _check_copied(data_dir, manifest)
    except BaseException:
        for path in written:  # the target was empty: leave it so
            path.unlink(missing_ok=True)
        for directory in sorted({p.parent for p in written}, key=lambda p: len(p.parts), reverse=True):
            if directory != data_dir and directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        raise
    from traco.services.node.serve import node_key_file  # the one place that knows the key's path

    genesis = load_genesis(data_dir / GENESIS)
    return Restored(manifest, data_dir, node_key_file(DataDir(data_dir), genesis, manifest.node_id))


def _check_copied(data_dir: Path, manifest: Manifest) -> None:
    damaged = [s.file for s in manifest.stores if _sha256(data_dir / s.file) != s.sha256]
    if damaged:
        raise BackupError([f"{', '.join(damaged)} changed while being copied into {data_dir}"])


def _genesis_problems(path: Path, manifest: Manifest, problems: list[str]) -> Genesis | None:
    if not path.is_file():
        return None  # named as missing already
    try:
        genesis = load_genesis(path)
    except ValueError as exc:
        problems.append(f"{GENESIS} in the backup is not a genesis: {exc}")
        return None
    if genesis.genesis_hash() != manifest.genesis_hash:
        problems.append(f"{GENESIS} has hash {genesis.genesis_hash()}, the manifest says {manifest.genesis_hash}")
    if genesis.chain_id != manifest.chain_id:
        problems.append(f"{GENESIS} is for chain {genesis.chain_id!r}, the manifest says {manifest.chain_id!r}")
    if manifest.node_id not in [n.id for n in genesis.node_list()]:
        problems.append(f"node {manifest.node_id!r} of the manifest is not registered in {GENESIS}")
    return genesis


def _order_problems(manifest: Manifest) -> list[str]:
    """Service stores at or below the chain state, which is at or below the block store."""
    blocks = [s for s in manifest.stores if s.kind == "blocks"]
    if len(blocks) != 1:
        return [f"{MANIFEST} lists {len(blocks)} block stores, not one"]
    chain = blocks[0].component
    problems = []
    if blocks[0].height != manifest.block_height:
        problems.append(
            f"{MANIFEST}: block_height {manifest.block_height} but the block store is at {blocks[0].height}"
        )
    for store in manifest.stores:
        if store.kind == "state" and store.height > blocks[0].height:
            what = "the chain state" if store.component == chain else f"the {store.component} store"
            problems.append(f"{what} is at height {store.height}, beyond the block store's {blocks[0].height}")
    return problems


def _store_problems(source: Path, manifest: Manifest, genesis: Genesis | None) -> list[str]:
    """Open every store: its kind, its height as recorded, and a chain that starts at the genesis."""
    problems = []
    for store in manifest.stores:
        try:
            height = _height(source / store.file, store.kind)
        except Exception as exc:  # StorageError, sqlite3 errors: a file that is not this store
            problems.append(f"{store.file}: {exc}")
            continue
        if height != store.height:
            problems.append(f"{store.file} is at height {height}, the manifest says {store.height}")
    if problems or genesis is None:
        return problems
    blocks = next(s for s in manifest.stores if s.kind == "blocks")
    reader = SqliteBlockStore(source / blocks.file, readonly=True)
    try:
        first = reader.header(1) if blocks.height else None
        tip = reader.header(blocks.height) if blocks.height else None
    finally:
        reader.close()
    if first is not None and (first.prev_hash != genesis.genesis_hash() or first.chain_id != genesis.chain_id):
        problems.append(f"the block store's chain does not start at the genesis {genesis.genesis_hash()}")
    if (tip.block_hash() if tip else None) != manifest.block_hash:
        problems.append(f"the block store's tip is not the block {manifest.block_hash} the manifest names")
    return problems


def _empty_target_problems(target: Path, option: str) -> list[str]:
    if target.exists() and not target.is_dir():
        return [f"{option} {target} is a file, not a directory"]
    if target.is_dir() and any(target.iterdir()):
        entries = sorted(p.name for p in target.iterdir())
        shown = ", ".join(entries[:5]) + (", …" if len(entries) > 5 else "")
        return [f"{option} {target} is not empty ({shown}): choose a new or empty directory"]
    return []


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in _chunks(file):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(file: Any) -> Iterator[bytes]:
    while chunk := file.read(1 << 20):
        yield chunk
