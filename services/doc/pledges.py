"""Pledges: a document as collateral for a financier (architecture: The code (doc)), and the duplicate-financing
check — a document has at most one pledge in force.

Rules version 1 (``doc.pledge``, ``doc.release``): the holder's ``doc.pledge`` puts a pledge in
force at once, for any future ``expires_at``; the financier never agrees to anything.

Rules version 2 (``versions.rules_v2``): a pledge binds a financier only when it accepts.

* ``doc.pledge`` by the holder **offers** the pledge to the financier (``PledgeOffered``); the
  document keeps one open offer per financier (a new offer to the same financier replaces the
  old one). Offers do not encumber: others may be made, and the title may still move — a title
  change (transfer, surrender, amendment, a hold executed) clears every open offer, so an offer
  never binds a later holder or a later version of the file.
* ``doc.pledge.accept`` by the named financier puts its offer in force (``DocumentPledged``)
  and consumes it, after the same checks as an offer (live, not held, and no pledge in force:
  ``ALREADY_PLEDGED`` — the duplicate-financing check that matters, since several offers may
  be open: the first acceptance wins, the others are refused while it is in force). An offer
  whose expiry has passed cannot be accepted (``NOT_OFFERED``); an offer stands, as offers do,
  until accepted, replaced, withdrawn, expired or cleared by a title change.
* The term is bounded: ``expires_at`` at most ``tables.MAX_PLEDGE_MS`` after the block that
  offers it; ``doc.pledge.extend`` by the financier only moves the expiry of its pledge in force
  later, within the same bound from its own block.
* ``doc.release`` by the holder also withdraws its open offers when no pledge is recorded.

In both versions: a pledge is in force while ``block time < expires_at`` and counts as released
from then on; the financier may release at any time, the holder only after expiry
(``PLEDGE_ACTIVE``). A held title cannot be pledged, offered or accepted (``HELD``; see
``holds.py``).
"""

from __future__ import annotations

from typing import Any

from traco.core.domain import Accepted, Outcome, Rejected
from traco.core.timefmt import duration, iso_utc
from traco.services.doc import payloads, queries, tables
from traco.services.doc.rules import Context, Rule, _active, _lapsed, _not_holder, _who, held, same_member
from traco.services.doc.tables import Code, reject
from traco.services.doc.versions import rules_v2


def _expiry_problem(ctx: Context, expires_at: int) -> Rejected | None:
    if expires_at <= ctx.tx.time:
        return reject(
            Code.INVALID_PAYLOAD,
            f"expires_at: {iso_utc(expires_at)} is not after the block time {iso_utc(ctx.tx.time)}",
        )
    if rules_v2(ctx.tx) and expires_at > ctx.tx.time + tables.MAX_PLEDGE_MS:
        return reject(
            Code.INVALID_PAYLOAD,
            f"expires_at: {iso_utc(expires_at)} is more than {duration(tables.MAX_PLEDGE_MS)} after the block"
            f" time {iso_utc(ctx.tx.time)}; extend the pledge later (doc.pledge.extend) instead",
        )
    return None


def _already_pledged(record: dict[str, Any], active: dict[str, Any]) -> Rejected:
    return reject(
        Code.ALREADY_PLEDGED,
        f"document {record['doc_id']} is already pledged to {_who(active['financier'])}"
        f" until {iso_utc(active['expires_at'])} (pledge {active['tx_id']}); it cannot be financed twice",
    )


def free_to_encumber(ctx: Context, doc_id: str, verb: str, done: str) -> dict[str, Any] | Rejected:
    """The document, if the sender holds it and nothing encumbers it yet — live, not held, under
    no lien, no pledge in force (``ALREADY_PLEDGED``: the duplicate-financing check) — else the
    refusal. Shared by offers (``pledge``) and the managed pledges and liens of ``managed.py``."""
    record = _active(ctx, doc_id)
    if isinstance(record, Rejected):
        return record
    if not same_member(ctx.sender, record["holder"]):
        return _not_holder(record, verb)
    refused = held(record, done)
    if refused is not None:
        return refused
    active = queries.pledge_in_force(record, ctx.tx.time)
    if active is not None:
        return _already_pledged(record, active)
    return record


def financier_problem(ctx: Context, financier: dict[str, str], record: dict[str, Any]) -> Rejected | None:
    """Why ``financier`` cannot take a pledge of ``record`` (its roles, or it holds the
    document itself), else ``None``; shared by offers and managed pledges."""
    roles = ctx.roles(financier["key"])
    if not roles & tables.FINANCIER_ROLES:
        return reject(
            Code.NOT_FINANCIER,
            f"financier: {_who(financier)} has roles {', '.join(sorted(roles)) or 'none'};"
            f" a pledge needs a {' or '.join(sorted(tables.FINANCIER_ROLES))}",
        )
    if same_member(financier, record["holder"]):
        return reject(Code.INVALID_PAYLOAD, "financier: the holder cannot pledge a document to itself")
    return None


def pledge_terms(
    ctx: Context, financier: dict[str, str], amount: int, currency: str, expires_at: int, reference: str | None
) -> dict[str, Any]:
    """A pledge's terms as doc records them, stamped with the deciding transaction."""
    return {
        "financier": financier,
        "amount": amount,
        "currency": currency,
        "expires_at": expires_at,
        "reference": reference,
        **ctx.stamp,
    }


