"""SQLite block and state stores: the embedded default, one file per component (decision 0007).

Why SQLite: a node on one machine needs a transactional store with no server to run. The
stores follow the ports in ``traco.core.ports`` exactly; ``tests/core/test_storage_contract.py``
runs the same contract against this module, the memory stores and Cassandra.

How::

    blocks = SqliteBlockStore(data_dir / "consensus" / "blocks.sqlite")
    state = SqliteStateStore(data_dir / "consensus" / "state.sqlite")
    api_view = SqliteStateStore(same_path, readonly=True)   # e.g. in the HTTP API's process

Domain code does not build these itself: ``traco.core.adapters.factory`` picks the adapter.

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
* **Streaming.** ``blocks(start, end)`` and ``scan(prefix)`` read in pages (by height, by
  key), each page a short read, so a long replay never loads the whole chain and never
  holds a read transaction open (which would stop WAL checkpoints and grow the WAL file).
* **Schema** is created on open; a ``schema_version`` table records which store the file is
  and the schema version, so a state file opened as a block store, or a file written by a
  newer TRACO, is refused with a clear ``StorageError`` instead of being misread.
* **Speed.** Rows go in with ``executemany``; a height's events are one JSON array row (they
  are only read together). Measured on the 2-core development machine while other test
  suites ran (load ~3): ``put_block`` of 2,000 transactions (1 MB of JSON) ~23 ms, ``commit``
  of 2,000 receipts ~30 ms, of 2,000 receipts + 2,000 events + 2,000 state writes ~55 ms.
  About a third of that is pydantic serialising the models.
* **Receipts.** A sealed receipt always wins over a pre-ordering rejection: ``receipt()``
  ranks it first and ``put_rejection`` skips sealed transactions. A rejection stored before
  its transaction was sealed is left in place, unseen (deleting it would cost every commit a
  lookup per transaction). A transaction sealed twice keeps its first receipt and location.

Caveats:

* Threads: each store owns one connection, made with ``check_same_thread=False`` and guarded
  by a lock, so any thread may call it (e.g. through ``asyncio.to_thread``), one call at a
  time. It is meant to be used from one thread, the service's event loop; calls are short.
* ``scan`` reads in pages of ``PAGE_ROWS`` keys: each page is consistent, but a commit that
  lands between two pages of a long scan is visible in the later pages only. ``blocks`` has
  no such issue (stored blocks never change).
* The two files of a component are separate databases. After a power loss with
  ``synchronous=NORMAL`` the state file may be ahead of the block file; the ledger then
  refuses to start until the missing blocks are fetched again. ``synchronous="FULL"`` on the
  block store (one fsync per block) rules that out.
* ``readonly=True`` needs the file to exist (open a writer first). If the writer is not
  running, SQLite must create the ``-shm`` file, so the directory must be writable.
* A block is one row of JSON text (about 500 bytes per transaction); nothing is compressed.
* **The writer remembers what it read and wrote** (``SqliteStateStore`` opened read-write):
  the height and up to ``READ_CACHE_KEYS`` state values (absent keys too), updated by its own
  ``commit``. A service reads the same few records (its members, their roles, its tokens) for
  every transaction; each was a SQLite query, and those queries were a fifth of a node's CPU
  (decision 0008). It is right because a state file has one writer, this object (the
  service's runtime; a second writer is refused by the height check of ``commit``): a commit
  by another connection is noticed through ``PRAGMA data_version`` at the next ``commit`` or
  ``refresh()``, and everything remembered is dropped then. Read-only openers remember nothing.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import TypeAdapter

from traco.core.adapters.memory_store import check_rejection, split_writes, warn_if_diverged
from traco.core.errors import ForkDetected, HeightGap, StorageError
from traco.core.ports import BlockStore, StateBatch, StateStore
from traco.schemas.block import BlockHeader, SealedBlock
from traco.schemas.events import DomainEvent
from traco.schemas.receipt import Receipt

SCHEMA_VERSION: Final = 2
"""Bump with a step in ``_MIGRATIONS`` when a table changes.

1 -> 2: a state store keeps a height's events in one JSON array row, not a row per event.
"""

PAGE_BLOCKS: Final = 16
"""Blocks per read in ``blocks()``: a block of 2,000 transactions is about 1 MB of JSON."""

PAGE_ROWS: Final = 1000
"""Keys per read in ``scan()`` at most."""

FIRST_PAGE_ROWS: Final = 16
"""Keys in a scan's first read; each next read takes twice as many, up to ``PAGE_ROWS``."""

