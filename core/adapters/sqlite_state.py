"""``SqliteStateStore``: a service's state, receipts, events, digests and node meta in one SQLite file.

Part of ``traco.core.adapters.sqlite`` (import it from there); the connection, its
transactions and durability are ``sqlite_db``'s.

Design:

* **Streaming.** ``scan(prefix)`` reads in pages by key, each page a short read, for the reason
  ``blocks()`` does (``sqlite_blocks``): a long scan never holds a read transaction open. Each
  page is consistent, but a commit that lands between two pages of a long scan is visible in
  the later pages only.
* **Receipts.** A sealed receipt always wins over a pre-ordering rejection: ``receipt()``
  ranks it first and ``put_rejection`` skips sealed transactions. A rejection stored before
  its transaction was sealed is left in place, unseen (deleting it would cost every commit a
  lookup per transaction). A transaction sealed twice keeps its first receipt and location.
* **The writer remembers what it read and wrote** (``SqliteStateStore`` opened read-write):
  the height and about ``READ_CACHE_KEYS`` state values (absent keys too), updated by its own
  ``commit``. A service reads the same few records (its members, their roles, its tokens) for
  every transaction; each was a SQLite query, and those queries were a fifth of a node's CPU
  (decision 0008). It is right because a state file has one writer, this object (the
  service's runtime; a second writer is refused by the height check of ``commit``): a commit
  by another connection is noticed through ``PRAGMA data_version`` at the next ``commit`` or
  ``refresh()``, and everything remembered is dropped then. Read-only openers remember nothing.
* **The writer remembers its scans until its next commit** (``_Run``): for up to ``SCAN_RUNS``
  prefixes, the stored keys of the prefix from where a scan began, as far as it read. A block's
  transactions scan the same prefixes again and again from slightly further on (the order
  book's best level and its next live order, for every order of the block), and each scan was
  a query fetching a page of which the reader took one row — in a block of matched orders, a
  seventh of the trade replica. A scan that begins inside a remembered run is served from it
  and goes on from the store past its end. Commits go to the block's overlay until the block
  is stored, so what is remembered is the store as it is; every commit forgets it all.
* **The writer knows which keys it certainly does not hold** (``core.key_filter``): a Bloom
  filter over the stored keys, built from them at the writer's first unremembered read and
  again whenever it fills, told each key of a batch before the batch commits (but those it
  remembers with a value: stored, so held already), and dropped
  with everything else remembered when another connection commits. A rule's question about a
  key that does not exist yet (a new order, hold or document) is answered from it instead of
  by a query.
* What the writer remembers assumes one thread at a time: a read that fetched a value or the
  keys while a commit ran on another thread would remember what the commit replaced. A node
  runs its blocks and its HTTP handlers (all ``async``) on one event loop, so none interleave.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pydantic import TypeAdapter

from traco.core.adapters.memory_store import check_rejection, split_writes, warn_if_diverged
from traco.core.adapters.sqlite_db import Database, Synchronous
from traco.core.bounded import trim_oldest
from traco.core.errors import HeightGap
from traco.core.key_filter import KeyFilter
from traco.core.ports import StateBatch, StateStore
from traco.schemas.events import DomainEvent
from traco.schemas.receipt import Receipt

PAGE_ROWS: Final = 1000
"""Keys per read in ``scan()`` at most."""

FIRST_PAGE_ROWS: Final = 16
"""Keys in a scan's first read; each next read takes twice as many, up to ``PAGE_ROWS``."""

SCAN_RUNS: Final = 256
"""Prefixes whose scans a writer remembers until its next commit (the oldest make room)."""

RUN_ROWS: Final = 4096
"""Rows a remembered scan keeps at most; a scan past them reads the store."""

_LAST_CHAR: Final = chr(0x10FFFF)


@dataclass
class _Run:
    """The stored keys of one prefix from ``low`` on (``keys``/``values``, sorted), up to the
    prefix's end if ``complete``, else up to ``keys[-1]``."""

    low: str
    keys: list[str] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    complete: bool = False

    def covers(self, low: str) -> bool:
        return self.low <= low and (self.complete or (bool(self.keys) and low <= self.keys[-1]))


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


