"""The exchange's edges, from a mutmut run over ``services/trade/exchange`` (the stories are in
``test_exchange.py``): a maker filled in parts is held anew each time under a new hold id and
counted, an expiry at the very height is refused, a seller whose TRC is frozen cannot sell for
TRC, Coco's liquidity share split exactly, the epoch's progress carries what it paid, and the
state's own consistency checks refuse events that contradict it. A second run added: a maker
passed over only for the token it would receive, the first Coco epoch's first instant, the
largest council lot, and a liquidity payout that empties the pool or takes its whole share."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from tests.trade.helpers import withdraw_kyc
from tests.trade.test_exchange import COCO, LOT, PAIR, PLACE, TRC, FlowChain, market, order, sound
from tests.trade.test_governed import council_sets
from traco.core.domain import DictState, Event, encode
from traco.core.service_exec import ServiceBlockResult
from traco.services.trade import genesis as trade_genesis
from traco.services.trade import mutations
from traco.services.trade import orderbook as ob
from traco.services.trade import queries as q
from traco.services.trade.exchange import rules as xr
from traco.services.trade.exchange import state as xs
from traco.services.trade.exchange.liquidity import payouts


def test_a_maker_filled_in_parts_is_held_anew_each_time() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.exporter, PLACE, order("s", "sell", 100, 3))
    record = xs.order(chain.state, "s")
    assert record is not None and (record["hold_id"], record["holds"]) == ("exchange:s:0", 1)
    for n, buyer in enumerate((cast.importer, cast.bank_a), start=1):
        chain.ok(buyer, PLACE, order(f"b{n}", "buy", 100, 1))
        record = xs.order(chain.state, "s")
        assert record is not None and (record["hold_id"], record["holds"]) == (f"exchange:s:{n}", n + 1)
        held = q.hold(chain.state, f"exchange:s:{n}")
        assert held is not None and held.amount == (3 - n) * LOT and held.asset == COCO
    chain.ok(cast.investor, PLACE, order("b3", "buy", 100, 1))  # the last lot: nothing left to hold
    record = xs.order(chain.state, "s")
    assert record is not None and (record["status"], record["hold_id"], record["holds"]) == ("filled", None, 3)
    assert record["filled"] == 3 * LOT and record["quote"] == 300
    sound(chain)


def test_an_expiry_at_the_executing_height_is_refused_and_the_next_one_taken() -> None:
    chain = market()
    cast = chain.cast
    now = chain.height + 1  # the height the next transaction executes at
    refused = chain.run(cast.exporter, PLACE, order("x", "sell", 5, 1, expires_height=now))
    assert refused.code == "INVALID_EXPIRY"
    assert refused.message == f"expiry height {now} must be after the current height {now}"
    chain.ok(cast.exporter, PLACE, order("y", "sell", 5, 1, expires_height=chain.height + 2))


def test_a_seller_whose_trc_is_frozen_cannot_sell_for_trc() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.regulator, "trade.trc.freeze", {"account": "exporter", "reason": "court order"})
    refused = chain.run(cast.exporter, PLACE, order("s", "sell", 100, 1))
    assert refused.code == "FROZEN" and refused.message == "exporter's TRC is frozen; it cannot receive TRC"
    assert chain.account("exporter", COCO)["held"] == 0


def test_the_liquidity_share_is_split_by_volume_rounded_down() -> None:
    assert payouts(0, [("a", 5)]) == [] and payouts(-1, [("a", 5)]) == []
    assert payouts(10, []) == [] and payouts(10, [("a", 0), ("b", 0)]) == []
    assert payouts(1, [("a", 1)]) == [["a", 1]]  # a share of one unit, one trader: all of it
    assert payouts(10, [("a", 1), ("b", 2)]) == [["a", 3], ["b", 6]]  # 10/3 and 20/3, down; 1 stays
    assert payouts(2, [("a", 1), ("b", 1), ("c", 1)]) == []  # 2/3 each rounds to nothing
    assert payouts(5, [("a", 1), ("b", 4)]) == [["a", 1], ["b", 4]]  # exact: nothing stays


def traded_through_the_first_epoch(chain: FlowChain) -> ServiceBlockResult:
    """Two lots traded, then the block that ends Coco's first epoch and pays it; its result."""
    params = q.params(chain.state, "coco")
    assert params is not None
    chain.ok(chain.cast.exporter, PLACE, order("s1", "sell", 100, 2))
    chain.ok(chain.cast.importer, PLACE, order("b1", "buy", 100, 2))
    return chain.block(dt=int(params["start_time"]) + int(params["epoch_ms"]) - chain.time)