_LAST_CHAR: Final = chr(0x10FFFF)


def prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (None: no bound, for an
    empty prefix or one of only the last code point). Surrogates cannot be stored, so the
    successor of U+D7FF is U+E000."""
    stripped = prefix.rstrip(_LAST_CHAR)
    if not stripped:
        return None
    code = ord(stripped[-1]) + 1
    if 0xD800 <= code <= 0xDFFF:
        code = 0xE000
    return stripped[:-1] + chr(code)


BUSY_TIMEOUT_S: Final = 10.0
"""How long a statement waits for another connection's lock before failing."""

CACHE_KIB: Final = 16 * 1024
"""Page cache per connection: the tx and receipt indexes take random inserts."""

READ_CACHE_KEYS: Final = 200_000
"""State values a writer remembers (oldest first out): the hot records of a service fit many
times over, and 200,000 small values are tens of MB at most."""

_EVENTS: Final = TypeAdapter(list[DomainEvent])

Synchronous = Literal["NORMAL", "FULL"]

_BLOCK_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash   TEXT NOT NULL,
    header TEXT NOT NULL,   -- BlockHeader JSON, so header() need not parse the block
    block  TEXT NOT NULL    -- SealedBlock JSON
);
CREATE TABLE IF NOT EXISTS tx_index (
    tx_id  TEXT PRIMARY KEY,
    height INTEGER NOT NULL,
    idx    INTEGER NOT NULL
) WITHOUT ROWID;
"""

_STATE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
-- One row per committed height: the height of the store is MAX(height).
CREATE TABLE IF NOT EXISTS digests (
    height       INTEGER PRIMARY KEY,
    state_digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    height  INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    tx_id   TEXT NOT NULL,
    receipt TEXT NOT NULL,
    PRIMARY KEY (height, idx)
);
CREATE INDEX IF NOT EXISTS receipts_by_tx ON receipts (tx_id, height, idx);
-- Receipts of transactions refused before ordering. A sealed receipt always wins: reads
-- rank it first and put_rejection skips sealed transactions (a rejection stored before the
-- transaction was sealed stays, unseen; deleting it would cost every commit a lookup per tx).
CREATE TABLE IF NOT EXISTS rejections (
    tx_id   TEXT PRIMARY KEY,
    receipt TEXT NOT NULL
);
-- All events of a height in one JSON array: they are only ever read together, and one row
-- is much cheaper to write than thousands.
CREATE TABLE IF NOT EXISTS events (
    height INTEGER PRIMARY KEY,
    events TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""


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


class _Database:
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
        """All rows of one query; the cursor is closed, so no read transaction stays open."""
        with self._lock, self._translate("read"):
            cursor = self._conn.execute(sql, params)
            try:
                return cursor.fetchall()
            finally:
                cursor.close()

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


class SqliteBlockStore(BlockStore):
    """The sealed chain in one SQLite file; see the module docstring."""

    def __init__(self, path: Path, readonly: bool = False, synchronous: Synchronous = "NORMAL") -> None:
        self._db = _Database(Path(path), "blocks", _BLOCK_SCHEMA, readonly, synchronous)

    def __repr__(self) -> str:
        mode = "readonly" if self._db.readonly else "writer"
        return f"SqliteBlockStore({str(self._db.path)!r}, {mode})"

    def height(self) -> int:
        return int(self._db.read("SELECT COALESCE(MAX(height), 0) FROM blocks")[0][0])

    def put_block(self, block: SealedBlock) -> bool:
        height = block.height
        block_hash = block.block_hash()
        with self._db.write(f"put_block({height})") as conn:
            row = conn.execute("SELECT hash FROM blocks WHERE height = ?", (height,)).fetchone()
            if row is not None:
                if row[0] == block_hash:
                    return False
                raise ForkDetected(height, row[0], block_hash)
            top = conn.execute("SELECT COALESCE(MAX(height), 0) FROM blocks").fetchone()[0]
            if height != top + 1:
                raise HeightGap(top, height)
            conn.execute(
                "INSERT INTO blocks (height, hash, header, block) VALUES (?, ?, ?, ?)",
                (height, block_hash, block.header.json_bytes.decode(), block.json_bytes.decode()),
            )
            # OR IGNORE: a transaction sealed twice (only a faulty quorum could) keeps its
            # first place, the occurrence that executed.
            conn.executemany(
                "INSERT OR IGNORE INTO tx_index (tx_id, height, idx) VALUES (?, ?, ?)",
                [(tx.tx_id, height, index) for index, tx in enumerate(block.txs)],
            )
        return True

    def block(self, height: int) -> SealedBlock | None:
        rows = self._db.read("SELECT block FROM blocks WHERE height = ?", (height,))
        return SealedBlock.model_validate_json(rows[0][0]) if rows else None

    def header(self, height: int) -> BlockHeader | None:
        rows = self._db.read("SELECT header FROM blocks WHERE height = ?", (height,))
        return BlockHeader.model_validate_json(rows[0][0]) if rows else None

    def tx_location(self, tx_id: str) -> tuple[int, int] | None:
        rows = self._db.read("SELECT height, idx FROM tx_index WHERE tx_id = ?", (tx_id,))
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    def blocks(self, start: int, end: int) -> Iterator[SealedBlock]:
        next_height = max(start, 1)
        while next_height <= end:
            rows = self._db.read(
                "SELECT height, block FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height LIMIT ?",
                (next_height, end, PAGE_BLOCKS),
            )
            if not rows:
                return
            for _, raw in rows:
                yield SealedBlock.model_validate_json(raw)
            next_height = rows[-1][0] + 1

    def close(self) -> None:
        self._db.close()


class SqliteStateStore(StateStore):
    """A service's state, receipts, events, digests and node meta in one SQLite file."""

    def __init__(self, path: Path, readonly: bool = False, synchronous: Synchronous = "NORMAL") -> None:
        self._db = _Database(Path(path), "state", _STATE_SCHEMA, readonly, synchronous)
        self._remembers = not readonly
        self._values: dict[str, bytes | None] = {}
        self._height: int | None = None
        self._data_version = self._read_data_version() if self._remembers else 0

    def __repr__(self) -> str:
        mode = "readonly" if self._db.readonly else "writer"
        return f"SqliteStateStore({str(self._db.path)!r}, {mode})"

    def _read_data_version(self) -> int:
        return int(self._db.read("PRAGMA data_version")[0][0])

    def refresh(self) -> None:
        """Forget what this writer remembers if another connection has committed since (a
        misconfiguration: two writers of one file); cheap, one pragma."""
        if self._remembers:
            self._notice(self._read_data_version())

    def _notice(self, version: int) -> None:
        """Drop what is remembered if ``data_version`` moved: another connection committed."""
        if version != self._data_version:
            self._forget(version)

    def _forget(self, version: int) -> None:
        self._values.clear()
        self._height = None
        self._data_version = version

    def _remember(self, key: str, value: bytes | None) -> None:
        values = self._values
        if len(values) >= READ_CACHE_KEYS:
            del values[next(iter(values))]
        values[key] = value

    def height(self) -> int:
        if self._height is not None:
            return self._height
        height = int(self._db.read("SELECT COALESCE(MAX(height), 0) FROM digests")[0][0])
        if self._remembers:
            self._height = height
        return height

    def get(self, key: str) -> bytes | None:
        if key in self._values:
            return self._values[key]
        rows = self._db.read("SELECT value FROM state WHERE key = ?", (key,))
        value = bytes(rows[0][0]) if rows else None
        if self._remembers:
            self._remember(key, value)
        return value

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        missing: list[str] = []
        for key in dict.fromkeys(keys):
            if key in self._values:
                value = self._values[key]
                if value is not None:
                    found[key] = value
            else:
                missing.append(key)
        for i in range(0, len(missing), 500):  # SQLite's default limit is 999 parameters
            chunk = missing[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.read(f"SELECT key, value FROM state WHERE key IN ({marks})", chunk):
                found[key] = bytes(value)
        if self._remembers:
            for key in missing:
                self._remember(key, found.get(key))
        return found

    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        return self.scan_from(prefix, prefix)

    def scan_from(self, prefix: str, start: str) -> Iterator[tuple[str, bytes]]:
        """``scan(prefix)`` from the first key ``>= start`` (``core.domain.scan_from``): a reader
        that knows where a prefix's live keys begin seeks there instead of reading past the
        deleted ones.

        Keys compare as UTF-8 bytes (BINARY collation), which is code point order, the same as
        Python's str order; so the keys with a prefix are one contiguous run, bounded above by
        ``prefix_end``. Pages start at ``FIRST_PAGE_ROWS`` and double up to ``PAGE_ROWS``: most
        scans stop at their first entries (the best price, the next loan due), and an unbounded
        page of 1,000 used to fetch the keys after the prefix as well."""
        low, high = max(prefix, start), prefix_end(prefix)
        bound = "" if high is None else " AND key < ?"
        above: tuple[str, ...] = () if high is None else (high,)
        page, op = FIRST_PAGE_ROWS, ">="
        while True:
            rows = self._db.read(
                f"SELECT key, value FROM state WHERE key {op} ?{bound} ORDER BY key LIMIT ?", (low, *above, page)
            )
            for key, value in rows:
                if not key.startswith(prefix):
                    return
                yield key, bytes(value)
            if len(rows) < page:
                return
            low, op, page = rows[-1][0], ">", min(2 * page, PAGE_ROWS)

    def commit(self, batch: StateBatch) -> bool:
        # Serialise first: a value of the wrong type fails before the transaction begins.
        puts, deletes = split_writes(batch.writes)
        height = batch.height
        receipt_rows = [(height, n, r.tx_id, r.json_bytes.decode()) for n, r in enumerate(batch.receipts)]
        events_json = "[" + ",".join(e.json_bytes.decode() for e in batch.events) + "]" if batch.events else None
        with self._db.write(f"commit({height})") as conn:
            if self._remembers:
                self._notice(int(conn.execute("PRAGMA data_version").fetchone()[0]))
            top = conn.execute("SELECT COALESCE(MAX(height), 0) FROM digests").fetchone()[0]
            if height <= top:
                stored = conn.execute("SELECT state_digest FROM digests WHERE height = ?", (height,)).fetchone()
                if stored is not None:
                    warn_if_diverged(batch, stored[0])
                return False
            if height != top + 1:
                raise HeightGap(top, height, "state batch")
            conn.executemany(
                "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                puts,
            )
            conn.executemany("DELETE FROM state WHERE key = ?", [(k,) for k in deletes])
            conn.executemany(
                "INSERT INTO receipts (height, idx, tx_id, receipt) VALUES (?, ?, ?, ?)",
                receipt_rows,
            )
            if events_json is not None:
                conn.execute("INSERT INTO events (height, events) VALUES (?, ?)", (height, events_json))
            # Last, so that a failure anywhere above leaves the height where it was (the
            # transaction is rolled back anyway; this keeps the order obvious).
            conn.execute(
                "INSERT INTO digests (height, state_digest) VALUES (?, ?)",
                (height, batch.state_digest),
            )
        if self._remembers:  # only once committed: a rolled-back batch leaves nothing remembered
            for key, value in batch.writes.items():
                if key in self._values or len(self._values) < READ_CACHE_KEYS:
                    self._values[key] = value
            self._height = height
        return True

    def receipt(self, tx_id: str) -> Receipt | None:
        # One statement, so one snapshot: a commit that seals the transaction and removes its
        # rejection cannot fall between two reads. The first sealed occurrence wins.
        rows = self._db.read(
            "SELECT receipt FROM ("
            "  SELECT receipt, 0 AS rank, height, idx FROM receipts WHERE tx_id = ?"
            "  UNION ALL SELECT receipt, 1, 0, 0 FROM rejections WHERE tx_id = ?"
            ") ORDER BY rank, height, idx LIMIT 1",
            (tx_id, tx_id),
        )
        return Receipt.model_validate_json(rows[0][0]) if rows else None

    def receipts(self, height: int) -> list[Receipt]:
        rows = self._db.read("SELECT receipt FROM receipts WHERE height = ? ORDER BY idx", (height,))
        return [Receipt.model_validate_json(raw) for (raw,) in rows]

    def put_rejection(self, receipt: Receipt) -> None:
        check_rejection(receipt)
        with self._db.write(f"put_rejection({receipt.tx_id})") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO rejections (tx_id, receipt) SELECT ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM receipts WHERE tx_id = ?)",
                (receipt.tx_id, receipt.model_dump_json(), receipt.tx_id),
            )

    def events(self, height: int) -> list[DomainEvent]:
        rows = self._db.read("SELECT events FROM events WHERE height = ?", (height,))
        return _EVENTS.validate_json(rows[0][0]) if rows else []

    def state_digest(self, height: int) -> str | None:
        rows = self._db.read("SELECT state_digest FROM digests WHERE height = ?", (height,))
        return str(rows[0][0]) if rows else None

    def get_meta(self, key: str) -> bytes | None:
        rows = self._db.read("SELECT value FROM meta WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: bytes, durable: bool = True) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"meta values are bytes, not {type(value).__name__}")
        with self._db.write(f"set_meta({key!r})", durable=durable) as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self._remembers = False  # a closed store answers nothing, not even from memory
        self._forget(0)
        self._db.close()
