"""The wire models of every trade flow's events (each flow's ``events.py``), gathered for the
AsyncAPI contract (``schemas/asyncapi_models.py``). Apart from ``flow_models`` because these
import the schema package, which the rules never need."""

from __future__ import annotations

from typing import Final

from traco.schemas.asyncapi_events import EventData
from traco.services.trade.abs import events as abs_events
from traco.services.trade.dvp import events as dvp_events
from traco.services.trade.escrow import events as escrow_events
from traco.services.trade.exchange import events as exchange_events
from traco.services.trade.loans import events as loans_events

FLOW_EVENT_DATA: Final[dict[str, type[EventData]]] = {
    **escrow_events.EVENT_DATA,
    **loans_events.EVENT_DATA,
    **dvp_events.EVENT_DATA,
    **abs_events.EVENT_DATA,
    **exchange_events.EVENT_DATA,
}
