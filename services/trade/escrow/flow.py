"""The escrow flow: its kinds, the milestone release clause and what its hold's expiry records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import orjson

from traco.core.domain import BlockContext, ClauseEffect, Event, Rejected, StateView
from traco.core.holds import Hold
from traco.services.trade import queries as q
from traco.services.trade.escrow import rules
from traco.services.trade.escrow import state as s
from traco.services.trade.flow import Flow, clause_stamp, close_managed

CLAUSE_RELEASE: Final = "escrow_release"
MILESTONES_AT: Final = "reached/"
"""Doc's index of milestones by height (``reached/<height:012d>/<lineage>/<seq>``)."""


def _milestones(doc: StateView, height: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(lineage, report)`` of every milestone doc recorded at ``height``, in doc's order."""
    prefix = f"{MILESTONES_AT}{height:012d}/"
    for key, raw in doc.scan(prefix):
        yield key[len(prefix) :].split("/", 1)[0], orjson.loads(raw)


def release_clause(
    scratch: StateView, upstream: Mapping[str, StateView], block: BlockContext, council: Any
) -> Iterator[ClauseEffect]:
    """Pay the seller of every open escrow whose milestone doc recorded at the previous height
    (the latest doc state trade sees), reported by the escrow's reporter."""
    doc = upstream.get("doc")
    if doc is None or block.height < 2:
        return
    seen = block.height - 1
    for lineage, report in _milestones(doc, seen):
        for escrow_id in s.waiting(scratch, lineage):
            record = s.escrow(scratch, escrow_id)
            if record is None or record["status"] != "open":
                continue
            release = record["release"]
            if release["milestone"] != report["milestone"] or release["reporter"] != report["by"]:
                continue
            if seen < record["opened"]["height"]:
                continue
            hold = q.hold(scratch, record["hold_id"])
            if hold is None or not hold.is_open:
                continue
            stamp = clause_stamp(block)
            paid = close_managed(hold, None, block.height, block.time, stamp)
            if isinstance(paid, Rejected):
                continue  # due this very block: the expiry clause has refunded it already
            why = f"{report['milestone']} recorded by {report['by']} (doc tx {report['tx_id']})"
            closed = rules.closed_event(escrow_id, "released", record["amount"], record["amount"], why, stamp)
            yield ClauseEffect(CLAUSE_RELEASE, escrow_id, (paid, closed))


def on_expiry(state: StateView, hold: Hold, block: BlockContext) -> Sequence[Event]:
    escrow_id = hold.hold_id[len(s.HOLD_PREFIX) :]
    record = s.escrow(state, escrow_id)
    if record is None or record["status"] not in ("open", "disputed"):
        return ()
    return (rules.closed_event(escrow_id, "expired", 0, record["amount"], "expired", clause_stamp(block)),)


def waits_for(state: StateView, hold: Hold) -> bool:
    record = s.escrow(state, hold.hold_id[len(s.HOLD_PREFIX) :])
    return record is not None and record["status"] in ("open", "disputed")


FLOW: Final = Flow(
    name="escrow",
    rules=rules.RULES,
    hold_prefix=s.HOLD_PREFIX,
    clauses=release_clause,
    on_expiry=on_expiry,
    waits_for=waits_for,
)
