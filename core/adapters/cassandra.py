"""Cassandra block and state stores, for deployments where many nodes share a cluster (decision 0007).

Why: SQLite keeps a node's stores on its own disk; an operator who runs the mesh on
Kubernetes may prefer a replicated database that outlives any pod. These stores implement
the same ports with ``cassandra-driver`` and pass the same contract tests, which run
wherever a node is reachable (``TRACO_CASSANDRA_HOSTS``) and are skipped elsewhere.

How::

    blocks = CassandraBlockStore(["10.0.0.5", "10.0.0.6:9043"], "traco", component="consensus")
    state = CassandraStateStore(session, "traco", "doc")       # or share a Session

``hosts_from_env()`` (in ``cassandra_cql.py``, with the schema, the statements and the rows)
reads ``TRACO_CASSANDRA_HOSTS`` (comma-separated ``host[:port]``) and
``keyspace_from_env()`` ``TRACO_CASSANDRA_KEYSPACE`` (default ``traco``). Every store runs
``ensure_schema`` when it starts: the checked-in ``cassandra.cql`` with the keyspace
(replication factor from ``replication_factor`` or ``TRACO_CASSANDRA_REPLICATION_FACTOR``,
default 1; ``SimpleStrategy``, or ``NetworkTopologyStrategy`` when a data centre is named).
All statements are prepared once per store; reads and writes use ``LOCAL_QUORUM``, the
lightweight transactions (LWT) ``LOCAL_SERIAL``.

How a block is stored (``put_block``):

1. the block row is inserted ``IF NOT EXISTS``. If another block is there, ``ForkDetected``;
   if the same one is, the put is a no-op (after finishing steps 2-3, see below);
2. the tx index rows are written (idempotent upserts, concurrently);
3. the store's height is advanced with an LWT, ``IF height = h - 1``.

The height is written last, so ``height()`` never counts a block whose index is incomplete.
A writer that dies between 1 and 3 leaves a block row above the height; the next writer to
open the store (or to put that block again) finishes steps 2-3 for it.

How a state batch is committed (``commit``):

1. the height is read with a serial read: a stored height returns False, a gap raises
   ``HeightGap``;
2. the digest row of the height is inserted ``IF NOT EXISTS``: it *claims* the height for one
   set of results. A claim with another digest means two writers computed different results
   for one block (non-determinism): ``StorageError``, nothing written. A claim with the same
   digest is an interrupted or concurrent commit of the same results, which this one finishes;
3. state writes, receipts (by height and by tx id) and events go in one LOGGED BATCH;
4. the height is advanced with an LWT, ``IF height = h - 1``.

Pre-ordering rejections live in their own table and are never deleted: ``receipt()`` looks
at sealed receipts first, and ``put_rejection`` skips a sealed transaction, so a sealed
receipt always wins without the batch touching one more partition per transaction.

Guarantees and caveats:

* **Atomic, not isolated.** A logged batch is applied entirely or not at all (the batchlog
  replays it if the coordinator dies), but it spans partitions and replicas, so a reader may
  see some of its rows before others. Reads keyed by height (``receipts``, ``events``,
  ``state_digest``, ``receipt``) only show heights up to ``height()``, which moves after the
  batch has succeeded, so they never see half a block. ``get``/``scan`` read current state and
  may see a batch that is being applied.
* **Idempotent.** Rows of height ``h`` are written ``USING TIMESTAMP h``, not with wall-clock
  time. Re-applying a batch therefore writes identical cells, and a slow writer that applies
  an old height late can never overwrite a newer height's values (its timestamp is lower).
  The price: rows in ``state``, ``receipts``, ``receipts_by_tx``, ``events`` must never be
  written by hand without ``USING TIMESTAMP`` (a wall-clock timestamp would win forever).
* **Repeated and concurrent commits.** A re-commit of a stored height returns False without
  writing. Two processes committing the same height with the same results both finish it; one
  with other results is refused at the claim. An interrupted commit whose re-execution yields
  a different digest is refused forever: an operator must delete that claim (non-determinism
  is a bug to investigate, not to paper over).
* **Batch size.** A block of 2,000 transactions makes a batch of about 1-2 MB. Cassandra
  refuses batches above ``batch_size_fail_threshold`` (default 50 KiB) and logs above
  ``batch_size_warn_threshold``: raise both (e.g. to 16 MiB) on clusters that run TRACO. A
  refused batch fails the commit with ``StorageError`` before anything is applied; the claim
  stays and the commit can be retried after the change. The largest single mutation (a block
  row) is bounded by ``max_mutation_size`` (half the commit-log segment, 16 MiB by default).
* **Durability.** A write acknowledged at ``LOCAL_QUORUM`` is in the commit log of a quorum of
  replicas; with the default ``commitlog_sync: periodic`` (10 s) a simultaneous power loss of
  those replicas can still lose it. ``set_meta`` guards a validator against double signing:
  where that matters, run the cluster with ``commitlog_sync: batch`` (or ``group``).
* **Block rows go through Paxos.** The ``IF NOT EXISTS`` insert that detects forks writes a
  block twice (Paxos state, then the table): fine for blocks of a few MB, the price of a
  fork check that holds across writers.
* **Partitions.** A service's state is one partition (so ``scan`` is one clustering range);
  keep a component's state well below ~100 MB or split the service.
* **Schema changes** are applied only when a table is missing, because concurrent
  ``CREATE TABLE IF NOT EXISTS`` from several clients can disagree on schema: create the
  schema once (one process) before starting a fleet.
* **Threads.** The driver's session is thread-safe; these stores keep no mutable state of
  their own besides it, so any thread may call them.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, TypeVar

from cassandra import ConsistencyLevel, DriverException
from cassandra.cluster import Cluster, NoHostAvailable
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.protocol import ErrorMessage
from cassandra.query import BatchStatement, BatchType

from traco.core.adapters.cassandra_cql import (
    DEFAULT_KEYSPACE,
    SCHEMA_VERSION,
    Statements,
    block_row,
    check_component,
    check_identifier,
    column,
    parse_hosts,
    prefix_range,
    replication_factor_from_env,
    replication_map,
    schema_statements,
    schema_tables,
    state_batch_rows,
    tx_index_rows,
)
from traco.core.adapters.memory_store import check_rejection, warn_if_diverged
from traco.core.errors import ForkDetected, HeightGap, StorageError
from traco.core.ports import BlockStore, StateBatch, StateStore
from traco.schemas.block import BlockHeader, SealedBlock
from traco.schemas.events import DomainEvent
from traco.schemas.receipt import Receipt

log = logging.getLogger(__name__)

T = TypeVar("T")

SCAN_PAGE: Final = 1000
"""Rows per page of ``scan`` (the driver fetches the next page while the caller iterates)."""
BLOCK_WINDOW: Final = 8
"""Block reads kept in flight by ``blocks()``."""
INDEX_CONCURRENCY: Final = 64
REQUEST_TIMEOUT_S: Final = 30.0

_DRIVER_ERRORS: Final = (DriverException, NoHostAvailable, ErrorMessage)


# --------------------------------------------------------------------------- connections


class _Clusters:
    """Driver clusters shared by the stores of one process, closed with the last store.

    A ``Cluster`` holds connection pools and threads; a service opens a block store and a
    state store, which should not mean two of each.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[tuple[str, int], ...], tuple[Any, Any, int]] = {}

    def acquire(self, hosts: Sequence[str], connect_timeout: float) -> tuple[Any, Any]:
        key = tuple(parse_hosts(hosts))
        if not key:
            raise StorageError("no Cassandra hosts given (set TRACO_CASSANDRA_HOSTS)")
        with self._lock:
            if key in self._open:
                shared, session, users = self._open[key]
                self._open[key] = (shared, session, users + 1)
                return key, session
            cluster: Any = None
            try:
                cluster = Cluster(
                    contact_points=list(key),
                    connect_timeout=connect_timeout,
                    control_connection_timeout=connect_timeout,
                )
                session = cluster.connect()
            except _DRIVER_ERRORS as exc:
                if cluster is not None:
                    cluster.shutdown()
                raise StorageError(f"cannot reach Cassandra at {list(hosts)}: {exc}") from exc
            session.default_timeout = REQUEST_TIMEOUT_S
            self._open[key] = (cluster, session, 1)
            return key, session

    def release(self, key: Any) -> None:
        with self._lock:
            cluster, session, users = self._open[key]
            if users > 1:
                self._open[key] = (cluster, session, users - 1)
                return
            del self._open[key]
        cluster.shutdown()


