"""The flows' promises about money, checked over a replica's state (``GET /invariants``).

Every open managed hold (``flow.py``) must belong to a flow record that is still waiting for it:
an escrow open or disputed, a loan being disbursed, a DvP funded and not yet closed, an order
resting on the book. A hold without such a record is money a flow forgot (it would stay held
until expiry with nothing to release it); a record waiting for a closed hold means a flow
believes in money that is gone. The pools' own promises are ``abs.views.invariants``.
"""

from __future__ import annotations

import orjson

from traco.core.domain import StateView
from traco.core.holds import Hold
from traco.services.trade.abs import views as abs_views
from traco.services.trade.dvp import state as dvp
from traco.services.trade.escrow import state as escrow
from traco.services.trade.exchange import state as exchange
from traco.services.trade.loans import state as loans


def _owner_waits(state: StateView, hold: Hold) -> bool:
    hold_id = hold.hold_id
    if hold_id.startswith(escrow.HOLD_PREFIX):
        record = escrow.escrow(state, hold_id[len(escrow.HOLD_PREFIX) :])
        return record is not None and record["status"] in ("open", "disputed")
    if hold_id.startswith(loans.HOLD_PREFIX):
        record = loans.loan(state, hold_id[len(loans.HOLD_PREFIX) :])
        return record is not None and record["status"] == "pledging"
    if hold_id.startswith(dvp.HOLD_PREFIX):
        record = dvp.dvp(state, hold_id[len(dvp.HOLD_PREFIX) :])
        return record is not None and record["funded"] and record["status"] in ("open", "allocated", "settling")
    if hold_id.startswith(exchange.HOLD_PREFIX):
        order_id = exchange.order_of_hold(hold_id)
        record = None if order_id is None else exchange.order(state, order_id)
        return record is not None and record.get("hold_id") == hold_id
    return True  # not a flow's hold (a member's, an equity exercise's)


def invariants(state: StateView) -> list[str]:
    problems: list[str] = []
    for _, raw in state.scan("hold/"):
        hold = Hold.from_json(orjson.loads(raw))
        if hold.is_open and not _owner_waits(state, hold):
            problems.append(f"hold {hold.hold_id} is open but no flow record waits for it")
    for record in (orjson.loads(raw) for key, raw in state.scan("escrow/") if key.count("/") == 1):
        found = state.get(f"hold/{record['hold_id']}")
        if record["status"] in ("open", "disputed") and (found is None or orjson.loads(found)["status"] != "ordered"):
            problems.append(f"escrow {record['escrow_id']} is {record['status']} but its hold is not open")
    problems.extend(abs_views.invariants(state))
    return problems
