"""``traco audit verify``: recheck the whole chain from its blocks alone.

What is checked, for every height: the header hash is what the commit signed; the commit has
valid precommit signatures of > 2/3 of the power of that height's validator set (the genesis
set, then each set a sealed block announced in ``next_validators``); ``tx_root`` and ``tx_count`` match
the transactions; every transaction's id and Ed25519 signature; ``prev_hash`` links to the
previous header (the genesis hash at height 1); block times increase; and, by re-executing the
chain's own kinds from genesis, every ``last_results_root`` and the nonce order of each sender.

Signature checks dominate the cost, so ranges of blocks are verified in worker processes (one
per core), which report whose precommit signatures verify; which validator set a height has,
the quorum, the links and the replay are cheap and sequential, and run in the parent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from traco.core.adapters.factory import StorageConfig, open_block_store, open_state_store
from traco.core.lightclient import commit_mismatch, next_validators, quorum_shortfall, valid_signers
from traco.core.settings import Settings
from traco.schemas.block import BlockHeader, SealedBlock
from traco.schemas.genesis import Genesis, ValidatorPower, validator_set, validator_set_hash
from traco.services.consensus import rules
from traco.services.consensus.genesis import DataDir, load_genesis
from traco.services.consensus.results import decode_results

CHUNK = 64


@dataclass(frozen=True)
class BlockCheck:
    """What a worker learned about one block: enough for the parent to check the links."""

    header: BlockHeader
    block_hash: str
    signers: frozenset[str]
    next_validators: tuple[ValidatorPower, ...] | None
    problem: str | None
    nonces: tuple[tuple[str, int], ...]

    @property
    def height(self) -> int:
        return self.header.height


def check_block(block: SealedBlock, genesis: Genesis) -> str | None:
    """Everything about one block that needs no other block (the commit's signers are counted
    by the parent, which knows each height's validator set)."""
    problem = commit_mismatch(block.header, block.commit)
    if problem:
        return problem
    if block.header.chain_id != genesis.chain_id:
        return f"chain id {block.header.chain_id!r} is not {genesis.chain_id!r}"
    if block.header.tx_count != len(block.txs):
        return f"tx_count {block.header.tx_count} but {len(block.txs)} transactions"
    if block.header.tx_root != rules.tx_root(block.txs):
        return "tx_root does not match the transactions"
    for i, tx in enumerate(block.txs):
        if tx.chain_id != genesis.chain_id:
            return f"tx {i} ({tx.tx_id[:16]}…) is for chain {tx.chain_id!r}"
        if not tx.id_matches():
            return f"tx {i}: tx_id is not the hash of its content"
        if not tx.signature_valid():
            return f"tx {i} ({tx.tx_id[:16]}…): invalid signature"
    return None


def _check_range(config: StorageConfig, component: str, genesis_json: str, start: int, end: int) -> list[BlockCheck]:
    genesis = Genesis.model_validate_json(genesis_json)
    store = open_block_store(config, component, readonly=True)
    try:
        return [
            BlockCheck(
                b.header,
                b.block_hash(),
                valid_signers(genesis.chain_id, b.commit),
                b.next_validators,
                check_block(b, genesis),
                tuple((tx.sender, tx.nonce) for tx in b.txs),
            )
            for b in store.blocks(start, end)
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


def _ranges(height: int, workers: int) -> Iterator[tuple[int, int]]:
    """Block ranges small enough that every worker gets several (blocks can be large)."""
    size = max(1, min(CHUNK, height // (workers * 4)))
    for start in range(1, height + 1, size):
        yield start, min(height, start + size - 1)


class _Links:
    """The sequential checks: hash links, times, nonce order, and (replaying) results roots."""

    def __init__(self, genesis: Genesis, recorded: Callable[[int], bytes | None] | None = None) -> None:
        self.recorded = recorded  # the audited node's record of services' results, if any
        self.last = 0  # the audited chain's height: its results are not committed yet
        self.prev_hash = genesis.genesis_hash()
        self.prev_time = genesis.genesis_time
        self.height = 0
        self.nonces: dict[str, int] = {}
        self.state: dict[str, bytes | None] = {}
        self.digest = rules.GENESIS_DIGEST
        self.results_root = rules.genesis_tip(genesis).results_root
        self.validators = validator_set(genesis.validators)
        self.validators_hash = validator_set_hash(self.validators)

    def check(self, block: BlockCheck, replay: bool) -> str | None:
        header = block.header
        if block.height != self.height + 1:
            return f"height {block.height} follows {self.height}"
        if block.problem:
            return block.problem
        if header.validator_set_hash != self.validators_hash:
            return "sealed by another validator set than the one this chain scheduled for the height"
        problem = quorum_shortfall(block.height, block.signers, {v.public_key: v.power for v in self.validators})
        if problem:
            return problem
        upcoming = next_validators(header, block.next_validators, self.validators)
        if isinstance(upcoming, str):
            return upcoming
        if header.prev_hash != self.prev_hash:
            return f"prev_hash does not link to block {self.height}"
        if header.time <= self.prev_time:
            return "block time does not increase"
        if replay and header.last_results_root != self.results_root:
            return "last_results_root does not match the replayed results of the previous block"
        for sender, nonce in block.nonces:
            expected = self.nonces.get(sender, 0) + 1
            if nonce != expected:
                return f"sender {sender[:16]}… used nonce {nonce}, expected {expected}"
            self.nonces[sender] = nonce
        self.height, self.prev_hash, self.prev_time = block.height, block.block_hash, header.time
        self.validators, self.validators_hash = upcoming, header.next_validator_set_hash
        return None

    def execute(self, block: SealedBlock) -> str | None:
        """Re-execute the chain's kinds. With executing services, the services' part of the
        results comes from the audited node's record; the replayed chain part must match it,
        and the next header must commit to the whole."""
        result = rules.execute_block(block, self.state.get, self.digest)
        self.state.update(result.writes)
        self.digest = result.state_digest
        self.results_root = result.results_root
        if self.recorded is None:
            return None
        raw = self.recorded(block.height)
        if raw is None:
            self.results_root = None  # the next header, if any, cannot be checked
            return (
                None
                if block.height == self.last
                else (f"this node has no record of the services' results of block {block.height}")
            )
        receipts, checkpoints = decode_results(raw)
        recorded_chain = [r.leaf_bytes() for r in receipts if r.service == rules.CHAIN_SERVICE]
        if recorded_chain != [r.leaf_bytes() for r in result.receipts]:
            return f"the recorded chain receipts of block {block.height} differ from the replay"
        if checkpoints[0] != result.checkpoint:
            return f"the recorded chain checkpoint of block {block.height} differs from the replay"
        self.results_root = rules.results_root(receipts, checkpoints)
        return None


def audit_chain(
    config: StorageConfig,
    component: str,
    genesis: Genesis,
    workers: int | None,
    progress: Progress | None = None,
    replay: bool = True,
) -> AuditReport:
    """Audit ``component``'s block store. Workers verify signatures and roots; the parent
    checks the links and, with ``replay``, re-executes to check every ``last_results_root``."""
    state = open_state_store(config, component, readonly=True) if replay and genesis.params.services else None
    store = open_block_store(config, component, readonly=True)
    try:
        height = store.height()
        task = progress.add_task("verifying", total=height) if progress else None
        genesis_json = genesis.model_dump_json()
        report = AuditReport(height=height, txs=0)
        links = _Links(genesis, (lambda h: state.get_meta(f"results/{h}")) if state is not None else None)
        links.last = height
        processes = workers or os.cpu_count() or 1
        with ProcessPoolExecutor(max_workers=processes) as pool:
            ranges = list(_ranges(height, processes))
            futures = [pool.submit(_check_range, config, component, genesis_json, s, e) for s, e in ranges]
            for (start, end), future in zip(ranges, futures, strict=True):
                checks = future.result()
                blocks = iter(store.blocks(start, end)) if replay else None
                for check in checks:
                    problem = links.check(check, replay)
                    if problem is None and blocks is not None:
                        problem = links.execute(next(blocks))
                    if problem is not None:
                        for f in futures:
                            f.cancel()
                        report.first_bad_height, report.problem = check.height, problem
                        return report
                    report.txs += len(check.nonces)
                    if progress is not None and task is not None:
                        progress.advance(task)
                if len(checks) != end - start + 1:
                    report.first_bad_height = links.height + 1
                    report.problem = "block missing from the store"
                    return report
        return report
    finally:
        store.close()
        if state is not None:
            state.close()


def run_audit_cli(
    settings: Settings, component: str, workers: int | None, console: Console, replay: bool = True
) -> int:
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
        report = audit_chain(config, component, genesis, workers, progress, replay=replay)
    if report.ok:
        what = "" if replay else " (results roots not replayed)"
        console.print(f"[green]OK[/]: {report.height} blocks, {report.txs} transactions verified{what}")
        return 0
    console.print(f"[red]FAILED at height {report.first_bad_height}[/]: {report.problem}")
    return 1
