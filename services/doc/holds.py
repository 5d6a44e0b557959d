"""Title holds in doc (architecture: Execution, holds): a document's title held for a beneficiary, on the one
hold primitive of ``traco.core.holds`` that trade uses for amounts.

The holder holds the title (amount 1) for a beneficiary until an expiry height and/or time;
while held it cannot be transferred, surrendered, amended or pledged (``HELD``). The decider
(the notary if one is named, else the beneficiary) executes it — the title moves to the
beneficiary — or releases it; the beneficiary may always refuse. At expiry the clause
``hold_expiry`` (``end_block``) returns it to the holder without anyone acting, on an idle
chain too (decision 0017).

One rule for encumbrances, with pledges (``rules.pledge``):

- a held title cannot be pledged (``HELD``);
- a pledged title cannot be held (``PLEDGED``), except for its pledgee: that hold is how a
  financier enforces a pledge it took itself, and executing it ends the pledge, the pledgee
  now holding the title;
- a title under a *managed* pledge (a loan's, ``managed.py``) cannot be held at all, not even
  for the pledgee: its service enforces it by command (``doc.pledge.enforce``), and a hold
  standing in the way (``HELD``) would leave the lender with neither repayment nor title.

Who acts: parties are members (``member_id``), as everywhere in doc. A command from a later
service (``TxContext.origin``) acts with the originating sender's authority; when the hold's
notary is ``service:<origin>``, the commanding service itself decides — how trade settles
delivery against payment without any member being able to move the title alone.

Check order: payload bounds (expiry), the document (exists, live, negotiable), the sender's
authority (holder), encumbrances (``HELD``, ``PLEDGED``), the counterparty (admitted member),
then the primitive's own checks (id unique forever, not to oneself).
"""

from __future__ import annotations

from typing import Any

from traco.core import holds as hold_rules
from traco.core.domain import Accepted, BlockContext, ClauseEffect, Event, Outcome, Rejected, StateView
from traco.core.timefmt import iso_utc
from traco.services.doc import payloads, queries, tables
from traco.services.doc.rules import Context, Rule, _active, _not_holder, _who, held, same_member
from traco.services.doc.tables import Code, reject

CLAUSE = "hold_expiry"


def load(view: StateView, hold_id: str) -> dict[str, Any] | None:
    return queries.read(view, queries.hold_key(hold_id))


def _decider_id(ctx: Context, hold: hold_rules.Hold) -> str:
    """Who is acting, as the hold names parties: the commanding service when it is the notary
    and the command came from it, else the sender's member."""
    origin = ctx.tx.origin
    if origin is not None and hold.notary == hold_rules.SERVICE_PREFIX + origin:
        return hold.notary
    return ctx.sender["member_id"]


def _expiry_problem(ctx: Context, height: int | None, at: int | None) -> str | None:
    if height is not None and height > ctx.tx.height + tables.MAX_HOLD_HEIGHTS:
        return f"expires_height: at most {tables.MAX_HOLD_HEIGHTS} heights ahead of {ctx.tx.height}"
    if at is not None and at > ctx.tx.time + tables.MAX_HOLD_MS:
        return f"expires_at: at most a year and a day after the block time ({iso_utc(ctx.tx.time)})"
    return None


def _event(ctx: Context, type_: str, record: dict[str, Any], hold: hold_rules.Hold, **extra: Any) -> Event:
    return ctx.event(type_, record, {"hold": hold.to_json(), **extra})


def create(ctx: Context, p: payloads.Hold) -> Outcome:
    problem = _expiry_problem(ctx, p.expires_height, p.expires_at)
    if problem is not None:
        return reject(Code.INVALID_PAYLOAD, problem)
    record = _active(ctx, p.doc_id)
    if isinstance(record, Rejected):
        return record
    if not record["negotiable"]:
        return reject(
            Code.NOT_NEGOTIABLE, f"document {p.doc_id} ({record['type']}) is not negotiable: its title cannot move"
        )
    if not same_member(ctx.sender, record["holder"]):
        return _not_holder(record, "hold")
    refused = held(record, "held again")
    if refused is not None:
        return refused
    beneficiary = ctx.admitted(p.beneficiary)
    if beneficiary is None:
        return reject(Code.NOT_A_MEMBER, f"beneficiary: {p.beneficiary} is not an admitted member's key")
    pledge = queries.pledge_in_force(record, ctx.tx.time)
    if pledge is not None and pledge.get("manager") is not None:
        return reject(
            Code.PLEDGED,
            f"document {p.doc_id} secures {pledge['reference']} ({pledge['manager']}); its title cannot be held:"
            " the managing service releases or enforces the pledge itself",
        )
    if pledge is not None and not same_member(beneficiary, pledge["financier"]):
        return reject(
            Code.PLEDGED,
            f"document {p.doc_id} is pledged to {_who(pledge['financier'])}; only the pledgee may be its beneficiary",
        )
    notary = p.notary
    if notary is not None and not notary.startswith(hold_rules.SERVICE_PREFIX):
        notary_ref = ctx.admitted(notary)
        if notary_ref is None:
            return reject(Code.NOT_A_MEMBER, f"notary: {notary} is not an admitted member's key")
        notary = notary_ref["member_id"]
    made = hold_rules.create(
        hold_id=p.hold_id,
        owner=record["holder"]["member_id"],
        beneficiary=beneficiary["member_id"],
        notary=notary,
        asset=p.doc_id,
        amount=1,
        expires_height=p.expires_height,
        expires_time=p.expires_at,
        height=ctx.tx.height,
        time=ctx.tx.time,
        available=1,
        id_used=load(ctx.state, p.hold_id) is not None,
    )
    if isinstance(made, Rejected):
        return made
    event = _event(ctx, "TitleHeld", record, made, beneficiary=beneficiary)
    return Accepted((event,), {"doc_id": p.doc_id, "hold_id": p.hold_id})


