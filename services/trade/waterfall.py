"""A securitisation's sequential-pay waterfall, exact in integers (issue 10, securitisation).

A pool of loans or receivables is financed by notes (tranches, senior to junior: A, B, C…) and
an equity piece that takes what is left. Each period the servicer hands over the cash it
collected and reports the principal it lost; ``distribute`` says, to the minor unit, who is paid
what and what the deal owes afterwards. It is pure (no clock, no I/O, no floats): the trade
service runs it inside a block and stores the ``Deal`` it returns, and anyone can recompute a
distribution from the previous ``Deal`` and the three inputs.

Anchor: AbsBox/Hastructure's deal model (pool, bonds, fees, accounts, a waterfall of actions per
deal status, triggers that change the status). What this module keeps from it, in integers:
fees and bond interest accrue per period and their unpaid part is carried as arrears; a reserve
account has a target; a cumulative-loss trigger moves the deal, once and for good, from its
normal waterfall to its defaulted one.

The terms (every amount an integer in the token's minor unit, every rate in basis points):

- **Tranche**: ``original`` size, outstanding ``balance``, ``coupon_bp`` per year, and
  ``unpaid_interest`` carried from earlier periods (no interest accrues on it).
- **Equity**: a first-loss notional (``equity_original``/``equity_balance``, may be 0). It
  receives the residual; residual payments do not reduce its notional (only losses do).
- **Fees** (senior and subordinated alike): ``rate_bp`` per year of the *pool balance* plus
  ``fixed`` per distribution, with ``unpaid`` arrears carried. The pool balance is the capital
  not yet repaid or lost, Σ tranche balances + equity balance, taken at the start of the period.
- **Reserve**: a cash account inside the deal, with a fixed ``reserve_target``.
- **Trigger**: ``loss_trigger_bp`` of the original pool (Σ tranche originals + equity original).

Accrual (the one rounding rule): for a period of ``period_ms`` milliseconds, an amount ``x`` at
``r`` basis points a year accrues ``floor(x * r * period_ms / (10_000 * 365 * 86_400_000))``
(a 365-day year of block time). The fraction is dropped, not carried: a deal that distributes
often earns its investors at most one minor unit less per period than one that waits.

One distribution, in this order:

1. Accrue, on the balances at the start of the period: each tranche's interest, each fee.
2. Write the period's losses down junior first: the equity, then C, B, A. Losses beyond the
   whole pool balance are reported as ``unabsorbed``. Every reported loss counts towards the
   trigger; when the cumulative losses reach it (``cumulative * 10_000 >= loss_trigger_bp *
   pool_original``: *at* the threshold, not only past it) the deal is defaulted from this very
   distribution on.
3. Pay from the collections (the *available funds*).

   Normal waterfall: senior fee; interest A, B, C (each its arrears and this period's accrual
   together, arrears first); where the available funds fall short of the senior fee or an
   interest, the reserve is drawn for the shortfall; then the reserve is topped up to its
   target; principal A, then B, then C, each up to its balance; subordinated fee; the rest to
   equity. Principal takes every unit left (pass-through, full turbo), so the subordinated fee
   and the equity are reached only in the period the notes are retired; from then on the
   reserve has no one left to protect and is released into the available funds.

   Defaulted waterfall: the whole reserve is released into the available funds (and never
   topped up again); senior fee; then interest and principal of A in full before anything to
   B, then B, then C; the subordinated fee; the rest to equity. As in the normal waterfall,
   principal takes every unit left, so nothing reaches the subordinated fee while a note
   remains (balance or unpaid interest): no separate gate is needed, and none is written.
4. What a line could not pay is carried: unpaid interest on the tranche, arrears on the fee.

Conservation, exact in every period: Σ paid lines + (reserve after - reserve before) =
collections. Nothing ever goes negative. ``distribute`` refuses (``ValueError`` naming every
problem) a malformed deal or negative inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal

BP: Final = 10_000
YEAR_MS: Final = 365 * 86_400_000
"""A year of block time for accrual: 365 days, leap years included."""
MAX_COUPON_BP: Final = 100_000
"""1,000 % a year: anything above is a typo, not a coupon."""

Step = Literal["senior_fee", "interest", "principal", "sub_fee", "residual"]
SENIOR_FEE: Final = "senior_fee"
SUB_FEE: Final = "sub_fee"
EQUITY: Final = "equity"


def accrue(amount: int, rate_bp: int, period_ms: int) -> int:
    """``amount`` at ``rate_bp`` a year for ``period_ms``, rounded down to the minor unit."""
    return amount * rate_bp * period_ms // (BP * YEAR_MS)


@dataclass(frozen=True)
class Tranche:
    name: str
    original: int
    balance: int
    coupon_bp: int
    unpaid_interest: int = 0

    @property
    def outstanding(self) -> bool:
        """A note remains while it has a balance or interest still owed."""
        return self.balance > 0 or self.unpaid_interest > 0


@dataclass(frozen=True)
class Fee:
    rate_bp: int = 0
    fixed: int = 0
    unpaid: int = 0

    def due(self, pool_balance: int, period_ms: int) -> int:
        return self.unpaid + accrue(pool_balance, self.rate_bp, period_ms) + self.fixed


@dataclass(frozen=True)
class Deal:
    """A deal's state between distributions. Build a new one with ``new_deal``."""

    tranches: tuple[Tranche, ...]
    equity_original: int
    equity_balance: int
    senior_fee: Fee
    sub_fee: Fee
    reserve: int
    reserve_target: int
    loss_trigger_bp: int
    cumulative_losses: int = 0
    defaulted: bool = False
    periods: int = 0

    @property
    def pool_original(self) -> int:
        return sum(t.original for t in self.tranches) + self.equity_original

    @property
    def pool_balance(self) -> int:
        return sum(t.balance for t in self.tranches) + self.equity_balance

    @property
    def notes_outstanding(self) -> bool:
        return any(t.outstanding for t in self.tranches)

    def tranche(self, name: str) -> Tranche:
        return next(t for t in self.tranches if t.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "tranches": [asdict(t) for t in self.tranches],
            "equity_original": self.equity_original,
            "equity_balance": self.equity_balance,
            "senior_fee": asdict(self.senior_fee),
            "sub_fee": asdict(self.sub_fee),
            "reserve": self.reserve,
            "reserve_target": self.reserve_target,
            "loss_trigger_bp": self.loss_trigger_bp,
            "cumulative_losses": self.cumulative_losses,
            "defaulted": self.defaulted,
            "periods": self.periods,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Deal:
        return cls(
            tranches=tuple(Tranche(**t) for t in data["tranches"]),
            senior_fee=Fee(**data["senior_fee"]),
            sub_fee=Fee(**data["sub_fee"]),
            **{k: v for k, v in data.items() if k not in ("tranches", "senior_fee", "sub_fee")},
        )


@dataclass(frozen=True)
class Line:
    """One payment: ``step`` to ``to`` (a tranche's name, ``senior_fee``, ``sub_fee`` or ``equity``)."""

    step: Step
    to: str
    amount: int


@dataclass(frozen=True)
class Distribution:
    """What one distribution did. ``lines`` lists only positive payments, in the order made."""

    deal: Deal
    collections: int
    losses: int
    period_ms: int
    waterfall: Literal["normal", "defaulted"]
    triggered: bool
    """This distribution's losses reached the trigger (the deal was normal before it)."""
    lines: tuple[Line, ...]
    writedowns: tuple[tuple[str, int], ...]
    unabsorbed: int
    reserve_drawn: int
    reserve_topped_up: int
    reserve_released: int

    @property
    def paid(self) -> int:
        return sum(line.amount for line in self.lines)

    def paid_to(self, step: Step, to: str) -> int:
        return sum(line.amount for line in self.lines if line.step == step and line.to == to)

    def to_json(self) -> dict[str, Any]:
        return {
            "deal": self.deal.to_json(),
            "collections": self.collections,
            "losses": self.losses,
            "period_ms": self.period_ms,
            "waterfall": self.waterfall,
            "triggered": self.triggered,
            "lines": [[line.step, line.to, line.amount] for line in self.lines],
            "writedowns": [list(w) for w in self.writedowns],
            "unabsorbed": self.unabsorbed,
            "reserve_drawn": self.reserve_drawn,
            "reserve_topped_up": self.reserve_topped_up,
            "reserve_released": self.reserve_released,
        }


def _is_amount(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_deal(deal: Deal) -> list[str]:
    """Every problem with a deal's terms or state, in one list (empty: well formed)."""
    problems: list[str] = []
    if not deal.tranches:
        problems.append("a deal needs at least one tranche")
    names = [t.name for t in deal.tranches]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"tranche name {name!r} is used twice")
    for t in deal.tranches:
        if not isinstance(t.name, str) or not t.name or t.name in (SENIOR_FEE, SUB_FEE, EQUITY):
            problems.append(f"tranche name {t.name!r} must be a non-empty string other than a fee or equity")
        for field in ("original", "balance", "unpaid_interest", "coupon_bp"):
            if not _is_amount(getattr(t, field)):
                problems.append(f"tranche {t.name}: {field} must be a non-negative integer")
        if _is_amount(t.original) and _is_amount(t.balance) and t.balance > t.original:
            problems.append(f"tranche {t.name}: balance {t.balance} exceeds its original size {t.original}")
        if _is_amount(t.coupon_bp) and t.coupon_bp > MAX_COUPON_BP:
            problems.append(f"tranche {t.name}: coupon_bp {t.coupon_bp} exceeds {MAX_COUPON_BP}")
    for label, fee in (("senior fee", deal.senior_fee), ("subordinated fee", deal.sub_fee)):
        for field in ("rate_bp", "fixed", "unpaid"):
            if not _is_amount(getattr(fee, field)):
                problems.append(f"{label}: {field} must be a non-negative integer")
    for field in ("equity_original", "equity_balance", "reserve", "reserve_target", "cumulative_losses", "periods"):
        if not _is_amount(getattr(deal, field)):
            problems.append(f"{field} must be a non-negative integer")
    equity_known = _is_amount(deal.equity_balance) and _is_amount(deal.equity_original)
    if equity_known and deal.equity_balance > deal.equity_original:
        problems.append(f"equity_balance {deal.equity_balance} exceeds equity_original {deal.equity_original}")
    trigger = deal.loss_trigger_bp
    if not _is_amount(trigger) or not 0 < trigger <= BP:
        problems.append(f"loss_trigger_bp must be an integer from 1 to {BP}, not {trigger!r}")
    if not isinstance(deal.defaulted, bool):
        problems.append("defaulted must be a boolean")
    if not problems and deal.pool_original == 0:
        problems.append("the pool's original balance (tranches and equity) must be positive")
    return problems


def new_deal(
    tranches: Sequence[tuple[str, int, int]],
    *,
    equity: int,
    senior_fee: Fee,
    sub_fee: Fee,
    reserve_target: int,
    loss_trigger_bp: int,
) -> Deal | list[str]:
    """A deal at closing from ``(name, size, coupon_bp)`` senior first; or every problem found."""
    deal = Deal(
        tranches=tuple(Tranche(name, size, size, coupon) for name, size, coupon in tranches),
        equity_original=equity,
        equity_balance=equity,
        senior_fee=senior_fee,
        sub_fee=sub_fee,
        reserve=0,
        reserve_target=reserve_target,
        loss_trigger_bp=loss_trigger_bp,
    )
    problems = check_deal(deal)
    return problems or deal


class _Purse:
    """The period's available funds and the reserve beside them, and the lines paid so far."""

    def __init__(self, available: int, reserve: int) -> None:
        self.available = available
        self.reserve = reserve
        self.lines: list[Line] = []
        self.drawn = self.topped_up = self.released = 0

    def pay(self, step: Step, to: str, due: int, *, draw: bool = False) -> int:
        """Pay up to ``due`` from the available funds, then (``draw``) from the reserve."""
        paid = min(due, self.available)
        self.available -= paid
        if draw and paid < due:
            extra = min(due - paid, self.reserve)
            self.reserve -= extra
            self.drawn += extra
            paid += extra
        if paid:
            self.lines.append(Line(step, to, paid))
        return paid

    def top_up(self, target: int) -> None:
        amount = min(self.available, max(0, target - self.reserve))
        self.available -= amount
        self.reserve += amount
        self.topped_up += amount

    def release(self) -> None:
        self.available += self.reserve
        self.released += self.reserve
        self.reserve = 0


def _write_down(deal: Deal, losses: int) -> tuple[int, list[int], list[tuple[str, int]], int]:
    """Losses junior first: equity, then the tranches from the most junior up."""
    left = losses
    taken = min(left, deal.equity_balance)
    left -= taken
    writedowns = [(EQUITY, taken)] if taken else []
    balances = [t.balance for t in deal.tranches]
    for j in reversed(range(len(balances))):
        cut = min(left, balances[j])
        if cut:
            balances[j] -= cut
            left -= cut
            writedowns.append((deal.tranches[j].name, cut))
    return deal.equity_balance - taken, balances, writedowns, left


def distribute(deal: Deal, collections: int, losses: int, period_ms: int) -> Distribution:
    """One period's distribution (see the module docstring for the order and the rounding)."""
    problems = check_deal(deal)
    for label, value in (("collections", collections), ("losses", losses), ("period_ms", period_ms)):
        if not _is_amount(value):
            problems.append(f"{label} must be a non-negative integer, not {value!r}")
    if problems:
        raise ValueError("; ".join(problems))

    basis = deal.pool_balance
    senior_due = deal.senior_fee.due(basis, period_ms)
    sub_due = deal.sub_fee.due(basis, period_ms)
    interest_due = [t.unpaid_interest + accrue(t.balance, t.coupon_bp, period_ms) for t in deal.tranches]

    equity, balances, writedowns, unabsorbed = _write_down(deal, losses)
    cumulative = deal.cumulative_losses + losses
    defaulted = deal.defaulted or cumulative * BP >= deal.loss_trigger_bp * deal.pool_original

    purse = _Purse(collections, deal.reserve)
    names = [t.name for t in deal.tranches]
    interest_paid = [0] * len(names)

    def notes_remain() -> bool:
        return any(balances[j] > 0 or interest_due[j] > interest_paid[j] for j in range(len(names)))

    if not defaulted:
        purse.pay("senior_fee", SENIOR_FEE, senior_due, draw=True)
        for j, name in enumerate(names):
            interest_paid[j] = purse.pay("interest", name, interest_due[j], draw=True)
        if notes_remain():
            purse.top_up(deal.reserve_target)
        for j, name in enumerate(names):
            balances[j] -= purse.pay("principal", name, balances[j])
        if not notes_remain():
            purse.release()
    else:
        purse.release()
        purse.pay("senior_fee", SENIOR_FEE, senior_due)
        for j, name in enumerate(names):
            interest_paid[j] = purse.pay("interest", name, interest_due[j])
            balances[j] -= purse.pay("principal", name, balances[j])
    # Principal took every unit it could: anything left means no note remains, in both waterfalls.
    sub_paid = purse.pay("sub_fee", SUB_FEE, sub_due)
    senior_paid = sum(line.amount for line in purse.lines if line.step == "senior_fee")
    purse.pay("residual", EQUITY, purse.available)

    after = replace(
        deal,
        tranches=tuple(
            replace(t, balance=balances[j], unpaid_interest=interest_due[j] - interest_paid[j])
            for j, t in enumerate(deal.tranches)
        ),
        equity_balance=equity,
        senior_fee=replace(deal.senior_fee, unpaid=senior_due - senior_paid),
        sub_fee=replace(deal.sub_fee, unpaid=sub_due - sub_paid),
        reserve=purse.reserve,
        cumulative_losses=cumulative,
        defaulted=defaulted,
        periods=deal.periods + 1,
    )
    return Distribution(
        deal=after,
        collections=collections,
        losses=losses,
        period_ms=period_ms,
        waterfall="defaulted" if defaulted else "normal",
        triggered=defaulted and not deal.defaulted,
        lines=tuple(purse.lines),
        writedowns=tuple(writedowns),
        unabsorbed=unabsorbed,
        reserve_drawn=purse.drawn,
        reserve_topped_up=purse.topped_up,
        reserve_released=purse.released,
    )


__all__ = [
    "BP",
    "YEAR_MS",
    "Deal",
    "Distribution",
    "Fee",
    "Line",
    "Tranche",
    "accrue",
    "check_deal",
    "distribute",
    "new_deal",
]
