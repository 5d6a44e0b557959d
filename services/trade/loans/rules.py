"""Pledge-backed financing (TRACO 2.4, 4.3.1: "when a document is pledged, TRC goes to the
pledgor and is taken from the financier").

**Request and offers.** The holder of a document asks for an amount for a tenor
(``trade.finance.request``); lenders offer a rate until ``offers_until``
(``trade.finance.offer``), each valid until its own ``valid_until``; offers rank by lowest rate,
then earliest (height, then position in the block). The borrower accepts one
(``trade.finance.accept``), or names none and takes the best one open at that block — or asks
in the request itself for the best offer at the deadline (``accept_best``): the clause
``finance_auto_accept`` takes it at the first block at or after ``offers_until``, with the
request's signer as the authority of the pledge command (a standing instruction the borrower
signed), or records the request lapsed when no offer can be taken.

**Acceptance is one outcome over three heights**, with no state in which either side can lose:

- H (the accept): the lender's TRC is held for the borrower (managed hold ``loan:<id>``, notary
  ``service:trade``; neither party can touch it) and doc is commanded, with the borrower's
  authority, to pledge the document to the lender (``doc.pledge.place``, until maturity +
  grace + ``PLEDGE_MARGIN_MS``).
- H+1: doc pledges it, or refuses — ``ALREADY_PLEDGED`` is the double-financing check, decided
  by doc whatever trade saw, so two loans accepted at the same height on one document cannot
  both stand.
- H+2 (``on_outcome``): pledged → the hold executes to the borrower and the loan starts
  (``LoanDisbursed``: start = that block's time, maturity = start + tenor); refused → the hold
  returns to the lender (``LoanRefused``).

**Repayment** (``trade.loan.repay``, the borrower): interest by ``interest.py`` (Actual/365F on
block time, rounded up once on the cumulative accrual), interest first then principal, any
part of what is due; the lender of record is paid by ``Transferred``. The payment that brings
the due to zero closes the loan and commands doc to release the pledge
(``doc.pledge.discharge``).

**Default** (clause ``loan_default``): at the first block whose time is at or after maturity +
grace (the governed ``loan_grace_ms`` when the loan was accepted), an active loan defaults and
doc is commanded to move the title to the lender (``doc.pledge.enforce``). From that block on a
repayment is refused (``LOAN_IN_DEFAULT``): the boundary is exact and the same for everyone.
What doc did with a discharge or an enforcement is recorded on the loan (``LoanCollateral``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from traco.core.domain import Accepted, Command, Event, Outcome, Rejected
from traco.core.timefmt import iso_utc
from traco.services.trade import queries as q
from traco.services.trade.abs import state as abs_state
from traco.services.trade.codes import DOC, Code, reject
from traco.services.trade.flow import Rule, hold_managed
from traco.services.trade.flow_params import flow_params
from traco.services.trade.ledger import Context, can_spend
from traco.services.trade.loans import interest
from traco.services.trade.loans import payloads as p
from traco.services.trade.loans import state as s

PLEDGE_MARGIN_MS: Final = 7 * 86_400_000
"""How long the pledge outlives maturity + grace: the default clause and its command need a few
blocks, and a pledge that lapsed first would leave nothing to enforce."""
HOLD_HEIGHTS: Final = 4
"""The disbursement hold expires this many heights after the accept; the outcome settles it at +2."""
PLEDGE_PLACE: Final = "doc.pledge.place"
PLEDGE_DISCHARGE: Final = "doc.pledge.discharge"
PLEDGE_ENFORCE: Final = "doc.pledge.enforce"


class LoanCode(StrEnum):
    REQUEST_EXISTS = "REQUEST_EXISTS"
    UNKNOWN_REQUEST = "UNKNOWN_REQUEST"
    REQUEST_CLOSED = "REQUEST_CLOSED"
    OFFER_EXISTS = "OFFER_EXISTS"
    UNKNOWN_OFFER = "UNKNOWN_OFFER"
    OFFER_CLOSED = "OFFER_CLOSED"
    OFFERS_CLOSED = "OFFERS_CLOSED"
    """The request's ``offers_until`` has passed."""
    NO_OFFER = "NO_OFFER"
    """No open, valid offer to accept."""
    NOT_BORROWER = "NOT_BORROWER"
    NOT_LENDER = "NOT_LENDER"
    SELF_LOAN = "SELF_LOAN"
    UNKNOWN_DOCUMENT = "UNKNOWN_DOCUMENT"
    NOT_HOLDER = "NOT_HOLDER"
    DOCUMENT_POOLED = "DOCUMENT_POOLED"
    """The document is a receivable in a securitisation pool (``abs``): financing it again would
    finance it twice."""
    ALREADY_PLEDGED = "ALREADY_PLEDGED"
    """The document has a pledge in force (trade's early view; doc decides at H+1 in any case)."""
    INVALID_TERMS = "INVALID_TERMS"
    UNKNOWN_LOAN = "UNKNOWN_LOAN"
    LOAN_NOT_ACTIVE = "LOAN_NOT_ACTIVE"
    LOAN_IN_DEFAULT = "LOAN_IN_DEFAULT"
    OVERPAYMENT = "OVERPAYMENT"