READ_CACHE_KEYS: Final = 200_000
"""State values a writer remembers (oldest first out): the hot records of a service fit many
times over, and 200,000 small values are tens of MB at most."""

_EVENTS: Final = TypeAdapter(list[DomainEvent])

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


class SqliteStateStore(StateStore):
    """A service's state, receipts, events, digests and node meta in one SQLite file."""

    def __init__(self, path: Path, readonly: bool = False, synchronous: Synchronous = "NORMAL") -> None:
        self._db = Database(Path(path), "state", _STATE_SCHEMA, readonly, synchronous)
        self._remembers = not readonly
        self._values: dict[str, bytes | None] = {}
        self._runs: dict[str, _Run] = {}
        self._keys: KeyFilter | None = None
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
        self._runs.clear()
        self._keys = None
        self._height = None
        self._data_version = version

    def _key_filter(self) -> KeyFilter:
        """The filter of the stored keys, built from them if there is none or it is full."""
        keys = self._keys
        if keys is None or keys.full:
            stored = [key for (key,) in self._db.read("SELECT key FROM state")]
            keys = self._keys = KeyFilter(stored, expected=2 * len(stored))
        return keys

    def _remember(self, key: str, value: bytes | None) -> None:
        self._values[key] = value
        trim_oldest(self._values, READ_CACHE_KEYS)

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
        if self._remembers and not self._key_filter().might_hold(key):
            self._remember(key, None)
            return None
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
        if self._remembers:
            held = self._key_filter().might_hold
            maybe: list[str] = []
            for key in missing:
                if held(key):
                    maybe.append(key)
                else:
                    self._remember(key, None)
            missing = maybe
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
        low = max(prefix, start)
        run = self._runs.get(prefix)
        if run is not None and run.covers(low):
            at = bisect_left(run.keys, low)
            keys, values = run.keys, run.values
            while at < len(keys):  # the run may grow while this reads it (see below)
                yield keys[at], values[at]
                at += 1
            if run.complete or not keys:
                return
            yield from self._read_scan(prefix, keys[-1], ">", run)
            return
        if self._remembers:
            run = _Run(low)
            self._runs.pop(prefix, None)  # replaced, and counted as the newest
            self._runs[prefix] = run
            trim_oldest(self._runs, SCAN_RUNS)
        yield from self._read_scan(prefix, low, ">=", run)

    def _read_scan(self, prefix: str, low: str, op: str, run: _Run | None) -> Iterator[tuple[str, bytes]]:
        """The prefix's stored keys from ``low`` on, page by page; each page is added to ``run``
        while it is the prefix's current run and not full."""
        high = prefix_end(prefix)
        bound = "" if high is None else " AND key < ?"
        above: tuple[str, ...] = () if high is None else (high,)
        page = FIRST_PAGE_ROWS
        while True:
            rows = self._db.read(
                f"SELECT key, value FROM state WHERE key {op} ?{bound} ORDER BY key LIMIT ?", (low, *above, page)
            )
            found = [(key, bytes(value)) for key, value in rows]
            if run is not None and self._runs.get(prefix) is run and len(run.keys) + len(found) <= RUN_ROWS:
                run.keys.extend(key for key, _ in found)
                run.values.extend(value for _, value in found)
                run.complete = len(rows) < page
            else:
                run = None  # forgotten (a commit) or full: read on without it
            yield from found
            if len(rows) < page:
                return
            low, op, page = rows[-1][0], ">", min(2 * page, PAGE_ROWS)

    def commit(self, batch: StateBatch) -> bool:
        # Serialise first: a value of the wrong type fails before the transaction begins.
        puts, deletes = split_writes(batch.writes)
        height = batch.height
        receipt_rows = [(height, n, r.tx_id, r.json_bytes.decode()) for n, r in enumerate(batch.receipts)]
        events_json = "[" + ",".join(e.json_bytes.decode() for e in batch.events) + "]" if batch.events else None
        if self._keys is not None:  # before the commit: never a stored key the filter denies
            # A key remembered with a value is stored, so the filter holds it already (the
            # filter and the memories are dropped together): only the others need their bits.
            remembered = self._values
            self._keys.add_all(key for key, _ in puts if remembered.get(key) is None)
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
        self._runs.clear()  # the scans remembered were of the store before this commit
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
