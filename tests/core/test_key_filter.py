"""The SQLite writer's filter of the keys it certainly does not hold (``core.key_filter``).

What must hold: a key that may be stored is never reported absent — after its own commits,
after deletes, across the filter's rebuilds when it fills, and after another connection's
commit once the writer has noticed it (at its next commit or ``refresh``, as for every other
thing the writer remembers). And the filter must earn its place: a key that was never
stored is answered without a query.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traco.core import key_filter
from traco.core.adapters import sqlite_state
from traco.core.adapters.sqlite import SqliteStateStore
from traco.core.key_filter import KeyFilter
from traco.core.ports import StateBatch

from .test_sqlite_scan_runs import CountingReads

DIGEST = "00" * 32


def commit(store: SqliteStateStore, height: int, writes: dict[str, bytes | None]) -> None:
    store.commit(StateBatch(height, writes, (), (), DIGEST))


@given(st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=40), max_size=300))
def test_every_added_key_might_be_held(keys: list[str]) -> None:
    made = KeyFilter(keys[: len(keys) // 2])
    made.add_all(keys[len(keys) // 2 :])
    assert all(made.might_hold(key) for key in keys)


def test_keys_never_added_are_almost_all_denied() -> None:
    """At its capacity, about 0.24% of the keys never added are answered "maybe"."""
    made = KeyFilter(f"xorder/{i}" for i in range(key_filter.MIN_CAPACITY))
    assert not made.full
    maybe = sum(made.might_hold(f"xorder/new-{i}") for i in range(20_000))
    assert maybe < 20_000 * 0.006
    assert not KeyFilter().might_hold("anything")


def test_a_filter_is_full_past_its_capacity_of_distinct_keys() -> None:
    """Counted by the bits they set: a new key whose bits all happen to be set already is a
    false "maybe" anyway, and does not count."""
    capacity = key_filter.MIN_CAPACITY + 10
    made = KeyFilter(expected=capacity)
    made.add_all(str(i) for i in range(capacity))
    for _ in range(3):  # keys written again (balances at every block) do not fill it
        made.add_all(str(i) for i in range(capacity))
    assert not made.full
    made.add_all(f"more {i}" for i in range(1_000))
    assert made.full


def test_a_key_never_stored_is_answered_without_a_query(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.sqlite")
    commit(store, 1, {f"xorder/{i}": b"o" for i in range(100)})
    store = SqliteStateStore(tmp_path / "state.sqlite")  # nothing remembered yet
    reads = CountingReads(store)
    assert store.get("xorder/0") == b"o"
    assert reads.count == 2  # the keys, to build the filter; then the stored value
    assert [store.get(f"xorder/new-{i}") for i in range(50)] == [None] * 50
    assert store.get_many(["xorder/1", "xorder/new-50", "xorder/new-51"]) == {"xorder/1": b"o"}
    assert reads.count == 3  # only xorder/1 was asked of SQLite (allowing no false "maybe" here)
    store.close()


def test_a_filled_filter_is_built_again_larger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its capacity a filter says "maybe" to nearly everything; the writer then builds
    it again from the stored keys, so keys never stored go on costing no query."""
    monkeypatch.setattr(key_filter, "MIN_CAPACITY", 16)
    store = SqliteStateStore(tmp_path / "state.sqlite")
    assert store.get("xorder/none") is None  # a filter for an empty store: 16 keys
    for height in range(1, 11):
        commit(store, height, {f"xorder/{height}-{i}": b"o" for i in range(100)})
    reads = CountingReads(store)
    assert [store.get(f"xorder/new-{i}") for i in range(200)] == [None] * 200
    assert reads.count <= 3  # the rebuild's read of the keys, and a rare false "maybe"
    store.close()


def test_a_key_read_as_absent_then_stored_is_found_once_its_value_is_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commonest path of all: a rule asks for a new order's id (absent, and remembered as
    absent), the block stores it, and later its value has left the writer's memory of values.
    A key remembered *with a value* need not be told to the filter again; this one must be."""
    monkeypatch.setattr(sqlite_state, "READ_CACHE_KEYS", 2)
    store = SqliteStateStore(tmp_path / "state.sqlite")
    commit(store, 1, {"a": b"1"})
    assert store.get("xorder/new") is None  # builds the filter; remembered as absent
    commit(store, 2, {"xorder/new": b"o", "a": b"2"})
    assert [store.get(f"other/{i}") for i in range(5)] == [None] * 5  # pushes both out of memory
    assert store.get_many(["xorder/new", "a"]) == {"xorder/new": b"o", "a": b"2"}
    store.close()


def test_a_key_another_connection_stored_is_found_once_noticed(tmp_path: Path) -> None:
    """The filter was built before another writer stored ``d``; the key was never asked for,
    so nothing else remembered stands in its way: only dropping the filter finds it."""
    store = SqliteStateStore(tmp_path / "state.sqlite")
    commit(store, 1, {"a": b"1"})
    assert store.get("z") is None  # builds the filter
    other = SqliteStateStore(tmp_path / "state.sqlite")
    commit(other, 2, {"d": b"other"})
    other.close()
    store.refresh()
    assert store.get("d") == b"other"
    other = SqliteStateStore(tmp_path / "state.sqlite")
    commit(other, 3, {"e": b"other"})
    other.close()
    commit(store, 4, {"f": b"4"})  # the commit itself notices
    assert store.get_many(["e", "f"]) == {"e": b"other", "f": b"4"}
    store.close()


KEYS = st.sampled_from([f"k/{i}" for i in range(12)])
WRITES = st.dictionaries(KEYS, st.one_of(st.none(), st.binary(min_size=1, max_size=3)), max_size=6)
STEP = st.one_of(
    st.tuples(st.just("commit"), WRITES),
    st.tuples(st.just("foreign"), WRITES),
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("get_many"), st.lists(KEYS, max_size=5)),
    st.tuples(st.just("refresh"), st.none()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, max_size=40))
def test_the_writer_reads_what_a_dict_would_hold(steps: list[tuple[str, object]]) -> None:
    """Random commits, deletes, reads and another connection's commits, with a filter so small
        that it fills and is rebuilt again and again, and a memory of values too small to answer
    for it: every read the writer answers is what the
        file holds (a foreign commit is seen once noticed, at ``refresh`` or the next commit)."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.setattr(key_filter, "MIN_CAPACITY", 2)
        patch.setattr(sqlite_state, "READ_CACHE_KEYS", 1)  # so that reads go past the values
        path = Path(tmp) / "state.sqlite"
        store = SqliteStateStore(path)
        held: dict[str, bytes] = {}
        stale = False  # another connection committed and the writer has not noticed yet
        height = 0
        for action, arg in steps:
            if action in ("commit", "foreign"):
                writes: dict[str, bytes | None] = arg  # type: ignore[assignment]
                height += 1
                writer = store if action == "commit" else SqliteStateStore(path)
                commit(writer, height, writes)
                if writer is not store:
                    writer.close()
                for key, value in writes.items():
                    if value is None:
                        held.pop(key, None)
                    else:
                        held[key] = value
                stale = action == "foreign"
            elif action == "refresh":
                store.refresh()
                stale = False
            elif not stale and action == "get":
                assert isinstance(arg, str)
                assert store.get(arg) == held.get(arg)
            elif not stale:
                asked: list[str] = arg  # type: ignore[assignment]
                assert store.get_many(asked) == {k: held[k] for k in asked if k in held}
        store.refresh()
        assert store.get_many([f"k/{i}" for i in range(12)]) == held
        store.close()
