"""What a trade *flow* is — escrow, loans, delivery against payment, the exchange, securitisation —
and the hold moves every flow is made of.

Why flows: each is a small set of kinds built on the same token ledger and the same hold
primitive (``traco.core.holds``), with its own records, clauses and (for some) commands to doc.
Keeping each in its own package (``services/trade/<flow>/``: ``payloads.py``, ``state.py``,
``rules.py``, ``flow.py``) and registering it in one place (``flow_models`` for payloads and
mutators, ``flows`` for the rest) keeps the shared trade modules small and lets a reader find a
flow whole.

How money moves in a flow: never by a flow-specific balance event. A flow reserves with a
*managed hold* — a trade hold whose notary is ``service:trade`` and whose id carries the flow's
prefix (``escrow:…``, ``loan:…``; members' hold ids never contain ``:``) — and settles by closing
it (``HoldExecuted``: executed to the beneficiary, the rest back to the owner; ``HoldReleased``;
the expiry clause returns it) or by a plain ``Transferred``. The core mutators apply those, so
balances, ``held`` and supply keep one set of invariants whichever flow moved them, and the
generic ``trade.hold.*`` kinds refuse to touch a managed hold (only its flow's kinds close it).

Rules version: flows exist from trade rules version 2 (``codes.FLOWS_SINCE``); under version 1 their
kinds answer ``UNKNOWN_KIND``, so replaying a chain made before them gives the same receipts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from traco.core import holds
from traco.core.domain import BlockContext, ClauseEffect, CommandOutcome, Event, Outcome, Rejected, StateView
from traco.core.holds import Hold, HoldCode
from traco.services.trade import queries as q
from traco.services.trade.codes import SERVICE, Code, reject
from traco.services.trade.ledger import Context, can_receive, can_spend, token_and_class

AUTHORITY = f"service:{SERVICE}"
"""The notary of every managed hold, and the ``by`` of every clause event."""

Rule = Callable[[Context, Any], Outcome]
Clauses = Callable[[StateView, Mapping[str, StateView], BlockContext, Any], Iterator[ClauseEffect]]
"""``(scratch state, upstream, block, council params) -> effects``, yielded one at a time: the
caller applies each effect's events to the scratch state before asking for the next, so a
later effect sees the earlier ones."""
OutcomeHook = Callable[[StateView, CommandOutcome, BlockContext], Sequence[Event]]
WaitsFor = Callable[[StateView, Hold], bool]
"""Whether the flow still has a record waiting for this open managed hold (``/invariants``)."""
ExpiryHook = Callable[[StateView, Hold, BlockContext], Sequence[Event]]
"""What a flow records when one of its managed holds expires (the hold-expiry clause has already
returned the amount to the owner); the events join that clause's effect."""


@dataclass(frozen=True)
class Flow:
    """One flow's decisions: its rules by kind, its clauses, what it does with the outcome of a
    command it sent, and the prefix of the managed holds it owns."""

    name: str
    rules: Mapping[str, Rule]
    hold_prefix: str
    clauses: Clauses | None = None
    on_outcome: OutcomeHook | None = None
    on_expiry: ExpiryHook | None = None
    waits_for: WaitsFor | None = None


def clause_stamp(block: BlockContext) -> dict[str, Any]:
    """``by``/``tx_id``/``height``/``time`` of an event a clause (or a command outcome) caused."""
    return {"by": AUTHORITY, "tx_id": None, "height": block.height, "time": block.time}


def hold_managed(
    ctx: Context,
    hold_id: str,
    token: str,
    beneficiary: str,
    amount: int,
    expires_height: int | None = None,
    expires_time: int | None = None,
    owner: str | None = None,
) -> Event | Rejected:
    """A ``HoldCreated`` of ``amount`` of ``owner``'s (default: the sender's) ``token`` for
    ``beneficiary``, decided by ``service:trade``; or the refusal naming what stands in the way
    (class not holdable, funds, frozen, recipient's eligibility)."""
    payer = ctx.sender if owner is None else owner
    found = token_and_class(ctx.state, token)
    if isinstance(found, Rejected):
        return found
    _, cls = found
    if not cls["holdable"]:
        return reject(Code.NOT_HOLDABLE, f"{token} ({cls['name']}) cannot be held")
    available = q.account(ctx.state, token, payer, ctx.tx.height)["available"]
    if q.frozen(ctx.state, token, payer) is not None:
        available = 0
    made = holds.create(
        hold_id=hold_id,
        owner=payer,
        beneficiary=beneficiary,
        notary=AUTHORITY,
        asset=token,
        amount=amount,
        expires_height=expires_height,
        expires_time=expires_time,
        height=ctx.tx.height,
        time=ctx.tx.time,
        available=available,
        id_used=q.read(ctx.state, q.hold_key(hold_id)) is not None,
    )
    if isinstance(made, Rejected):
        if made.code == HoldCode.INSUFFICIENT_FUNDS:
            return can_spend(ctx, token, payer, amount) or made
        return made
    refused = can_receive(ctx, cls, token, beneficiary)
    if refused is not None:
        return refused
    return Event("HoldCreated", f"hold:{hold_id}", {"hold": made.to_json(), "by": ctx.sender, **ctx.stamp})


def close_managed(
    hold: Hold, execute: int | None, height: int, time: int, stamp: Mapping[str, Any]
) -> Event | Rejected:
    """Close a managed hold as its notary: ``execute`` of it (``None``: all) to the beneficiary
    and the rest back to the owner, or with ``execute == 0`` all of it back to the owner.

    ``stamp`` is the causing transaction's (``Context.stamp`` plus ``by``) or a clause's
    (``clause_stamp``)."""
    if execute == 0:
        done = holds.release(hold, AUTHORITY, height, time)
        type_ = "HoldReleased"
    else:
        done = holds.execute(hold, AUTHORITY, execute, height, time)
        type_ = "HoldExecuted"
    if isinstance(done, Rejected):
        return done
    return Event(type_, f"hold:{hold.hold_id}", {"hold": done.to_json(), **stamp})


def is_managed(hold_id: str) -> bool:
    """Managed holds (and equity exercises') have ``:`` in their id; members' never do."""
    return ":" in hold_id


__all__ = ["AUTHORITY", "Clauses", "Flow", "OutcomeHook", "Rule", "clause_stamp", "close_managed", "hold_managed"]
