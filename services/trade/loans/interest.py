"""Interest on a loan: one integer day-count rule on block time, and one rounding rule.

**Day count: Actual/365 Fixed, in milliseconds of block time.** Interest accrues on the
outstanding principal for the exact time it is outstanding, as a fraction of a 365-day year
(``YEAR_MS``), whatever the calendar: a leap day accrues like any other. Block time is the only
clock (architecture: Execution), so every replica computes the same figure.

**Rounding: up, once, on the cumulative figure.** The loan keeps the exact accrual as an
integer — principal × milliseconds, summed over every stretch between payments
(``accrued_pms``) — and the interest owed at time ``t`` is

    ceil(rate_bp × accrual(t) / (10,000 × YEAR_MS)) − interest already paid

so partial repayments never round twice: paying in ten instalments costs exactly what paying
once would, give or take the one final minor unit the lender is rounded up to. Rounding up
means the lender is never paid less than the exact rate; the borrower's excess is under one
minor unit over the loan's life.

Payments go to interest owed first, then to principal (the usual order: unpaid interest is not
allowed to hide behind repaid principal). Interest keeps accruing at the same rate after
maturity until the loan is repaid or defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DAY_MS: Final = 86_400_000
YEAR_MS: Final = 365 * DAY_MS
BP: Final = 10_000


def accrual(accrued_pms: int, outstanding: int, accrued_to: int, now: int) -> int:
    """The principal-milliseconds accrued up to ``now`` (never backwards)."""
    return accrued_pms + outstanding * max(0, now - accrued_to)


def interest_total(rate_bp: int, accrued_pms: int) -> int:
    """All interest earned on ``accrued_pms``, rounded up to the minor unit."""
    numerator = rate_bp * accrued_pms
    return -(-numerator // (BP * YEAR_MS))


@dataclass(frozen=True)
class Position:
    """A loan's running figures (the loan record keeps them)."""

    outstanding: int
    accrued_pms: int
    accrued_to: int
    interest_paid: int

    def owed(self, rate_bp: int, now: int) -> tuple[int, int]:
        """``(interest owed, total due)`` at ``now``."""
        interest = interest_total(rate_bp, accrual(self.accrued_pms, self.outstanding, self.accrued_to, now))
        owed = interest - self.interest_paid
        return owed, self.outstanding + owed


@dataclass(frozen=True)
class Payment:
    to_interest: int
    to_principal: int
    after: Position


def pay(position: Position, rate_bp: int, now: int, amount: int) -> Payment:
    """Apply ``amount`` (0 < amount ≤ due) at ``now``: interest owed first, then principal."""
    owed, due = position.owed(rate_bp, now)
    if not 0 < amount <= due:
        raise ValueError(f"a payment must be between 1 and the {due} due, not {amount}")
    to_interest = min(amount, owed)
    to_principal = amount - to_interest
    after = Position(
        outstanding=position.outstanding - to_principal,
        accrued_pms=accrual(position.accrued_pms, position.outstanding, position.accrued_to, now),
        accrued_to=max(now, position.accrued_to),
        interest_paid=position.interest_paid + to_interest,
    )
    return Payment(to_interest, to_principal, after)
