"""Managed pledges: pledges a later service places and ends by command (architecture: Execution,
commands) — how trade's pledge-backed loans take, release and enforce their collateral.

Why doc needs them: a loan is one outcome across services. At height H trade holds the
lender's TRC and commands ``doc.pledge.place`` with the borrower's authority; at H+1 doc
pledges the title or refuses (``ALREADY_PLEDGED`` is the double-financing check, decided here,
whatever trade believed); at H+2 trade pays the borrower or returns the TRC. The lender agreed
in trade (its offer) and the borrower by accepting it, so doc needs no second consent; what doc
still decides under its own rules is everything about the title: the authority must be its
holder, the document live and unencumbered (not held, no pledge in force), the financier an
admitted member with a financier's role, the term within ``tables.MAX_PLEDGE_MS``.

The pledge records ``manager`` (``service:<origin>``) and ``reference`` (the origin's record,
``loan:<id>``). Only that service, by command, ends it the two managed ways:

- ``doc.pledge.discharge`` — the loan was repaid: the pledge is released (``PledgeReleased``).
- ``doc.pledge.enforce`` — the loan defaulted: the title moves to the financier and the pledge
  ends (``PledgeEnforced``), even when the document is not negotiable (an invoice's
  receivable passes to its financier as a pledgee's remedy) — but never a held title (``HELD``).

Everything else about a pledge still applies: the financier may release it at any time (giving
up its own collateral needs no one's consent; trade then finds nothing to enforce), and a
pledge lapses at ``expires_at``, which trade sets past the loan's maturity and grace.
"""

from __future__ import annotations

from typing import Any

from traco.core.domain import Accepted, Outcome, Rejected
from traco.core.holds import SERVICE_PREFIX
from traco.core.timefmt import duration, iso_utc
from traco.services.doc import payloads, queries, tables
from traco.services.doc.pledges import financier_problem, free_to_encumber, pledge_terms
from traco.services.doc.rules import Context, Rule, _active, _lapsed, held
from traco.services.doc.tables import Code, reject


def _manager(ctx: Context) -> str | None:
    return None if ctx.tx.origin is None else SERVICE_PREFIX + ctx.tx.origin


def place(ctx: Context, p: payloads.PledgePlace) -> Outcome:
    manager = _manager(ctx)
    if manager is None:
        return reject(Code.NOT_PERMITTED, "doc.pledge.place is a command of a later service, not a transaction")
    problems: list[str] = []
    if p.expires_at <= ctx.tx.time:
        problems.append(f"expires_at: {iso_utc(p.expires_at)} is not after the block time {iso_utc(ctx.tx.time)}")
    elif p.expires_at > ctx.tx.time + tables.MAX_PLEDGE_MS:
        problems.append(f"expires_at: more than {duration(tables.MAX_PLEDGE_MS)} after the block time")
    if problems:
        return reject(Code.INVALID_PAYLOAD, "; ".join(problems))
    record = free_to_encumber(ctx, p.doc_id, "pledge", "pledged")
    if isinstance(record, Rejected):
        return record
    financier = _member(ctx, p.financier)
    if financier is None:
        return reject(Code.NOT_A_MEMBER, f"financier: {p.financier} is not an admitted member")
    refused = financier_problem(ctx, financier, record)
    if refused is not None:
        return refused
    terms = {**pledge_terms(ctx, financier, p.amount, p.currency, p.expires_at, p.reference), "manager": manager}
    data = {"pledge": terms, "holder": record["holder"], "lapsed_pledge": _lapsed(record)}
    event = ctx.event("DocumentPledged", record, data)
    return Accepted((event,), {"doc_id": p.doc_id, "pledge_id": ctx.tx.tx_id, "status": "in_force"})


def _member(ctx: Context, member_id: str) -> dict[str, str] | None:
    record = ctx.party.member_by_id(ctx.members, member_id)
    if record is None or record.get("status") != "admitted" or not isinstance(record.get("primary_key"), str):
        return None
    return {"member_id": member_id, "key": record["primary_key"]}


def _managed(ctx: Context, p: payloads.PledgeManaged) -> tuple[dict[str, Any], dict[str, Any]] | Rejected:
    """The document and its managed pledge in force under ``p.reference``, placed by the
    commanding service."""
    manager = _manager(ctx)
    if manager is None:
        return reject(Code.NOT_PERMITTED, "managed pledges are ended by their service's command only")
    record = _active(ctx, p.doc_id)
    if isinstance(record, Rejected):
        return record
    terms = queries.pledge_in_force(record, ctx.tx.time)
    if terms is None or terms.get("manager") != manager or terms.get("reference") != p.reference:
        return reject(
            Code.NOT_MANAGED,
            f"document {p.doc_id} has no pledge in force placed by {manager} for {p.reference}"
            " (it was released by its financier, lapsed, or never placed)",
        )
    return record, terms


def discharge(ctx: Context, p: payloads.PledgeManaged) -> Outcome:
    found = _managed(ctx, p)
    if isinstance(found, Rejected):
        return found
    record, terms = found
    released = {"pledge_id": terms["tx_id"], "financier": terms["financier"], "expired": False}
    return Accepted((ctx.event("PledgeReleased", record, released),), {"doc_id": p.doc_id})


def enforce(ctx: Context, p: payloads.PledgeManaged) -> Outcome:
    found = _managed(ctx, p)
    if isinstance(found, Rejected):
        return found
    record, terms = found
    refused = held(record, "taken by its financier")
    if refused is not None:
        return refused
    data = {"pledge_id": terms["tx_id"], "from": record["holder"], "to": terms["financier"]}
    event = ctx.event("PledgeEnforced", record, data)
    return Accepted((event,), {"doc_id": p.doc_id, "holder": terms["financier"]["member_id"]})


def lien(ctx: Context, p: payloads.LienPlace) -> Outcome:
    """``doc.lien.place``: the holder's document now backs the commanding service's record
    (trade's securitisation pool): from here on it cannot move, be pledged, held or amended —
    so a receivable sold to a pool's investors cannot be financed again through doc either."""
    manager = _manager(ctx)
    if manager is None:
        return reject(Code.NOT_PERMITTED, "doc.lien.place is a command of a later service, not a transaction")
    record = free_to_encumber(ctx, p.doc_id, "put under a lien", "put under a lien")
    if isinstance(record, Rejected):
        return record
    data = {"lien": {"manager": manager, "reference": p.reference, **ctx.stamp}}
    return Accepted((ctx.event("DocumentLiened", record, data),), {"doc_id": p.doc_id})


RULES: dict[str, Rule] = {
    tables.KIND_LIEN_PLACE: lien,
    tables.KIND_PLEDGE_PLACE: place,
    tables.KIND_PLEDGE_DISCHARGE: discharge,
    tables.KIND_PLEDGE_ENFORCE: enforce,
}
