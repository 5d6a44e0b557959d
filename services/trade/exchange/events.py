"""The ``data`` of the exchange's events, for the AsyncAPI contract (``schemas/asyncapi_models.py``).

Amounts are integers in minor units: ``qty`` in the base token's, ``price`` and ``quote`` in the
quote token's (TRC); ``price`` is per lot of base (see ``traco.services.trade.orderbook``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import Field

from traco.schemas.asyncapi_events import EventData
from traco.schemas.asyncapi_events_trade import ByTradeData, TradeData

Positive = Annotated[int, Field(ge=1)]


class PairListed(TradeData):
    pair: str = Field(description="BASE/QUOTE")
    base: str
    quote: str
    lot: Positive = Field(description="base minor units per price unit; every quantity is a multiple")
    by: str | None = Field(default=None, description="absent at genesis; else who placed the first order")


class OrderPlaced(ByTradeData):
    order: dict[str, Any] = Field(
        description="order_id, owner, pair, side, price, qty, remaining, filled, quote, seq, expires_height,"
        " hold_id, holds, status (open | filled), placed, closed"
    )


class OrderFilled(ByTradeData):
    pair: str
    trade_seq: int = Field(ge=0, description="the pair's trade number")
    maker_id: str
    taker_id: str
    buyer: str
    seller: str
    price: Positive = Field(description="the maker's price")
    qty: Positive
    quote: Positive = Field(description="qty // lot * price, paid by the buyer to the seller")
    maker_left: int = Field(ge=0)
    maker_hold: str | None = Field(description="the hold of what is left of the maker (null: filled)")
    epoch: int | None = Field(ge=0, description="the Coco epoch the volume counts in (null: none)")


class OrderCancelled(ByTradeData):
    order_id: str


class OrderExpired(ByTradeData):
    order_id: str


class LiquidityPaid(ByTradeData):
    epoch: int = Field(ge=0)
    token: str
    share: int = Field(ge=0, description="the epoch's liquidity share (epoch amount minus holders' share)")
    payouts: list[Annotated[list[str | int], Field(min_length=2, max_length=2)]] = Field(
        description="[member, amount] pairs: share * volume // total volume"
    )
    paid: int = Field(ge=0, description="the sum of the payouts; the rest stays in the pool")


EVENT_DATA: Final[dict[str, type[EventData]]] = {
    "PairListed": PairListed,
    "OrderPlaced": OrderPlaced,
    "OrderFilled": OrderFilled,
    "OrderCancelled": OrderCancelled,
    "OrderExpired": OrderExpired,
    "LiquidityPaid": LiquidityPaid,
}