def _document(ctx: Context, doc_id: str) -> dict[str, Any] | Rejected:
    record = ctx.document(doc_id)
    if record is None:
        return reject(LoanCode.UNKNOWN_DOCUMENT, f"there is no document {doc_id}")
    if record["status"] != "active":
        return reject(LoanCode.UNKNOWN_DOCUMENT, f"document {doc_id} is {record['status']}; it cannot be pledged")
    if record["holder"]["member_id"] != ctx.sender:
        return reject(
            LoanCode.NOT_HOLDER,
            f"only the holder of document {doc_id} ({record['holder']['member_id']}) may finance it",
        )
    pool = abs_state.pooled_in(ctx.state, "receivable", doc_id)
    if pool is not None:
        return reject(
            LoanCode.DOCUMENT_POOLED,
            f"document {doc_id} backs securitisation pool {pool}; it cannot be financed again",
        )
    pledge = record.get("pledge")
    if isinstance(pledge, dict) and ctx.tx.time < pledge["expires_at"]:
        return reject(
            LoanCode.ALREADY_PLEDGED,
            f"document {doc_id} is pledged to {pledge['financier']['member_id']} until {iso_utc(pledge['expires_at'])}",
        )
    return record


def request(ctx: Context, r: p.FinanceRequest) -> Outcome:
    problems: list[str] = []
    if r.offers_until <= ctx.tx.time:
        problems.append(f"offers_until: {iso_utc(r.offers_until)} is not after the block time {iso_utc(ctx.tx.time)}")
    trc = (q.params(ctx.state, "trc") or {}).get("token")
    if r.token != trc:
        problems.append(f"token: loans are in TRC ({trc}), not {r.token}")
    if problems:
        return reject(LoanCode.INVALID_TERMS, "; ".join(problems))
    if s.request(ctx.state, r.request_id) is not None:
        return reject(LoanCode.REQUEST_EXISTS, f"a request {r.request_id} exists or existed; ids are never reused")
    document = _document(ctx, r.doc_id)
    if isinstance(document, Rejected):
        return document
    record = {
        "request_id": r.request_id,
        "borrower": ctx.sender,
        "doc_id": r.doc_id,
        "doc_type": document["type"],
        "token": r.token,
        "amount": r.amount,
        "tenor_ms": r.tenor_ms,
        "offers_until": r.offers_until,
        "accept_best": r.accept_best,
        "status": "open",
        "opened": ctx.stamp,
    }
    if r.accept_best:
        record["borrower_key"] = ctx.tx.sender  # the authority of the deadline's pledge command
    event = ctx.event("FinanceRequested", f"loan:{r.request_id}", request=record)
    return Accepted((event,), {"request_id": r.request_id})


def offer(ctx: Context, o: p.FinanceOffer) -> Outcome:
    req = s.request(ctx.state, o.request_id)
    if req is None:
        return reject(LoanCode.UNKNOWN_REQUEST, f"there is no financing request {o.request_id}")
    if req["status"] != "open":
        return reject(LoanCode.REQUEST_CLOSED, f"request {o.request_id} is {req['status']}")
    if ctx.tx.time >= req["offers_until"]:
        return reject(
            LoanCode.OFFERS_CLOSED, f"request {o.request_id} took offers until {iso_utc(req['offers_until'])}"
        )
    if ctx.sender == req["borrower"]:
        return reject(LoanCode.SELF_LOAN, "a borrower cannot lend to itself")
    if o.valid_until <= ctx.tx.time:
        return reject(LoanCode.INVALID_TERMS, f"valid_until: {iso_utc(o.valid_until)} is not after the block time")
    if s.offer(ctx.state, o.offer_id) is not None:
        return reject(LoanCode.OFFER_EXISTS, f"an offer {o.offer_id} exists or existed; ids are never reused")
    if ctx.member(ctx.sender) is None:
        return reject(Code.NOT_A_MEMBER, f"{ctx.sender} is not an admitted member")
    rank = s.rank_key(o.request_id, o.rate_bp, ctx.tx.height, max(ctx.tx.index, 0), o.offer_id)
    record = {
        "offer_id": o.offer_id,
        "request_id": o.request_id,
        "lender": ctx.sender,
        "rate_bp": o.rate_bp,
        "valid_until": o.valid_until,
        "status": "open",
        "rank": rank,
        "made": ctx.stamp,
    }
    event = ctx.event("FinanceOffered", f"loan:{o.request_id}", offer=record)
    return Accepted((event,), {"offer_id": o.offer_id, "request_id": o.request_id})


