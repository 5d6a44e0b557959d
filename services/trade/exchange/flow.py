"""The exchange flow: its kinds and what the expiry of an order's hold records (the order leaves
the book). It has no clause of its own: expiry is the hold-expiry clause's, and the liquidity
share is paid inside Coco's epoch clause (``liquidity``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from traco.core.domain import BlockContext, Event, StateView
from traco.core.holds import Hold
from traco.services.trade.exchange import rules
from traco.services.trade.exchange import state as s
from traco.services.trade.flow import Flow, clause_stamp


def on_expiry(state: StateView, hold: Hold, block: BlockContext) -> Sequence[Event]:
    """An open order whose current hold expired leaves the book (the clause returned the hold)."""
    order_id = s.order_of_hold(hold.hold_id)
    record = None if order_id is None else s.order(state, order_id)
    if record is None or record["status"] != s.OPEN or record["hold_id"] != hold.hold_id:
        return ()
    return (Event("OrderExpired", f"order:{order_id}", {"order_id": order_id, **clause_stamp(block)}),)


def waits_for(state: StateView, hold: Hold) -> bool:
    """The order's current hold (a partly filled order is held again under a new id)."""
    order_id = s.order_of_hold(hold.hold_id)
    record = None if order_id is None else s.order(state, order_id)
    return record is not None and record.get("hold_id") == hold.hold_id


FLOW: Final = Flow(
    name="exchange", rules=rules.RULES, hold_prefix=s.HOLD_PREFIX, on_expiry=on_expiry, waits_for=waits_for
)