def test_the_epochs_progress_counts_the_liquidity_paid() -> None:
    chain = market()
    before = q.epoch(chain.state)  # trading pays nothing before the epoch ends
    result = traded_through_the_first_epoch(chain)
    epoch = next(e for e in result.events if e.type == "CocoEpochPaid")
    liquidity = next(e for e in result.events if e.type == "LiquidityPaid")
    after = q.epoch(chain.state)
    assert after["paid"] == before["paid"] + epoch.data["paid"] + liquidity.data["paid"]
    record = q.epoch_paid(chain.state, 0)
    assert record is not None and record["liquidity_share"] == liquidity.data["share"] > 0
    # replayed a second time, the same payout would take more than the epoch's share left in the pool
    over = {**liquidity.data, "paid": liquidity.data["share"] + 1}
    with pytest.raises(ValueError, match="exceeds its share or the pool"):
        mutations.mutate(chain.state, Event("LiquidityPaid", liquidity.aggregate_id, over))


def test_events_that_contradict_the_book_are_refused_on_replay() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.exporter, PLACE, order("s", "sell", 100, 2))
    chain.ok(cast.importer, PLACE, order("b", "buy", 100, 1))
    filled = next(e for e in chain.events if e.type == "OrderFilled")
    with pytest.raises(ValueError, match=f"order s cannot fill {LOT}"):  # s has 1 lot left, not 2
        mutations.mutate(chain.state, filled)
    closed = {"order_id": "b", "by": "importer", "tx_id": None, "height": chain.height, "time": chain.time}
    with pytest.raises(ValueError, match="order b is filled"):
        mutations.mutate(chain.state, Event("OrderCancelled", "order:b", closed))
    with pytest.raises(ValueError, match="order b is filled"):
        mutations.mutate(chain.state, Event("OrderExpired", "order:b", closed))
    placed = next(e for e in chain.events if e.type == "OrderPlaced")
    with pytest.raises(ValueError, match="placed twice"):
        mutations.mutate(chain.state, placed)
    assert xs.stat(chain.state, PAIR)["trades"] == 1 and chain.account("importer", TRC)["held"] == 0


def test_a_taker_that_would_fill_at_once_is_still_refused_an_expiry_at_the_height() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.exporter, PLACE, order("s", "sell", 100, 1))
    now = chain.height + 1
    refused = chain.run(cast.importer, PLACE, order("b", "buy", 100, 1, expires_height=now))  # needs no hold
    assert refused.code == "INVALID_EXPIRY" and xs.order(chain.state, "s") is not None
    assert xs.stat(chain.state, PAIR)["trades"] == 0


def test_a_cancelled_order_records_who_closed_it_and_when() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.importer, PLACE, order("b", "buy", 100, 2))
    receipt = chain.run(cast.importer, "trade.order.cancel", {"order_id": "b"})
    record = xs.order(chain.state, "b")
    assert record is not None and (record["status"], record["hold_id"]) == ("cancelled", None)
    assert record["closed"] == {"by": "importer", "tx_id": receipt.tx_id, "height": chain.height, "time": chain.time}
    hold = q.hold(chain.state, "exchange:b:0")
    assert hold is not None and (hold.closed_by, hold.returned, hold.executed) == ("service:trade", 200, 0)


def test_a_partly_filled_makers_new_hold_keeps_its_terms() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.exporter, PLACE, order("s", "sell", 100, 2))
    first = q.hold(chain.state, "exchange:s:0")
    chain.ok(cast.importer, PLACE, order("b", "buy", 100, 1))
    renewed = q.hold(chain.state, "exchange:s:1")
    assert first is not None and renewed is not None
    assert (renewed.owner, renewed.beneficiary, renewed.notary) == (first.owner, first.beneficiary, first.notary)
    assert (renewed.expires_height, renewed.expires_time) == (first.expires_height, first.expires_time)
    assert (renewed.created_height, renewed.created_time) == (chain.height, chain.time)
    assert renewed.status == first.status and renewed.amount == LOT


def test_a_council_lot_of_one_is_a_listing() -> None:
    section = {k: v for k, v in trade_genesis.development_section().items() if k != "exchange"}
    chain = market(section)
    council_sets(chain, "pair/COCO", {"lot": 1})
    chain.ok(chain.cast.exporter, PLACE, order("s", "sell", 5, 3, lot=1))
    listed = xs.pair(chain.state, PAIR)
    assert listed is not None and listed["lot"] == 1


def test_an_order_placed_with_an_old_sequence_number_is_refused_on_replay() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.exporter, PLACE, order("s", "sell", 100, 1))
    placed = next(e for e in chain.events if e.type == "OrderPlaced")
    again = dict(placed.data)
    again["order"] = {**again["order"], "order_id": "s2"}  # a new id, but the pair's last seq
    with pytest.raises(ValueError, match="is not after the pair's last"):
        mutations.mutate(chain.state, Event("OrderPlaced", "order:s2", again))