def withdraw(ctx: Context, o: p.OfferRef) -> Outcome:
    record = s.offer(ctx.state, o.offer_id)
    if record is None:
        return reject(LoanCode.UNKNOWN_OFFER, f"there is no offer {o.offer_id}")
    if record["lender"] != ctx.sender:
        return reject(LoanCode.NOT_LENDER, f"only its lender ({record['lender']}) may withdraw offer {o.offer_id}")
    if record["status"] != "open":
        return reject(LoanCode.OFFER_CLOSED, f"offer {o.offer_id} is {record['status']}")
    data = {"offer_id": o.offer_id, "request_id": record["request_id"]}
    return Accepted((ctx.event("FinanceOfferWithdrawn", f"loan:{record['request_id']}", **data),), data)


def cancel(ctx: Context, r: p.RequestRef) -> Outcome:
    req = s.request(ctx.state, r.request_id)
    if req is None:
        return reject(LoanCode.UNKNOWN_REQUEST, f"there is no financing request {r.request_id}")
    if req["borrower"] != ctx.sender:
        return reject(LoanCode.NOT_BORROWER, f"only the borrower ({req['borrower']}) may cancel request {r.request_id}")
    if req["status"] != "open":
        return reject(LoanCode.REQUEST_CLOSED, f"request {r.request_id} is {req['status']}")
    event = ctx.event("FinanceRequestCancelled", f"loan:{r.request_id}", request_id=r.request_id)
    return Accepted((event,), {"request_id": r.request_id})


def _best_offer(ctx: Context, request_id: str) -> dict[str, Any] | None:
    for offer_id in s.ranked_offers(ctx.state, request_id):
        record = s.offer(ctx.state, offer_id)
        if record is not None and record["status"] == "open" and ctx.tx.time < record["valid_until"]:
            return record
    return None


def accept(ctx: Context, a: p.FinanceAccept) -> Outcome:
    req = s.request(ctx.state, a.request_id)
    if req is None:
        return reject(LoanCode.UNKNOWN_REQUEST, f"there is no financing request {a.request_id}")
    if req["borrower"] != ctx.sender:
        return reject(LoanCode.NOT_BORROWER, f"only the borrower ({req['borrower']}) may accept an offer")
    if req["status"] != "open":
        return reject(LoanCode.REQUEST_CLOSED, f"request {a.request_id} is {req['status']}")
    if a.offer_id is None:
        chosen = _best_offer(ctx, a.request_id)
        if chosen is None:
            return reject(LoanCode.NO_OFFER, f"request {a.request_id} has no open offer valid at this block")
    else:
        chosen = s.offer(ctx.state, a.offer_id)
        if chosen is None or chosen["request_id"] != a.request_id:
            return reject(LoanCode.UNKNOWN_OFFER, f"request {a.request_id} has no offer {a.offer_id}")
        if chosen["status"] != "open":
            return reject(LoanCode.OFFER_CLOSED, f"offer {a.offer_id} is {chosen['status']}")
        if ctx.tx.time >= chosen["valid_until"]:
            return reject(LoanCode.OFFER_CLOSED, f"offer {a.offer_id} was valid until {iso_utc(chosen['valid_until'])}")
    return take(ctx, req, chosen)


def auto_accept(ctx: Context, req: dict[str, Any]) -> Outcome:
    """The borrower's standing instruction (``accept_best``), carried out by the clause at the
    deadline with the request's signer as the authority: the best offer valid now, if any."""
    chosen = _best_offer(ctx, req["request_id"])
    if chosen is None:
        return reject(LoanCode.NO_OFFER, f"request {req['request_id']} had no offer valid at its deadline")
    return take(ctx, req, chosen)


