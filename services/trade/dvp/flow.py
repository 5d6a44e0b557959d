"""The delivery-versus-payment flow: its kinds, the allocation-deadline clause, the title
command's outcome, and what the token hold's expiry records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from traco.core.domain import BlockContext, ClauseEffect, CommandOutcome, Event, Rejected, StateView
from traco.core.holds import Hold
from traco.services.trade import queries as q
from traco.services.trade.codes import DOC
from traco.services.trade.dvp import rules
from traco.services.trade.dvp import state as s
from traco.services.trade.flow import Flow, clause_stamp, close_managed

CLAUSE_DEADLINE: Final = "dvp_deadline"


def deadline_clause(
    scratch: StateView, upstream: Mapping[str, StateView], block: BlockContext, council: Any
) -> Iterator[ClauseEffect]:
    """At its ``allocate_by`` height, a DvP still missing a leg expires; a funded leg returns."""
    for dvp_id in s.due_at(scratch, block.height):
        record = s.dvp(scratch, dvp_id)
        if record is None or record["status"] != "open":
            continue
        stamp = clause_stamp(block)
        events: list[Event] = []
        hold = q.hold(scratch, record["hold_id"])
        if hold is not None and hold.is_open:
            back = close_managed(hold, 0, block.height, block.time, stamp)
            if not isinstance(back, Rejected):
                events.append(back)
        events.append(
            rules.closed_event(dvp_id, "expired", "DEADLINE_PASSED", "a leg was not allocated in time", stamp)
        )
        yield ClauseEffect(CLAUSE_DEADLINE, dvp_id, tuple(events))


def on_outcome(state: StateView, outcome: CommandOutcome, block: BlockContext) -> Sequence[Event]:
    """The title moved (tokens to the seller) or doc refused (tokens back to the buyer)."""
    title_hold_id = outcome.payload.get("hold_id")
    if outcome.target != DOC or outcome.kind != rules.TITLE_EXECUTE or not isinstance(title_hold_id, str):
        return ()
    dvp_id = s.by_title_hold(state, title_hold_id)
    record = None if dvp_id is None else s.dvp(state, dvp_id)
    if dvp_id is None or record is None or record["status"] != "settling":
        return ()
    hold = q.hold(state, record["hold_id"])
    if hold is None or not hold.is_open:
        return ()
    stamp = clause_stamp(block)
    moved = close_managed(hold, None if outcome.accepted else 0, block.height, block.time, stamp)
    if isinstance(moved, Rejected):
        return ()
    if outcome.accepted:
        closed = rules.closed_event(dvp_id, "settled", "OK", "title delivered; payment released", stamp)
    else:
        closed = rules.closed_event(dvp_id, "failed", outcome.code, "doc refused the title; payment returned", stamp)
    return (moved, closed)


def on_expiry(state: StateView, hold: Hold, block: BlockContext) -> Sequence[Event]:
    dvp_id = hold.hold_id[len(s.HOLD_PREFIX) :]
    record = s.dvp(state, dvp_id)
    if record is None or record["status"] not in ("open", "allocated"):
        return ()
    return (rules.closed_event(dvp_id, "expired", "DEADLINE_PASSED", "not settled in time", clause_stamp(block)),)


def waits_for(state: StateView, hold: Hold) -> bool:
    record = s.dvp(state, hold.hold_id[len(s.HOLD_PREFIX) :])
    return record is not None and record["funded"] and record["status"] in ("open", "allocated", "settling")


FLOW: Final = Flow(
    name="dvp",
    rules=rules.RULES,
    hold_prefix=s.HOLD_PREFIX,
    clauses=deadline_clause,
    on_outcome=on_outcome,
    on_expiry=on_expiry,
    waits_for=waits_for,
)
