"""Contract tests of the storage ports: one suite per port, run against every adapter.

As in ``eventsourcing``'s recorder tests, ``BlockStoreContract`` and ``StateStoreContract``
hold the tests and each adapter subclasses them with a way to open (and re-open) its store:
memory, SQLite (in ``tmp_path``) and Cassandra. The Cassandra classes run wherever a node is
reachable through ``TRACO_CASSANDRA_HOSTS``, and the ``TestContainerCassandra...`` classes on a
Cassandra that ``testcontainers`` starts wherever a Docker engine is reachable; each is skipped,
with the reason, elsewhere.

Then adapter-specific behaviour (SQLite read-only readers, another process reading while one
writes, a failure inside the SQLite transaction), offline tests of the Cassandra adapter's
pure helpers, and Hypothesis state machines that drive the memory store (the obviously-right
reference) and the SQLite store side by side and compare every read.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Generic, NamedTuple, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from traco.core.adapters import cassandra as cassandra_adapter
from traco.core.adapters import cassandra_cql
from traco.core.adapters.factory import StorageConfig, open_block_store, open_state_store
from traco.core.adapters.memory_store import MemoryBlockStore, MemoryStateStore
from traco.core.adapters.sqlite import PAGE_BLOCKS, PAGE_ROWS, SqliteBlockStore, SqliteStateStore
from traco.core.domain import scan_from
from traco.core.errors import ForkDetected, HeightGap, StorageError
from traco.core.ports import BlockStore, StateBatch, StateStore
from traco.schemas.block import BlockHeader, Commit, CommitSig, SealedBlock
from traco.schemas.events import DomainEvent
from traco.schemas.receipt import Receipt, ReceiptStatus
from traco.schemas.tx import TxEnvelope

# --------------------------------------------------------------------------- builders


def hex32(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def hex64(*parts: object) -> str:
    return hashlib.sha512("/".join(map(str, parts)).encode()).hexdigest()


def make_tx(seed: object, nonce: int = 1) -> TxEnvelope:
    """A valid-looking envelope (its signature does not verify; stores do not care)."""
    return TxEnvelope(
        chain_id="main",
        tx_id=hex32("tx", seed),
        kind="doc.register",
        sender=hex32("sender", seed),
        nonce=nonce,
        payload={"seed": str(seed), "amount": 100, "tags": ["a", "é"]},
        signature=hex64("sig", seed),
    )


def make_block(height: int, n_txs: int = 3, salt: str = "", txs: tuple[TxEnvelope, ...] | None = None) -> SealedBlock:
    if txs is None:
        txs = tuple(make_tx(f"{salt}{height}.{i}") for i in range(n_txs))
    header = BlockHeader(
        chain_id="main",
        height=height,
        round=0,
        time=1_700_000_000_000 + height,
        prev_hash=hex32("block", salt, height - 1),
        tx_root=hex32("root", salt, height, len(txs)),
        tx_count=len(txs),
        last_results_root=hex32("results", height - 1),
        proposer=hex32("validator", height % 4),
        validator_set_hash=hex32("vals"),
        next_validator_set_hash=hex32("vals"),
    )
    signatures = tuple(
        CommitSig(validator=hex32("validator", v), signature=hex64("precommit", salt, height, v)) for v in range(3)
    )
    commit = Commit(height=height, round=0, block_hash=header.block_hash(), signatures=signatures)
    return SealedBlock(header=header, txs=txs, commit=commit)


def make_chain(length: int, n_txs: int = 3) -> list[SealedBlock]:
    return [make_block(h, n_txs) for h in range(1, length + 1)]


def make_receipt(tx_id: str, height: int, index: int, code: str = "OK") -> Receipt:
    return Receipt(
        tx_id=tx_id,
        kind="doc.register",
        status=ReceiptStatus.ACCEPTED if code == "OK" else ReceiptStatus.REJECTED,
        code=code,
        height=height,
        index=index,
        service="doc",
        result={"height": height, "index": index},
    )


def make_rejection(tx_id: str, code: str = "INVALID_SIGNATURE") -> Receipt:
    return Receipt(
        tx_id=tx_id,
        kind="doc.register",
        status=ReceiptStatus.REJECTED,
        code=code,
        message="refused before ordering",
        service="doc",
    )


def make_event(height: int, seq: int, salt: str = "") -> DomainEvent:
    return DomainEvent(
        type="DocumentRegistered",
        service="doc",
        height=height,
        tx_id=hex32("tx", height, seq),
        aggregate_id=f"doc-{height}-{seq}",
        data={"salt": salt, "seq": seq},
    )


def make_batch(
    height: int,
    writes: Mapping[str, bytes | None] | None = None,
    n_receipts: int = 2,
    n_events: int = 2,
    salt: str = "",
) -> StateBatch:
    if writes is None:
        writes = {f"k/{height}": f"v{height}{salt}".encode()}
    return StateBatch(
        height=height,
        writes=writes,
        receipts=[make_receipt(hex32("tx", salt, height, i), height, i) for i in range(n_receipts)],
        events=[make_event(height, i, salt) for i in range(n_events)],
        state_digest=hex32("digest", salt, height),
    )


def snapshot(store: StateStore, keys: list[str], tx_ids: list[str]) -> dict[str, Any]:
    """Everything a reader can see, for before/after comparisons."""
    top = store.height()
    return {
        "height": top,
        "values": {k: store.get(k) for k in keys},
        "scan": list(store.scan("")),
        "receipts": {h: store.receipts(h) for h in range(0, top + 2)},
        "events": {h: store.events(h) for h in range(0, top + 2)},
        "digests": {h: store.state_digest(h) for h in range(0, top + 2)},
        "by_tx": {tx: store.receipt(tx) for tx in tx_ids},
    }


# --------------------------------------------------------------------------- contracts

S = TypeVar("S")


class _Opener(Generic[S]):
    """Opens the store under test; a second call re-opens the same data where it is durable."""

    def __init__(self, make: Callable[[], S]) -> None:
        self._make = make
        self.opened: list[S] = []

    def __call__(self) -> S:
        store = self._make()
        self.opened.append(store)
        return store


class BlockStoreContract:
    """Every ``BlockStore`` adapter must pass these."""

    def make_block_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> BlockStore:
        raise NotImplementedError

    @pytest.fixture
    def open_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Opener[BlockStore]]:
        opener = _Opener(lambda: self.make_block_store(request, tmp_path))
        yield opener
        for store in opener.opened:
            store.close()

    @pytest.fixture
    def store(self, open_store: _Opener[BlockStore]) -> BlockStore:
        return open_store()

    def test_empty_store(self, store: BlockStore) -> None:
        assert store.height() == 0
        assert store.block(1) is None
        assert store.header(1) is None
        assert store.tx_location(hex32("tx", "nothing")) is None
        assert list(store.blocks(1, 10)) == []

    def test_stored_block_comes_back_identical(self, store: BlockStore) -> None:
        block = make_block(1)
        assert store.put_block(block) is True
        assert store.height() == 1
        assert store.block(1) == block
        assert store.header(1) == block.header
        assert store.block(1).block_hash() == block.block_hash()  # type: ignore[union-attr]
        assert store.block(2) is None

    def test_empty_block_round_trips(self, store: BlockStore) -> None:
        block = make_block(1, n_txs=0)
        store.put_block(block)
        assert store.block(1) == block

    def test_same_block_twice_is_a_no_op(self, store: BlockStore) -> None:
        chain = make_chain(3)
        for block in chain:
            assert store.put_block(block) is True
        assert store.put_block(chain[2]) is False
        assert store.put_block(chain[0]) is False
        assert store.height() == 3
        assert [b.height for b in store.blocks(1, 3)] == [1, 2, 3]

    def test_same_header_with_other_commit_signatures_keeps_the_first(self, store: BlockStore) -> None:
        # Validators may each see a different > 2/3 set of precommits for the same block.
        block = make_block(1)
        other_sigs = block.model_copy(update={"commit": block.commit.model_copy(update={"round": 1})})
        store.put_block(block)
        assert store.put_block(other_sigs) is False
        assert store.block(1) == block

    def test_different_block_at_stored_height_raises_fork_and_keeps_the_stored_one(self, store: BlockStore) -> None:
        chain = make_chain(3)
        for block in chain:
            store.put_block(block)
        rival = make_block(2, salt="rival")
        with pytest.raises(ForkDetected) as caught:
            store.put_block(rival)
        message = str(caught.value)
        assert "2" in message
        assert chain[1].block_hash() in message
        assert rival.block_hash() in message
        assert caught.value.height == 2
        assert store.block(2) == chain[1]
        assert store.height() == 3
        assert all(store.tx_location(tx.tx_id) is None for tx in rival.txs)

    def test_fork_at_the_tip(self, store: BlockStore) -> None:
        store.put_block(make_block(1))
        with pytest.raises(ForkDetected):
            store.put_block(make_block(1, salt="rival"))
        assert store.block(1) == make_block(1)

    def test_gaps_raise_height_gap_and_store_nothing(self, store: BlockStore) -> None:
        with pytest.raises(HeightGap):
            store.put_block(make_block(2))
        assert store.height() == 0
        store.put_block(make_block(1))
        with pytest.raises(HeightGap) as caught:
            store.put_block(make_block(3))
        assert (caught.value.stored_height, caught.value.offered_height) == (1, 3)
        assert store.height() == 1
        assert store.block(3) is None
        assert store.tx_location(make_block(3).txs[0].tx_id) is None

    def test_tx_location_after_put_block(self, store: BlockStore) -> None:
        chain = make_chain(3, n_txs=4)
        for block in chain:
            store.put_block(block)
        for block in chain:
            for index, tx in enumerate(block.txs):
                assert store.tx_location(tx.tx_id) == (block.height, index)
        assert store.tx_location(hex32("tx", "unknown")) is None

    def test_a_transaction_sealed_twice_keeps_its_first_location(self, store: BlockStore) -> None:
        tx = make_tx("dup")
        store.put_block(make_block(1, txs=(make_tx("x"), tx)))
        store.put_block(make_block(2, txs=(tx, tx)))
        assert store.tx_location(tx.tx_id) == (1, 1)

    def test_blocks_streams_a_range_in_order(self, store: BlockStore) -> None:
        chain = make_chain(PAGE_BLOCKS * 2 + 3, n_txs=1)
        for block in chain:
            store.put_block(block)
        assert list(store.blocks(1, len(chain))) == chain
        assert [b.height for b in store.blocks(5, 7)] == [5, 6, 7]
        assert [b.height for b in store.blocks(len(chain) - 1, 10_000)] == [
            len(chain) - 1,
            len(chain),
        ]
        assert [b.height for b in store.blocks(0, 2)] == [1, 2]
        assert list(store.blocks(4, 3)) == []

    def test_a_big_block_round_trips(self, store: BlockStore) -> None:
        block = make_block(1, n_txs=500)
        store.put_block(block)
        assert store.block(1) == block
        assert store.tx_location(block.txs[499].tx_id) == (1, 499)


class StateStoreContract:
    """Every ``StateStore`` adapter must pass these."""

    def make_state_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
        raise NotImplementedError

    @pytest.fixture
    def open_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Opener[StateStore]]:
        opener = _Opener(lambda: self.make_state_store(request, tmp_path))
        yield opener
        for store in opener.opened:
            store.close()

    @pytest.fixture
    def store(self, open_store: _Opener[StateStore]) -> StateStore:
        return open_store()

    def test_empty_store(self, store: StateStore) -> None:
        assert store.height() == 0
        assert store.get("a") is None
        assert list(store.scan("")) == []
        assert store.receipts(1) == []
        assert store.events(1) == []
        assert store.state_digest(1) is None
        assert store.receipt(hex32("tx", "none")) is None
        assert store.get_meta("m") is None

    def test_commit_round_trip(self, store: StateStore) -> None:
        batch = StateBatch(
            height=1,
            writes={"doc/1": b"\x00\xffbinary", "doc/2": b"{}", "gone": None},
            # receipts come back in the batch's order, which is the order they were made in
            receipts=[make_receipt(hex32("b"), 1, 5), make_receipt(hex32("a"), 1, 2)],
            events=[make_event(1, 0), make_event(1, 1, salt="second")],
            state_digest=hex32("d1"),
        )
        assert store.commit(batch) is True
        assert store.height() == 1
        assert store.get("doc/1") == b"\x00\xffbinary"
        assert store.get("doc/2") == b"{}"
        assert store.get("gone") is None
        assert store.receipts(1) == list(batch.receipts)  # in the batch's order (system receipts have no index)
        assert store.receipt(hex32("b")) == batch.receipts[0]
        assert store.events(1) == list(batch.events)
        assert store.state_digest(1) == hex32("d1")
        assert store.receipts(2) == [] and store.state_digest(2) is None

    def test_system_receipts_without_an_index_keep_their_place(self, store: StateStore) -> None:
        command = make_receipt(hex32("command"), 1, 0).model_copy(update={"index": None})
        clause = make_receipt(hex32("clause"), 1, 0).model_copy(update={"index": None})
        receipts = [command, make_receipt(hex32("tx"), 1, 0), clause]
        store.commit(StateBatch(height=1, writes={}, receipts=receipts, events=[], state_digest=hex32("d")))
        assert store.receipts(1) == receipts
        assert store.receipt(hex32("clause")) == clause

    def test_none_deletes_a_key(self, store: StateStore) -> None:
        store.commit(make_batch(1, {"a": b"1", "b": b"2"}))
        store.commit(make_batch(2, {"a": None, "c": b"3"}))
        assert store.get("a") is None
        assert list(store.scan("")) == [("b", b"2"), ("c", b"3")]

    def test_empty_batch_still_moves_the_height(self, store: StateStore) -> None:
        assert store.commit(make_batch(1, {}, n_receipts=0, n_events=0)) is True
        assert store.height() == 1
        assert store.state_digest(1) == hex32("digest", "", 1)

    def test_recommit_of_a_stored_height_changes_nothing(self, store: StateStore) -> None:
        store.commit(make_batch(1, {"a": b"1", "b": b"1"}))
        store.commit(make_batch(2, {"b": b"2"}))
        keys = ["a", "b", "c"]
        txs = [hex32("tx", s, h, i) for s in ("", "other") for h in (1, 2) for i in range(3)]
        before = snapshot(store, keys, txs)
        assert store.commit(make_batch(1, {"a": b"1", "b": b"1"})) is False  # identical
        assert store.commit(make_batch(1, {"a": None, "c": b"x"}, 3, 3, salt="other")) is False
        assert store.commit(make_batch(2, {"b": None}, 0, 0, salt="other")) is False
        assert snapshot(store, keys, txs) == before

    def test_gaps_raise_height_gap_and_write_nothing(self, store: StateStore) -> None:
        with pytest.raises(HeightGap):
            store.commit(make_batch(2, {"x": b"1"}))
        assert store.height() == 0 and store.get("x") is None
        store.commit(make_batch(1))
        with pytest.raises(HeightGap) as caught:
            store.commit(make_batch(3, {"x": b"1"}))
        assert (caught.value.stored_height, caught.value.offered_height) == (1, 3)
        assert store.height() == 1
        assert store.get("x") is None
        assert store.receipts(3) == [] and store.events(3) == []
        assert store.state_digest(3) is None

    @pytest.mark.parametrize("poison", ["value-not-bytes", "receipt-not-serialisable"])
    def test_a_failing_commit_leaves_nothing_visible(self, store: StateStore, poison: str) -> None:
        store.commit(make_batch(1, {"a": b"1"}))
        keys, txs = ["a", "b"], [hex32("tx", "", 2, 0), hex32("tx", "", 2, 1)]
        before = snapshot(store, keys, txs)
        good = make_batch(2, {"a": b"2", "b": b"2"})
        if poison == "value-not-bytes":
            bad = StateBatch(2, {"a": b"2", "b": "str"}, good.receipts, good.events, "d")  # type: ignore[dict-item]
        else:
            broken = good.receipts[1].model_copy(update={"result": {"x": object()}})
            bad = StateBatch(2, good.writes, [good.receipts[0], broken], good.events, "d")
        with pytest.raises((TypeError, ValueError)):
            store.commit(bad)
        assert snapshot(store, keys, txs) == before
        assert store.commit(good) is True  # and the store is still usable

    def test_get_many_returns_exactly_the_keys_that_exist(self, store: StateStore) -> None:
        values = {f"k/{i}": str(i).encode() for i in range(1200)}  # more than one SQL chunk
        store.commit(make_batch(1, values))
        asked = [f"k/{i}" for i in range(0, 1300, 3)] + ["k/3", "missing"]
        expected = {k: values[k] for k in asked if k in values}
        assert store.get_many(asked) == expected
        assert store.get_many([]) == {}

    def test_scan_by_prefix_is_ordered_and_exact(self, store: StateStore) -> None:
        keys = ["a", "a/1", "a/2", "a/10", "ab", "a\x00", "aé", "a😀", "b", "b/1", "ba", "é"]
        store.commit(make_batch(1, {k: k.encode() for k in reversed(keys)}))
        assert [k for k, _ in store.scan("a")] == sorted(k for k in keys if k.startswith("a"))
        assert [k for k, _ in store.scan("b")] == ["b", "b/1", "ba"]
        assert [k for k, _ in store.scan("a/")] == ["a/1", "a/10", "a/2"]
        assert list(store.scan("a/1")) == [("a/1", b"a/1"), ("a/10", b"a/10")]
        assert [k for k, _ in store.scan("")] == sorted(keys)
        assert list(store.scan("c")) == []
        assert list(store.scan("ab/")) == []
        assert [k for k, _ in store.scan("é")] == ["é"]

    def test_scan_from_seeks_within_the_prefix(self, store: StateStore) -> None:
        """``core.domain.scan_from``: the store's own seek where it has one, else a filtered scan;
        the answer is the same either way, at the edges of the key space too."""
        top, below_surrogates = chr(0x10FFFF), chr(0xD7FF)
        keys = ["a", "a/1", "a/2", "a/10", "ab", "b", f"a{top}", f"a{top}{top}", f"a{below_surrogates}", "\ue000"]
        keys += [f"p/{i:04d}" for i in range(100)] + ["q"]
        store.commit(make_batch(1, {k: k.encode() for k in keys}, n_receipts=0, n_events=0))

        def naive(prefix: str, start: str) -> list[str]:
            return sorted(k for k in keys if k.startswith(prefix) and k >= start)

        cases = [("a", "a"), ("a", "a/10"), ("a/", "a/2"), ("a", "zz"), ("a", ""), ("", "b"), ("", "")]
        cases += [(f"a{top}", f"a{top}"), (below_surrogates, ""), ("a" + below_surrogates, "")]
        cases += [("p/", "p/0042"), ("p/", "p/0099x"), ("p/", "p/0000"), ("p/0", "p/0050")]
        for prefix, start in cases:
            assert [k for k, _ in scan_from(store, prefix, start)] == naive(prefix, start), (prefix, start)
        assert [k for k, _ in store.scan("p/")] == naive("p/", "")

    def test_scan_over_many_keys_pages_in_order(self, store: StateStore) -> None:
        count = PAGE_ROWS * 2 + 7
        writes = {f"item/{i:05d}": str(i).encode() for i in range(count)}
        writes.update({"itemz": b"after", "iteh": b"before"})
        store.commit(make_batch(1, writes, n_receipts=0, n_events=0))
        found = list(store.scan("item/"))
        assert len(found) == count
        assert found == sorted(found)
        assert found[-1] == (f"item/{count - 1:05d}", str(count - 1).encode())

    def test_rejections_never_overwrite_sealed_receipts(self, store: StateStore) -> None:
        tx = hex32("tx", "", 1, 0)
        rejection = make_rejection(tx)
        store.put_rejection(rejection)
        assert store.receipt(tx) == rejection
        store.commit(make_batch(1))
        sealed = store.receipt(tx)
        assert sealed is not None and sealed.height == 1 and sealed.index == 0
        store.put_rejection(make_rejection(tx, "DUPLICATE_TX"))
        assert store.receipt(tx) == sealed

    def test_a_later_rejection_replaces_an_earlier_one(self, store: StateStore) -> None:
        tx = hex32("tx", "pending")
        store.put_rejection(make_rejection(tx, "MEMPOOL_FULL"))
        store.put_rejection(make_rejection(tx, "NONCE_REUSED"))
        assert store.receipt(tx).code == "NONCE_REUSED"  # type: ignore[union-attr]

    def test_a_rejection_must_not_have_a_height(self, store: StateStore) -> None:
        with pytest.raises(ValueError):
            store.put_rejection(make_receipt(hex32("tx"), 1, 0))

    def test_a_transaction_sealed_twice_keeps_its_first_receipt(self, store: StateStore) -> None:
        tx = hex32("twice")
        store.commit(StateBatch(1, {}, [make_receipt(tx, 1, 3)], [], hex32("d1")))
        store.commit(StateBatch(2, {}, [make_receipt(tx, 2, 0, "DUPLICATE_TX")], [], hex32("d2")))
        assert store.receipt(tx) == make_receipt(tx, 1, 3)
        assert store.receipts(2) == [make_receipt(tx, 2, 0, "DUPLICATE_TX")]

    def test_meta_round_trip(self, store: StateStore) -> None:
        store.set_meta("consensus", b'{"height": 7, "round": 1}')
        store.set_meta("other", b"\x00")
        assert store.get_meta("consensus") == b'{"height": 7, "round": 1}'
        store.set_meta("consensus", b"newer")
        assert store.get_meta("consensus") == b"newer"
        assert store.get_meta("other") == b"\x00"
        store.commit(make_batch(1))
        assert store.get_meta("consensus") == b"newer"
        assert store.get("consensus") is None  # meta is not state
        store.set_meta("results/1", b"recomputable", durable=False)
        assert store.get_meta("results/1") == b"recomputable"

    def test_digests_and_events_are_kept_per_height(self, store: StateStore) -> None:
        for h in range(1, 6):
            store.commit(make_batch(h, n_events=h))
        assert store.height() == 5
        assert [store.state_digest(h) for h in range(1, 6)] == [hex32("digest", "", h) for h in range(1, 6)]
        assert [len(store.events(h)) for h in range(1, 6)] == [1, 2, 3, 4, 5]
        assert [e.aggregate_id for e in store.events(3)] == ["doc-3-0", "doc-3-1", "doc-3-2"]


class DurableBlockStoreContract(BlockStoreContract):
    """For adapters whose data outlives the store object."""

    def test_everything_survives_reopening(self, open_store: _Opener[BlockStore]) -> None:
        chain = make_chain(4)
        first = open_store()
        for block in chain:
            first.put_block(block)
        first.close()
        again = open_store()
        assert again.height() == 4
        assert list(again.blocks(1, 4)) == chain
        assert again.tx_location(chain[2].txs[1].tx_id) == (3, 1)
        assert again.put_block(chain[3]) is False
        with pytest.raises(ForkDetected):
            again.put_block(make_block(4, salt="rival"))
        assert again.put_block(make_block(5)) is True


class DurableStateStoreContract(StateStoreContract):
    """For adapters whose data outlives the store object."""

    def test_everything_survives_reopening(self, open_store: _Opener[StateStore]) -> None:
        first = open_store()
        first.commit(make_batch(1, {"a": b"1", "b": b"2"}))
        first.commit(make_batch(2, {"a": None}))
        first.put_rejection(make_rejection(hex32("refused")))
        first.set_meta("vote", b"h2r0")
        first.set_meta("results/2", b"r2", durable=False)
        keys, txs = ["a", "b"], [hex32("refused"), hex32("tx", "", 1, 0), hex32("tx", "", 2, 1)]
        before = snapshot(first, keys, txs)
        first.close()
        again = open_store()
        assert snapshot(again, keys, txs) == before
        assert again.get_meta("vote") == b"h2r0"
        assert again.get_meta("results/2") == b"r2"
        assert again.commit(make_batch(2, {"a": b"changed"})) is False
        assert again.commit(make_batch(3)) is True


# --------------------------------------------------------------------------- memory


class TestMemoryBlockStore(BlockStoreContract):
    def make_block_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> BlockStore:
        return MemoryBlockStore()


class TestMemoryStateStore(StateStoreContract):
    def make_state_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
        return MemoryStateStore()


# --------------------------------------------------------------------------- SQLite


class TestSqliteBlockStore(DurableBlockStoreContract):
    def make_block_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> BlockStore:
        return SqliteBlockStore(tmp_path / "blocks.sqlite")

    def test_the_file_is_in_wal_mode(self, store: BlockStore, tmp_path: Path) -> None:
        with sqlite3.connect(tmp_path / "blocks.sqlite") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_a_readonly_opener_sees_the_writers_commits(self, store: BlockStore, tmp_path: Path) -> None:
        reader = SqliteBlockStore(tmp_path / "blocks.sqlite", readonly=True)
        try:
            assert reader.height() == 0
            chain = make_chain(3)
            for block in chain:
                store.put_block(block)
                assert reader.height() == block.height
                assert reader.block(block.height) == block
            assert reader.tx_location(chain[1].txs[0].tx_id) == (2, 0)
            with pytest.raises(StorageError, match="read-only"):
                reader.put_block(make_block(4))
            assert store.height() == 3
        finally:
            reader.close()

    def test_readonly_needs_an_existing_store(self, tmp_path: Path) -> None:
        with pytest.raises(StorageError, match="start the writer first"):
            SqliteBlockStore(tmp_path / "missing.sqlite", readonly=True)

    def test_another_process_reads_while_this_one_writes(self, store: BlockStore, tmp_path: Path) -> None:
        target = 30
        reader = textwrap.dedent(
            f"""
            import sys, time
            from pathlib import Path
            from traco.core.adapters.sqlite import SqliteBlockStore
            store = SqliteBlockStore(Path({str(tmp_path / "blocks.sqlite")!r}), readonly=True)
            print("ready", flush=True)
            seen, deadline = set(), time.monotonic() + 20
            while time.monotonic() < deadline:
                height = store.height()
                if height and store.block(height) is None:
                    sys.exit(f"height {{height}} but no block")
                seen.add(height)
                if height >= {target}:
                    break
            print(len(seen), store.height(), store.block({target}).block_hash(), flush=True)
            """
        )
        child = subprocess.Popen([sys.executable, "-c", reader], stdout=subprocess.PIPE, text=True, env=os.environ)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        chain = make_chain(target, n_txs=20)
        for block in chain:
            store.put_block(block)
        out, _ = child.communicate(timeout=30)
        assert child.returncode == 0, out
        distinct, height, tip_hash = out.split()
        assert int(height) == target
        assert tip_hash == chain[-1].block_hash()
        assert int(distinct) >= 2  # it really read while blocks were arriving

    def test_a_state_file_is_not_opened_as_a_block_store(self, tmp_path: Path) -> None:
        SqliteStateStore(tmp_path / "state.sqlite").close()
        with pytest.raises(StorageError, match="expected a blocks store"):
            SqliteBlockStore(tmp_path / "state.sqlite")

    def test_a_newer_schema_version_is_refused(self, store: BlockStore, tmp_path: Path) -> None:
        store.close()
        with sqlite3.connect(tmp_path / "blocks.sqlite") as conn:
            conn.execute("UPDATE schema_version SET version = version + 1")
        conn.close()
        with pytest.raises(StorageError, match="newer TRACO"):
            SqliteBlockStore(tmp_path / "blocks.sqlite")


class TestSqliteStateStore(DurableStateStoreContract):
    def make_state_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
        return SqliteStateStore(tmp_path / "state.sqlite")

    @pytest.mark.parametrize("table", ["state", "receipts", "events", "digests"])
    def test_a_failure_inside_the_transaction_rolls_back_everything(self, store: StateStore, table: str) -> None:
        # A TEMP trigger lives on the store's own connection: it makes the insert into one
        # table fail after the statements before it already ran in the same transaction.
        store.commit(make_batch(1, {"a": b"1"}))
        keys, txs = ["a", "b"], [hex32("tx", "", 2, 0)]
        before = snapshot(store, keys, txs)
        conn: sqlite3.Connection = store._db._conn  # type: ignore[attr-defined]
        conn.execute(
            f"CREATE TEMP TRIGGER fail_{table} BEFORE INSERT ON main.{table} "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
        with pytest.raises(StorageError, match="injected failure"):
            store.commit(make_batch(2, {"a": b"2", "b": b"2"}))
        assert snapshot(store, keys, txs) == before
        conn.execute(f"DROP TRIGGER fail_{table}")
        assert store.commit(make_batch(2, {"a": b"2", "b": b"2"})) is True
        assert store.get("b") == b"2"

    def test_a_readonly_opener_sees_the_writers_commits(self, store: StateStore, tmp_path: Path) -> None:
        reader = SqliteStateStore(tmp_path / "state.sqlite", readonly=True)
        try:
            for h in range(1, 4):
                store.commit(make_batch(h, {"k": str(h).encode()}))
                assert reader.height() == h
                assert reader.get("k") == str(h).encode()
                assert reader.receipts(h) == store.receipts(h)
            store.set_meta("m", b"1")
            assert reader.get_meta("m") == b"1"
            with pytest.raises(StorageError, match="read-only"):
                reader.commit(make_batch(4))
            with pytest.raises(StorageError, match="read-only"):
                reader.set_meta("m", b"2")
        finally:
            reader.close()

    def test_the_writer_remembers_reads_and_its_own_commits(self, store: StateStore, tmp_path: Path) -> None:
        store.commit(make_batch(1, {"a": b"1", "gone": b"x"}))
        assert (store.get("a"), store.get("never"), store.height()) == (b"1", None, 1)
        store.commit(make_batch(2, {"a": b"2", "never": b"now", "gone": None}))
        assert (store.get("a"), store.get("never"), store.get("gone"), store.height()) == (b"2", b"now", None, 2)
        assert store.get_many(["a", "never", "gone", "other"]) == {"a": b"2", "never": b"now"}
        reader = SqliteStateStore(tmp_path / "state.sqlite", readonly=True)
        try:  # what the writer remembers is what the file holds
            assert [reader.get(k) for k in ("a", "never", "gone")] == [b"2", b"now", None]
        finally:
            reader.close()

    def test_a_commit_by_another_connection_is_noticed(self, store: StateStore, tmp_path: Path) -> None:
        """Two writers of one file are a misconfiguration, but the one that remembers must not
        serve stale values once it can know better: at its next commit, or on ``refresh``."""
        assert isinstance(store, SqliteStateStore)
        store.commit(make_batch(1, {"a": b"1"}))
        assert store.get("a") == b"1" and store.get("b") is None
        other = SqliteStateStore(tmp_path / "state.sqlite")
        try:
            other.commit(make_batch(2, {"a": b"other", "b": b"other"}))
        finally:
            other.close()
        assert store.get("a") == b"1"  # still remembered until told
        store.refresh()
        assert (store.get("a"), store.get("b"), store.height()) == (b"other", b"other", 2)
        other = SqliteStateStore(tmp_path / "state.sqlite")
        try:
            other.commit(make_batch(3, {"a": b"3"}))
        finally:
            other.close()
        assert store.commit(make_batch(4, {"c": b"4"})) is True  # the commit itself notices
        assert (store.get("a"), store.get("c"), store.height()) == (b"3", b"4", 4)

    def test_a_failed_commit_leaves_nothing_remembered(self, store: StateStore) -> None:
        store.commit(make_batch(1, {"a": b"1"}))
        assert store.get("a") == b"1"
        with pytest.raises(HeightGap):
            store.commit(make_batch(3, {"a": b"3"}))
        with pytest.raises(TypeError):
            store.commit(make_batch(2, {"a": "not bytes"}))  # type: ignore[dict-item]
        assert (store.get("a"), store.height()) == (b"1", 1)

    def test_a_closed_writer_answers_nothing_from_memory(self, store: StateStore) -> None:
        store.commit(make_batch(1, {"a": b"1"}))
        assert store.get("a") == b"1" and store.height() == 1
        store.close()
        with pytest.raises(StorageError):
            store.get("a")
        with pytest.raises(StorageError):
            store.height()

    def test_a_version_1_file_is_migrated_when_its_writer_opens_it(self, tmp_path: Path) -> None:
        path = tmp_path / "old" / "state.sqlite"
        SqliteStateStore(path).close()
        events = [make_event(1, 0), make_event(1, 1, salt="x"), make_event(2, 0)]
        with sqlite3.connect(path) as conn:  # rebuild the version 1 layout: a row per event
            conn.execute("DROP TABLE events")
            conn.execute(
                "CREATE TABLE events (height INTEGER NOT NULL, seq INTEGER NOT NULL, "
                "event TEXT NOT NULL, PRIMARY KEY (height, seq))"
            )
            conn.executemany(
                "INSERT INTO events VALUES (?, ?, ?)",
                [(e.height, i, e.model_dump_json()) for i, e in enumerate(reversed(events))],
            )
            conn.execute("INSERT INTO digests VALUES (1, ?), (2, ?)", (hex32(1), hex32(2)))
            conn.execute("UPDATE schema_version SET version = 1")
        conn.close()
        with pytest.raises(StorageError, match="open it once read-write"):
            SqliteStateStore(path, readonly=True)
        store = SqliteStateStore(path)
        try:
            assert store.events(1) == [events[1], events[0]]  # in the stored (seq) order
            assert store.events(2) == [events[2]]
            assert store.commit(make_batch(3)) is True
            reader = SqliteStateStore(path, readonly=True)
            assert reader.events(3) == store.events(3)
            reader.close()
        finally:
            store.close()

    def test_a_closed_store_refuses_calls(self, store: StateStore) -> None:
        store.close()
        with pytest.raises(StorageError):
            store.height()


# --------------------------------------------------------------------------- factory


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_factory_opens_each_component_in_its_own_place(backend: str, tmp_path: Path) -> None:
    config = StorageConfig(backend=backend, data_dir=tmp_path / "data")  # type: ignore[arg-type]
    blocks = open_block_store(config, "consensus")
    state = open_state_store(config, "doc")
    try:
        blocks.put_block(make_block(1))
        state.commit(make_batch(1))
        if backend == "sqlite":
            assert (tmp_path / "data" / "consensus" / "blocks.sqlite").is_file()
            assert (tmp_path / "data" / "doc" / "state.sqlite").is_file()
            reader = open_state_store(config, "doc", readonly=True)
            assert reader.height() == 1
            reader.close()
    finally:
        blocks.close()
        state.close()
    with pytest.raises(ValueError):
        open_block_store(config, "../escape")


# --------------------------------------------------------------------------- Cassandra

CASSANDRA_HOSTS = cassandra_cql.hosts_from_env()


@pytest.fixture(scope="session")
def cassandra_session() -> Iterator[Any]:
    """A session on a throwaway keyspace, or a skip that says why there is none."""
    if not CASSANDRA_HOSTS:
        pytest.skip(
            "Cassandra contract tests need a reachable node: set TRACO_CASSANDRA_HOSTS=host[:port],... (unset here)"
        )
    yield from _session_on(CASSANDRA_HOSTS, "TRACO_CASSANDRA_HOSTS=", connect_timeout=2)


@pytest.fixture(scope="session")
def cassandra_container_session(cassandra_container_hosts: tuple[str, ...]) -> Iterator[Any]:
    """The same on a Cassandra that ``testcontainers`` started (skipped where Docker is not)."""
    yield from _session_on(cassandra_container_hosts, "the container at ", connect_timeout=30)


def _session_on(hosts: tuple[str, ...], where: str, connect_timeout: float) -> Iterator[Any]:
    from cassandra.cluster import Cluster

    cluster = Cluster(
        contact_points=cassandra_cql.parse_hosts(hosts),
        connect_timeout=connect_timeout,
        control_connection_timeout=connect_timeout,
    )
    try:
        session = cluster.connect()
    except Exception as exc:
        cluster.shutdown()
        pytest.skip(f"no Cassandra node reachable within {connect_timeout:.0f} s at {where}{','.join(hosts)}: {exc}")
    keyspace = f"traco_test_{uuid.uuid4().hex[:12]}"
    cassandra_adapter.ensure_schema(session, keyspace)
    session.traco_test_keyspace = keyspace
    yield session
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    cluster.shutdown()


def _component_for(request: pytest.FixtureRequest) -> str:
    """One component per test (the same on re-open), so tests share one keyspace."""
    return "t" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]


class TestCassandraBlockStore(DurableBlockStoreContract):
    def make_block_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> BlockStore:
        session = request.getfixturevalue("cassandra_session")
        return cassandra_adapter.CassandraBlockStore(session, session.traco_test_keyspace, _component_for(request))


class TestCassandraStateStore(DurableStateStoreContract):
    def make_state_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
        session = request.getfixturevalue("cassandra_session")
        return cassandra_adapter.CassandraStateStore(session, session.traco_test_keyspace, _component_for(request))


class TestContainerCassandraBlockStore(DurableBlockStoreContract):
    """On a real Cassandra from ``testcontainers`` (``tests/core/conftest.py``)."""

    def make_block_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> BlockStore:
        session = request.getfixturevalue("cassandra_container_session")
        return cassandra_adapter.CassandraBlockStore(session, session.traco_test_keyspace, _component_for(request))


class TestContainerCassandraStateStore(DurableStateStoreContract):
    """On a real Cassandra from ``testcontainers`` (``tests/core/conftest.py``)."""

    def make_state_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
        session = request.getfixturevalue("cassandra_container_session")
        return cassandra_adapter.CassandraStateStore(session, session.traco_test_keyspace, _component_for(request))


class FakeCassandra:
    """Just enough of a driver session to run the Cassandra adapter's logic without a server.

    It interprets exactly the statements of ``cassandra_cql.Statements`` over dicts, with
    the semantics the adapter relies on: lightweight transactions (``IF NOT EXISTS``,
    ``IF height = ?``) that report ``was_applied`` and the current row, last-write-wins by
    ``USING TIMESTAMP`` (a tombstone wins a tie), clustering order, and a logged batch that is
    applied whole. It proves the adapter's algorithms (forks, gaps, claims, roll-forward), not
    its CQL: that needs a real node (the ``TestCassandra*`` classes).
    """

    def __init__(self, keyspace: str) -> None:
        self.keyspace = keyspace
        self.names = {cql: name for name, cql in cassandra_cql.Statements(keyspace).all().items()}
        tables = SimpleNamespace(tables=set(cassandra_cql.schema_tables()))
        self.cluster = SimpleNamespace(metadata=SimpleNamespace(keyspaces={keyspace: tables}))
        self.rows: dict[str, dict[Any, Any]] = defaultdict(dict)
        self.fail_on: set[str] = set()
        self.executed: list[str] = []

    # -- the driver's surface
    def prepare(self, cql: str) -> _FakePrepared:
        return _FakePrepared(self.names[cql])

    def execute(self, statement: Any, params: Any = None, timeout: float | None = None) -> Any:
        if isinstance(statement, str):
            statement = self.prepare(statement)
        if isinstance(statement, _FakePrepared):
            statement = statement.bind(params or ())
        if isinstance(statement, FakeBatch):
            for bound in statement.items:  # a logged batch: all checked, then all applied
                self._check(bound.name)
            for bound in statement.items:
                self._run(bound)
            return _FakeResult([])
        self._check(statement.name)
        return self._run(statement)

    def execute_async(self, statement: Any, params: Any = None) -> Any:
        return SimpleNamespace(result=lambda: self.execute(statement, params))

    def _check(self, name: str) -> None:
        if name in self.fail_on:
            from cassandra import OperationTimedOut

            raise OperationTimedOut(f"injected failure of {name}")

    # -- the statements
    def _run(self, bound: _FakeBound) -> _FakeResult:
        self.executed.append(bound.name)
        return getattr(self, "_" + bound.name)(*bound.params)  # type: ignore[no-any-return]

    def _lwt_insert(self, table: str, key: Any, row: dict[str, Any]) -> _FakeResult:
        existing = self.rows[table].get(key)
        if existing is not None:
            return _FakeResult([SimpleNamespace(applied=False, **existing)], applied=False)
        self.rows[table][key] = row
        return _FakeResult([SimpleNamespace(applied=True)], applied=True)

    def _lww(self, table: str, key: Any, ts: int, value: Any) -> None:
        """Last write wins by timestamp; on a tie a tombstone (None) wins."""
        old = self.rows[table].get(key)
        if old is None or ts > old[0] or (ts == old[0] and value is None):
            self.rows[table][key] = (ts, value)

    def _live(self, table: str, prefix: tuple[Any, ...]) -> list[tuple[Any, Any]]:
        n = len(prefix)
        found = [
            (key[n:], cell[1]) for key, cell in self.rows[table].items() if key[:n] == prefix and cell[1] is not None
        ]
        return sorted(found, key=lambda kv: tuple(_cql_order(k) for k in kv[0]))

    def _select_height(self, component: str, kind: str) -> _FakeResult:
        row = self.rows["heights"].get((component, kind))
        return _FakeResult([SimpleNamespace(**row)] if row else [])

    def _insert_first_height(self, component: str, kind: str, height: int) -> _FakeResult:
        return self._lwt_insert("heights", (component, kind), {"height": height})

    def _advance_height(self, height: int, component: str, kind: str, prev: int) -> _FakeResult:
        row = self.rows["heights"].get((component, kind))
        if row is None or row["height"] != prev:
            return _FakeResult([SimpleNamespace(applied=False, **(row or {}))], applied=False)
        row["height"] = height
        return _FakeResult([SimpleNamespace(applied=True)], applied=True)

    def _insert_block(self, c: str, h: int, hash_: str, header: str, block: str) -> _FakeResult:
        row = {"hash": hash_, "header": header, "block": block}
        return self._lwt_insert("blocks", (c, h), row)

    def _block_column(self, component: str, height: int, name: str) -> _FakeResult:
        row = self.rows["blocks"].get((component, height))
        return _FakeResult([SimpleNamespace(**{name: row[name]})] if row else [])

    def _select_block_hash(self, component: str, height: int) -> _FakeResult:
        return self._block_column(component, height, "hash")

    def _select_block(self, component: str, height: int) -> _FakeResult:
        return self._block_column(component, height, "block")

    def _select_header(self, component: str, height: int) -> _FakeResult:
        return self._block_column(component, height, "header")

    def _insert_tx_index(self, component: str, tx_id: str, height: int, idx: int) -> _FakeResult:
        self._lww("tx_index", (component, tx_id, height, idx), 0, True)
        return _FakeResult([])

    def _select_tx_location(self, component: str, tx_id: str) -> _FakeResult:
        rows = self._live("tx_index", (component, tx_id))[:1]
        return _FakeResult([SimpleNamespace(height=k[0], idx=k[1]) for k, _ in rows])

    def _select_value(self, component: str, key: str) -> _FakeResult:
        cell = self.rows["state"].get((component, key))
        live = cell is not None and cell[1] is not None
        return _FakeResult([SimpleNamespace(value=cell[1])] if live else [])  # type: ignore[index]

    def _scan(self, component: str, low: str, high: str | None) -> _FakeResult:
        rows = [
            SimpleNamespace(key=k[0], value=v)
            for k, v in self._live("state", (component,))
            if low <= k[0] and (high is None or k[0] < high)
        ]
        return _FakeResult(rows)

    def _scan_bounded(self, component: str, low: str, high: str) -> _FakeResult:
        return self._scan(component, low, high)

    def _scan_unbounded(self, component: str, low: str) -> _FakeResult:
        return self._scan(component, low, None)

    def _upsert_value(self, component: str, key: str, value: bytes, ts: int) -> _FakeResult:
        self._lww("state", (component, key), ts, value)
        return _FakeResult([])

    def _delete_value(self, ts: int, component: str, key: str) -> _FakeResult:
        self._lww("state", (component, key), ts, None)
        return _FakeResult([])

    def _claim_digest(self, component: str, height: int, digest: str) -> _FakeResult:
        return self._lwt_insert("digests", (component, height), {"state_digest": digest})

    def _select_digest(self, component: str, height: int) -> _FakeResult:
        row = self.rows["digests"].get((component, height))
        return _FakeResult([SimpleNamespace(**row)] if row else [])

    def _insert_receipt(self, c: str, h: int, idx: int, tx: str, raw: str, ts: int) -> _FakeResult:
        self._lww("receipts", (c, h, idx), ts, raw)
        return _FakeResult([])

    def _insert_receipt_by_tx(self, c: str, tx: str, h: int, idx: int, raw: str, ts: int) -> _FakeResult:
        self._lww("receipts_by_tx", (c, tx, h, idx), ts, raw)
        return _FakeResult([])

    def _select_receipts(self, component: str, height: int) -> _FakeResult:
        rows = self._live("receipts", (component, height))
        return _FakeResult([SimpleNamespace(receipt=v) for _, v in rows])

    def _select_receipts_by_tx(self, component: str, tx_id: str) -> _FakeResult:
        rows = self._live("receipts_by_tx", (component, tx_id))
        return _FakeResult([SimpleNamespace(height=k[0], receipt=v) for k, v in rows])

    def _upsert_rejection(self, component: str, tx_id: str, raw: str) -> _FakeResult:
        self.rows["rejections"][(component, tx_id)] = raw
        return _FakeResult([])

    def _select_rejection(self, component: str, tx_id: str) -> _FakeResult:
        raw = self.rows["rejections"].get((component, tx_id))
        return _FakeResult([SimpleNamespace(receipt=raw)] if raw else [])

    def _insert_event(self, c: str, h: int, seq: int, raw: str, ts: int) -> _FakeResult:
        self._lww("events", (c, h, seq), ts, raw)
        return _FakeResult([])

    def _select_events(self, component: str, height: int) -> _FakeResult:
        rows = self._live("events", (component, height))
        return _FakeResult([SimpleNamespace(event=v) for _, v in rows])

    def _upsert_meta(self, component: str, key: str, value: bytes) -> _FakeResult:
        self.rows["meta"][(component, key)] = value
        return _FakeResult([])

    def _select_meta(self, component: str, key: str) -> _FakeResult:
        value = self.rows["meta"].get((component, key))
        return _FakeResult([SimpleNamespace(value=value)] if value is not None else [])

    def _insert_schema_version(self, version: int) -> _FakeResult:
        return self._lwt_insert("schema_version", "traco", {"version": version})

    def _select_schema_version(self) -> _FakeResult:
        row = self.rows["schema_version"].get("traco")
        return _FakeResult([SimpleNamespace(**row)] if row else [])


def _cql_order(value: Any) -> Any:
    return value.encode() if isinstance(value, str) else value


class _FakePrepared:
    def __init__(self, name: str) -> None:
        self.name = name
        self.consistency_level: Any = None
        self.serial_consistency_level: Any = None

    def bind(self, params: Any) -> _FakeBound:
        return _FakeBound(self.name, tuple(params))


class _FakeBound:
    def __init__(self, name: str, params: tuple[Any, ...]) -> None:
        self.name = name
        self.params = params
        self.consistency_level: Any = None
        self.fetch_size: int | None = None


class _FakeResult:
    def __init__(self, rows: list[Any], applied: bool | None = None) -> None:
        self.rows = rows
        self.was_applied = applied

    def one(self) -> Any:
        return self.rows[0] if self.rows else None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


class FakeBatch:
    def __init__(self, batch_type: Any = None, consistency_level: Any = None) -> None:
        self.items: list[_FakeBound] = []

    def add(self, prepared: _FakePrepared, values: Any) -> None:
        self.items.append(prepared.bind(values))

    def __len__(self) -> int:
        return len(self.items)


def _fake_execute_concurrent(
    session: FakeCassandra, statement: _FakePrepared, rows: Any, concurrency: int = 1
) -> list[Any]:
    return [session.execute(statement.bind(row)) for row in rows]


@pytest.fixture
def fake_cassandra(monkeypatch: pytest.MonkeyPatch) -> FakeCassandra:
    monkeypatch.setattr(cassandra_adapter, "BatchStatement", FakeBatch)
    monkeypatch.setattr(cassandra_adapter, "execute_concurrent_with_args", _fake_execute_concurrent)
    return FakeCassandra("traco_fake")


class TestFakeCassandraBlockStore(DurableBlockStoreContract):
    def make_block_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> BlockStore:
        session = request.getfixturevalue("fake_cassandra")
        return cassandra_adapter.CassandraBlockStore(session, session.keyspace, "consensus")

    def test_an_interrupted_put_is_finished_on_reopen(
        self, open_store: _Opener[BlockStore], fake_cassandra: FakeCassandra
    ) -> None:
        chain = make_chain(3)
        store = open_store()
        store.put_block(chain[0])
        fake_cassandra.fail_on = {"advance_height"}  # dies after the block row and the index
        with pytest.raises(StorageError, match="injected failure"):
            store.put_block(chain[1])
        assert store.height() == 1
        fake_cassandra.fail_on = set()
        again = open_store()
        assert again.height() == 2
        assert again.tx_location(chain[1].txs[2].tx_id) == (2, 2)
        assert again.put_block(chain[2]) is True

    def test_a_rival_of_an_interrupted_put_is_a_fork(
        self, open_store: _Opener[BlockStore], fake_cassandra: FakeCassandra
    ) -> None:
        store = open_store()
        fake_cassandra.fail_on = {"insert_tx_index"}
        with pytest.raises(StorageError):
            store.put_block(make_block(1))
        fake_cassandra.fail_on = set()
        assert store.height() == 0
        with pytest.raises(ForkDetected):
            store.put_block(make_block(1, salt="rival"))
        assert store.put_block(make_block(1)) is False  # finished, but it was stored before
        assert store.height() == 1


class TestFakeCassandraStateStore(DurableStateStoreContract):
    def make_state_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
        session = request.getfixturevalue("fake_cassandra")
        return cassandra_adapter.CassandraStateStore(session, session.keyspace, "doc")

    def test_nothing_of_a_height_is_visible_before_its_height_moves(
        self, store: StateStore, fake_cassandra: FakeCassandra
    ) -> None:
        store.commit(make_batch(1))
        fake_cassandra.fail_on = {"advance_height"}  # the batch is applied, then the writer dies
        with pytest.raises(StorageError):
            store.commit(make_batch(2, {"x": b"2"}))
        fake_cassandra.fail_on = set()
        assert store.height() == 1
        assert store.receipts(2) == [] and store.events(2) == []
        assert store.state_digest(2) is None
        assert store.receipt(hex32("tx", "", 2, 0)) is None
        assert store.commit(make_batch(2, {"x": b"2"})) is True  # the same results finish it
        assert store.height() == 2 and store.get("x") == b"2"
        assert len(store.receipts(2)) == 2

    def test_other_results_for_a_claimed_height_are_refused(
        self, store: StateStore, fake_cassandra: FakeCassandra
    ) -> None:
        fake_cassandra.fail_on = {"upsert_value"}  # dies after claiming height 1
        with pytest.raises(StorageError):
            store.commit(make_batch(1, {"a": b"1"}))
        fake_cassandra.fail_on = set()
        with pytest.raises(StorageError, match="claimed with digest"):
            store.commit(make_batch(1, {"a": b"other"}, salt="other"))
        assert store.height() == 0 and store.get("a") is None

    def test_a_late_write_of_an_old_height_cannot_overwrite_a_newer_one(
        self, store: StateStore, fake_cassandra: FakeCassandra
    ) -> None:
        store.commit(make_batch(1, {"a": b"1"}))
        store.commit(make_batch(2, {"a": b"2", "b": None}))
        # A slow writer replays height 1's rows after height 2 was committed.
        rows = cassandra_cql.state_batch_rows("doc", make_batch(1, {"a": b"1", "b": b"1"}))
        for values in rows["upsert_value"]:
            fake_cassandra.execute(
                fake_cassandra.prepare(cassandra_cql.Statements("traco_fake").upsert_value),
                values,
            )
        assert store.get("a") == b"2"
        assert store.get("b") is None


class TestCassandraOffline:
    """What the Cassandra adapter computes without a server: statements, ranges, rows."""

    @given(
        prefix=st.text(st.characters(codec="utf-8"), max_size=4),
        key=st.text(st.characters(codec="utf-8"), max_size=6),
    )
    def test_prefix_range_matches_startswith(self, prefix: str, key: str) -> None:
        low, high = cassandra_cql.prefix_range(prefix)
        in_range = low <= key and (high is None or key < high)
        assert in_range == key.startswith(prefix)
        # Cassandra compares UTF-8 bytes; that must be the same order as Python's str order.
        if high is not None:
            assert (key.encode() < high.encode()) == (key < high)

    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            ("", ("", None)),
            ("a", ("a", "b")),
            ("doc/", ("doc/", "doc0")),
            ("a\U0010ffff", ("a\U0010ffff", "b")),
            ("\U0010ffff", ("\U0010ffff", None)),
            ("x\ud7ff", ("x\ud7ff", "x\ue000")),
        ],
    )
    def test_prefix_range_examples(self, prefix: str, expected: tuple[str, str | None]) -> None:
        assert cassandra_cql.prefix_range(prefix) == expected

    def test_schema_file_fills_in_keyspace_and_replication(self) -> None:
        replication = cassandra_cql.replication_map(3, "dc1")
        statements = cassandra_cql.schema_statements("ledger_a", replication)
        assert statements[0].startswith("CREATE KEYSPACE IF NOT EXISTS ledger_a WITH replication")
        assert "'NetworkTopologyStrategy', 'dc1': 3" in statements[0]
        assert all("${" not in s and "--" not in s for s in statements)
        created = {s.split()[5] for s in statements[1:]}
        assert created == {f"ledger_a.{t}" for t in cassandra_cql.schema_tables()}
        assert {
            "blocks",
            "tx_index",
            "state",
            "receipts",
            "receipts_by_tx",
            "rejections",
            "events",
            "digests",
            "meta",
            "component_heights",
            "schema_version",
        } == set(cassandra_cql.schema_tables())
        simple = cassandra_cql.replication_map(1)
        assert simple == "{'class': 'SimpleStrategy', 'replication_factor': 1}"

    @pytest.mark.parametrize("bad", ["", "1abc", "a-b", "a;DROP", "x" * 49])
    def test_keyspace_names_are_checked(self, bad: str) -> None:
        with pytest.raises(ValueError):
            cassandra_cql.Statements(bad).all()

    def test_statements_are_qualified_and_writes_are_timestamped(self) -> None:
        statements = cassandra_cql.Statements("ks").all()
        assert all(" ks." in s for s in statements.values())
        for name in ("insert_block", "claim_digest", "insert_first_height", "advance_height"):
            assert statements[name].endswith(("IF NOT EXISTS", "IF height = ?")), name
        for name in ("upsert_value", "delete_value", "insert_receipt", "insert_event"):
            assert "USING TIMESTAMP ?" in statements[name], name
        assert "key >= ? AND key < ?" in statements["scan_bounded"]

    def test_batch_rows_bind_every_statement_with_the_height_timestamp(self) -> None:
        batch = make_batch(7, {"a": b"1", "gone": None}, n_receipts=2, n_events=1)
        rows = cassandra_cql.state_batch_rows("doc", batch)
        statements = cassandra_cql.Statements("ks").all()
        for name, params in rows.items():
            assert all(len(p) == statements[name].count("?") for p in params), name
        assert rows["upsert_value"] == [("doc", "a", b"1", 7)]
        assert rows["delete_value"] == [(7, "doc", "gone")]
        receipt_row = rows["insert_receipt"][1]
        assert receipt_row[:4] == ("doc", 7, 1, batch.receipts[1].tx_id)
        assert Receipt.model_validate_json(receipt_row[4]) == batch.receipts[1]  # type: ignore[arg-type]
        assert DomainEvent.model_validate_json(rows["insert_event"][0][3]) == batch.events[0]  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            cassandra_cql.state_batch_rows("doc", make_batch(1, {"a": "text"}))  # type: ignore[dict-item]

    def test_block_rows_round_trip(self) -> None:
        block = make_block(3)
        height, block_hash, header_json, block_json = cassandra_cql.block_row(block)
        assert (height, block_hash) == (3, block.block_hash())
        assert SealedBlock.model_validate_json(block_json) == block
        assert BlockHeader.model_validate_json(header_json) == block.header
        assert cassandra_cql.tx_index_rows("c", block)[2] == ("c", block.txs[2].tx_id, 3, 2)

    def test_hosts_and_keyspace_from_the_environment(self) -> None:
        env = {"TRACO_CASSANDRA_HOSTS": " a, b:9043 ,,[::1]:9044"}
        hosts = cassandra_cql.hosts_from_env(env)
        assert hosts == ("a", "b:9043", "[::1]:9044")
        assert cassandra_cql.parse_hosts(hosts) == [("a", 9042), ("b", 9043), ("::1", 9044)]
        assert cassandra_cql.keyspace_from_env({}) == "traco"
        assert cassandra_cql.keyspace_from_env({"TRACO_CASSANDRA_KEYSPACE": "k2"}) == "k2"
        assert cassandra_cql.hosts_from_env({}) == ()

    def test_rows_are_read_by_name(self) -> None:
        class Row(NamedTuple):  # what the driver's default row factory makes
            height: int
            idx: int

        row = Row(5, 2)
        assert cassandra_cql.column(row, "idx") == 2
        assert cassandra_cql.column({"idx": 3}, "idx") == 3
        with pytest.raises(StorageError, match="row factory"):
            cassandra_cql.column((5, 2), "idx")


# --------------------------------------------------------------------------- property tests

KEYS = st.sampled_from(["a", "a/1", "a/2", "ab", "b", "b/1", "é", "😀", "a\x00"])
PREFIXES = ["", "a", "a/", "b", "é", "z"]
TX_POOL = [hex32("pool", i) for i in range(6)]


class StateStoresAgree(RuleBasedStateMachine):
    """Random commits, re-commits, gaps, rejections and meta against memory and SQLite."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.reference = MemoryStateStore()
        self.sqlite = SqliteStateStore(Path(self._dir.name) / "state.sqlite")
        self.salt = 0

    def _batch(self, height: int, data: st.DataObject) -> StateBatch:
        self.salt += 1
        writes = data.draw(st.dictionaries(KEYS, st.none() | st.binary(max_size=4), max_size=4))
        txs = data.draw(st.lists(st.sampled_from(TX_POOL), max_size=3))
        receipts = [
            make_receipt(tx, height, index, data.draw(st.sampled_from(["OK", "NOT_PERMITTED"])))
            for index, tx in enumerate(txs)
        ]
        events = [make_event(height, i, str(self.salt)) for i in range(data.draw(st.integers(0, 2)))]
        return StateBatch(height, writes, receipts, events, hex32("d", self.salt))

    def _both(self, call: Callable[[StateStore], Any]) -> Any:
        outcomes: list[tuple[str, object]] = []
        for store in (self.reference, self.sqlite):
            try:
                outcomes.append(("ok", call(store)))
            except (HeightGap, ValueError) as exc:
                outcomes.append(("raised", type(exc)))
        assert outcomes[0] == outcomes[1]
        return outcomes[0]

    @rule(data=st.data())
    def commit_next(self, data: st.DataObject) -> None:
        batch = self._batch(self.reference.height() + 1, data)
        assert self._both(lambda s: s.commit(batch)) == ("ok", True)

    @rule(data=st.data())
    def recommit_a_stored_height(self, data: st.DataObject) -> None:
        top = self.reference.height()
        if top:
            batch = self._batch(data.draw(st.integers(1, top)), data)
            assert self._both(lambda s: s.commit(batch)) == ("ok", False)

    @rule(data=st.data(), skip=st.integers(2, 3))
    def commit_with_a_gap(self, data: st.DataObject, skip: int) -> None:
        batch = self._batch(self.reference.height() + skip, data)
        assert self._both(lambda s: s.commit(batch)) == ("raised", HeightGap)

    @rule(tx=st.sampled_from(TX_POOL), code=st.sampled_from(["MEMPOOL_FULL", "NONCE_REUSED"]))
    def reject(self, tx: str, code: str) -> None:
        self._both(lambda s: s.put_rejection(make_rejection(tx, code)))

    @rule(key=st.sampled_from(["m1", "m2"]), value=st.binary(max_size=8))
    def set_meta(self, key: str, value: bytes) -> None:
        self._both(lambda s: s.set_meta(key, value))

    @invariant()
    def every_read_agrees(self) -> None:
        top = self.reference.height()
        keys = ["a", "a/1", "a/2", "ab", "b", "b/1", "é", "😀", "a\x00", "m1"]
        for store_a, store_b in [(self.reference, self.sqlite)]:
            assert store_a.height() == store_b.height() == top
            assert [store_a.get(k) for k in keys] == [store_b.get(k) for k in keys]
            for prefix in PREFIXES:
                assert list(store_a.scan(prefix)) == list(store_b.scan(prefix))
            for h in range(0, top + 2):
                assert store_a.receipts(h) == store_b.receipts(h)
                assert store_a.events(h) == store_b.events(h)
                assert store_a.state_digest(h) == store_b.state_digest(h)
            assert [store_a.receipt(t) for t in TX_POOL] == [store_b.receipt(t) for t in TX_POOL]
            assert [store_a.get_meta(k) for k in ("m1", "m2")] == [store_b.get_meta(k) for k in ("m1", "m2")]

    def teardown(self) -> None:
        self.sqlite.close()
        self._dir.cleanup()