def take(ctx: Context, req: dict[str, Any], chosen: dict[str, Any]) -> Outcome:
    """Take ``chosen`` for ``req``: hold the lender's TRC for the borrower and command the pledge."""
    document = _document(ctx, req["doc_id"])
    if isinstance(document, Rejected):
        return document
    grace = flow_params(ctx.party, ctx.members).loan_grace_ms
    pledge_until = ctx.tx.time + req["tenor_ms"] + grace + PLEDGE_MARGIN_MS
    loan_id = req["request_id"]
    held = hold_managed(
        ctx,
        s.hold_id(loan_id),
        req["token"],
        ctx.sender,
        req["amount"],
        expires_height=ctx.tx.height + HOLD_HEIGHTS,
        owner=chosen["lender"],
    )
    if isinstance(held, Rejected):
        return Rejected(held.code, f"the lender {chosen['lender']} cannot fund the loan: {held.message}")
    record = {
        "loan_id": loan_id,
        "borrower": ctx.sender,
        "lender": chosen["lender"],
        "doc_id": req["doc_id"],
        "doc_type": req["doc_type"],
        "token": req["token"],
        "principal": req["amount"],
        "rate_bp": chosen["rate_bp"],
        "tenor_ms": req["tenor_ms"],
        "grace_ms": grace,
        "pledge_until": pledge_until,
        "status": "pledging",
        "accepted": ctx.stamp,
        "start": None,
        "maturity": None,
        "default_at": None,
        "outstanding": req["amount"],
        "accrued_pms": 0,
        "accrued_to": None,
        "interest_paid": 0,
        "payments": [],
        "collateral": None,
    }
    accepted = ctx.event("LoanAccepted", f"loan:{loan_id}", loan=record, offer_id=chosen["offer_id"])
    command = Command(
        target=DOC,
        kind=PLEDGE_PLACE,
        payload={
            "doc_id": req["doc_id"],
            "financier": chosen["lender"],
            "amount": req["amount"],
            "currency": req["token"],
            "expires_at": pledge_until,
            "reference": s.hold_id(loan_id),
        },
    )
    result = {
        "loan_id": loan_id,
        "offer_id": chosen["offer_id"],
        "lender": chosen["lender"],
        "rate_bp": chosen["rate_bp"],
    }
    return Accepted((held, accepted), result, (command,))


def position(record: dict[str, Any]) -> interest.Position:
    return interest.Position(
        outstanding=record["outstanding"],
        accrued_pms=record["accrued_pms"],
        accrued_to=record["accrued_to"],
        interest_paid=record["interest_paid"],
    )


def repay(ctx: Context, r: p.LoanRepay) -> Outcome:
    record = s.loan(ctx.state, r.loan_id)
    if record is None:
        return reject(LoanCode.UNKNOWN_LOAN, f"there is no loan {r.loan_id}")
    if record["borrower"] != ctx.sender:
        return reject(LoanCode.NOT_BORROWER, f"only the borrower ({record['borrower']}) repays loan {r.loan_id}")
    if record["status"] != "active":
        return reject(LoanCode.LOAN_NOT_ACTIVE, f"loan {r.loan_id} is {record['status']}")
    if ctx.tx.time >= record["default_at"]:
        return reject(
            LoanCode.LOAN_IN_DEFAULT,
            f"loan {r.loan_id} is in default since {iso_utc(record['default_at'])} (maturity + grace);"
            " its collateral goes to the lender",
        )
    pos = position(record)
    owed, due = pos.owed(record["rate_bp"], ctx.tx.time)
    if r.amount > due:
        return reject(LoanCode.OVERPAYMENT, f"loan {r.loan_id} has {due} due ({owed} interest); {r.amount} is more")
    refused = can_spend(ctx, record["token"], ctx.sender, r.amount)
    if refused is not None:
        return refused
    payment = interest.pay(pos, record["rate_bp"], ctx.tx.time, r.amount)
    closed = r.amount == due
    moved = ctx.event(
        "Transferred",
        f"token:{record['token']}",
        token=record["token"],
        **{"from": ctx.sender},
        to=record["lender"],
        amount=r.amount,
        memo=f"repayment of loan {r.loan_id}",
    )
    after = payment.after
    repaid = ctx.event(
        "LoanRepaid",
        f"loan:{r.loan_id}",
        loan_id=r.loan_id,
        amount=r.amount,
        to_interest=payment.to_interest,
        to_principal=payment.to_principal,
        outstanding=after.outstanding,
        accrued_pms=after.accrued_pms,
        accrued_to=after.accrued_to,
        interest_paid=after.interest_paid,
        closed=closed,
    )
    commands: tuple[Command, ...] = ()
    if closed:
        payload = {"doc_id": record["doc_id"], "reference": s.hold_id(r.loan_id)}
        commands = (Command(target=DOC, kind=PLEDGE_DISCHARGE, payload=payload),)
    result = {"loan_id": r.loan_id, "to_interest": payment.to_interest, "to_principal": payment.to_principal}
    return Accepted((moved, repaid), {**result, "outstanding": after.outstanding, "closed": closed}, commands)


def defaulted_event(record: dict[str, Any], time: int, stamp: dict[str, Any]) -> Event:
    owed, _ = position(record).owed(record["rate_bp"], time)
    data = {"loan_id": record["loan_id"], "outstanding": record["outstanding"], "interest_owed": owed, **stamp}
    return Event("LoanDefaulted", f"loan:{record['loan_id']}", data)


RULES: Final[dict[str, Rule]] = {
    p.REQUEST: request,
    p.OFFER: offer,
    p.WITHDRAW: withdraw,
    p.CANCEL: cancel,
    p.ACCEPT: accept,
    p.REPAY: repay,
}
