"""Escrowed payment (the ECC seed's guaranteed payments): the buyer's tokens are held for the
seller and paid when the buyer confirms or when a named document milestone is recorded in doc;
a dispute freezes it for the council's arbiter, who splits it; expiry refunds the buyer.

Built on one managed hold ``escrow:<id>`` (owner: buyer, beneficiary: seller, notary:
``service:trade``, expiry by block time only — a dispute extends it by time, so a height bound
could not be kept consistent). Every way out closes that hold once:

===================  ==========================  ======================================
way out              who                         the hold
===================  ==========================  ======================================
confirm              the buyer, while open       executed: all to the seller
milestone (clause)   doc, while open             executed: all to the seller
cancel               the seller, open/disputed   released: all to the buyer
resolve              the arbiter, disputed       executed ``to_seller``, rest to buyer
expiry (clause)      nobody                      expired: all to the buyer
===================  ==========================  ======================================

Why the milestone is read from doc's state and not taken from anyone's word: doc (rules v2)
accepts a milestone only from the document's parties of record with the right role, and the
escrow further names whose report counts (``reporter``, default the document's issuer — for a
bill of lading, the carrier). Only a report recorded at or after the height the escrow opened
counts, so an old ``delivered`` cannot pay a new escrow.

A dispute moves the hold's expiry to at least ``escrow_dispute_ms`` (governed) after the
dispute, so the buyer's refund by expiry cannot pre-empt the arbiter; with no arbiter
governed, the dispute simply waits for that expiry.
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import Any, Final

from traco.core.domain import Accepted, Event, Outcome, Rejected
from traco.core.timefmt import iso_utc
from traco.services.trade import queries as q
from traco.services.trade.codes import reject
from traco.services.trade.escrow import payloads as p
from traco.services.trade.escrow import state as s
from traco.services.trade.flow import Rule, close_managed, hold_managed
from traco.services.trade.flow_params import flow_params
from traco.services.trade.ledger import Context

MAX_TERM_MS: Final = 366 * 86_400_000
"""The longest an escrow may run from its opening (a year and a day); a dispute may extend it."""


class EscrowCode(StrEnum):
    ESCROW_EXISTS = "ESCROW_EXISTS"
    UNKNOWN_ESCROW = "UNKNOWN_ESCROW"
    ESCROW_CLOSED = "ESCROW_CLOSED"
    DISPUTED = "DISPUTED"
    """The escrow is disputed: only the arbiter (or the seller, refunding) acts on it."""
    NOT_DISPUTED = "NOT_DISPUTED"
    NOT_BUYER = "NOT_BUYER"
    NOT_SELLER = "NOT_SELLER"
    NOT_A_PARTY = "NOT_A_PARTY"
    NOT_ARBITER = "NOT_ARBITER"
    UNKNOWN_DOCUMENT = "UNKNOWN_DOCUMENT"
    INVALID_TERMS = "INVALID_TERMS"


def open_escrow(ctx: Context, e: p.EscrowOpen) -> Outcome:
    problems: list[str] = []
    if e.seller == ctx.sender:
        problems.append("seller: the buyer cannot pay into escrow for itself")
    if e.expires_at <= ctx.tx.time:
        problems.append(f"expires_at: {iso_utc(e.expires_at)} is not after the block time {iso_utc(ctx.tx.time)}")
    elif e.expires_at > ctx.tx.time + MAX_TERM_MS:
        problems.append("expires_at: at most a year and a day after the block time")
    release: dict[str, Any] = {"on": e.release.on}
    if isinstance(e.release, p.OnMilestone):
        document = ctx.document(e.release.doc_id)
        if document is None:
            return reject(EscrowCode.UNKNOWN_DOCUMENT, f"release.doc_id: there is no document {e.release.doc_id}")
        if document["status"] == "superseded":
            problems.append(f"release.doc_id: document {e.release.doc_id} was amended; name its newest version")
        reporter = e.release.reporter or document["issuer"]["member_id"]
        release.update(
            doc_id=e.release.doc_id,
            lineage=document["lineage"],
            milestone=e.release.milestone,
            reporter=reporter,
        )
    if problems:
        return reject(EscrowCode.INVALID_TERMS, "; ".join(problems))
    if s.escrow(ctx.state, e.escrow_id) is not None:
        return reject(EscrowCode.ESCROW_EXISTS, f"an escrow {e.escrow_id} exists or existed; ids are never reused")
    held = hold_managed(ctx, s.hold_id(e.escrow_id), e.token, e.seller, e.amount, expires_time=e.expires_at)
    if isinstance(held, Rejected):
        return held
    record = {
        "escrow_id": e.escrow_id,
        "hold_id": s.hold_id(e.escrow_id),
        "buyer": ctx.sender,
        "seller": e.seller,
        "token": e.token,
        "amount": e.amount,
        "expires_at": e.expires_at,
        "release": release,
        "memo": e.memo,
        "status": "open",
        "opened": ctx.stamp,
    }
    opened = ctx.event("EscrowOpened", f"escrow:{e.escrow_id}", escrow=record)
    return Accepted((held, opened), {"escrow_id": e.escrow_id, "hold_id": record["hold_id"]})


def _load(ctx: Context, escrow_id: str) -> tuple[dict[str, Any], Any] | Rejected:
    record = s.escrow(ctx.state, escrow_id)
    if record is None:
        return reject(EscrowCode.UNKNOWN_ESCROW, f"there is no escrow {escrow_id}")
    hold = q.hold(ctx.state, record["hold_id"])
    if record["status"] not in ("open", "disputed") or hold is None or not hold.is_open:
        status = record["status"] if record["status"] not in ("open", "disputed") else "expired"
        return reject(EscrowCode.ESCROW_CLOSED, f"escrow {escrow_id} is already {status}")
    return record, hold


def closed_event(
    escrow_id: str, outcome: str, to_seller: int, amount: int, reason: str | None, stamp: dict[str, Any]
) -> Event:
    data = {
        "escrow_id": escrow_id,
        "outcome": outcome,
        "to_seller": to_seller,
        "to_buyer": amount - to_seller,
        "reason": reason,
        **stamp,
    }
    return Event("EscrowClosed", f"escrow:{escrow_id}", data)


def _close(
    ctx: Context, record: dict[str, Any], hold: Any, outcome: str, to_seller: int, reason: str | None
) -> Outcome:
    stamp = {"by": ctx.sender, **ctx.stamp}
    moved = close_managed(hold, to_seller if to_seller != record["amount"] else None, ctx.tx.height, ctx.tx.time, stamp)
    if isinstance(moved, Rejected):
        return moved
    closed = closed_event(record["escrow_id"], outcome, to_seller, record["amount"], reason, stamp)
    result = {"escrow_id": record["escrow_id"], "outcome": outcome, "to_seller": to_seller}
    return Accepted((moved, closed), result)


def confirm(ctx: Context, e: p.EscrowRef) -> Outcome:
    found = _load(ctx, e.escrow_id)
    if isinstance(found, Rejected):
        return found
    record, hold = found
    if ctx.sender != record["buyer"]:
        return reject(EscrowCode.NOT_BUYER, f"only the buyer ({record['buyer']}) confirms escrow {e.escrow_id}")
    if record["status"] == "disputed":
        return reject(EscrowCode.DISPUTED, f"escrow {e.escrow_id} is disputed; the arbiter decides it")
    return _close(ctx, record, hold, "confirmed", record["amount"], None)


def cancel(ctx: Context, e: p.EscrowRef) -> Outcome:
    found = _load(ctx, e.escrow_id)
    if isinstance(found, Rejected):
        return found
    record, hold = found
    if ctx.sender != record["seller"]:
        return reject(EscrowCode.NOT_SELLER, f"only the seller ({record['seller']}) may cancel escrow {e.escrow_id}")
    return _close(ctx, record, hold, "cancelled", 0, None)


def dispute(ctx: Context, e: p.EscrowDispute) -> Outcome:
    found = _load(ctx, e.escrow_id)
    if isinstance(found, Rejected):
        return found
    record, hold = found
    if ctx.sender not in (record["buyer"], record["seller"]):
        return reject(EscrowCode.NOT_A_PARTY, f"only the buyer or the seller may dispute escrow {e.escrow_id}")
    if record["status"] == "disputed":
        return reject(EscrowCode.DISPUTED, f"escrow {e.escrow_id} is already disputed")
    window = flow_params(ctx.party, ctx.members).escrow_dispute_ms
    until = max(hold.expires_time or 0, ctx.tx.time + window)
    events: list[Event] = []
    if until != hold.expires_time:
        renewed = replace(hold, expires_time=until)
        previous = {"expires_height": hold.expires_height, "expires_time": hold.expires_time}
        stamp = {"by": ctx.sender, **ctx.stamp}
        events.append(
            Event("HoldRenewed", f"hold:{hold.hold_id}", {"hold": renewed.to_json(), "previous": previous, **stamp})
        )
    events.append(
        ctx.event("EscrowDisputed", f"escrow:{e.escrow_id}", escrow_id=e.escrow_id, reason=e.reason, until=until)
    )
    return Accepted(tuple(events), {"escrow_id": e.escrow_id, "until": until})


def resolve(ctx: Context, e: p.EscrowResolve) -> Outcome:
    found = _load(ctx, e.escrow_id)
    if isinstance(found, Rejected):
        return found
    record, hold = found
    arbiter = flow_params(ctx.party, ctx.members).escrow_arbiter
    if arbiter is None or ctx.sender != arbiter:
        who = f"the arbiter ({arbiter})" if arbiter else "an arbiter, and the council has named none"
        return reject(EscrowCode.NOT_ARBITER, f"only {who} resolves escrow disputes")
    if record["status"] != "disputed":
        return reject(EscrowCode.NOT_DISPUTED, f"escrow {e.escrow_id} is not disputed; its parties settle it")
    if e.to_seller > record["amount"]:
        return reject(
            EscrowCode.INVALID_TERMS, f"to_seller: {e.to_seller} is more than the escrow's {record['amount']}"
        )
    return _close(ctx, record, hold, "resolved", e.to_seller, e.reason)


RULES: Final[dict[str, Rule]] = {
    p.OPEN: open_escrow,
    p.CONFIRM: confirm,
    p.CANCEL: cancel,
    p.DISPUTE: dispute,
    p.RESOLVE: resolve,
}
