"""Transfers and holds of amounts (architecture: Execution, holds; the trade service).

Each rule takes a ``Context`` and a validated payload and returns ``Accepted`` with events or a
``Rejected``; ``mutations`` turns the events into state. The hold decisions themselves are
``traco.core.holds``' (one primitive for amounts here and titles in doc); this module adds what
is particular to tokens: the asset class (transferable, holdable, holder eligibility), frozen
accounts, and which part of a balance may move (``ledger.can_spend``).

Check order (it decides the code when several apply): token and class, then the hold's own
rules (``holds``: id, amount, parties, expiry, then decider and liveness), then funds (``FROZEN``,
``INSUFFICIENT_FUNDS``, ``HELD``, ``LOCKED_UNTIL``), then the counterparty's eligibility.

Why eligibility is checked again when a hold is executed: KYC lapses and freezes happen while a
hold waits, and a token must never reach a holder its class does not admit. The decider can
still release instead.
"""

from __future__ import annotations

from traco.core import holds
from traco.core.domain import Accepted, Outcome, Rejected
from traco.core.holds import Hold, HoldCode
from traco.services.trade import payloads as p
from traco.services.trade import queries as q
from traco.services.trade.codes import Code, reject
from traco.services.trade.flow import is_managed
from traco.services.trade.ledger import Context, can_receive, can_spend, token_and_class


def transfer(ctx: Context, t: p.Transfer) -> Outcome:
    found = token_and_class(ctx.state, t.token)
    if isinstance(found, Rejected):
        return found
    _, cls = found
    if not cls["transferable"]:
        return reject(Code.NOT_TRANSFERABLE, f"{t.token} ({cls['name']}) cannot be transferred")
    if t.to == ctx.sender:
        return reject(Code.SELF_TRANSFER, "a transfer to oneself moves nothing")
    refused = can_spend(ctx, t.token, ctx.sender, t.amount) or can_receive(ctx, cls, t.token, t.to)
    if refused is not None:
        return refused
    moved = {"token": t.token, "from": ctx.sender, "to": t.to, "amount": t.amount, "memo": t.memo}
    event = ctx.event("Transferred", f"token:{t.token}", **moved)
    return Accepted((event,), {"token": t.token, "amount": t.amount})


def hold_create(ctx: Context, h: p.HoldCreate) -> Outcome:
    found = token_and_class(ctx.state, h.token)
    if isinstance(found, Rejected):
        return found
    _, cls = found
    if not cls["holdable"]:
        return reject(Code.NOT_HOLDABLE, f"{h.token} ({cls['name']}) cannot be held")
    available = q.account(ctx.state, h.token, ctx.sender, ctx.tx.height)["available"]
    if q.frozen(ctx.state, h.token, ctx.sender) is not None:
        available = 0
    made = holds.create(
        hold_id=h.hold_id,
        owner=ctx.sender,
        beneficiary=h.beneficiary,
        notary=h.notary,
        asset=h.token,
        amount=h.amount,
        expires_height=h.expires_height,
        expires_time=h.expires_time,
        height=ctx.tx.height,
        time=ctx.tx.time,
        available=available,
        id_used=q.read(ctx.state, q.hold_key(h.hold_id)) is not None,
    )
    if isinstance(made, Rejected):
        if made.code == HoldCode.INSUFFICIENT_FUNDS:
            return can_spend(ctx, h.token, ctx.sender, h.amount) or made
        return made
    refused = can_receive(ctx, cls, h.token, h.beneficiary)
    if (
        refused is None
        and h.notary is not None
        and not h.notary.startswith("service:")
        and ctx.member(h.notary) is None
    ):
        refused = reject(Code.NOT_A_MEMBER, f"notary {h.notary} is not an admitted member")
    if refused is not None:
        return refused
    event = ctx.event("HoldCreated", f"hold:{made.hold_id}", hold=made.to_json())
    return Accepted((event,), {"hold_id": made.hold_id})


def _load(ctx: Context, hold_id: str) -> Hold | Rejected:
    found = q.hold(ctx.state, hold_id)
    if found is None:
        return reject(Code.UNKNOWN_HOLD, f"there is no hold {hold_id}")
    if found.is_open and q.exercise_of_hold(hold_id) is not None:
        return reject(Code.NOT_PERMITTED, f"hold {hold_id} is an equity exercise; trade.equity.settled closes it")
    if found.is_open and is_managed(hold_id):
        return reject(
            Code.NOT_PERMITTED,
            f"hold {hold_id} belongs to a trade flow ({hold_id.split(':', 1)[0]}); only that flow's kinds close it",
        )
    return found


def _acting(ctx: Context, hold: Hold) -> str:
    """Who acts on ``hold``: a service named as its notary when the request is that service's
    command (``service:<origin>``), else the sender's account."""
    if ctx.tx.origin is not None and hold.notary == f"service:{ctx.tx.origin}":
        return hold.notary
    return ctx.sender


def hold_execute(ctx: Context, h: p.HoldExecute) -> Outcome:
    hold = _load(ctx, h.hold_id)
    if isinstance(hold, Rejected):
        return hold
    done = holds.execute(hold, _acting(ctx, hold), h.amount, ctx.tx.height, ctx.tx.time)
    if isinstance(done, Rejected):
        return done
    found = token_and_class(ctx.state, hold.asset)
    if isinstance(found, Rejected):
        return found
    freeze = q.frozen(ctx.state, hold.asset, hold.owner)
    if freeze is not None and done.executed:
        return reject(Code.FROZEN, f"{hold.owner}'s {hold.asset} is frozen: {freeze['reason']}")
    refused = can_receive(ctx, found[1], hold.asset, hold.beneficiary)
    if refused is not None:
        return refused
    event = ctx.event("HoldExecuted", f"hold:{hold.hold_id}", hold=done.to_json())
    return Accepted((event,), {"hold_id": hold.hold_id, "executed": done.executed, "returned": done.returned})


def hold_release(ctx: Context, h: p.HoldRelease) -> Outcome:
    hold = _load(ctx, h.hold_id)
    if isinstance(hold, Rejected):
        return hold
    done = holds.release(hold, _acting(ctx, hold), ctx.tx.height, ctx.tx.time)
    if isinstance(done, Rejected):
        return done
    event = ctx.event("HoldReleased", f"hold:{hold.hold_id}", hold=done.to_json())
    return Accepted((event,), {"hold_id": hold.hold_id, "status": done.status.value})


def hold_renew(ctx: Context, h: p.HoldRenew) -> Outcome:
    hold = _load(ctx, h.hold_id)
    if isinstance(hold, Rejected):
        return hold
    done = holds.renew(hold, ctx.sender, h.expires_height, h.expires_time, ctx.tx.height, ctx.tx.time)
    if isinstance(done, Rejected):
        return done
    previous = {"expires_height": hold.expires_height, "expires_time": hold.expires_time}
    event = ctx.event("HoldRenewed", f"hold:{hold.hold_id}", hold=done.to_json(), previous=previous)
    return Accepted((event,), {"hold_id": hold.hold_id})
