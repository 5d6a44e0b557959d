"""Upstream reads remembered for one block (``core.domain.UpstreamView``, ``remembered``).

What must hold: a question asked of an upstream is answered from its state once per block and
never from an earlier block's answer (an upstream changes between blocks: a member suspended
at H is refused at H+1); a shared answer cannot be changed by the caller; and views that are
not an upstream as a block reads it (a service's own state, the HTTP API's) are never
remembered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pytest

from tests.trade.helpers import Chain
from tests.trade.test_exchange import market
from traco.core.domain import DictState, StateView, UpstreamView, remembered
from traco.services.party import queries as party

TRANSFER = "trade.transfer"


class CountingView:
    """A view that counts the reads that reach it."""

    def __init__(self, base: StateView) -> None:
        self.base = base
        self.gets: dict[str, int] = {}

    def get(self, key: str) -> bytes | None:
        self.gets[key] = self.gets.get(key, 0) + 1
        return self.base.get(key)

    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        return self.base.scan(prefix)


def test_remembered_computes_once_per_upstream_view_and_every_time_elsewhere() -> None:
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    block = UpstreamView(DictState())
    assert [remembered(block, "q", compute) for _ in range(3)] == [1, 1, 1]
    assert remembered(block, "other", compute) == 2  # another question is computed
    next_block = UpstreamView(block.base)
    assert remembered(next_block, "q", compute) == 3  # a new block asks afresh
    own = DictState()
    assert [remembered(own, "q", compute) for _ in range(2)] == [4, 5]  # not an upstream: never kept


def test_upstream_view_reads_through_and_seeks() -> None:
    base = DictState({"a/1": b"1", "a/2": b"2", "a/3": b"3", "b/1": b"x"})
    view = UpstreamView(base)
    assert view.get("a/2") == b"2" and view.get("missing") is None
    assert list(view.scan("a/")) == [("a/1", b"1"), ("a/2", b"2"), ("a/3", b"3")]
    assert list(view.scan_from("a/", "a/2")) == [("a/2", b"2"), ("a/3", b"3")]


def party_reads(per_sender: int) -> dict[str, int]:
    """The party reads of one block of ``per_sender`` transfers from each of two members."""
    chain = market()
    counting = CountingView(chain.party)
    chain.party = counting  # type: ignore[assignment]
    importer, exporter = chain.cast.importer, chain.cast.exporter
    transfers = [(importer, TRANSFER, {"token": "TRC", "to": "exporter", "amount": 1})] * per_sender
    transfers += [(exporter, TRANSFER, {"token": "TRC", "to": "importer", "amount": 1})] * per_sender
    result = chain.block(transfers)
    assert all(r.accepted for r in result.receipts)
    return counting.gets


def test_a_blocks_party_reads_do_not_grow_with_its_transactions() -> None:
    one, many = party_reads(1), party_reads(20)
    assert one == many
    assert max(many.values()) <= 2  # a record is read by key and by member id at most


def test_a_member_suspended_between_blocks_is_refused_in_the_next_block() -> None:
    chain = market()
    importer = chain.cast.importer
    payload = {"token": "TRC", "to": "exporter", "amount": 1}
    first = chain.block([(importer, TRANSFER, payload)] * 2)
    assert [r.code for r in first.receipts] == ["OK", "OK"]
    key = f"member/{importer.key}"
    raw = chain.party.get(key)
    assert raw is not None
    chain.party.apply({key: orjson.dumps({**orjson.loads(raw), "status": "suspended"})})
    # the same block time (dt=0), so only the block, not the time, can tell the answers apart
    second = chain.block([(importer, TRANSFER, payload)] * 2, dt=0)
    assert [r.code for r in second.receipts] == ["NOT_PERMITTED"] * 2


def test_a_shared_member_record_cannot_be_changed_by_its_reader() -> None:
    chain = Chain()
    view = UpstreamView(chain.party)
    record = party.member(view, chain.cast.importer.key, chain.time)
    assert record is not None and record["member_id"] == "importer"
    writable: Any = record
    with pytest.raises(TypeError):
        writable["status"] = "admitted-by-me"
    assert party.member(view, chain.cast.importer.key, chain.time) is record
    by_id = party.member_by_id(view, "importer")
    assert by_id is not None and not isinstance(by_id, dict)


def test_party_reads_of_a_services_own_state_are_plain_and_fresh() -> None:
    chain = Chain()
    own: Mapping[str, Any] | None = party.member(chain.party, chain.cast.importer.key, chain.time)
    assert isinstance(own, dict)
    assert party.member(chain.party, chain.cast.importer.key, chain.time) is not own
