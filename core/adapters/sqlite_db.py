"""The SQLite connection both stores share: pragmas, one lock, transactions, errors, the schema.

Part of ``traco.core.adapters.sqlite`` (import the stores from there). ``SqliteBlockStore``
(``sqlite_blocks``) and ``SqliteStateStore`` (``sqlite_state``) each own one ``Database`` and
only say which tables they hold and how they read and write them.

Design:

* **WAL mode**, so readers never block the writer nor the writer them. A process (the HTTP
  API) may open the file with ``readonly=True`` while another (the validator) writes; every
  read is its own short read transaction and sees the latest commit.
* **One transaction per write.** ``put_block`` stores the block and its tx index;
  ``commit`` stores state writes, receipts, events and the digest (whose row *is* the
  height) together, or nothing. The heights are checked inside the same write transaction
  (``BEGIN IMMEDIATE`` takes the write lock first), so two writers cannot both append the
  same height. Re-putting a stored block or re-committing a stored height changes nothing.
* **Durability.** Block and state commits use ``synchronous=NORMAL``: in WAL mode a commit
  then survives a crash of the *process*, and the database is never corrupted, but a power
  loss or OS crash may roll back the last few commits. That is recoverable: blocks are
  sealed elsewhere too (peers, the ``blocks`` topic) and state is re-executed from blocks.
  ``set_meta`` is different: it guards a validator against signing twice, so it must be on
  disk before the caller sends a signed vote. It switches the connection to
  ``synchronous=FULL`` for its one transaction, which makes SQLite fsync the WAL at commit
  (checked with strace: 0 fsyncs per commit under NORMAL, one or more under FULL); the fsync
  also covers every earlier NORMAL commit of the same file. It costs 0.4-1 ms here, more
  right after a large commit whose pages it must sync too.
  Pass ``synchronous="FULL"`` to make every commit of a store durable in the same way.
  Checkpoints (the WAL copied into the database file, with a sync of each) run once the WAL
  holds ``WAL_AUTOCHECKPOINT_PAGES`` pages.
* **Schema** is created on open; a ``schema_version`` table records which store the file is
  and the schema version, so a state file opened as a block store, or a file written by a
  newer TRACO, is refused with a clear ``StorageError`` instead of being misread.

Caveats:

* Threads: each store owns one connection, made with ``check_same_thread=False`` and guarded
  by a lock, so any thread may call it (e.g. through ``asyncio.to_thread``), one call at a
  time. It is meant to be used from one thread, the service's event loop; calls are short.
* ``readonly=True`` needs the file to exist (open a writer first). If the writer is not
  running, SQLite must create the ``-shm`` file, so the directory must be writable.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

from traco.core.errors import StorageError

SCHEMA_VERSION: Final = 2
"""Bump with a step in ``_MIGRATIONS`` when a table changes.

1 -> 2: a state store keeps a height's events in one JSON array row, not a row per event.
"""

BUSY_TIMEOUT_S: Final = 10.0
"""How long a statement waits for another connection's lock before failing."""

CACHE_KIB: Final = 16 * 1024
"""Page cache per connection: the tx and receipt indexes take random inserts."""

WAL_AUTOCHECKPOINT_PAGES: Final = 10_000
"""Pages the WAL may hold before a commit copies them into the database file (SQLite's default
is 1,000). Why more: a checkpoint syncs the WAL and the database file, and copies each changed
page once however often it changed; the state tree's nodes are keyed by hash, so a busy block
changes rows all over the state table, and at 1,000 pages nearly every such block paid a
checkpoint (measured on a block of 150 matched orders: the commit's own share 101 -> 61 µs per
order). The WAL file then grows to about 40 MiB per store before it is reused from its start."""

Synchronous = Literal["NORMAL", "FULL"]


def _events_one_row_per_height(conn: sqlite3.Connection) -> None:
    """State schema 1 -> 2: fold the per-event rows of each height into one JSON array."""
    conn.execute("ALTER TABLE events RENAME TO events_v1")
    conn.execute("CREATE TABLE events (height INTEGER PRIMARY KEY, events TEXT NOT NULL)")
    grouped: dict[int, list[str]] = {}
    for height, raw in conn.execute("SELECT height, event FROM events_v1 ORDER BY height, seq"):
        grouped.setdefault(height, []).append(raw)
    conn.executemany(
        "INSERT INTO events (height, events) VALUES (?, ?)",
        [(height, "[" + ",".join(raws) + "]") for height, raws in grouped.items()],
    )
    conn.execute("DROP TABLE events_v1")


