"""``traco audit verify``: recheck the whole chain from its blocks alone.

What is checked, for every height: the header hash is what the commit signed; the commit has
valid precommit signatures of > 2/3 of the validator power; ``tx_root`` and ``tx_count`` match
the transactions; every transaction's id and Ed25519 signature; ``prev_hash`` links to the
previous header (the genesis hash at height 1); block times increase; and, by re-executing the
chain's own kinds from genesis, every ``last_results_root`` and the nonce order of each sender.

Signature checks dominate the cost, so ranges of blocks are verified in worker processes (one
per core); the links and the replay, which are cheap and sequential, run in the parent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from traco.core.adapters.factory import StorageConfig, open_block_store
from traco.core.lightclient import verify_commit
from traco.core.settings import Settings
from traco.schemas.block import SealedBlock
from traco.schemas.genesis import Genesis
from traco.services.consensus import rules
from traco.services.consensus.genesis import DataDir, load_genesis

CHUNK = 64


@dataclass(frozen=True)
class BlockCheck:
    height: int
    block_hash: str
    problem: str | None
    txs: int


def check_block(block: SealedBlock, genesis: Genesis) -> str | None:
    """Everything about one block that needs no other block."""
    problem = verify_commit(block.header, block.commit, genesis.validators)
    if problem:
        return problem
    if block.header.tx_count != len(block.txs):
        return f"tx_count {block.header.tx_count} but {len(block.txs)} transactions"
    if block.header.tx_root != rules.tx_root(block.txs):
        return "tx_root does not match the transactions"
    for i, tx in enumerate(block.txs):
        if not tx.id_matches():
            return f"tx {i}: tx_id is not the hash of its content"
        if not tx.signature_valid():
            return f"tx {i} ({tx.tx_id[:16]}…): invalid signature"
    return None


def _check_range(config: StorageConfig, component: str, genesis_json: str, start: int, end: int) -> list[BlockCheck]:
    genesis = Genesis.model_validate_json(genesis_json)
    store = open_block_store(config, component)
    try:
        return [
            BlockCheck(b.height, b.block_hash(), check_block(b, genesis), len(b.txs)) for b in store.blocks(start, end)
        ]
    finally:
        store.close()


@dataclass
class AuditReport:
    height: int
    txs: int
    first_bad_height: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _ranges(height: int) -> Iterator[tuple[int, int]]:
    for start in range(1, height + 1, CHUNK):
        yield start, min(height, start + CHUNK - 1)


def audit_chain(
    config: StorageConfig,
    component: str,
    genesis: Genesis,
    workers: int | None,
    progress: Progress | None = None,
) -> AuditReport:
    store = open_block_store(config, component)
    try:
        height = store.height()
        task = progress.add_task("verifying", total=height) if progress else None
        genesis_json = genesis.model_dump_json()
        report = AuditReport(height=height, txs=0)
        replay_state: dict[str, bytes | None] = {}
        tip = rules.genesis_tip(genesis)
        digest = rules.GENESIS_DIGEST
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            futures = [pool.submit(_check_range, config, component, genesis_json, s, e) for s, e in _ranges(height)]
            for (start, end), future in zip(_ranges(height), futures, strict=True):
                checks = {c.height: c for c in future.result()}
                for block in store.blocks(start, end):
                    check = checks.get(block.height)
                    problem = check.problem if check else "block missing from the store"
                    if problem is None:
                        problem = rules.check_header(genesis, tip, block.header, block.txs, now_ms=None)
                    if problem is None:
                        problem = rules.check_block_txs(
                            genesis,
                            rules.admitted_keys(genesis),
                            block.txs,
                            replay_state.get,
                            lambda _tx_id: False,
                            verified=lambda _tx: True,
                        )
                    if problem is not None:
                        for f in futures:
                            f.cancel()
                        report.first_bad_height, report.problem = block.height, problem
                        return report
                    result = rules.execute_block(block, replay_state.get, digest)
                    replay_state.update(result.writes)
                    digest = result.state_digest
                    tip = rules.ChainTip(block.height, block.block_hash(), block.header.time, result.results_root)
                    report.txs += len(block.txs)
                    if progress is not None and task is not None:
                        progress.advance(task)
                if len(checks) != end - start + 1:
                    report.first_bad_height, report.problem = start, "blocks missing from the store"
                    return report
        return report
    finally:
        store.close()


def run_audit_cli(settings: Settings, component: str, workers: int | None, console: Console) -> int:
    paths = DataDir(settings.data_dir)
    try:
        genesis = load_genesis(paths.genesis)
    except FileNotFoundError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    config = StorageConfig(
        backend=settings.storage,
        data_dir=Path(settings.data_dir),
        cassandra_hosts=settings.cassandra_host_list,
        cassandra_keyspace=settings.cassandra_keyspace,
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        report = audit_chain(config, component, genesis, workers, progress)
    if report.ok:
        console.print(f"[green]OK[/]: {report.height} blocks, {report.txs} transactions verified")
        return 0
    console.print(f"[red]FAILED at height {report.first_bad_height}[/]: {report.problem}")
    return 1
