"""Financing records: key layout, reads and the mutators of the financing events.

Keys::

    fin/req/<request_id>                  a request (open | accepted | cancelled | lapsed | refused)
    fin/offer/<offer_id>                  an offer (status open | withdrawn | accepted)
    fin/rank/<request_id>/<rate_bp:06d>/<height:012d>/<index:06d>/<offer_id>
                                          {}: open offers, best first (lowest rate, then earliest)
    loan/<loan_id>                        a loan (loan_id = its request's id)
    loan/due/<default_at:015d>/<loan_id>  {}: an active loan, by the time it defaults
    fin/auto/<offers_until:015d>/<request_id>
                                          {}: an open request that takes the best offer at its
                                          deadline (``accept_best``)

The money is not here: the lender's TRC is the managed hold ``loan:<loan_id>`` until doc has
pledged the title, then the hold executes to the borrower (``HoldExecuted``); repayments are
``Transferred``. Exposure figures
(``risk_state``) follow every loan event.

Events::

    FinanceRequested        request
    FinanceOffered          offer
    FinanceOfferWithdrawn   offer_id, request_id, rate_bp, rank
    FinanceRequestCancelled request_id
    FinanceRequestLapsed    request_id, code, reason   (its deadline came with no offer it could take)
    LoanAccepted            loan (status "pledging"), offer_id, rank (the accepted offer's)
    LoanDisbursed           loan_id, start, maturity, default_at
    LoanRefused             loan_id, code, reason   (doc refused the pledge; TRC returned)
    LoanRepaid              loan_id, amount, to_interest, to_principal, outstanding,
                            accrued_pms, accrued_to, interest_paid, closed
    LoanDefaulted           loan_id, outstanding, interest_owed
    LoanCollateral          loan_id, action (discharge | enforce), accepted, code
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from traco.core.domain import StateView
from traco.services.trade import queries as q
from traco.services.trade import risk_state as risk
from traco.services.trade.writer import Data, Writer

HOLD_PREFIX: Final = "loan:"
DUE: Final = "loan/due/"
AUTO: Final = "fin/auto/"


def request_key(request_id: str) -> str:
    return f"fin/req/{request_id}"


def offer_key(offer_id: str) -> str:
    return f"fin/offer/{offer_id}"


def rank_prefix(request_id: str) -> str:
    return f"fin/rank/{request_id}/"


def rank_key(request_id: str, rate_bp: int, height: int, index: int, offer_id: str) -> str:
    return f"{rank_prefix(request_id)}{rate_bp:06d}/{height:012d}/{index:06d}/{offer_id}"


def loan_key(loan_id: str) -> str:
    return f"loan/{loan_id}"


def due_key(default_at: int, loan_id: str) -> str:
    return f"{DUE}{default_at:015d}/{loan_id}"


def auto_key(offers_until: int, request_id: str) -> str:
    return f"{AUTO}{offers_until:015d}/{request_id}"


def auto_due(view: StateView, time: int) -> list[str]:
    """Requests whose best offer is to be taken now (``offers_until <= time``), earliest first."""
    return _due(view, AUTO, time)


def _due(view: StateView, prefix: str, time: int) -> list[str]:
    """The ids indexed under ``prefix`` by a time at or before ``time``, earliest first; the
    scan stops at the first later one (the index is sorted by time)."""
    found: list[str] = []
    for key, _ in view.scan(prefix):
        at, ident = key[len(prefix) :].split("/", 1)
        if int(at) > time:
            break
        found.append(ident)
    return found


def _unschedule(w: Writer, request: dict[str, Any]) -> None:
    if request.get("accept_best"):
        w.delete(auto_key(request["offers_until"], request["request_id"]))


def hold_id(loan_id: str) -> str:
    return f"{HOLD_PREFIX}{loan_id}"


def request(view: StateView, request_id: str) -> dict[str, Any] | None:
    return q.read(view, request_key(request_id))


def offer(view: StateView, offer_id: str) -> dict[str, Any] | None:
    return q.read(view, offer_key(offer_id))


def loan(view: StateView, loan_id: str) -> dict[str, Any] | None:
    return q.read(view, loan_key(loan_id))


def ranked_offers(view: StateView, request_id: str) -> Iterator[str]:
    """Open offers on a request, best first."""
    prefix = rank_prefix(request_id)
    for key, _ in view.scan(prefix):
        yield key.rsplit("/", 1)[1]


def due_loans(view: StateView, time: int) -> list[str]:
    """Active loans whose default time has come (``default_at <= time``), earliest first."""
    return _due(view, DUE, time)


def _requested(w: Writer, d: Data) -> None:
    request = d["request"]
    w.put(request_key(request["request_id"]), request)
    if request.get("accept_best"):
        w.put(auto_key(request["offers_until"], request["request_id"]), {})


def _offered(w: Writer, d: Data) -> None:
    o = d["offer"]
    w.put(offer_key(o["offer_id"]), o)
    w.put(o["rank"], {})


def _withdrawn(w: Writer, d: Data) -> None:
    record = w.must(offer_key(d["offer_id"]))
    record["status"] = "withdrawn"
    w.put(offer_key(d["offer_id"]), record)
    w.delete(record["rank"])


def _cancelled(w: Writer, d: Data) -> None:
    record = w.must(request_key(d["request_id"]))
    record["status"] = "cancelled"
    w.put(request_key(d["request_id"]), record)
    _unschedule(w, record)


def _lapsed(w: Writer, d: Data) -> None:
    record = w.must(request_key(d["request_id"]))
    record.update(status="lapsed", lapsed={k: d[k] for k in ("code", "reason", "height", "time")})
    w.put(request_key(d["request_id"]), record)
    _unschedule(w, record)


def _accepted(w: Writer, d: Data) -> None:
    loan_record = d["loan"]
    w.put(loan_key(loan_record["loan_id"]), loan_record)
    req = w.must(request_key(loan_record["loan_id"]))
    req["status"] = "accepted"
    req["offer_id"] = d["offer_id"]
    w.put(request_key(loan_record["loan_id"]), req)
    _unschedule(w, req)
    chosen = w.must(offer_key(d["offer_id"]))
    chosen["status"] = "accepted"
    w.put(offer_key(d["offer_id"]), chosen)
    w.delete(chosen["rank"])


def _disbursed(w: Writer, d: Data) -> None:
    record = w.must(loan_key(d["loan_id"]))
    if record["status"] != "pledging":
        raise ValueError(f"loan {d['loan_id']} disbursed twice: the event stream is inconsistent")
    record.update(
        status="active", start=d["start"], maturity=d["maturity"], default_at=d["default_at"], accrued_to=d["start"]
    )
    w.put(loan_key(d["loan_id"]), record)
    w.put(due_key(d["default_at"], d["loan_id"]), {})
    lender, borrower, principal = record["lender"], record["borrower"], record["principal"]
    risk.add_total(w, lender, lent=principal, loans_lent=1, pledged_in=1)
    risk.add_total(w, borrower, borrowed=principal, loans_borrowed=1, pledged_out=1)
    risk.add_counterparty(w, lender, borrower, lent=principal)
    risk.add_counterparty(w, borrower, lender, borrowed=principal)
    risk.add_doctype(w, lender, record["doc_type"], amount=principal, count=1)


def _refused(w: Writer, d: Data) -> None:
    record = w.must(loan_key(d["loan_id"]))
    record.update(status="refused", refusal={"code": d["code"], "reason": d["reason"], "height": d["height"]})
    w.put(loan_key(d["loan_id"]), record)
    req = w.must(request_key(d["loan_id"]))
    req["status"] = "refused"  # final: the borrower files a new request (its loan id is taken)
    w.put(request_key(d["loan_id"]), req)


def _close_exposure(w: Writer, record: dict[str, Any], outstanding: int, defaulted: bool) -> None:
    lender, borrower = record["lender"], record["borrower"]
    extra_l = {"defaulted_lent": outstanding} if defaulted else {}
    extra_b = {"defaulted_borrowed": outstanding} if defaulted else {}
    risk.add_total(w, lender, lent=-outstanding, loans_lent=-1, pledged_in=-1, **extra_l)
    risk.add_total(w, borrower, borrowed=-outstanding, loans_borrowed=-1, pledged_out=-1, **extra_b)
    risk.add_counterparty(w, lender, borrower, lent=-outstanding)
    risk.add_counterparty(w, borrower, lender, borrowed=-outstanding)
    risk.add_doctype(w, lender, record["doc_type"], amount=-outstanding, count=-1)


def _repaid(w: Writer, d: Data) -> None:
    record = w.must(loan_key(d["loan_id"]))
    if record["status"] != "active":
        raise ValueError(f"repayment of loan {d['loan_id']} that is {record['status']}: the stream is inconsistent")
    principal_paid = d["to_principal"]
    for name in ("outstanding", "accrued_pms", "accrued_to", "interest_paid"):
        record[name] = d[name]
    record["payments"] = [
        *record["payments"],
        {k: d[k] for k in ("amount", "to_interest", "to_principal", "height", "time", "tx_id")},
    ]
    lender, borrower = record["lender"], record["borrower"]
    if d["closed"]:
        record["status"] = "repaid"
        w.delete(due_key(record["default_at"], d["loan_id"]))
        _close_exposure(w, {**record}, principal_paid, defaulted=False)
    else:
        risk.add_total(w, lender, lent=-principal_paid)
        risk.add_total(w, borrower, borrowed=-principal_paid)
        risk.add_counterparty(w, lender, borrower, lent=-principal_paid)
        risk.add_counterparty(w, borrower, lender, borrowed=-principal_paid)
        risk.add_doctype(w, lender, record["doc_type"], amount=-principal_paid)
    w.put(loan_key(d["loan_id"]), record)


def _defaulted(w: Writer, d: Data) -> None:
    record = w.must(loan_key(d["loan_id"]))
    if record["status"] != "active":
        raise ValueError(f"default of loan {d['loan_id']} that is {record['status']}: the stream is inconsistent")
    record.update(status="defaulted", defaulted={k: d[k] for k in ("outstanding", "interest_owed", "height", "time")})
    w.put(loan_key(d["loan_id"]), record)
    w.delete(due_key(record["default_at"], d["loan_id"]))
    _close_exposure(w, record, d["outstanding"], defaulted=True)


def _collateral(w: Writer, d: Data) -> None:
    record = w.must(loan_key(d["loan_id"]))
    record["collateral"] = {k: d[k] for k in ("action", "accepted", "code", "height")}
    w.put(loan_key(d["loan_id"]), record)


MUTATORS: Final[dict[str, Callable[[Writer, Data], None]]] = {
    "FinanceRequested": _requested,
    "FinanceOffered": _offered,
    "FinanceOfferWithdrawn": _withdrawn,
    "FinanceRequestCancelled": _cancelled,
    "FinanceRequestLapsed": _lapsed,
    "LoanAccepted": _accepted,
    "LoanDisbursed": _disbursed,
    "LoanRefused": _refused,
    "LoanRepaid": _repaid,
    "LoanDefaulted": _defaulted,
    "LoanCollateral": _collateral,
}
