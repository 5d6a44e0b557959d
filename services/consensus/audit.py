"""``traco audit verify``: recheck the whole chain from its blocks alone.

What is checked, for every height: the header hash is what the commit signed; the commit has
valid precommit signatures of > 2/3 of the power of that height's validator set (the genesis
set, then each set a sealed block announced in ``next_validators``); ``tx_root`` and ``tx_count`` match
the transactions; every transaction's id and Ed25519 signature; ``prev_hash`` links to the
previous header (the genesis hash at height 1); block times increase; the nonce order of each
sender; and, replaying (``audit_replay``: the chain's own kinds and every executing service,
from genesis, in lockstep), every ``last_results_root``. No node's record of the services'
results is trusted; where the audited node has one (``results/<h>``), it is compared with the
replay and every difference is reported as the node's divergence.

The blocks come from a node's block store or, with ``--from-topic``, from the chain's
``blocks`` topic (``read_blocks_topic``: republished copies dropped, a gap fails the audit at
the missing height, a forged block beside the real one at a height is skipped because it does
not verify). Caveat: the topic's blocks are held in memory for the audit.

Signature checks, and hashing the node's record of each block's results, run in worker
processes (one per core) over ranges of blocks; which validator set a height has, the quorum,
the links and the replay are sequential, and run in the parent meanwhile. With executing
services the replay (their rules, once per transaction) is the longer of the two.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from traco.core.adapters.factory import StorageConfig, open_block_store, open_state_store
from traco.core.lightclient import commit_mismatch, next_validators, quorum_shortfall, valid_signers
from traco.core.ports import BusMessage, EventBus, StateStore
from traco.core.settings import Settings
from traco.core.topics import topic
from traco.schemas.block import BlockHeader, SealedBlock
from traco.schemas.genesis import Genesis, ValidatorPower, validator_set, validator_set_hash
from traco.services.consensus import validity, wire
from traco.services.consensus.audit_replay import Difference, ResultsAudit, record_root
from traco.services.consensus.genesis import DataDir, load_genesis

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
    record_root: str | None = None  # the root of the audited node's record of its results

    @property
    def height(self) -> int:
        return self.header.height


def check_block(block: SealedBlock, genesis: Genesis) -> str | None:
    """Everything about one block that needs no other block (the commit's signers are counted
    by the parent, which knows each height's validator set; nonces across blocks are the
    parent's too). Each transaction passes the one validity rule (``validity.check_tx``: chain,
    canonical size, kind, id, signature), admission aside: the commit vouches for it."""
    problem = commit_mismatch(block.header, block.commit)
    if problem:
        return problem
    if block.header.chain_id != genesis.chain_id:
        return f"chain id {block.header.chain_id!r} is not {genesis.chain_id!r}"
    if block.header.tx_count != len(block.txs):
        return f"tx_count {block.header.tx_count} but {len(block.txs)} transactions"
    if block.header.tx_root != block.txs_root:
        return "tx_root does not match the transactions"
    first_nonces: dict[str, int] = {}
    for tx in block.txs:
        first_nonces.setdefault(tx.sender, tx.nonce)
    return validity.check_block_txs(
        genesis,
        validity.Everyone(),
        block.txs,
        lambda sender: first_nonces[sender] - 1,  # within the block; the parent links blocks
        lambda _tx_id: False,  # a repeated id repeats its sender's nonce: the parent refuses it
        validity.SignatureCache(capacity=max(1, len(block.txs))),
        runnable_kinds(genesis),
    )


def runnable_kinds(genesis: Genesis) -> frozenset[str]:
    """The kinds a block of this chain may carry at some height: the genesis's, and those of
    every service an upgrade could activate (the replay then checks the exact height)."""
    from traco.services import registry

    extra = [s for s in registry.runnable(genesis) if s not in genesis.params.services]
    return frozenset(genesis.params.kinds) | frozenset(registry.kinds(extra))


def block_check(block: SealedBlock, genesis: Genesis) -> BlockCheck:
    return BlockCheck(
        block.header,
        block.block_hash(),
        valid_signers(genesis.chain_id, block.commit),
        block.next_validators,
        check_block(block, genesis),
        tuple((tx.sender, tx.nonce) for tx in block.txs),
    )


def _check_range(
    config: StorageConfig, component: str, genesis_json: str, start: int, end: int, records: bool
) -> list[BlockCheck]:
    genesis = Genesis.model_validate_json(genesis_json)
    store = open_block_store(config, component, readonly=True)
    try:
        return _with_records([block_check(b, genesis) for b in store.blocks(start, end)], config, component, records)
    finally:
        store.close()


def _check_raw(
    genesis_json: str, raws: list[bytes], config: StorageConfig, component: str, records: bool
) -> list[BlockCheck]:
    genesis = Genesis.model_validate_json(genesis_json)
    checks = [block_check(SealedBlock.model_validate_json(raw), genesis) for raw in raws]
    return _with_records(checks, config, component, records)


def _with_records(checks: list[BlockCheck], config: StorageConfig, component: str, records: bool) -> list[BlockCheck]:
    """Workers also hash the node's record of each block's results, so that the parent, which
    replays, only reads the records that differ from its replay."""
    state = _open_record(config, component) if records else None
    if state is None:
        return checks
    try:
        return [replace(c, record_root=record_root(state.get_meta(f"results/{c.height}"))) for c in checks]
    finally:
        state.close()


# --------------------------------------------------------------------------- sources


MAX_CANDIDATES = 16
"""Different blocks kept for one height of the topic (a forger's extra ones are dropped)."""


@dataclass
class TopicBlocks:
    """The blocks read from a ``blocks`` topic: per height, the distinct messages in topic order.

    A message whose bytes were seen already is a duplicate (republished) and dropped. A
    different one at a taken height (another validator's copy with other commit signatures, or
    a forgery) is kept as a candidate, tried only if the first one does not verify."""

    candidates: dict[int, list[tuple[bytes, SealedBlock]]] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)
    duplicates: int = 0
    undecodable: int = 0
    dropped: int = 0

    def offer(self, message: BusMessage) -> None:
        digest = hashlib.sha256(message.value).digest()
        if digest in self.seen:
            self.duplicates += 1
            return
        block = wire.decode_block(message.value)
        if isinstance(block, str):
            self.undecodable += 1
            return
        found = self.candidates.setdefault(block.height, [])
        if len(found) >= MAX_CANDIDATES:
            self.dropped += 1
            return
        self.seen.add(digest)
        found.append((message.value, block))

    @property
    def height(self) -> int:
        """The last height of the unbroken run from 1."""
        height = 0
        while height + 1 in self.candidates:
            height += 1
        return height

    def describe(self, name: str) -> str:
        counts = [(self.duplicates, "duplicates dropped"), (self.undecodable, "undecodable messages skipped")]
        counts += [(self.dropped, f"blocks beyond {MAX_CANDIDATES} at one height dropped")]
        extra = [f"{n} {what}" for n, what in counts if n]
        return f"blocks read from {name}" + (f" ({', '.join(extra)})" if extra else "")


