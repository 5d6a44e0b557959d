"""The flows' promises about money, checked over a replica's state (``GET /invariants``).

Every open managed hold (``flow.py``) must belong to a flow record that is still waiting for it
(each flow says which, ``Flow.waits_for``): an escrow open or disputed, a loan being disbursed,
a DvP funded and not yet closed, an order resting on the book. A hold without such a record is
money a flow forgot (it would stay held until expiry with nothing to release it); a record
waiting for a closed hold means a flow believes in money that is gone. The pools' own promises
are ``abs.views.invariants``.
"""

from __future__ import annotations

import orjson

from traco.core.domain import StateView
from traco.core.holds import Hold
from traco.services.trade import flows
from traco.services.trade import queries as q
from traco.services.trade.abs import views as abs_views


def _owner_waits(state: StateView, hold: Hold) -> bool:
    """A flow's managed hold must have its flow's record waiting for it; other holds (a
    member's, an equity exercise's) belong to no flow."""
    flow = flows.owner_of_hold(hold.hold_id)
    return flow is None or flow.waits_for is None or flow.waits_for(state, hold)


def invariants(state: StateView) -> list[str]:
    problems: list[str] = []
    for _, raw in state.scan("hold/"):
        hold = Hold.from_json(orjson.loads(raw))
        if hold.is_open and not _owner_waits(state, hold):
            problems.append(f"hold {hold.hold_id} is open but no flow record waits for it")
    for record in (orjson.loads(raw) for key, raw in state.scan("escrow/") if key.count("/") == 1):
        held = q.hold(state, record["hold_id"])
        if record["status"] in ("open", "disputed") and (held is None or not held.is_open):
            problems.append(f"escrow {record['escrow_id']} is {record['status']} but its hold is not open")
    problems.extend(abs_views.invariants(state))
    return problems
