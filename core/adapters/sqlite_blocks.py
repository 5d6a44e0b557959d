"""``SqliteBlockStore``: the sealed chain in one SQLite file, a row per block and the tx index.

Part of ``traco.core.adapters.sqlite`` (import it from there); the connection, its
transactions and durability are ``sqlite_db``'s.

* **Streaming.** ``blocks(start, end)`` reads ``PAGE_BLOCKS`` heights at a time, each page a
  short read, so a long replay never loads the whole chain and never holds a read transaction
  open (which would stop WAL checkpoints and grow the WAL file). Stored blocks never change, so
  a commit between two pages changes nothing a replay sees.
* A block is one row of JSON text (about 500 bytes per transaction); nothing is compressed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

from traco.core.adapters.sqlite_db import Database, Synchronous
from traco.core.errors import ForkDetected, HeightGap
from traco.core.ports import BlockStore
from traco.schemas.block import BlockHeader, SealedBlock

PAGE_BLOCKS: Final = 16
"""Blocks per read in ``blocks()``: a block of 2,000 transactions is about 1 MB of JSON."""

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


class SqliteBlockStore(BlockStore):
    """The sealed chain in one SQLite file; see the module docstring."""

    def __init__(self, path: Path, readonly: bool = False, synchronous: Synchronous = "NORMAL") -> None:
        self._db = Database(Path(path), "blocks", _BLOCK_SCHEMA, readonly, synchronous)

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