def _open(ctx: Context, hold_id: str) -> tuple[dict[str, Any], dict[str, Any], hold_rules.Hold] | Rejected:
    """The document, the stored hold record and the hold of ``hold_id``."""
    stored = load(ctx.state, hold_id)
    if stored is None:
        return Rejected(hold_rules.HoldCode.UNKNOWN_HOLD.value, f"there is no title hold {hold_id}")
    record = queries.document(ctx.state, stored["asset"])
    if record is None:  # pragma: no cover - a hold always names a registered document
        return reject(Code.UNKNOWN_DOCUMENT, f"hold {hold_id} names no document")
    return record, stored, hold_rules.Hold.from_json(stored)


def execute(ctx: Context, p: payloads.HoldExecute) -> Outcome:
    found = _open(ctx, p.hold_id)
    if isinstance(found, Rejected):
        return found
    record, stored, hold = found
    done = hold_rules.execute(hold, _decider_id(ctx, hold), None, ctx.tx.height, ctx.tx.time)
    if isinstance(done, Rejected):
        return done
    to = ctx.admitted(stored["beneficiary_ref"]["key"])
    if to is None or to["member_id"] != done.beneficiary:
        return reject(
            Code.NOT_A_MEMBER,
            f"the beneficiary's key {stored['beneficiary_ref']['key']} is no longer an admitted member's;"
            " the hold stays open until released or expired",
        )
    pledge = queries.pledge_in_force(record, ctx.tx.time)
    ends_pledge = pledge["tx_id"] if pledge is not None else None
    event = _event(ctx, "TitleHoldExecuted", record, done, to=to, ended_pledge=ends_pledge)
    return Accepted((event,), {"doc_id": record["doc_id"], "hold_id": p.hold_id, "holder": to})


def release(ctx: Context, p: payloads.HoldRelease) -> Outcome:
    found = _open(ctx, p.hold_id)
    if isinstance(found, Rejected):
        return found
    record, _, hold = found
    done = hold_rules.release(hold, _decider_id(ctx, hold), ctx.tx.height, ctx.tx.time)
    if isinstance(done, Rejected):
        return done
    return Accepted((_event(ctx, "TitleHoldReleased", record, done),), {"hold_id": p.hold_id})


def renew(ctx: Context, p: payloads.HoldRenew) -> Outcome:
    problem = _expiry_problem(ctx, p.expires_height, p.expires_at)
    if problem is not None:
        return reject(Code.INVALID_PAYLOAD, problem)
    found = _open(ctx, p.hold_id)
    if isinstance(found, Rejected):
        return found
    record, _, hold = found
    done = hold_rules.renew(hold, ctx.sender["member_id"], p.expires_height, p.expires_at, ctx.tx.height, ctx.tx.time)
    if isinstance(done, Rejected):
        return done
    return Accepted((_event(ctx, "TitleHoldRenewed", record, done, previous=hold.to_json()),), {"hold_id": p.hold_id})


def end_block(state: StateView, block: BlockContext) -> list[ClauseEffect]:
    """The clause ``hold_expiry``: every hold due at this block (height or time reached) goes
    back to the holder, in the order of the due index (height-due first, then time-due; each by
    expiry, then id)."""
    due: dict[str, None] = {}
    for prefix, bound in ((queries.HOLD_DUE_BY_HEIGHT, block.height), (queries.HOLD_DUE_BY_TIME, block.time)):
        for key, _ in state.scan(prefix):
            at, hold_id = key[len(prefix) :].split("/", 1)
            if int(at) > bound:
                break
            due.setdefault(hold_id, None)
    effects = []
    for hold_id in due:
        stored = load(state, hold_id)
        if stored is None:  # pragma: no cover - the index is removed with the hold
            continue
        hold = hold_rules.Hold.from_json(stored)
        if not hold_rules.is_due(hold, block.height, block.time):
            continue
        closed = hold_rules.expire(hold, block.height, hold_rules.SERVICE_PREFIX + "doc")
        stamp = {"tx_id": None, "height": block.height, "time": block.time}
        by = {"member_id": closed.closed_by, "key": closed.closed_by}
        data = {"doc_id": hold.asset, "hold": closed.to_json(), "by": by, **stamp}
        record = queries.document(state, hold.asset)
        lineage = record["lineage"] if record is not None else hold.asset
        effects.append(ClauseEffect(CLAUSE, hold_id, (Event("TitleHoldExpired", lineage, data),)))
    return effects


RULES: dict[str, Rule] = {
    tables.KIND_HOLD: create,
    tables.KIND_HOLD_EXECUTE: execute,
    tables.KIND_HOLD_RELEASE: release,
    tables.KIND_HOLD_RENEW: renew,
}
