"""What the HTTP API and the CLI show of the escrow, financing, loan and DvP flows: pure reads
of the flows' own ``state`` modules, shaped for ``/escrows/{id}``, ``/finance/requests/{id}``,
``/loans/{id}`` and ``/dvp/{id}`` so the routes only serialise (the exposure view is
``risk.risk_view``).

Each view carries the money side too — the managed hold the flow's record names, as it stands —
so a reader sees in one answer whether the tokens are still held, paid or returned. A loan's
interest owed and total due are computed at ``now``, the latest block time the replica knows,
with the same ``loans.interest`` the repayment rule uses: the figure a repayment sealed at that
time would have to meet (a later block accrues more).
"""

from __future__ import annotations

from typing import Any

from traco.core.domain import StateView
from traco.services.trade import queries as q
from traco.services.trade.dvp import state as dvp_state
from traco.services.trade.escrow import state as escrow_state
from traco.services.trade.loans import interest
from traco.services.trade.loans import state as loan_state


def _hold(state: StateView, hold_id: str) -> dict[str, Any] | None:
    hold = q.hold(state, hold_id)
    return None if hold is None else hold.to_json()


def escrow_view(state: StateView, escrow_id: str) -> dict[str, Any] | None:
    """An escrow's terms, status, dispute and closing, with its hold."""
    record = escrow_state.escrow(state, escrow_id)
    if record is None:
        return None
    return {**record, "hold": _hold(state, escrow_state.hold_id(escrow_id))}


def finance_request_view(state: StateView, request_id: str, now: int) -> dict[str, Any] | None:
    """A financing request with its open offers, best first (lowest rate, then earliest — the
    order ``trade.finance.accept`` without an offer id takes); ``valid`` says whether an offer
    can still be accepted at ``now`` (the request open, the offer not lapsed). An accepted
    request names its loan; the offers it did not take stay listed (their lenders may withdraw
    them) but none is valid."""
    record = loan_state.request(state, request_id)
    if record is None:
        return None
    offers = []
    taking = record["status"] == "open"
    for position, offer_id in enumerate(loan_state.ranked_offers(state, request_id), start=1):
        offer = loan_state.offer(state, offer_id)
        if offer is None:
            continue
        offers.append({**offer, "position": position, "valid": taking and now < offer["valid_until"]})
    loan = loan_state.loan(state, request_id)
    summary = None if loan is None else {k: loan[k] for k in ("loan_id", "status", "lender", "rate_bp")}
    return {**record, "offers": offers, "loan": summary}


def loan_position(record: dict[str, Any]) -> interest.Position:
    return interest.Position(
        outstanding=record["outstanding"],
        accrued_pms=record["accrued_pms"],
        accrued_to=record["accrued_to"],
        interest_paid=record["interest_paid"],
    )


def loan_view(state: StateView, loan_id: str, now: int) -> dict[str, Any] | None:
    """A loan with ``interest_owed`` and ``total_due`` at ``now`` (an active loan only; None
    otherwise — a repaid loan owes nothing, a defaulted one keeps what it owed at default), and
    ``in_default`` (``now`` at or after maturity + grace: a repayment would be refused). While it
    is being disbursed, its hold is shown."""
    record = loan_state.loan(state, loan_id)
    if record is None:
        return None
    owed: int | None = None
    due: int | None = None
    if record["status"] == "active":
        owed, due = loan_position(record).owed(record["rate_bp"], now)
    default_at = record.get("default_at")
    return {
        **record,
        "now": now,
        "interest_owed": owed,
        "total_due": due,
        "in_default": record["status"] == "defaulted"
        or (record["status"] == "active" and default_at is not None and now >= default_at),
        "hold": _hold(state, loan_state.hold_id(loan_id)),
    }


def dvp_view(state: StateView, dvp_id: str) -> dict[str, Any] | None:
    """A DvP's terms and status, with the buyer's token hold (the title hold is doc's)."""
    record = dvp_state.dvp(state, dvp_id)
    if record is None:
        return None
    return {**record, "token_hold": _hold(state, dvp_state.hold_id(dvp_id))}
