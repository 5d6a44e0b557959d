"""The SQLite writer remembers its scans until its next commit (``sqlite_state._Run``).

What must hold: a scan gives exactly what the store holds (the same rows as a store that
remembers nothing), from wherever it starts; scans that start inside what an earlier scan read
make no query; a commit, here or by another connection, is seen by the next scan; and a
read-only opener remembers nothing.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from traco.core.adapters import sqlite_state
from traco.core.adapters.sqlite import SqliteStateStore
from traco.core.ports import StateBatch

DIGEST = "00" * 32


class CountingReads:
    """Counts the queries a store's database answers."""

    def __init__(self, store: SqliteStateStore) -> None:
        self.count = 0
        db = store._db
        real = db.read

        def read(sql: str, params: Any = ()) -> list[Any]:
            self.count += 1
            return real(sql, params)

        db.read = read  # type: ignore[method-assign]


def book(store: SqliteStateStore, height: int, writes: Mapping[str, bytes | None]) -> None:
    store.commit(StateBatch(height, writes, (), (), DIGEST))


@pytest.fixture()
def store(tmp_path: Path) -> SqliteStateStore:
    s = SqliteStateStore(tmp_path / "state.sqlite")
    book(s, 1, {f"xbook/{i:04d}": b"%d" % i for i in range(100)} | {"xbooj": b"before", "xbool": b"after"})
    return s


def test_scans_from_further_on_are_served_from_the_first_ones_reads(store: SqliteStateStore) -> None:
    reads = CountingReads(store)
    first = next(iter(store.scan_from("xbook/", "xbook/0000")))
    assert first == ("xbook/0000", b"0") and reads.count == 1
    for i in range(1, 15):  # what the first page (16 rows) holds
        assert next(iter(store.scan_from("xbook/", f"xbook/{i:04d}"))) == (f"xbook/{i:04d}", b"%d" % i)
    assert reads.count == 1
    assert list(store.scan_from("xbook/", "xbook/0090")) == [(f"xbook/{i:04d}", b"%d" % i) for i in range(90, 100)]
    assert list(store.scan("xbook/")) == [(f"xbook/{i:04d}", b"%d" % i) for i in range(100)]


def test_a_commit_is_seen_by_the_next_scan(store: SqliteStateStore) -> None:
    assert next(iter(store.scan_from("xbook/", "xbook/0003")))[0] == "xbook/0003"
    book(store, 2, {"xbook/0003": None, "xbook/0004": b"changed", "xbook/0003x": b"new"})
    assert list(store.scan_from("xbook/", "xbook/0003"))[:3] == [
        ("xbook/0003x", b"new"),
        ("xbook/0004", b"changed"),
        ("xbook/0005", b"5"),
    ]


def test_another_connections_commit_is_seen_after_refresh(store: SqliteStateStore, tmp_path: Path) -> None:
    assert next(iter(store.scan("xbook/")))[0] == "xbook/0000"
    other = SqliteStateStore(tmp_path / "state.sqlite")
    book(other, 2, {"xbook/0000": None})
    store.refresh()
    assert next(iter(store.scan("xbook/")))[0] == "xbook/0001"


def test_a_readonly_opener_remembers_no_scan(store: SqliteStateStore, tmp_path: Path) -> None:
    reader = SqliteStateStore(tmp_path / "state.sqlite", readonly=True)
    reads = CountingReads(reader)
    for _ in range(3):
        assert next(iter(reader.scan("xbook/")))[0] == "xbook/0000"
    assert reads.count == 3


def test_a_run_stops_growing_at_its_limit(store: SqliteStateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_state, "RUN_ROWS", 40)
    assert len(list(store.scan("xbook/"))) == 100  # the run keeps the first page (16): 16 + 32 > 40
    reads = CountingReads(store)
    assert next(iter(store.scan_from("xbook/", "xbook/0010")))[0] == "xbook/0010"
    assert reads.count == 0
    assert next(iter(store.scan_from("xbook/", "xbook/0050")))[0] == "xbook/0050"
    assert reads.count == 1  # past what the run kept: read from the store


def test_random_scans_agree_with_a_store_that_remembers_nothing(tmp_path: Path) -> None:
    rng = random.Random(5)
    writer = SqliteStateStore(tmp_path / "w.sqlite")
    keys = [f"p/{rng.randint(0, 500):04d}" for _ in range(300)] + [f"q/{i}" for i in range(20)]
    book(writer, 1, {k: k.encode() for k in keys})
    reader = SqliteStateStore(tmp_path / "w.sqlite", readonly=True)
    height = 1
    for _ in range(400):
        if rng.random() < 0.05:
            height += 1
            changes = {f"p/{rng.randint(0, 500):04d}": rng.choice([None, b"v%d" % height]) for _ in range(10)}
            book(writer, height, changes)
        prefix = rng.choice(["p/", "q/", "p/01", "p/2"])
        start = prefix + rng.choice(["", f"{rng.randint(0, 500):04d}"[len(prefix) - 2 :]])
        take = rng.randint(1, 40)
        got = [kv for kv, _ in zip(writer.scan_from(prefix, start), range(take), strict=False)]
        want = [kv for kv, _ in zip(reader.scan_from(prefix, start), range(take), strict=False)]
        assert got == want, (prefix, start)
