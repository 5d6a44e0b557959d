"""The registry of trade flows' decisions (``flow.Flow``): rules by kind, clauses in a fixed
order, command outcomes, and the managed-hold prefixes each flow owns.

The order of ``FLOWS`` is part of the chain's rules: clauses run in this order at the end of
every block (after hold expiry, before Coco epochs), and changing it would change what a replay
computes. A test checks that the kinds here are exactly those of ``flow_models``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from traco.core.domain import BlockContext, ClauseEffect, CommandOutcome, Event, StateView
from traco.core.holds import Hold
from traco.services.trade.abs import flow as abs_flow
from traco.services.trade.dvp import flow as dvp
from traco.services.trade.escrow import flow as escrow
from traco.services.trade.exchange import flow as exchange
from traco.services.trade.flow import Flow, Rule
from traco.services.trade.flow_models import FLOW_KINDS
from traco.services.trade.loans import flow as loans

FLOWS: Final[tuple[Flow, ...]] = (escrow.FLOW, loans.FLOW, dvp.FLOW, abs_flow.FLOW, exchange.FLOW)

RULES: Final[dict[str, Rule]] = {kind: rule for f in FLOWS for kind, rule in f.rules.items()}
if frozenset(RULES) != FLOW_KINDS:
    raise ValueError(f"trade flows' rules and models disagree on kinds: {sorted(frozenset(RULES) ^ FLOW_KINDS)}")


def owner_of_hold(hold_id: str) -> Flow | None:
    """The flow whose managed hold this is, if any."""
    for f in FLOWS:
        if hold_id.startswith(f.hold_prefix):
            return f
    return None


def on_expiry(state: StateView, hold: Hold, block: BlockContext) -> list[Event]:
    """What the owning flow records when its managed hold ``hold`` expires (nothing for others)."""
    f = owner_of_hold(hold.hold_id)
    if f is None or f.on_expiry is None:
        return []
    return list(f.on_expiry(state, hold, block))


def clauses(
    scratch: StateView, upstream: Mapping[str, StateView], block: BlockContext, council: Any
) -> Iterator[ClauseEffect]:
    """Every flow's clause effects, flow by flow in ``FLOWS`` order."""
    for f in FLOWS:
        if f.clauses is not None:
            yield from f.clauses(scratch, upstream, block, council)


def on_outcome(state: StateView, outcome: CommandOutcome, block: BlockContext) -> list[Event]:
    """What the flows do with the outcome of a command one of them sent (each recognises its own)."""
    events: list[Event] = []
    for f in FLOWS:
        if f.on_outcome is not None:
            events.extend(f.on_outcome(state, outcome, block))
    return events


__all__ = ["FLOWS", "FLOW_KINDS", "RULES", "clauses", "on_expiry", "on_outcome", "owner_of_hold"]