def pledge(ctx: Context, p: payloads.Pledge) -> Outcome:
    """Version 1: pledge in force at once. Version 2: an offer to the financier."""
    problem = _expiry_problem(ctx, p.expires_at)
    if problem is not None:
        return problem
    record = free_to_encumber(ctx, p.doc_id, "pledge", "pledged")
    if isinstance(record, Rejected):
        return record
    financier = ctx.admitted(p.financier)
    if financier is None:
        return reject(Code.NOT_A_MEMBER, f"financier: {p.financier} is not an admitted member's key")
    refused = financier_problem(ctx, financier, record)
    if refused is not None:
        return refused
    terms = pledge_terms(ctx, financier, p.amount, p.currency, p.expires_at, p.reference)
    result = {"doc_id": p.doc_id, "pledge_id": ctx.tx.tx_id}
    if rules_v2(ctx.tx):
        data = {"offer": terms, "holder": record["holder"]}
        return Accepted((ctx.event("PledgeOffered", record, data),), {**result, "status": "offered"})
    data = {"pledge": terms, "holder": record["holder"], "lapsed_pledge": _lapsed(record)}
    return Accepted((ctx.event("DocumentPledged", record, data),), result)


def accept(ctx: Context, p: payloads.PledgeAccept) -> Outcome:
    """Version 2: the financier puts the pledge offered to it in force."""
    record = _active(ctx, p.doc_id)
    if isinstance(record, Rejected):
        return record
    offer = (record.get("offers") or {}).get(ctx.sender["member_id"])
    if offer is None or ctx.tx.time >= offer["expires_at"]:
        why = "has expired" if offer is not None else "is open"
        return reject(
            Code.NOT_OFFERED,
            f"no pledge of document {p.doc_id} offered to {_who(ctx.sender)} {why};"
            " the holder offers one with doc.pledge (a title change clears offers)",
        )
    refused = held(record, "pledged")
    if refused is not None:
        return refused
    active = queries.pledge_in_force(record, ctx.tx.time)
    if active is not None:
        return _already_pledged(record, active)
    terms = {**offer, "accepted": ctx.stamp}
    data = {"pledge": terms, "holder": record["holder"], "lapsed_pledge": _lapsed(record)}
    event = ctx.event("DocumentPledged", record, data)
    return Accepted((event,), {"doc_id": p.doc_id, "pledge_id": offer["tx_id"], "status": "in_force"})


def extend(ctx: Context, p: payloads.PledgeExtend) -> Outcome:
    """Version 2: the financier moves its pledge's expiry later, within the governed term."""
    record = _active(ctx, p.doc_id)
    if isinstance(record, Rejected):
        return record
    terms = queries.pledge_in_force(record, ctx.tx.time)
    if terms is None:
        return reject(Code.NOT_PLEDGED, f"document {p.doc_id} has no pledge in force to extend")
    if not same_member(ctx.sender, terms["financier"]):
        return reject(
            Code.NOT_FINANCIER, f"only the financier ({_who(terms['financier'])}) may extend the pledge on {p.doc_id}"
        )
    if p.expires_at <= terms["expires_at"]:
        return reject(
            Code.INVALID_PAYLOAD,
            f"expires_at: {iso_utc(p.expires_at)} is not after the pledge's expiry {iso_utc(terms['expires_at'])}",
        )
    problem = _expiry_problem(ctx, p.expires_at)
    if problem is not None:
        return problem
    data = {"pledge_id": terms["tx_id"], "previous_expires_at": terms["expires_at"], "expires_at": p.expires_at}
    return Accepted((ctx.event("PledgeExtended", record, data),), {"doc_id": p.doc_id, "expires_at": p.expires_at})


def release(ctx: Context, p: payloads.Release) -> Outcome:
    record = _active(ctx, p.doc_id)
    if isinstance(record, Rejected):
        return record
    terms = record["pledge"]
    if terms is None:
        offers = record.get("offers") or {}
        if rules_v2(ctx.tx) and offers and same_member(ctx.sender, record["holder"]):
            data = {"financiers": [offers[m]["financier"] for m in sorted(offers)]}
            return Accepted((ctx.event("PledgeOffersWithdrawn", record, data),), {"doc_id": p.doc_id})
        return reject(Code.NOT_PLEDGED, f"document {p.doc_id} has no pledge to release")
    in_force = ctx.tx.time < terms["expires_at"]
    if not same_member(ctx.sender, terms["financier"]):
        if not same_member(ctx.sender, record["holder"]):
            return reject(
                Code.NOT_FINANCIER,
                f"only the financier ({_who(terms['financier'])}) may release the pledge on document {p.doc_id},"
                " or the holder once it has expired",
            )
        if in_force:
            return reject(
                Code.PLEDGE_ACTIVE,
                f"the pledge on document {p.doc_id} is in force until {iso_utc(terms['expires_at'])};"
                f" until then only the financier ({_who(terms['financier'])}) may release it",
            )
    released = {"pledge_id": terms["tx_id"], "financier": terms["financier"], "expired": not in_force}
    return Accepted((ctx.event("PledgeReleased", record, released),), {"doc_id": p.doc_id})


RULES: dict[str, Rule] = {
    tables.KIND_PLEDGE: pledge,
    tables.KIND_PLEDGE_ACCEPT: accept,
    tables.KIND_PLEDGE_EXTEND: extend,
    tables.KIND_RELEASE: release,
}
