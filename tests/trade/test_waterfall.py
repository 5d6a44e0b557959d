"""The securitisation waterfall (``traco.services.trade.waterfall``): a deal worked by hand over five
periods, the accrual rule, the trigger's exact threshold, and Hypothesis over random deals,
collections and losses checking conservation, seniority, junior-first losses and carried arrears
in every period."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traco.services.trade import waterfall as wf
from traco.services.trade.waterfall import BP, YEAR_MS, Deal, Distribution, Fee, Tranche

QUARTER = YEAR_MS // 4
"""91.25 days: a quarter of the 365-day year, so 10 % a year on 600 is exactly 15."""


def hand_deal() -> Deal:
    deal = wf.new_deal(
        [("A", 600, 1_000), ("B", 200, 2_000), ("C", 100, 3_000)],
        equity=100,
        senior_fee=Fee(rate_bp=100, fixed=1),
        sub_fee=Fee(fixed=5),
        reserve_target=20,
        loss_trigger_bp=1_500,
    )
    assert isinstance(deal, Deal), deal
    return deal


def lines(d: Distribution) -> list[tuple[str, str, int]]:
    return [(line.step, line.to, line.amount) for line in d.lines]


def test_worked_example_by_hand() -> None:
    """Pool 1,000 = A 600 @ 10 %, B 200 @ 20 %, C 100 @ 30 %, equity 100; senior fee 1 % a year of
    the pool balance + 1 per period; subordinated fee 5 per period; reserve target 20; trigger at
    15 % of the pool (150 of losses). Every period is a quarter (accrual = x * bp / 40,000, down).

    P1, collect 40: senior 1000*100/40000 = 2.5 -> 2, +1 = 3; interest A 15, B 10, C 7.5 -> 7.
        40-3-15-10-7 = 5 tops the reserve up to 5 (of 20). Sub fee 5 carried.
    P2, collect 20, lose 120: equity 100 -> 0, C 100 -> 80 (cumulative 120 < 150: normal).
        Accrual on the start balances: senior 3, A 15, B 10, C 7, sub 5 + 5 carried = 10.
        20 pays senior 3, A 15, then 2 to B with 5 drawn from the reserve: B 7 (3 carried),
        C 0 (7 carried), reserve 0.
    P3, collect 100: pool 880 -> senior 2.2 -> 2, +1 = 3; A 15; B 3 + 10 = 13; C 7 + 80*3000/40000
        = 13; 100-3-15-13-13 = 56: reserve +20, principal A 36 (A 564). Sub fee 15 carried.
    P4, collect 50, lose 40: C 80 -> 40, cumulative 160 >= 150: defaulted from now on. Pool at the
        start 844 -> senior 2.11 -> 2, +1 = 3; A 564*1000/40000 = 14.1 -> 14; B 10; C on its start
        balance 80: 6. The reserve's 20 is released: 70 = senior 3, A interest 14, A principal 53
        (A 511); B 10 and C 6 carried, sub 20 carried.
    P5, collect 1,000: pool 751 -> senior 1.8775 -> 1, +1 = 2; A 12.775 -> 12; B 10 + 10 = 20;
        C 6 + 3 = 9; sub 25. Pays A 12 + 511, B 20 + 200, C 9 + 40, sub 25, equity the last 181.
    """
    deal = hand_deal()
    p1 = wf.distribute(deal, 40, 0, QUARTER)
    assert lines(p1) == [
        ("senior_fee", "senior_fee", 3),
        ("interest", "A", 15),
        ("interest", "B", 10),
        ("interest", "C", 7),
    ]
    assert (p1.deal.reserve, p1.reserve_topped_up, p1.deal.sub_fee.unpaid, p1.waterfall) == (5, 5, 5, "normal")

    p2 = wf.distribute(p1.deal, 20, 120, QUARTER)
    assert p2.writedowns == (("equity", 100), ("C", 20))
    assert lines(p2) == [("senior_fee", "senior_fee", 3), ("interest", "A", 15), ("interest", "B", 7)]
    assert (p2.reserve_drawn, p2.deal.reserve) == (5, 0)
    assert [(t.balance, t.unpaid_interest) for t in p2.deal.tranches] == [(600, 0), (200, 3), (80, 7)]
    assert (p2.deal.equity_balance, p2.deal.sub_fee.unpaid, p2.deal.defaulted) == (0, 10, False)

    p3 = wf.distribute(p2.deal, 100, 0, QUARTER)
    assert lines(p3) == [
        ("senior_fee", "senior_fee", 3),
        ("interest", "A", 15),
        ("interest", "B", 13),
        ("interest", "C", 13),
        ("principal", "A", 36),
    ]
    assert (p3.deal.reserve, p3.deal.tranche("A").balance, p3.deal.sub_fee.unpaid) == (20, 564, 15)
    assert [t.unpaid_interest for t in p3.deal.tranches] == [0, 0, 0]

    p4 = wf.distribute(p3.deal, 50, 40, QUARTER)
    assert (p4.triggered, p4.waterfall, p4.deal.defaulted, p4.deal.cumulative_losses) == (True, "defaulted", True, 160)
    assert p4.writedowns == (("C", 40),)
    assert (p4.reserve_released, p4.deal.reserve) == (20, 0)
    assert lines(p4) == [("senior_fee", "senior_fee", 3), ("interest", "A", 14), ("principal", "A", 53)]
    assert p4.to_json() == {  # what the trade service records and publishes of a distribution
        "deal": p4.deal.to_json(),
        "collections": 50,
        "losses": 40,
        "period_ms": QUARTER,
        "waterfall": "defaulted",
        "triggered": True,
        "lines": [["senior_fee", "senior_fee", 3], ["interest", "A", 14], ["principal", "A", 53]],
        "writedowns": [["C", 40]],
        "unabsorbed": 0,
        "reserve_drawn": 0,
        "reserve_topped_up": 0,
        "reserve_released": 20,
    }
    assert [(t.balance, t.unpaid_interest) for t in p4.deal.tranches] == [(511, 0), (200, 10), (40, 6)]

    p5 = wf.distribute(p4.deal, 1_000, 0, QUARTER)
    assert lines(p5) == [
        ("senior_fee", "senior_fee", 2),
        ("interest", "A", 12),
        ("principal", "A", 511),
        ("interest", "B", 20),
        ("principal", "B", 200),
        ("interest", "C", 9),
        ("principal", "C", 40),
        ("sub_fee", "sub_fee", 25),
        ("residual", "equity", 181),
    ]
    assert not p5.deal.notes_outstanding and p5.deal.defaulted and p5.deal.sub_fee.unpaid == 0
    assert sum(p.collections for p in (p1, p2, p3, p4, p5)) == sum(p.paid for p in (p1, p2, p3, p4, p5))


def test_accrual_is_floored_on_a_365_day_year() -> None:
    million = 100_000_000  # 1,000,000.00 in cents
    assert wf.accrue(million, 500, YEAR_MS) == 5_000_000
    assert wf.accrue(million, 500, 86_400_000) == 13_698  # 13,698.63… rounded down
    assert wf.accrue(million, 500, 0) == 0
    assert wf.accrue(1, 10_000, YEAR_MS - 1) == 0  # the fraction is dropped, never carried


def test_trigger_switches_exactly_at_the_threshold_and_for_good() -> None:
    deal = hand_deal()  # threshold: 1,500 bp of 1,000 = 150
    below = wf.distribute(deal, 0, 149, QUARTER)
    assert (below.deal.defaulted, below.waterfall, below.triggered) == (False, "normal", False)
    at = wf.distribute(below.deal, 0, 1, QUARTER)
    assert (at.deal.defaulted, at.waterfall, at.triggered) == (True, "defaulted", True)
    later = wf.distribute(at.deal, 1_000, 0, QUARTER)
    assert (later.deal.defaulted, later.waterfall, later.triggered) == (True, "defaulted", False)
    assert wf.distribute(deal, 0, 150, QUARTER).deal.defaulted
    declared = wf.distribute(replace(deal, defaulted=True), 100, 0, QUARTER)  # defaulted otherwise: stays so
    assert declared.deal.defaulted and declared.waterfall == "defaulted"


def test_normal_waterfall_keeps_subordinated_fee_and_equity_behind_the_notes() -> None:
    deal = hand_deal()
    d = wf.distribute(deal, 600, 0, QUARTER)  # enough for fees, interest, reserve, part of A
    assert d.paid_to("sub_fee", "sub_fee") == d.paid_to("residual", "equity") == 0
    assert d.paid_to("principal", "A") == 600 - 3 - 15 - 10 - 7 - 20
    done = wf.distribute(d.deal, 2_000, 0, QUARTER)
    assert not done.deal.notes_outstanding
    assert done.reserve_released == 20 and done.deal.reserve == 0  # no note left to protect
    assert done.paid_to("sub_fee", "sub_fee") == 10 and done.paid_to("residual", "equity") > 0


def test_losses_beyond_the_pool_are_reported_unabsorbed() -> None:
    d = wf.distribute(hand_deal(), 0, 1_200, QUARTER)
    assert d.unabsorbed == 200 and d.deal.pool_balance == 0 and d.deal.cumulative_losses == 1_200
    assert d.writedowns == (("equity", 100), ("C", 100), ("B", 200), ("A", 600))


def test_every_problem_is_named_at_once() -> None:
    problems = wf.new_deal(
        [("A", 10, -1), ("A", 5, 0), ("equity", 1, 1)],
        equity=-1,
        senior_fee=Fee(rate_bp=-1),
        sub_fee=Fee(),
        reserve_target=0,
        loss_trigger_bp=0,
    )
    assert isinstance(problems, list)
    text = " | ".join(problems)
    for part in (
        "'A' is used twice",
        "coupon_bp must be",
        "'equity' must be",
        "equity_original",
        "senior fee: rate_bp",
    ):
        assert part in text
    assert "loss_trigger_bp" in text
    with pytest.raises(ValueError, match=r"collections must be.*losses must be.*period_ms must be"):
        wf.distribute(hand_deal(), -1, -2, -3)
    bad = replace(hand_deal(), tranches=(Tranche("A", 5, 6, 0),))
    with pytest.raises(ValueError, match="balance 6 exceeds"):
        wf.distribute(bad, 0, 0, 0)


# --- properties ---------------------------------------------------------------------------------

PERIODS = st.sampled_from([0, 86_400_000, YEAR_MS // 12, QUARTER, YEAR_MS]) | st.integers(0, YEAR_MS)


@st.composite
def deals(draw: st.DrawFn) -> Deal:
    n = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(0, 1_000_000), min_size=n, max_size=n))
    coupons = draw(st.lists(st.integers(0, 3_000), min_size=n, max_size=n))
    equity = draw(st.integers(0 if sum(sizes) else 1, 200_000))
    deal = wf.new_deal(
        [("ABCD"[j], sizes[j], coupons[j]) for j in range(n)],
        equity=equity,
        senior_fee=Fee(rate_bp=draw(st.integers(0, 300)), fixed=draw(st.integers(0, 500))),
        sub_fee=Fee(rate_bp=draw(st.integers(0, 300)), fixed=draw(st.integers(0, 500))),
        reserve_target=draw(st.integers(0, 100_000)),
        loss_trigger_bp=draw(st.integers(1, BP)),
    )
    assert isinstance(deal, Deal), deal
    return deal


def periods(pool: int) -> st.SearchStrategy[list[tuple[int, int, int]]]:
    cash = st.integers(0, max(1, pool // 4)) | st.integers(0, 50) | st.just(0)
    loss = st.just(0) | st.integers(0, max(1, pool // 8))
    return st.lists(st.tuples(cash, loss, PERIODS), min_size=1, max_size=25)


def check_period(before: Deal, d: Distribution) -> None:
    after, names = d.deal, [t.name for t in before.tranches]
    # Conservation, exact: every unit collected is paid out or sits in the reserve.
    assert d.paid + (after.reserve - before.reserve) == d.collections
    assert d.paid == d.collections + d.reserve_drawn + d.reserve_released - d.reserve_topped_up
    assert all(line.amount > 0 for line in d.lines) and wf.check_deal(after) == []

    # Losses junior first, each one counted once.
    cut = dict(d.writedowns)
    assert sum(cut.values()) + d.unabsorbed == d.losses
    assert after.equity_balance == before.equity_balance - cut.get("equity", 0)
    written = [before.tranches[j].balance - cut.get(names[j], 0) for j in range(len(names))]
    for j, name in enumerate(names):
        if cut.get(name):
            assert after.equity_balance == 0 and all(written[k] == 0 for k in range(j + 1, len(names)))
    if d.unabsorbed:
        assert after.equity_balance == 0 and not any(written)

    # Arrears carried exactly, and balances move only by write-downs and principal.
    for j, (t0, t1) in enumerate(zip(before.tranches, after.tranches, strict=True)):
        due = t0.unpaid_interest + wf.accrue(t0.balance, t0.coupon_bp, d.period_ms)
        assert t1.unpaid_interest == due - d.paid_to("interest", t0.name)
        assert t1.balance == written[j] - d.paid_to("principal", t0.name)

    # Fee arrears carried exactly: what was due (arrears, accrual on the start balance, fixed)
    # less what was paid; a fee's terms never change. One more period on the deal's count.
    for step, fee0, fee1 in (
        ("senior_fee", before.senior_fee, after.senior_fee),
        ("sub_fee", before.sub_fee, after.sub_fee),
    ):
        assert fee1.unpaid == fee0.due(before.pool_balance, d.period_ms) - d.paid_to(step, step)  # type: ignore[arg-type]
        assert (fee1.rate_bp, fee1.fixed) == (fee0.rate_bp, fee0.fixed)
    assert after.periods == before.periods + 1

    # The trigger: reached at the threshold, never left.
    reached = after.cumulative_losses * BP >= before.loss_trigger_bp * before.pool_original
    assert after.defaulted == (before.defaulted or reached)
    assert d.triggered == (after.defaulted and not before.defaulted)
    assert d.waterfall == ("defaulted" if after.defaulted else "normal")

    # Seniority.
    fees_clear = after.senior_fee.unpaid == 0
    for j, name in enumerate(names):
        seniors = after.tranches[:j]
        if d.paid_to("interest", name):
            assert fees_clear and all(t.unpaid_interest == 0 for t in seniors)
            if after.defaulted:
                assert all(t.balance == 0 for t in seniors)
        if d.paid_to("principal", name):
            assert fees_clear and all(t.balance == 0 and t.unpaid_interest == 0 for t in seniors)
            if not after.defaulted:
                assert all(t.unpaid_interest == 0 for t in after.tranches)
                assert after.reserve == before.reserve_target or (not after.notes_outstanding and after.reserve == 0)
    if d.paid_to("sub_fee", "sub_fee"):
        assert fees_clear and not after.notes_outstanding
    if d.paid_to("residual", "equity"):
        assert fees_clear and not after.notes_outstanding and after.sub_fee.unpaid == 0
    if not before.notes_outstanding:
        assert d.reserve_topped_up == 0  # nothing left to protect: the reserve is not refilled
    if after.defaulted:
        assert after.reserve == 0 and d.reserve_topped_up == 0
    else:
        assert after.reserve <= max(before.reserve, before.reserve_target)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_period_conserves_and_respects_seniority(data: st.DataObject) -> None:
    deal = data.draw(deals())
    run = data.draw(periods(deal.pool_original))
    collected = paid = 0
    for collections, losses, period_ms in run:
        d = wf.distribute(deal, collections, losses, period_ms)
        check_period(deal, d)
        assert Deal.from_json(d.deal.to_json()) == d.deal
        collected, paid = collected + collections, paid + d.paid
        deal = d.deal
    assert collected == paid + deal.reserve


@settings(max_examples=200, deadline=None)
@given(deals(), st.integers(0, 10**6), PERIODS)
def test_carried_shortfalls_are_paid_first_next_time(deal: Deal, starve: int, period_ms: int) -> None:
    """A short period leaves arrears; a period with cash for everything owed clears them before
    any principal, and pays them in full with the new accrual."""
    short = wf.distribute(deal, starve % 50, 0, period_ms)
    owed = short.deal
    enough = owed.pool_balance * 10 + sum(t.unpaid_interest for t in owed.tranches) + 10**7
    full = wf.distribute(owed, enough, 0, period_ms)
    check_period(owed, full)
    for t0, t1 in zip(owed.tranches, full.deal.tranches, strict=True):
        assert full.paid_to("interest", t0.name) == t0.unpaid_interest + wf.accrue(t0.balance, t0.coupon_bp, period_ms)
        assert (t1.unpaid_interest, t1.balance) == (0, 0)
    assert full.deal.senior_fee.unpaid == full.deal.sub_fee.unpaid == 0
    order = [(line.step, line.to) for line in full.lines]
    if owed.tranches[0].unpaid_interest and full.paid_to("principal", owed.tranches[0].name):
        assert order.index(("interest", owed.tranches[0].name)) < order.index(("principal", owed.tranches[0].name))
