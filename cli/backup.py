"""``traco backup`` and ``traco restore``: a node's stores, copied consistently while it runs.

The work is in ``traco.services.node.backup``; this module parses options and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from traco.cli.common import DataDirOpt, err, fail, out, settings_for
from traco.services.node.backup import BackupError, backup_node, restore_node


def register(app: typer.Typer) -> None:
    """Add ``backup`` and ``restore`` to the ``traco`` command."""
    app.command("backup")(backup)
    app.command("restore")(restore)


def backup(
    node: Annotated[str, typer.Option("--node", help="the node whose stores to copy (n0, n1, …)")],
    out_dir: Annotated[Path, typer.Option("--out", help="a new or empty directory for the backup")],
    data_dir: DataDirOpt = None,
) -> None:
    """Copy a node's block store and service stores (and the genesis, never a key), consistent
    while the node runs, with a manifest of heights and SHA-256s."""
    settings = settings_for(data_dir)
    if settings.storage != "sqlite":
        fail(
            f"backup copies SQLite stores; TRACO_STORAGE={settings.storage} "
            "(use Cassandra's own snapshots: nodetool snapshot)"
        )
    try:
        manifest = backup_node(settings.data_dir, node, out_dir)
    except (BackupError, FileNotFoundError) as exc:
        _fail_all(exc)
    out.print(f"backed up node {manifest.node_id} of chain {manifest.chain_id} into {out_dir}")
    for store in manifest.stores:
        out.print(f"  {store.file:<28} height {store.height:>8}  sha256 {store.sha256}", soft_wrap=True)
    out.print(
        f"  block store tip {manifest.block_hash} at height {manifest.block_height}; genesis {manifest.genesis_hash}",
        soft_wrap=True,
    )
    out.print("the node key is not in the backup: keep it where your keys are kept")


def restore(
    source: Annotated[Path, typer.Option("--from", help="a directory written by `traco backup`")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="a new or empty data directory to restore into")],
    genesis: Annotated[
        Path | None, typer.Option("--genesis", help="the chain's genesis you trust; the backup must match it")
    ] = None,
) -> None:
    """Check a backup (manifest, SHA-256s, genesis, heights) and put it into an empty data dir;
    the node catches up from its blocks, then from the others, when it starts."""
    try:
        restored = restore_node(source, data_dir, genesis)
    except BackupError as exc:
        _fail_all(exc)
    manifest = restored.manifest
    out.print(
        f"restored node {manifest.node_id} of chain {manifest.chain_id} into {data_dir} "
        f"(block store at height {manifest.block_height}, backed up {manifest.created_at})"
    )
    out.print(
        f"put the node key back before starting it: {restored.key_file}\n"
        "  (or mount it elsewhere and set TRACO_NODE_KEY_FILE to its path)\n"
        f"then: traco serve node --node {manifest.node_id} --data-dir {data_dir}",
        soft_wrap=True,
    )


def _fail_all(exc: BaseException) -> NoReturn:
    problems = exc.problems if isinstance(exc, BackupError) else [str(exc)]
    if len(problems) == 1:
        fail(problems[0])
    err.print(f"[red]error:[/] {len(problems)} problems:")
    for problem in problems:
        err.print(f"  - {problem}", soft_wrap=True)
    raise typer.Exit(1)
