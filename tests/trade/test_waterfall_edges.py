"""The waterfall's refusals word for word, and the edges a random deal rarely reaches: a coupon
at its ceiling, a pool of nothing, a tranche one minor unit from retired (from a mutmut run
over ``services/trade/waterfall.py``; ``test_waterfall.py`` holds the worked example and the
properties)."""

from __future__ import annotations

import pytest

from traco.services.trade import waterfall as wf
from traco.services.trade.waterfall import MAX_COUPON_BP, YEAR_MS, Deal, Fee, Tranche

QUARTER = YEAR_MS // 4


def deal_of(*tranches: Tranche, **terms: object) -> Deal:
    fields: dict[str, object] = {
        "equity_original": 0,
        "equity_balance": 0,
        "senior_fee": Fee(),
        "sub_fee": Fee(),
        "reserve": 0,
        "reserve_target": 0,
        "loss_trigger_bp": 5_000,
    }
    fields.update(terms)
    return Deal(tranches=tranches, **fields)  # type: ignore[arg-type]


def test_a_malformed_deal_gets_every_problem_in_order_word_for_word() -> None:
    deal = deal_of(
        Tranche("A", 5, 6, MAX_COUPON_BP + 1),
        Tranche("", 1, 1, 0),
        Tranche(7, 1, 1, 0),  # type: ignore[arg-type]
        Tranche("A", 1, 1, 0),
        equity_original=1,
        equity_balance=2,
        senior_fee=Fee(rate_bp=-1),
        sub_fee=Fee(fixed="x"),  # type: ignore[arg-type]
        reserve=-1,
        loss_trigger_bp=0,
        defaulted="no",
    )
    assert wf.check_deal(deal) == [
        "tranche name 'A' is used twice",
        "tranche A: balance 6 exceeds its original size 5",
        f"tranche A: coupon_bp {MAX_COUPON_BP + 1} exceeds {MAX_COUPON_BP}",
        "tranche name '' must be a non-empty string other than a fee or equity",
        "tranche name 7 must be a non-empty string other than a fee or equity",
        "senior fee: rate_bp must be a non-negative integer",
        "subordinated fee: fixed must be a non-negative integer",
        "reserve must be a non-negative integer",
        "equity_balance 2 exceeds equity_original 1",
        "loss_trigger_bp must be an integer from 1 to 10000, not 0",
        "defaulted must be a boolean",
    ]
    with pytest.raises(ValueError) as refused:
        wf.distribute(deal, -1, 0, 0)
    assert str(refused.value) == "; ".join([*wf.check_deal(deal), "collections must be a non-negative integer, not -1"])


def test_a_deal_without_tranches_or_without_a_pool() -> None:
    assert wf.check_deal(deal_of()) == ["a deal needs at least one tranche"]
    empty = wf.new_deal([("A", 0, 0)], equity=0, senior_fee=Fee(), sub_fee=Fee(), reserve_target=0, loss_trigger_bp=1)
    assert empty == ["the pool's original balance (tranches and equity) must be positive"]


def test_an_equity_that_is_not_a_number_is_named_not_compared() -> None:
    assert wf.check_deal(deal_of(Tranche("A", 1, 1, 0), equity_original=5, equity_balance="x")) == [
        "equity_balance must be a non-negative integer"
    ]
    assert wf.check_deal(deal_of(Tranche("A", 1, 1, 0), equity_original=None, equity_balance=5)) == [
        "equity_original must be a non-negative integer"
    ]


def test_the_coupon_ceiling_itself_is_allowed() -> None:
    assert wf.check_deal(deal_of(Tranche("A", 1, 1, MAX_COUPON_BP))) == []


def test_a_note_one_unit_from_retired_still_has_the_reserve_topped_up_first() -> None:
    """The reserve is topped up while a note remains after interest, here a balance of one minor
    unit; principal then retires it and the reserve, with no note left to protect, is released
    into the residual in the same period."""
    deal = deal_of(Tranche("A", 100, 1, 0), reserve_target=20)
    d = wf.distribute(deal, 100, 0, QUARTER)
    assert (d.reserve_topped_up, d.reserve_released, d.deal.reserve) == (20, 20, 0)
    assert [(line.step, line.to, line.amount) for line in d.lines] == [
        ("principal", "A", 1),
        ("residual", "equity", 99),
    ]
