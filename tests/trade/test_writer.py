"""The mutators' writer (``services/trade/writer.py``): it reads through its own writes, so two
moves of one balance inside one event add up instead of the second starting from the stored
value (found by mutmut: no event of the flows moves one key twice, so only this test holds it)."""

from __future__ import annotations

import pytest

from traco.core.domain import DictState, Event, encode
from traco.services.trade import queries as q
from traco.services.trade.mutations import mutate
from traco.services.trade.writer import Writer, credit, supply


def test_reads_see_the_writes_made_so_far() -> None:
    w = Writer(DictState({"k": encode({"v": 1})}))
    assert w.get("k") == {"v": 1}
    w.put("k", {"v": 2})
    assert w.get("k") == {"v": 2}
    w.delete("k")
    assert w.get("k") is None and w.writes == {"k": None}
    w.put("list", [1, 2])
    assert w.get("list") is None  # only objects are records
    with pytest.raises(LookupError, match="missing gone"):
        w.must("gone")


def test_two_moves_of_one_balance_in_one_event_add_up() -> None:
    key = q.balance_key("TRC", "ann")
    w = Writer(DictState({key: encode({"total": 10, "held": 0})}))
    credit(w, "TRC", "ann", total=5)
    credit(w, "TRC", "ann", total=-3, held=2)
    assert w.get(key) == {"total": 12, "held": 2}
    credit(w, "TRC", "ann", total=-12, held=-2)
    assert w.writes[key] is None  # an empty balance is deleted, not kept as zeros
    with pytest.raises(ValueError, match="inconsistent"):
        credit(w, "TRC", "ann", total=-1)


def test_supply_moves_add_up_and_never_go_negative() -> None:
    w = Writer(DictState({q.token_key("TRC"): encode({"token": "TRC", "supply": 7})}))
    supply(w, "TRC", 3)
    supply(w, "TRC", -10)
    assert w.get(q.token_key("TRC")) == {"token": "TRC", "supply": 0}
    with pytest.raises(ValueError, match="supply would go negative"):
        supply(w, "TRC", -1)


def test_an_epoch_may_empty_the_coco_pool_but_never_overdraw_it() -> None:
    """The last emission pays out what is left to the unit; the events can never pay more
    than the pool holds (found by mutmut: no flow empties the pool, so nothing held the bound)."""
    state = DictState(
        {
            q.params_key("coco"): encode({"token": "COCO"}),
            q.token_key("COCO"): encode({"token": "COCO", "supply": 900}),
            q.POOL: encode({"amount": 100}),
        }
    )
    paid = {"epoch": 3, "amount": 100, "holders_share": 30, "paid": 100, "height": 9, "time": 90}
    clause = {"by": "service:trade", "tx_id": None}  # as the epoch clause stamps it
    event = Event("CocoEpochPaid", "coco:epoch:3", {**paid, **clause, "payouts": [["ann", 70], ["bob", 30]]})
    state.apply(mutate(state, event))
    assert q.read(state, q.POOL) == {"amount": 0}
    assert q.epoch(state) == {"next": 4, "paid": 100}
    assert q.epoch_paid(state, 3) == {**paid, "holders": 2}
    assert q.token(state, "COCO")["supply"] == 1_000  # type: ignore[index]
    assert q.balance(state, "COCO", "ann")["total"] == 70
    overdraw = Event(
        "CocoEpochPaid", "coco:epoch:4", {**paid, **clause, "epoch": 4, "paid": 1, "payouts": [["ann", 1]]}
    )
    with pytest.raises(ValueError, match="pool would go negative"):
        mutate(state, overdraw)
