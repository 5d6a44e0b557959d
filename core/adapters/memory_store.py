"""In-process block and state stores: the reference semantics of the storage ports, for tests.

Why: unit tests of services and consensus need a store that is instant and needs no files,
and the property tests need a slow, obviously-right reference to drive beside the real
adapters (``tests/core/test_storage_contract.py`` runs the same contract against all of them).
So this module favours plainness over speed: ``scan`` sorts on every call, nothing is indexed.

How: ``MemoryBlockStore()`` and ``MemoryStateStore()``; or ``open_block_store`` /
``open_state_store`` with ``backend="memory"`` from ``traco.core.adapters.factory``.

Models are kept as their JSON text and parsed on every read, like the real adapters do. That
costs a little, but it means a model that does not survive a JSON round trip fails here
first, and a caller that mutates a returned model (its ``payload`` dict is mutable) cannot
change what is stored.

Caveats:

* Nothing survives the process: ``close()`` only makes later calls fail. Never use this in a
  node: a validator without durable ``set_meta`` could sign twice after a restart.
* A lock serialises calls, so any thread may use a store; ``scan`` and ``blocks`` take a
  snapshot when called, so a commit during the iteration is not seen by it.

The small helpers at the top and bottom (``split_writes``, ``check_rejection``,
``warn_if_diverged``) are the reference rules; the SQLite and Cassandra adapters use them too,
so every adapter refuses the same inputs with the same messages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from traco.core.errors import ForkDetected, HeightGap, StorageError
from traco.core.ports import BlockStore, StateBatch, StateStore
from traco.schemas.block import BlockHeader, SealedBlock
from traco.schemas.events import DomainEvent
from traco.schemas.receipt import Receipt

log = logging.getLogger(__name__)


def split_writes(writes: Mapping[str, bytes | None]) -> tuple[list[tuple[str, bytes]], list[str]]:
    """``(puts, deletes)`` of a batch's writes; raises ``TypeError`` for a non-bytes value.

    Checked before anything is written so that a wrong type (a ``str`` where bytes were
    meant) fails the whole commit instead of being stored and coming back as the wrong type.
    """
    puts: list[tuple[str, bytes]] = []
    deletes: list[str] = []
    for key, value in writes.items():
        if not isinstance(key, str):
            raise TypeError(f"state keys are str, not {type(key).__name__}: {key!r}")
        if value is None:
            deletes.append(key)
        elif isinstance(value, bytes):
            puts.append((key, value))
        else:
            raise TypeError(f"state values are bytes or None, not {type(value).__name__} ({key!r})")
    return puts, deletes


@dataclass
class _StoredBlock:
    block_hash: str
    header_json: str
    block_json: str


class MemoryBlockStore(BlockStore):
    """The sealed chain in a list; see the module docstring for when to use it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: list[_StoredBlock] = []  # index h - 1 holds height h
        self._tx_index: dict[str, tuple[int, int]] = {}
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the memory block store is closed")

    def height(self) -> int:
        with self._lock:
            self._check_open()
            return len(self._blocks)

    def put_block(self, block: SealedBlock) -> bool:
        block_hash = block.block_hash()
        with self._lock:
            self._check_open()
            height = block.height
            if height <= len(self._blocks):
                stored = self._blocks[height - 1].block_hash
                if stored == block_hash:
                    return False
                raise ForkDetected(height, stored, block_hash)
            if height != len(self._blocks) + 1:
                raise HeightGap(len(self._blocks), height)
            self._blocks.append(_StoredBlock(block_hash, block.header.json_bytes.decode(), block.json_bytes.decode()))
            for index, tx in enumerate(block.txs):
                # A transaction sealed twice (only a faulty quorum could do that) keeps its
                # first place: that is the occurrence that executed.
                self._tx_index.setdefault(tx.tx_id, (height, index))
            return True

    def _stored(self, height: int) -> _StoredBlock | None:
        self._check_open()
        if 1 <= height <= len(self._blocks):
            return self._blocks[height - 1]
        return None

    def block(self, height: int) -> SealedBlock | None:
        with self._lock:
            stored = self._stored(height)
        return None if stored is None else SealedBlock.model_validate_json(stored.block_json)

    def header(self, height: int) -> BlockHeader | None:
        with self._lock:
            stored = self._stored(height)
        return None if stored is None else BlockHeader.model_validate_json(stored.header_json)

    def tx_location(self, tx_id: str) -> tuple[int, int] | None:
        with self._lock:
            self._check_open()
            return self._tx_index.get(tx_id)

    def blocks(self, start: int, end: int) -> Iterator[SealedBlock]:
        with self._lock:
            self._check_open()
            chosen = self._blocks[max(start, 1) - 1 : max(end, 0)]
        return (SealedBlock.model_validate_json(s.block_json) for s in chosen)

    def close(self) -> None:
        with self._lock:
            self._closed = True


