"""The ``data`` of the escrow events, for the AsyncAPI contract (``state.py`` applies them)."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field

from traco.schemas.asyncapi_events import EventData
from traco.schemas.asyncapi_events_trade import ByTradeData


class EscrowOpened(ByTradeData):
    escrow: dict[str, Any] = Field(
        description="escrow_id, hold_id, buyer, seller, token, amount, expires_at, release {on: confirm | milestone,"
        " doc_id, lineage, milestone, reporter}, memo, status, opened"
    )


class EscrowDisputed(ByTradeData):
    escrow_id: str
    reason: str
    until: int = Field(ge=0, description="the escrow hold's expiry after the dispute (block time, ms)")


class EscrowClosed(ByTradeData):
    escrow_id: str
    outcome: Literal["confirmed", "released", "cancelled", "resolved", "expired"]
    to_seller: int = Field(ge=0)
    to_buyer: int = Field(ge=0)
    reason: str | None


EVENT_DATA: Final[dict[str, type[EventData]]] = {
    "EscrowOpened": EscrowOpened,
    "EscrowDisputed": EscrowDisputed,
    "EscrowClosed": EscrowClosed,
}
