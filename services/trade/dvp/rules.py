"""Cash against documents (delivery versus payment): the seller's title and the buyer's tokens
change hands as one outcome, or neither does.

Anchors: Canton's allocations (each side commits its leg to a settlement before it executes)
and ERC-7573 (DvP across two ledgers with a decrypting oracle). Done better here because both
legs are on one ordered chain: no oracle, no key release, and the rule that makes it atomic is
checked by every replica.

1. ``trade.dvp.open`` (buyer or seller): the terms — document, token and amount, the
   allocation deadline ``allocate_by`` and the settlement deadline ``settle_by`` (heights), an
   optional settlement agent (one of the council's ``settlement_agents`` when it lists any).
2. Legs, each by its owner before ``allocate_by``:
   - the buyer's ``trade.dvp.fund`` holds the tokens for the seller (managed hold ``dvp:<id>``,
     notary ``service:trade``) until ``settle_by + 3``;
   - the seller holds the title in doc (``doc.hold``: beneficiary the buyer, notary
     ``service:trade``, expiring by height only, at ``settle_by + 2`` or later), then names it
     with ``trade.dvp.allocate``; trade checks that hold in doc's state as of the previous block.
   Allocating one's leg is agreeing to the terms.
3. ``trade.dvp.settle`` (buyer, seller or the agent), at a height H ≤ ``settle_by``, only while
   the title hold is live past H+1 (doc executes the command there) and the token hold past H+2
   (trade completes there): the title moves first — a command to doc, ``doc.hold.execute``,
   that only ``service:trade`` may decide (the hold's notary).
4. At H+2 (``on_outcome``): doc moved the title → the tokens are released to the seller
   (``settled``); doc refused (the document was surrendered, amended…) → the tokens return to
   the buyer (``failed``), and the title hold stays in doc until it expires or the buyer
   releases it.

No leg completes without the other: the tokens move only after doc confirmed the title, and the
title moved only at trade's command, which trade sent only with the tokens held for at least
the heights the path needs. Deadlines: at ``allocate_by`` a DvP not fully allocated expires and
the funded leg returns (clause ``dvp_deadline``); after ``settle_by`` the token hold expires and
returns to the buyer, and the title hold expires in doc.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

from traco.core.domain import Accepted, Command, Event, Outcome, Rejected
from traco.services.trade import queries as q
from traco.services.trade.codes import DOC, Code, reject
from traco.services.trade.dvp import payloads as p
from traco.services.trade.dvp import state as s
from traco.services.trade.flow import AUTHORITY, Rule, hold_managed
from traco.services.trade.flow_params import flow_params
from traco.services.trade.ledger import Context

TITLE_EXECUTE: Final = "doc.hold.execute"
TOKEN_HOLD_MARGIN: Final = 3
"""The token hold expires at ``settle_by + 3``: live through ``settle_by + 2``, when a settlement
made at ``settle_by`` completes."""
TITLE_HOLD_MARGIN: Final = 2
"""The title hold must live through ``settle_by + 1``, when doc executes the command."""


class DvpCode(StrEnum):
    DVP_EXISTS = "DVP_EXISTS"
    UNKNOWN_DVP = "UNKNOWN_DVP"
    NOT_A_PARTY = "NOT_A_PARTY"
    NOT_BUYER = "NOT_BUYER"
    NOT_SELLER = "NOT_SELLER"
    ALREADY_ALLOCATED = "ALREADY_ALLOCATED"
    DEADLINE_PASSED = "DEADLINE_PASSED"
    NOT_ALLOCATED = "NOT_ALLOCATED"
    DVP_CLOSED = "DVP_CLOSED"
    INVALID_TERMS = "INVALID_TERMS"
    UNKNOWN_DOCUMENT = "UNKNOWN_DOCUMENT"
    BAD_TITLE_HOLD = "BAD_TITLE_HOLD"
    """The named doc title hold is not this settlement's (owner, beneficiary, notary, document,
    expiry) or not live."""
    TOO_LATE = "TOO_LATE"
    """A hold would expire before the command path completes."""


def open_dvp(ctx: Context, d: p.DvpOpen) -> Outcome:
    problems: list[str] = []
    if ctx.sender not in (d.seller, d.buyer):
        return reject(DvpCode.NOT_A_PARTY, "a DvP is opened by its buyer or its seller")
    if d.seller == d.buyer:
        problems.append("buyer: the seller cannot sell to itself")
    if d.allocate_by <= ctx.tx.height:
        problems.append(f"allocate_by: height {d.allocate_by} is not after the current height {ctx.tx.height}")
    if d.settle_by < d.allocate_by:
        problems.append(f"settle_by: height {d.settle_by} is before allocate_by {d.allocate_by}")
    agents = flow_params(ctx.party, ctx.members).settlement_agents
    if d.agent is not None and ctx.member(d.agent) is None:
        problems.append(f"agent: {d.agent} is not an admitted member")
    elif d.agent is not None and agents and d.agent not in agents:
        problems.append(f"agent: {d.agent} is not one of the council's settlement agents ({', '.join(agents)})")
    for who in (d.seller, d.buyer):
        if ctx.member(who) is None:
            problems.append(f"{who} is not an admitted member")
    document = ctx.document(d.doc_id)
    if document is None:
        problems.append(f"doc_id: there is no document {d.doc_id}")
    if problems:
        return reject(DvpCode.INVALID_TERMS, "; ".join(problems))
    if s.dvp(ctx.state, d.dvp_id) is not None:
        return reject(DvpCode.DVP_EXISTS, f"a DvP {d.dvp_id} exists or existed; ids are never reused")
    record = {
        "dvp_id": d.dvp_id,
        "seller": d.seller,
        "buyer": d.buyer,
        "doc_id": d.doc_id,
        "token": d.token,
        "amount": d.amount,
        "allocate_by": d.allocate_by,
        "settle_by": d.settle_by,
        "agent": d.agent,
        "hold_id": s.hold_id(d.dvp_id),
        "funded": False,
        "title_hold_id": None,
        "status": "open",
        "opened": {"by": ctx.sender, **ctx.stamp},
    }
    return Accepted((ctx.event("DvpOpened", f"dvp:{d.dvp_id}", dvp=record),), {"dvp_id": d.dvp_id})


def _open(ctx: Context, dvp_id: str) -> dict[str, Any] | Rejected:
    record = s.dvp(ctx.state, dvp_id)
    if record is None:
        return reject(DvpCode.UNKNOWN_DVP, f"there is no DvP {dvp_id}")
    if record["status"] not in ("open", "allocated"):
        return reject(DvpCode.DVP_CLOSED, f"DvP {dvp_id} is {record['status']}")
    return record


def fund(ctx: Context, d: p.DvpRef) -> Outcome:
    record = _open(ctx, d.dvp_id)
    if isinstance(record, Rejected):
        return record
    if ctx.sender != record["buyer"]:
        return reject(DvpCode.NOT_BUYER, f"only the buyer ({record['buyer']}) funds DvP {d.dvp_id}")
    if record["funded"]:
        return reject(DvpCode.ALREADY_ALLOCATED, f"DvP {d.dvp_id} is already funded")
    if ctx.tx.height >= record["allocate_by"]:
        return reject(DvpCode.DEADLINE_PASSED, f"DvP {d.dvp_id} took its legs until height {record['allocate_by']}")
    held = hold_managed(
        ctx,
        record["hold_id"],
        record["token"],
        record["seller"],
        record["amount"],
        expires_height=record["settle_by"] + TOKEN_HOLD_MARGIN,
    )
    if isinstance(held, Rejected):
        return held
    funded = ctx.event("DvpFunded", f"dvp:{d.dvp_id}", dvp_id=d.dvp_id, hold_id=record["hold_id"])
    return Accepted((held, funded), {"dvp_id": d.dvp_id, "hold_id": record["hold_id"]})


def _title_problems(record: dict[str, Any], hold: dict[str, Any] | None, need_height: int) -> list[str]:
    if hold is None:
        return ["there is no such title hold in doc (as of the previous block)"]
    wanted = {
        "asset": record["doc_id"],
        "owner": record["seller"],
        "beneficiary": record["buyer"],
        "notary": AUTHORITY,
        "status": "ordered",
    }
    problems = [f"its {k} is {hold.get(k)!r}, not {v!r}" for k, v in wanted.items() if hold.get(k) != v]
    if hold.get("expires_time") is not None:
        problems.append("it expires by time; a DvP title hold must expire by height only")
    height = hold.get("expires_height")
    if not isinstance(height, int) or height < need_height:
        problems.append(f"it expires at height {height}; it must live through height {need_height - 1}")
    return problems


def allocate(ctx: Context, d: p.DvpAllocate) -> Outcome:
    record = _open(ctx, d.dvp_id)
    if isinstance(record, Rejected):
        return record
    if ctx.sender != record["seller"]:
        return reject(DvpCode.NOT_SELLER, f"only the seller ({record['seller']}) allocates the title of DvP {d.dvp_id}")
    if record["title_hold_id"] is not None:
        return reject(DvpCode.ALREADY_ALLOCATED, f"DvP {d.dvp_id} already has its title hold")
    if ctx.tx.height >= record["allocate_by"]:
        return reject(DvpCode.DEADLINE_PASSED, f"DvP {d.dvp_id} took its legs until height {record['allocate_by']}")
    hold = ctx.title_hold(d.title_hold_id)
    problems = _title_problems(record, hold, record["settle_by"] + TITLE_HOLD_MARGIN)
    if s.by_title_hold(ctx.state, d.title_hold_id) is not None:
        problems.append("it already serves another DvP")
    if problems:
        return reject(DvpCode.BAD_TITLE_HOLD, f"title hold {d.title_hold_id}: " + "; ".join(problems))
    event = ctx.event("DvpAllocated", f"dvp:{d.dvp_id}", dvp_id=d.dvp_id, title_hold_id=d.title_hold_id)
    return Accepted((event,), {"dvp_id": d.dvp_id})


def settle(ctx: Context, d: p.DvpRef) -> Outcome:
    record = _open(ctx, d.dvp_id)
    if isinstance(record, Rejected):
        return record
    if ctx.sender not in (record["buyer"], record["seller"], record["agent"]):
        return reject(DvpCode.NOT_A_PARTY, f"only the buyer, the seller or the agent settles DvP {d.dvp_id}")
    if record["status"] != "allocated":
        missing = [
            leg
            for leg, done in (("the buyer's tokens", record["funded"]), ("the seller's title", record["title_hold_id"]))
            if not done
        ]
        return reject(DvpCode.NOT_ALLOCATED, f"DvP {d.dvp_id} still lacks {' and '.join(missing)}")
    h = ctx.tx.height
    if h > record["settle_by"]:
        return reject(DvpCode.DEADLINE_PASSED, f"DvP {d.dvp_id} could settle until height {record['settle_by']}")
    token_hold = q.hold(ctx.state, record["hold_id"])
    title = ctx.title_hold(record["title_hold_id"])
    problems = _title_problems(record, title, h + 2)
    if token_hold is None or not token_hold.is_open or (token_hold.expires_height or 0) <= h + 2:
        problems.append("the buyer's token hold would not live through the settlement")
    if problems:
        return reject(DvpCode.TOO_LATE, f"DvP {d.dvp_id} cannot settle safely now: " + "; ".join(problems))
    command = Command(target=DOC, kind=TITLE_EXECUTE, payload={"hold_id": record["title_hold_id"]})
    event = ctx.event("DvpSettling", f"dvp:{d.dvp_id}", dvp_id=d.dvp_id)
    return Accepted((event,), {"dvp_id": d.dvp_id, "status": "settling"}, (command,))


def closed_event(dvp_id: str, outcome: str, code: str, reason: str, stamp: dict[str, Any]) -> Event:
    return Event(
        "DvpClosed", f"dvp:{dvp_id}", {"dvp_id": dvp_id, "outcome": outcome, "code": code, "reason": reason, **stamp}
    )


RULES: Final[dict[str, Rule]] = {p.OPEN: open_dvp, p.FUND: fund, p.ALLOCATE: allocate, p.SETTLE: settle}

__all__ = ["RULES", "Code", "DvpCode"]
