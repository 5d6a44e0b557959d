"""SQLite block and state stores: the embedded default, one file per component (decision 0007).

Why SQLite: a node on one machine needs a transactional store with no server to run. The
stores follow the ports in ``traco.core.ports`` exactly; ``tests/core/test_storage_contract.py``
runs the same contract against them, the memory stores and Cassandra.

How::

    blocks = SqliteBlockStore(data_dir / "consensus" / "blocks.sqlite")
    state = SqliteStateStore(data_dir / "consensus" / "state.sqlite")
    api_view = SqliteStateStore(same_path, readonly=True)   # e.g. in the HTTP API's process

Domain code does not build these itself: ``traco.core.adapters.factory`` picks the adapter.
Import the stores from this module; each part's docstring says why it is as it is:

* ``sqlite_db``: the connection both stores share: WAL mode, one transaction per write,
  durability (``synchronous``), the schema version and its migrations, threads, read-only
  openers.
* ``sqlite_blocks``: ``SqliteBlockStore``, the sealed chain and its tx index, read in pages.
* ``sqlite_state``: ``SqliteStateStore``: state, receipts, events, digests and node meta;
  paged scans; which receipt wins; the writer's memory of what it read and wrote.

Across the parts:

* **Speed.** Rows go in with ``executemany``; a height's events are one JSON array row (they
  are only read together). Measured on the 2-core development machine while other test
  suites ran (load ~3): ``put_block`` of 2,000 transactions (1 MB of JSON) ~23 ms, ``commit``
  of 2,000 receipts ~30 ms, of 2,000 receipts + 2,000 events + 2,000 state writes ~55 ms.
  About a third of that is pydantic serialising the models.
* The two files of a component are separate databases. After a power loss with
  ``synchronous=NORMAL`` the state file may be ahead of the block file; the ledger then
  refuses to start until the missing blocks are fetched again. ``synchronous="FULL"`` on the
  block store (one fsync per block) rules that out.
"""

from __future__ import annotations

from traco.core.adapters.sqlite_blocks import PAGE_BLOCKS, SqliteBlockStore
from traco.core.adapters.sqlite_db import BUSY_TIMEOUT_S, CACHE_KIB, SCHEMA_VERSION, Synchronous
from traco.core.adapters.sqlite_state import FIRST_PAGE_ROWS, PAGE_ROWS, READ_CACHE_KEYS, SqliteStateStore, prefix_end

__all__ = [
    "BUSY_TIMEOUT_S",
    "CACHE_KIB",
    "FIRST_PAGE_ROWS",
    "PAGE_BLOCKS",
    "PAGE_ROWS",
    "READ_CACHE_KEYS",
    "SCHEMA_VERSION",
    "SqliteBlockStore",
    "SqliteStateStore",
    "Synchronous",
    "prefix_end",
]
