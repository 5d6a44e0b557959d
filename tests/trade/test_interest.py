"""The loan interest rule (``services/trade/loans/interest.py``): Actual/365 Fixed on block time in
milliseconds, rounded up once on the cumulative accrual, payments to interest first."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from traco.services.trade.loans import interest
from traco.services.trade.loans.interest import DAY_MS, Position, interest_total, pay

MILLION = 100_000_000  # 1,000,000.00 in minor units


def test_realistic_tenors_by_hand() -> None:
    # 1,000,000.00 at 5.00% for 90 days: 100,000,000 x 0.05 x 90/365 = 1,232,876.712... -> 1,232,877
    assert interest_total(500, MILLION * 90 * DAY_MS) == 1_232_877
    # 30 days at 7.25%: 100,000,000 x 0.0725 x 30/365 = 595,890.41... -> 595,891
    assert interest_total(725, MILLION * 30 * DAY_MS) == 595_891
    # a full year at 4%: exactly 4,000,000.
    assert interest_total(400, MILLION * 365 * DAY_MS) == 4_000_000
    # 180 days at 12%: 5,917,808.21... -> 5,917,809
    assert interest_total(1_200, MILLION * 180 * DAY_MS) == 5_917_809
    # a leap year's 366 days accrue one day more than 365, nothing special about the 29th
    assert interest_total(400, MILLION * 366 * DAY_MS) == 4_010_959
    # seconds of block time: 1,000,000 minor units at 10% for 10 s is 0.03 of a unit -> 1
    assert interest_total(1_000, 1_000_000 * 10_000) == 1
    assert interest_total(0, MILLION * 365 * DAY_MS) == 0


def test_partial_repayments_cost_what_one_repayment_would() -> None:
    start = Position(outstanding=MILLION, accrued_pms=0, accrued_to=0, interest_paid=0)
    end = 90 * DAY_MS
    _, due_once = start.owed(500, end)
    pos, paid = start, 0
    for day in (10, 25, 40, 61, 77):  # interest only, every few weeks
        owed, _ = pos.owed(500, day * DAY_MS)
        if owed:
            step = pay(pos, 500, day * DAY_MS, owed)
            pos, paid = step.after, paid + owed
    _, rest = pos.owed(500, end)
    assert paid + rest == due_once


@given(
    principal=st.integers(1, 10**12),
    rate=st.integers(0, 100_000),
    moments=st.lists(st.integers(1, 400 * DAY_MS), min_size=1, max_size=8),
    shares=st.lists(st.integers(1, 100), min_size=8, max_size=8),
)
def test_every_schedule_charges_at_least_the_exact_interest_and_under_one_unit_more(
    principal: int, rate: int, moments: list[int], shares: list[int]
) -> None:
    pos = Position(outstanding=principal, accrued_pms=0, accrued_to=0, interest_paid=0)
    exact = Fraction(0)
    last = 0
    paid_total = 0
    for at, share in zip(sorted(moments), shares, strict=False):
        exact += Fraction(rate * pos.outstanding * (at - last), 10_000 * interest.YEAR_MS)
        last = at
        owed, due = pos.owed(rate, at)
        if due == 0:
            break  # repaid in full: nothing accrues any more
        amount = max(1, due * share // 100)
        step = pay(pos, rate, at, amount)
        assert step.to_interest == min(amount, owed) and step.to_principal == amount - step.to_interest
        assert step.after.outstanding == pos.outstanding - step.to_principal >= 0
        paid_total += step.to_interest
        pos = step.after
    owed, _ = pos.owed(rate, last)
    charged = paid_total + owed
    assert exact <= charged < exact + 1