async def read_blocks_topic(bus: EventBus, chain_id: str, idle_timeout_s: float = 30.0) -> TopicBlocks:
    """Every block on the chain's ``blocks`` topic up to its end when called."""
    name = topic(chain_id, "blocks")
    end = (await bus.end_offsets(name)).get(0, 0)
    found = TopicBlocks()
    if end == 0:
        return found
    stream = bus.consume(name, start="earliest")
    try:
        while True:
            try:
                batch = await asyncio.wait_for(anext(stream), idle_timeout_s)
            except (TimeoutError, StopAsyncIteration):
                raise RuntimeError(f"{name} stopped before its end (offset {end - 1})") from None
            for message in batch:
                found.offer(message)
            if batch and batch[-1].offset >= end - 1:
                return found
    finally:
        await stream.aclose()


class _Source:
    """Where the audit's blocks come from: workers check ranges, the parent replays them."""

    def __init__(self, config: StorageConfig, component: str, topic_blocks: TopicBlocks | None) -> None:
        self.config, self.component, self.topic = config, component, topic_blocks
        self.store = open_block_store(config, component, readonly=True) if topic_blocks is None else None

    def height(self) -> int:
        return self.topic.height if self.topic is not None else self.store.height()  # type: ignore[union-attr]

    def submit(
        self, pool: ProcessPoolExecutor, genesis_json: str, start: int, end: int, records: bool
    ) -> Future[list[BlockCheck]]:
        if self.topic is None:
            return pool.submit(_check_range, self.config, self.component, genesis_json, start, end, records)
        raws = [self.topic.candidates[h][0][0] for h in range(start, end + 1)]
        return pool.submit(_check_raw, genesis_json, raws, self.config, self.component, records)

    def blocks(self, start: int, end: int) -> Iterator[SealedBlock]:
        if self.topic is None:
            return iter(self.store.blocks(start, end))  # type: ignore[union-attr]
        return (self.topic.candidates[h][0][1] for h in range(start, end + 1))

    def alternatives(self, height: int) -> list[SealedBlock]:
        """Other blocks the topic holds for ``height`` (forged or conflicting ones)."""
        return [] if self.topic is None else [b for _, b in self.topic.candidates.get(height, [])[1:]]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