_CLUSTERS = _Clusters()


def ensure_schema(session: Any, keyspace: str, replication_factor: int = 1, datacenter: str | None = None) -> None:
    """Create the keyspace and tables of ``cassandra.cql`` that do not exist yet.

    Skips all DDL when every table exists (see the module docstring on concurrent schema
    changes), then checks the recorded schema version.
    """
    check_identifier(keyspace)
    with _translate(f"ensure_schema({keyspace})"):
        existing = _existing_tables(session, keyspace)
        if existing is None or not set(schema_tables()) <= existing:
            replication = replication_map(replication_factor, datacenter)
            for statement in schema_statements(keyspace, replication):
                session.execute(statement, timeout=REQUEST_TIMEOUT_S)
        statements = Statements(keyspace)
        record = session.prepare(statements.insert_schema_version)  # "?" needs preparing
        record.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
        session.execute(record, (SCHEMA_VERSION,))
        row = session.execute(statements.select_schema_version).one()
    version = int(column(row, "version"))
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"keyspace {keyspace} has schema version {version}, written by a newer TRACO "
            f"(this one knows up to {SCHEMA_VERSION})"
        )


def _existing_tables(session: Any, keyspace: str) -> set[str] | None:
    metadata = session.cluster.metadata.keyspaces.get(keyspace)
    return None if metadata is None else set(metadata.tables)


@contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except _DRIVER_ERRORS as exc:
        raise StorageError(f"Cassandra: {what} failed: {exc}") from exc


class _Connection:
    """A session (owned or borrowed), the prepared statements, and helpers both stores use."""

    def __init__(
        self,
        session_or_hosts: Any,
        keyspace: str,
        replication_factor: int | None,
        datacenter: str | None,
        connect_timeout: float,
    ) -> None:
        self.keyspace = check_identifier(keyspace)
        self._cluster_key: Any = None
        if isinstance(session_or_hosts, str):
            session_or_hosts = [h for h in session_or_hosts.split(",") if h.strip()]
        if isinstance(session_or_hosts, Sequence):
            self._cluster_key, self.session = _CLUSTERS.acquire(session_or_hosts, connect_timeout)
        else:
            self.session = session_or_hosts
        try:
            rf = replication_factor_from_env() if replication_factor is None else replication_factor
            ensure_schema(self.session, keyspace, rf, datacenter)
            self.statements = Statements(keyspace)
            with _translate("prepare"):
                self.prepared = {name: self._prepare(cql) for name, cql in self.statements.all().items()}
        except BaseException:
            self.close()
            raise

    def _prepare(self, cql: str) -> Any:
        prepared = self.session.prepare(cql)
        prepared.consistency_level = ConsistencyLevel.LOCAL_QUORUM
        prepared.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
        return prepared

    def run(self, name: str, params: Sequence[object], what: str, serial: bool = False) -> Any:
        """Execute a prepared statement; ``serial`` reads at LOCAL_SERIAL (sees LWT results)."""
        statement = self.prepared[name].bind(params)
        if serial:
            statement.consistency_level = ConsistencyLevel.LOCAL_SERIAL
        with _translate(what):
            return self.session.execute(statement)

    def one(self, name: str, params: Sequence[object], col: str, what: str) -> Any:
        """Column ``col`` of the first row, or None."""
        row = self.run(name, params, what).one()
        return None if row is None else column(row, col)

    def height(self, component: str, kind: str, serial: bool = False) -> int:
        row = self.run("select_height", (component, kind), "height", serial=serial).one()
        return 0 if row is None else int(column(row, "height"))

    def advance(self, component: str, kind: str, height: int) -> None:
        """Move ``component``'s height from ``height - 1`` to ``height`` (an LWT)."""
        what = f"advance {kind} height of {component} to {height}"
        if height == 1:
            result = self.run("insert_first_height", (component, kind, 1), what)
        else:
            result = self.run("advance_height", (height, component, kind, height - 1), what)
        if not result.was_applied:
            current = self.height(component, kind, serial=True)
            if current < height:
                raise StorageError(f"{what}: the stored height is {current}, not {height - 1}")
            # else: a concurrent writer of the same height got there first

    def concurrent(self, name: str, rows: Sequence[Sequence[object]], what: str) -> None:
        if not rows:
            return
        with _translate(what):
            execute_concurrent_with_args(self.session, self.prepared[name], rows, concurrency=INDEX_CONCURRENCY)

    def close(self) -> None:
        if self._cluster_key is not None:
            key, self._cluster_key = self._cluster_key, None
            _CLUSTERS.release(key)


# --------------------------------------------------------------------------- stores