def test_only_a_token_against_trc_that_can_be_held_and_moved_is_listed() -> None:
    section = trade_genesis.development_section()
    section["asset_classes"] = [
        *section["asset_classes"],
        {"name": "badge", "mint": "none", "burn": "none", "eligibility": "members", "decimals": 0, "holdable": False},
    ]
    section["tokens"] = [*section["tokens"], {"token": "BADGE", "name": "Badge", "asset_class": "badge"}]
    chain = market(section)
    cast = chain.cast
    for base in ("BADGE", "TRC", "COCO"):  # COCO/TRC is listed by the genesis already
        council_sets(chain, f"pair/{base}", {"lot": 1})
    refused = chain.run(cast.exporter, PLACE, order("b", "sell", 5, 1, pair="BADGE/TRC", lot=1))
    assert (refused.code, refused.message) == (
        "UNKNOWN_PAIR",
        "BADGE/TRC: BADGE (badge) cannot be held and transferred",
    )
    refused = chain.run(cast.exporter, PLACE, order("t", "sell", 5, 1, pair="TRC/TRC", lot=1))
    assert (refused.code, refused.message) == ("UNKNOWN_PAIR", "TRC/TRC is not a listed pair")
    refused = chain.run(cast.exporter, PLACE, order("c", "sell", 5, 1, pair="COCO/BADGE", lot=1))
    assert (refused.code, refused.message) == ("UNKNOWN_PAIR", "COCO/BADGE is not a listed pair")


def test_a_maker_is_passed_over_only_if_it_may_not_receive_what_it_would_get() -> None:
    """A seller gets TRC (KYC-verified holders only), a buyer gets COCO (any member): without
    KYC, a resting sell is passed over and a resting buy is still filled."""
    chain = market()
    cast = chain.cast
    chain.ok(cast.exporter, PLACE, order("s", "sell", 100, 1))
    chain.ok(cast.bank_a, PLACE, order("s2", "sell", 101, 1))
    chain.ok(cast.investor, PLACE, order("b", "buy", 90, 1))
    withdraw_kyc(chain, cast.exporter)
    withdraw_kyc(chain, cast.investor)
    chain.ok(cast.importer, PLACE, order("t", "buy", 101, 1))
    skipped, taken = xs.order(chain.state, "s"), xs.order(chain.state, "s2")
    assert skipped is not None and (skipped["status"], skipped["remaining"]) == (xs.OPEN, LOT)
    assert taken is not None and taken["status"] == "filled"
    chain.ok(cast.bank_a, PLACE, order("u", "sell", 90, 1))
    filled = xs.order(chain.state, "b")
    assert filled is not None and filled["status"] == "filled"
    sound(chain, rebuild=False)


def test_trades_count_in_a_coco_epoch_from_its_first_instant_and_without_coco_in_none() -> None:
    chain = market()
    params = q.params(chain.state, "coco")
    assert params is not None
    start, length = int(params["start_time"]), int(params["epoch_ms"])
    assert (xr.epoch_of(chain.state, start - 1), xr.epoch_of(chain.state, start)) == (None, 0)
    assert (xr.epoch_of(chain.state, start + length - 1), xr.epoch_of(chain.state, start + length)) == (0, 1)
    assert xr.epoch_of(DictState(), start) is None  # a chain with no Coco


def test_the_council_may_set_any_lot_up_to_the_largest_price() -> None:
    def listed(lot: object) -> dict[str, Any] | None:
        party = SimpleNamespace(service_param=lambda _members, _service, _key: {"lot": lot})
        return xr.council_pair(SimpleNamespace(party=party, members=None), "COCO")  # type: ignore[arg-type]

    assert listed(ob.MAX_PRICE) == {"lot": ob.MAX_PRICE} and listed(1) == {"lot": 1}
    assert [listed(lot) for lot in (ob.MAX_PRICE + 1, 0, True, "5")] == [None] * 4


def test_a_liquidity_payout_may_empty_the_pool_and_take_its_whole_share() -> None:
    chain = market()
    result = traded_through_the_first_epoch(chain)
    liquidity = next(e for e in result.events if e.type == "LiquidityPaid")
    share = liquidity.data["share"]
    whole = {**liquidity.data, "paid": share, "payouts": [["exporter", share]]}
    chain.state.apply({q.POOL: encode({"amount": share})})  # exactly what the payout takes
    writes = mutations.mutate(chain.state, Event("LiquidityPaid", liquidity.aggregate_id, whole))
    assert orjson.loads(writes[q.POOL] or b"null") == {"amount": 0}