@dataclass
class _StateData:
    """Everything a state store holds; ``commit`` builds the changes aside, then applies them."""

    values: dict[str, bytes] = field(default_factory=dict)
    digests: list[str] = field(default_factory=list)  # index h - 1 holds height h
    receipts: dict[int, list[tuple[int, str, str]]] = field(default_factory=dict)
    sealed_by_tx: dict[str, str] = field(default_factory=dict)  # first sealed occurrence
    rejections: dict[str, str] = field(default_factory=dict)
    events: dict[int, list[str]] = field(default_factory=dict)
    meta: dict[str, bytes] = field(default_factory=dict)


class MemoryStateStore(StateStore):
    """A service's state in dicts; see the module docstring for when to use it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data = _StateData()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the memory state store is closed")

    def height(self) -> int:
        with self._lock:
            self._check_open()
            return len(self._data.digests)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            self._check_open()
            return self._data.values.get(key)

    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        with self._lock:
            self._check_open()
            values = self._data.values
            found = sorted((k, v) for k, v in values.items() if k.startswith(prefix))
        return iter(found)

    def commit(self, batch: StateBatch) -> bool:
        # Everything that can fail (types, serialisation) happens before the first change.
        puts, deletes = split_writes(batch.writes)
        receipts = [(n, r.tx_id, r.json_bytes.decode()) for n, r in enumerate(batch.receipts)]
        events = [e.json_bytes.decode() for e in batch.events]
        with self._lock:
            self._check_open()
            data = self._data
            stored = len(data.digests)
            if batch.height <= stored:
                warn_if_diverged(batch, data.digests[batch.height - 1])
                return False
            if batch.height != stored + 1:
                raise HeightGap(stored, batch.height, "state batch")
            data.values.update(puts)
            for key in deletes:
                data.values.pop(key, None)
            data.receipts[batch.height] = receipts
            for _, tx_id, raw in receipts:
                data.sealed_by_tx.setdefault(tx_id, raw)
                data.rejections.pop(tx_id, None)
            data.events[batch.height] = events
            data.digests.append(batch.state_digest)
            return True

    def receipt(self, tx_id: str) -> Receipt | None:
        with self._lock:
            self._check_open()
            raw = self._data.sealed_by_tx.get(tx_id) or self._data.rejections.get(tx_id)
        return None if raw is None else Receipt.model_validate_json(raw)

    def receipts(self, height: int) -> list[Receipt]:
        with self._lock:
            self._check_open()
            rows = list(self._data.receipts.get(height, ()))
        return [Receipt.model_validate_json(raw) for _, _, raw in rows]

    def put_rejection(self, receipt: Receipt) -> None:
        check_rejection(receipt)
        raw = receipt.model_dump_json()
        with self._lock:
            self._check_open()
            if receipt.tx_id not in self._data.sealed_by_tx:
                self._data.rejections[receipt.tx_id] = raw

    def events(self, height: int) -> list[DomainEvent]:
        with self._lock:
            self._check_open()
            rows = list(self._data.events.get(height, ()))
        return [DomainEvent.model_validate_json(raw) for raw in rows]

    def state_digest(self, height: int) -> str | None:
        with self._lock:
            self._check_open()
            digests = self._data.digests
            return digests[height - 1] if 1 <= height <= len(digests) else None

    def get_meta(self, key: str) -> bytes | None:
        with self._lock:
            self._check_open()
            return self._data.meta.get(key)

    def set_meta(self, key: str, value: bytes, durable: bool = True) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"meta values are bytes, not {type(value).__name__}")
        with self._lock:
            self._check_open()
            self._data.meta[key] = value

    def close(self) -> None:
        with self._lock:
            self._closed = True


def check_rejection(receipt: Receipt) -> None:
    if receipt.height is not None:
        raise ValueError(
            f"receipt {receipt.tx_id} has height {receipt.height}: a pre-ordering rejection "
            "has none (sealed receipts are stored by commit)"
        )


def warn_if_diverged(batch: StateBatch, stored_digest: str) -> None:
    """A re-commit is a no-op; but different results for one block mean non-determinism."""
    if stored_digest != batch.state_digest:
        log.warning(
            "re-commit of height %d ignored, but its digest %s differs from the stored %s: "
            "execution is not deterministic or the state was changed outside the store",
            batch.height,
            batch.state_digest,
            stored_digest,
        )