_MIGRATIONS: Final[dict[tuple[str, int], Callable[[sqlite3.Connection], None]]] = {
    ("state", 1): _events_one_row_per_height,
}
"""``(store kind, from version)`` -> the step to the next version; a kind without a step at
some version had nothing to change (blocks went 1 -> 2 unchanged)."""


class Database:
    """One connection with the pragmas, the lock and the error translation both stores share."""

    def __init__(self, path: Path, kind: str, schema: str, readonly: bool, synchronous: Synchronous) -> None:
        self.path = path
        self.kind = kind
        self.readonly = readonly
        self._synchronous = synchronous
        self._lock = threading.Lock()
        try:
            self._conn = self._connect()
        except sqlite3.Error as exc:
            raise StorageError(f"{path}: cannot open the {kind} store: {exc}") from exc
        try:
            self._prepare(schema)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            if not self.path.exists():
                raise StorageError(f"{self.path}: no {self.kind} store to open read-only (start the writer first)")
            target = f"{self.path.resolve().as_uri()}?mode=ro"
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target = str(self.path)
        return sqlite3.connect(
            target,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,  # autocommit; transactions are explicit BEGIN/COMMIT
            check_same_thread=False,  # safe: every use holds self._lock
            uri=self.readonly,
        )

    def _prepare(self, schema: str) -> None:
        with self._translate("open"):
            if self.readonly:
                self._conn.execute("PRAGMA query_only = ON")
            else:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StorageError(f"{self.path}: WAL mode unavailable (got {mode!r})")
                self._conn.execute(f"PRAGMA synchronous = {self._synchronous}")
                self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                self._conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._create(schema)
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            self._check_version()

    def _create(self, schema: str) -> None:
        conn = self._conn
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (store TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version WHERE store = ?", (self.kind,))
        found = row.fetchone()
        if found is None and conn.execute("SELECT 1 FROM schema_version").fetchone() is None:
            # Not executescript(): it would commit the open transaction first.
            code = "\n".join(line.split("--")[0] for line in schema.splitlines())
            for statement in code.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (self.kind, SCHEMA_VERSION))
        elif found is not None and found[0] < SCHEMA_VERSION:
            for version in range(found[0], SCHEMA_VERSION):
                step = _MIGRATIONS.get((self.kind, version))
                if step is not None:
                    step(conn)
            conn.execute("UPDATE schema_version SET version = ? WHERE store = ?", (SCHEMA_VERSION, self.kind))

    def _check_version(self) -> None:
        try:
            rows = self._conn.execute("SELECT store, version FROM schema_version").fetchall()
        except sqlite3.OperationalError as exc:
            raise StorageError(f"{self.path}: not a TRACO store ({exc})") from exc
        if len(rows) != 1 or rows[0][0] != self.kind:
            found = ", ".join(f"{store} v{version}" for store, version in rows) or "nothing"
            raise StorageError(f"{self.path}: expected a {self.kind} store, found {found}")
        if rows[0][1] > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path}: schema version {rows[0][1]} was written by a newer TRACO "
                f"(this one knows up to {SCHEMA_VERSION})"
            )
        if rows[0][1] < SCHEMA_VERSION:  # only a read-only opener gets here
            raise StorageError(
                f"{self.path}: schema version {rows[0][1]} is older than {SCHEMA_VERSION}; "
                "open it once read-write (start its writer) to migrate it"
            )

    @contextmanager
    def _translate(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {what} failed: {exc}") from exc

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """All rows of one query; the cursor is closed, so no read transaction stays open.

        The error translation is written out here rather than through ``_translate``: reads
        are the hot path (a busy block makes thousands), and a generator-based context manager
        per read cost as much as the query itself (measured under py-spy)."""
        with self._lock:
            try:
                cursor = self._conn.execute(sql, params)
                try:
                    return cursor.fetchall()
                finally:
                    cursor.close()
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: read failed: {exc}") from exc

    @contextmanager
    def write(self, what: str, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed if the block ends normally, else rolled back.

        ``durable`` makes this commit fsync the WAL (``synchronous=FULL``) before returning.
        """
        if self.readonly:
            raise StorageError(f"{self.path}: {what}: the {self.kind} store was opened read-only")
        with self._lock, self._translate(what):
            conn = self._conn
            full = durable and self._synchronous != "FULL"
            if full:  # may not change inside a transaction
                conn.execute("PRAGMA synchronous = FULL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:  # some errors end the transaction themselves
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if full:
                    conn.execute(f"PRAGMA synchronous = {self._synchronous}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
