"""The ``data`` of the delivery-versus-payment events, for the AsyncAPI contract."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field

from traco.schemas.asyncapi_events import EventData
from traco.schemas.asyncapi_events_trade import ByTradeData


class DvpOpened(ByTradeData):
    dvp: dict[str, Any] = Field(
        description="dvp_id, seller, buyer, doc_id, token, amount, allocate_by, settle_by (heights), agent, hold_id,"
        " funded, title_hold_id, status, opened"
    )


class DvpFunded(ByTradeData):
    dvp_id: str
    hold_id: str


class DvpAllocated(ByTradeData):
    dvp_id: str
    title_hold_id: str


class DvpSettling(ByTradeData):
    dvp_id: str


class DvpClosed(ByTradeData):
    dvp_id: str
    outcome: Literal["settled", "failed", "expired"]
    code: str
    reason: str


EVENT_DATA: Final[dict[str, type[EventData]]] = {
    "DvpOpened": DvpOpened,
    "DvpFunded": DvpFunded,
    "DvpAllocated": DvpAllocated,
    "DvpSettling": DvpSettling,
    "DvpClosed": DvpClosed,
}