# --------------------------------------------------------------------------- checks


@dataclass
class AuditReport:
    height: int
    txs: int
    first_bad_height: int | None = None
    problem: str | None = None
    service: str | None = None  # the service whose results a bad results root differs in, if known
    tx_id: str | None = None
    replayed: tuple[str, ...] = ()  # what re-executed: "chain" and the services
    records_compared: int = 0  # heights whose node record was compared with the replay
    divergences: list[Difference] = field(default_factory=list)  # the node's record vs the replay
    notes: list[str] = field(default_factory=list)

    @property
    def chain_ok(self) -> bool:
        return self.problem is None

    @property
    def ok(self) -> bool:
        """The chain verifies and the audited node's record agrees with the replay."""
        return self.problem is None and not self.divergences


def _ranges(height: int, workers: int) -> Iterator[tuple[int, int]]:
    """Block ranges small enough that every worker gets several (blocks can be large)."""
    size = max(1, min(CHUNK, height // (workers * 4)))
    for start in range(1, height + 1, size):
        yield start, min(height, start + size - 1)


class _Links:
    """The sequential header checks: validator sets and quorum, hash links, times, nonce order."""

    def __init__(self, genesis: Genesis) -> None:
        self.prev_hash = genesis.genesis_hash()
        self.prev_time = genesis.genesis_time
        self.height = 0
        self.nonces: dict[str, int] = {}
        self.validators = validator_set(genesis.validators)
        self.validators_hash = validator_set_hash(self.validators)

    def problem(self, block: BlockCheck) -> str | None:
        """Why ``block`` cannot be the next height (changes nothing)."""
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
        seen: dict[str, int] = {}
        for sender, nonce in block.nonces:
            expected = seen.get(sender, self.nonces.get(sender, 0)) + 1
            if nonce != expected:
                return f"sender {sender[:16]}… used nonce {nonce}, expected {expected}"
            seen[sender] = nonce
        return None

    def advance(self, block: BlockCheck) -> None:
        header = block.header
        upcoming = next_validators(header, block.next_validators, self.validators)
        assert not isinstance(upcoming, str)
        self.nonces.update(block.nonces)
        self.height, self.prev_hash, self.prev_time = block.height, block.block_hash, header.time
        self.validators, self.validators_hash = upcoming, header.next_validator_set_hash


def audit_chain(
    config: StorageConfig,
    component: str,
    genesis: Genesis,
    workers: int | None,
    progress: Progress | None = None,
    replay: bool = True,
    topic_blocks: TopicBlocks | None = None,
) -> AuditReport:
    """Audit ``component``'s block store (or ``topic_blocks``, read from the ``blocks`` topic).
    Workers verify signatures and roots; the parent checks the links and, with ``replay``,
    re-executes the chain and its services to check every ``last_results_root`` and compare the
    node's recorded results (``results/<h>`` in ``component``'s state store, if any)."""
    source = _Source(config, component, topic_blocks)
    state = _open_record(config, component) if replay and genesis.params.services else None
    try:
        height = source.height()
        report = AuditReport(height=height, txs=0)
        try:
            results = ResultsAudit(genesis, _record_reader(state)) if replay else None
        except ValueError as exc:
            report.first_bad_height, report.problem = 1, f"cannot replay: {exc}"
            return report
        if results is not None:
            report.replayed = ("chain", *results.replay.services.active)
        _run(source, genesis, workers, progress, report, results)
        if results is not None:
            report.records_compared, report.divergences = results.compared, results.divergences
            if results.blame is not None:
                report.service, report.tx_id = results.blame.service, results.blame.tx_id
        if topic_blocks is not None and report.chain_ok and max(topic_blocks.candidates, default=0) > height:
            report.first_bad_height = height + 1
            report.problem = (
                f"block {height + 1} is missing from the topic (it holds blocks up to {max(topic_blocks.candidates)})"
            )
        return report
    finally:
        source.close()
        if state is not None:
            state.close()


def _run(
    source: _Source,
    genesis: Genesis,
    workers: int | None,
    progress: Progress | None,
    report: AuditReport,
    results: ResultsAudit | None,
) -> None:
    links = _Links(genesis)
    task = progress.add_task("verifying", total=report.height) if progress else None
    genesis_json = genesis.model_dump_json()
    processes = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=processes) as pool:
        ranges = list(_ranges(report.height, processes))
        records = results is not None and results.recorded is not None
        futures = [source.submit(pool, genesis_json, s, e, records) for s, e in ranges]
        for (start, end), future in zip(ranges, futures, strict=True):
            checks = future.result()
            blocks = source.blocks(start, end) if results is not None else None
            for check in checks:
                block = next(blocks) if blocks is not None else None
                problem = _accept(links, results, check, block)
                if problem is not None:
                    problem = _try_alternatives(links, results, source, genesis, check, problem, report)
                if problem is not None:
                    for f in futures:
                        f.cancel()
                    report.first_bad_height, report.problem = check.height, problem
                    return
                report.txs += len(check.nonces)
                if progress is not None and task is not None:
                    progress.advance(task)
            if len(checks) != end - start + 1:
                report.first_bad_height = links.height + 1
                report.problem = "block missing from the store"
                return


def _accept(links: _Links, results: ResultsAudit | None, check: BlockCheck, block: SealedBlock | None) -> str | None:
    problem = links.problem(check)
    if problem is None and results is not None:
        problem = results.problem(check.header)
    if problem is not None:
        return problem
    links.advance(check)
    if results is not None and block is not None:
        try:
            results.execute(block, check.record_root)
        except ValueError as exc:
            return f"cannot replay block {block.height}: {exc}"
    return None


def _try_alternatives(
    links: _Links,
    results: ResultsAudit | None,
    source: _Source,
    genesis: Genesis,
    check: BlockCheck,
    problem: str,
    report: AuditReport,
) -> str | None:
    """A forged block can sit on the topic before the real one at its height: try the others."""
    for other in source.alternatives(check.height):
        if _accept(links, results, block_check(other, genesis), other) is None:
            if results is not None:
                results.blame = None
            report.notes.append(f"skipped a block at height {check.height} that does not verify: {problem}")
            return None
    return problem


def _open_record(config: StorageConfig, component: str) -> StateStore | None:
    """The audited node's state store (for its ``results/<h>`` record), if it has one."""
    if config.backend == "sqlite" and not (Path(config.data_dir) / component / "state.sqlite").exists():
        return None
    try:
        return open_state_store(config, component, readonly=True)
    except Exception:  # no store: nothing to compare, the replay does not need it
        return None


def _record_reader(state: StateStore | None) -> Callable[[int], bytes | None] | None:
    return None if state is None else (lambda h: state.get_meta(f"results/{h}"))


# --------------------------------------------------------------------------- command line


def run_audit_cli(
    settings: Settings,
    component: str,
    workers: int | None,
    console: Console,
    replay: bool = True,
    from_topic: bool = False,
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
    topic_blocks = None
    if from_topic:
        try:
            topic_blocks = asyncio.run(_read_topic(settings, genesis.chain_id))
        except (RuntimeError, SystemExit, OSError) as exc:
            console.print(f"[red]error:[/] cannot read the blocks topic: {exc}")
            return 2
        console.print(topic_blocks.describe(topic(genesis.chain_id, "blocks")))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        report = audit_chain(config, component, genesis, workers, progress, replay=replay, topic_blocks=topic_blocks)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    return print_report(report, console, component)


async def _read_topic(settings: Settings, chain_id: str) -> TopicBlocks:
    from traco.services.consensus.runtime import make_bus

    bus = make_bus(settings, "traco-audit")
    await bus.start()
    try:
        return await read_blocks_topic(bus, chain_id)
    finally:
        await bus.stop()


def print_report(report: AuditReport, console: Console, component: str) -> int:
    if report.chain_ok:
        what = f"results replayed ({', '.join(report.replayed)})" if report.replayed else "results roots not replayed"
        console.print(f"[green]OK[/]: {report.height} blocks, {report.txs} transactions verified; {what}")
    else:
        console.print(f"[red]FAILED at height {report.first_bad_height}[/]: {report.problem}", highlight=False)
    if report.replayed and report.records_compared:
        console.print(
            f"{component}'s record of the results compared with the replay at {report.records_compared} heights"
        )
    if report.divergences:
        heights = sorted({d.height for d in report.divergences})
        console.print(
            f"[red]DIVERGED[/]: {component}'s record differs from the replay at {len(heights)} height(s) "
            f"({_heights(heights)}); first: {report.divergences[0].describe()}",
            highlight=False,
        )
    return 0 if report.ok else 1


def _heights(heights: Sequence[int]) -> str:
    shown = ", ".join(str(h) for h in heights[:10])
    return shown + (", …" if len(heights) > 10 else "")