class CassandraBlockStore(BlockStore):
    """The sealed chain of one component in Cassandra; see the module docstring.

    ``session_or_hosts`` is a connected ``cassandra.cluster.Session`` (not closed by
    ``close()``) or host names (``host[:port]``, a list or a comma-separated string) for a
    cluster this process shares between its stores.
    """

    KIND: Final = "blocks"

    def __init__(
        self,
        session_or_hosts: Any,
        keyspace: str = DEFAULT_KEYSPACE,
        component: str = "chain",
        *,
        replication_factor: int | None = None,
        datacenter: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self._component = check_component(component)
        self._db = _Connection(session_or_hosts, keyspace, replication_factor, datacenter, connect_timeout)
        try:
            self._roll_forward()
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"CassandraBlockStore({self._db.keyspace!r}, {self._component!r})"

    def height(self) -> int:
        return self._db.height(self._component, self.KIND)

    def put_block(self, block: SealedBlock) -> bool:
        height = block.height
        head = self._db.height(self._component, self.KIND, serial=True)
        if height > head + 1:
            head = self._roll_forward()
            if height > head + 1:
                raise HeightGap(head, height)
        block_hash = block.block_hash()
        if height <= head:
            stored = self._db.one("select_block_hash", (self._component, height), "hash", f"block {height}")
            if stored is None:
                raise StorageError(f"block {height} is missing below the stored height {head}")
            if stored != block_hash:
                raise ForkDetected(height, stored, block_hash)
            return False
        result = self._db.run("insert_block", (self._component, *block_row(block)), f"put_block({height})")
        if not result.was_applied:
            stored = column(result.one(), "hash")
            if stored != block_hash:
                raise ForkDetected(height, stored, block_hash)
        # Also when the row was already there: its writer may have died before finishing.
        self._finish(block)
        return bool(result.was_applied)

    def _finish(self, block: SealedBlock) -> None:
        """Steps 2 and 3 of a put: index the transactions, then advance the height."""
        self._db.concurrent("insert_tx_index", tx_index_rows(self._component, block), f"index {block.height}")
        self._db.advance(self._component, self.KIND, block.height)

    def _roll_forward(self) -> int:
        """Finish puts that stored a block row but died before advancing the height."""
        head = self._db.height(self._component, self.KIND, serial=True)
        while (block := self.block(head + 1)) is not None:
            log.info("finishing the interrupted put of block %d", block.height)
            self._finish(block)
            head += 1
        return head

    def block(self, height: int) -> SealedBlock | None:
        raw = self._db.one("select_block", (self._component, height), "block", f"block({height})")
        return None if raw is None else SealedBlock.model_validate_json(raw)

    def header(self, height: int) -> BlockHeader | None:
        raw = self._db.one("select_header", (self._component, height), "header", f"header({height})")
        return None if raw is None else BlockHeader.model_validate_json(raw)

    def tx_location(self, tx_id: str) -> tuple[int, int] | None:
        row = self._db.run("select_tx_location", (self._component, tx_id), f"tx_location({tx_id})").one()
        return None if row is None else (int(column(row, "height")), int(column(row, "idx")))

    def blocks(self, start: int, end: int) -> Iterator[SealedBlock]:
        # One partition per block, so read heights one by one, keeping a few reads in flight.
        statement = self._db.prepared["select_block"]
        pending: deque[Any] = deque()
        next_height = max(start, 1)

        def submit() -> None:
            nonlocal next_height
            with _translate(f"block({next_height})"):
                pending.append(self._db.session.execute_async(statement, (self._component, next_height)))
            next_height += 1

        while next_height <= end and len(pending) < BLOCK_WINDOW:
            submit()
        while pending:
            with _translate("blocks"):
                row = pending.popleft().result().one()
            if row is None:
                return
            yield SealedBlock.model_validate_json(column(row, "block"))
            if next_height <= end:
                submit()

    def close(self) -> None:
        self._db.close()


class CassandraStateStore(StateStore):
    """One service's state, receipts, events, digests and meta in Cassandra."""

    KIND: Final = "state"

    def __init__(
        self,
        session_or_hosts: Any,
        keyspace: str,
        component: str,
        *,
        replication_factor: int | None = None,
        datacenter: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self._component = check_component(component)
        self._db = _Connection(session_or_hosts, keyspace, replication_factor, datacenter, connect_timeout)

    def __repr__(self) -> str:
        return f"CassandraStateStore({self._db.keyspace!r}, {self._component!r})"

    def height(self) -> int:
        return self._db.height(self._component, self.KIND)

    def _visible(self, height: int) -> bool:
        """Rows of ``height`` are shown only once its commit moved the height (isolation)."""
        return 1 <= height <= self.height()

    def get(self, key: str) -> bytes | None:
        raw = self._db.one("select_value", (self._component, key), "value", f"get({key!r})")
        return None if raw is None else bytes(raw)

    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        low, high = prefix_range(prefix)
        params: tuple[str, ...]
        if high is None:
            name, params = "scan_unbounded", (self._component, low)
        else:
            name, params = "scan_bounded", (self._component, low, high)
        statement = self._db.prepared[name].bind(params)
        statement.fetch_size = SCAN_PAGE
        with _translate(f"scan({prefix!r})"):
            rows = self._db.session.execute(statement)
        yield from _translated(((column(r, "key"), bytes(column(r, "value"))) for r in rows), "scan")

    def commit(self, batch: StateBatch) -> bool:
        height = batch.height
        rows = state_batch_rows(self._component, batch)  # type errors before any write
        head = self._db.height(self._component, self.KIND, serial=True)
        if height <= head:
            stored = self._db.one("select_digest", (self._component, height), "state_digest", "digest")
            if stored is not None:
                warn_if_diverged(batch, stored)
            return False
        if height != head + 1:
            raise HeightGap(head, height, "state batch")
        claim = self._db.run(
            "claim_digest",
            (self._component, height, batch.state_digest),
            f"claim height {height}",
        )
        if not claim.was_applied:
            claimed = column(claim.one(), "state_digest")
            if claimed != batch.state_digest:
                raise StorageError(
                    f"height {height} of {self._component} is claimed with digest {claimed}, "
                    f"this batch has {batch.state_digest}: two executions of one block differ"
                )
            log.info("finishing an interrupted commit of %s height %d", self._component, height)
        statement = BatchStatement(batch_type=BatchType.LOGGED, consistency_level=ConsistencyLevel.LOCAL_QUORUM)
        for name, params in rows.items():
            prepared = self._db.prepared[name]
            for values in params:
                statement.add(prepared, values)
        if len(statement):  # a block with nothing for this service still moves its height
            with _translate(f"commit({height})"):
                self._db.session.execute(statement)
        self._db.advance(self._component, self.KIND, height)
        return True

    def receipt(self, tx_id: str) -> Receipt | None:
        head = self.height()
        rows = self._db.run("select_receipts_by_tx", (self._component, tx_id), f"receipt({tx_id})")
        with _translate(f"receipt({tx_id})"):
            for row in rows:  # clustered by (height, idx): the first visible one wins
                if int(column(row, "height")) <= head:
                    return Receipt.model_validate_json(column(row, "receipt"))
        raw = self._db.one("select_rejection", (self._component, tx_id), "receipt", f"receipt({tx_id})")
        return None if raw is None else Receipt.model_validate_json(raw)

    def receipts(self, height: int) -> list[Receipt]:
        if not self._visible(height):
            return []
        rows = self._db.run("select_receipts", (self._component, height), "receipts")
        return _all(rows, lambda r: Receipt.model_validate_json(column(r, "receipt")), "receipts")

    def put_rejection(self, receipt: Receipt) -> None:
        check_rejection(receipt)
        if self._sealed(receipt.tx_id):
            return
        self._db.run(
            "upsert_rejection",
            (self._component, receipt.tx_id, receipt.model_dump_json()),
            f"put_rejection({receipt.tx_id})",
        )

    def _sealed(self, tx_id: str) -> bool:
        rows = self._db.run("select_receipts_by_tx", (self._component, tx_id), "receipt")
        with _translate("receipt"):
            return any(True for _ in rows)

    def events(self, height: int) -> list[DomainEvent]:
        if not self._visible(height):
            return []
        rows = self._db.run("select_events", (self._component, height), "events")
        return _all(rows, lambda r: DomainEvent.model_validate_json(column(r, "event")), "events")

    def state_digest(self, height: int) -> str | None:
        if not self._visible(height):
            return None
        raw = self._db.one("select_digest", (self._component, height), "state_digest", "digest")
        return None if raw is None else str(raw)

    def get_meta(self, key: str) -> bytes | None:
        raw = self._db.one("select_meta", (self._component, key), "value", f"get_meta({key!r})")
        return None if raw is None else bytes(raw)

    def set_meta(self, key: str, value: bytes, durable: bool = True) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"meta values are bytes, not {type(value).__name__}")
        self._db.run("upsert_meta", (self._component, key, value), f"set_meta({key!r})")

    def close(self) -> None:
        self._db.close()


def _translated(items: Iterator[T], what: str) -> Iterator[T]:
    """Re-raise driver errors from a lazily paged result (the next page is fetched on demand)."""
    with _translate(what):
        yield from items


def _all(rows: Any, convert: Callable[[Any], T], what: str) -> list[T]:
    with _translate(what):
        return [convert(row) for row in rows]
