"""The ``data`` of the securitisation events, for the AsyncAPI contract (``state.py`` applies them)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import Field

from traco.schemas.asyncapi_events import EventData
from traco.schemas.asyncapi_events_trade import ByTradeData


class AbsPooled(ByTradeData):
    pool: dict[str, Any] = Field(
        description="pool_id, arranger, token, account, assets, size, equity, tranches, fees, deal (the waterfall's"
        " state at closing), status, collections, collected, paid_out, last_time, opened"
    )


class AbsCollected(ByTradeData):
    pool_id: str
    seq: int = Field(ge=1, description="the pool's distribution number")
    amount: int = Field(ge=0, description="paid in by the servicer")
    carried_in: int = Field(
        ge=0, description="the pool account's cash beyond the reserve and the carries, added to the collections"
    )
    losses: int = Field(ge=0)
    period_ms: int = Field(ge=0, description="block time since the previous collection (or the pooling)")
    distribution: dict[str, Any] = Field(
        description="the waterfall's outcome: lines, writedowns, reserve moves, waterfall, triggered, deal after"
    )
    payouts: list[Annotated[list[str | int], Field(min_length=2, max_length=2)]] = Field(
        description="[account, amount] pairs, each a Transferred from the pool's account"
    )
    carry: dict[str, int] = Field(
        description="tranche -> its rounding remainder after this distribution, kept for its holders' next payment"
    )


class AbsLienRecorded(ByTradeData):
    pool_id: str
    doc_id: str
    accepted: bool = Field(description="doc put the receivable under the pool's lien")
    code: str = Field(description="OK, or doc's refusal (ALREADY_PLEDGED, NOT_HOLDER, …)")


EVENT_DATA: Final[dict[str, type[EventData]]] = {
    "AbsPooled": AbsPooled,
    "AbsCollected": AbsCollected,
    "AbsLienRecorded": AbsLienRecorded,
}