class BlockStoresAgree(RuleBasedStateMachine):
    """Random puts of next, repeated, rival and far-ahead blocks against memory and SQLite."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.reference = MemoryBlockStore()
        self.sqlite = SqliteBlockStore(Path(self._dir.name) / "blocks.sqlite")

    def _both(self, block: SealedBlock) -> Any:
        outcomes: list[tuple[str, object]] = []
        for store in (self.reference, self.sqlite):
            try:
                outcomes.append(("ok", store.put_block(block)))
            except (ForkDetected, HeightGap) as exc:
                outcomes.append(("raised", type(exc)))
        assert outcomes[0] == outcomes[1]
        return outcomes[0]

    @rule(n_txs=st.integers(0, 3))
    def put_next(self, n_txs: int) -> None:
        height = self.reference.height() + 1
        assert self._both(make_block(height, n_txs, salt=str(n_txs))) == ("ok", True)

    @rule(data=st.data())
    def put_again_or_rival(self, data: st.DataObject) -> None:
        top = self.reference.height()
        if top:
            stored = self.reference.block(data.draw(st.integers(1, top)))
            assert stored is not None
            assert self._both(stored) == ("ok", False)
            rival = make_block(stored.height, salt="rival")
            assert self._both(rival) == ("raised", ForkDetected)

    @rule(skip=st.integers(2, 4))
    def put_ahead(self, skip: int) -> None:
        block = make_block(self.reference.height() + skip)
        assert self._both(block) == ("raised", HeightGap)

    @invariant()
    def every_read_agrees(self) -> None:
        top = self.reference.height()
        assert self.sqlite.height() == top
        assert list(self.reference.blocks(1, top + 1)) == list(self.sqlite.blocks(1, top + 1))
        for h in range(1, top + 1):
            block = self.reference.block(h)
            assert block is not None and self.sqlite.header(h) == block.header
            for tx in block.txs:
                location = self.reference.tx_location(tx.tx_id)
                assert location is not None
                assert self.sqlite.tx_location(tx.tx_id) == location

    def teardown(self) -> None:
        self.sqlite.close()
        self._dir.cleanup()


_MACHINE_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStateStoresAgree = StateStoresAgree.TestCase
TestStateStoresAgree.settings = _MACHINE_SETTINGS
TestBlockStoresAgree = BlockStoresAgree.TestCase
TestBlockStoresAgree.settings = _MACHINE_SETTINGS
