"""Payloads of the exchange's kinds, and the genesis section that lists its pairs.

Price and quantity are plain integers here, not ``Amount``: the rules check them against the
pair's lot and name the problem with its own code (``INVALID_PRICE``, ``LOT_SIZE``,
``INVALID_QUANTITY``) rather than a generic ``INVALID_PAYLOAD``. The canonical encoding already
bounds every integer of a transaction to ±(2**53 − 1).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints

from traco.core.canonical import MAX_SAFE_INTEGER
from traco.services.trade.fields import Height, Payload, TokenId

PLACE: Final = "trade.order.place"
CANCEL: Final = "trade.order.cancel"

ORDER_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$"
"""A member's id for its order (no ``:``, at most 96 characters, so that the order's hold ids
``exchange:<order_id>:<n>`` stay within a hold reference's 128)."""
PAIR_PATTERN: Final = r"^[A-Z][A-Z0-9]{1,15}/[A-Z][A-Z0-9]{1,15}$"

OrderId = Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
PairId = Annotated[str, StringConstraints(pattern=PAIR_PATTERN)]
"""``BASE/QUOTE`` (token ids), e.g. ``ECC/TRC``."""
Lot = Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]


class OrderPlace(Payload):
    """``trade.order.place``: a limit order to buy or sell ``qty`` base minor units (a multiple of
    the pair's lot) at ``price`` quote minor units per lot or better; what does not fill at once
    rests on the book until filled, cancelled or ``expires_height``."""

    order_id: OrderId
    pair: PairId
    side: Literal["buy", "sell"]
    price: int
    qty: int
    expires_height: Height | None = None


class OrderCancel(Payload):
    """``trade.order.cancel``: take the sender's open order off the book; what it holds returns."""

    order_id: OrderId


class ExchangeSection(Payload):
    """The genesis file's ``trade.exchange``: the tradable tokens, each against the chain's TRC,
    with its lot (base minor units per price unit), e.g. ``{"pairs": {"ECC": 1, "COCO": 10000}}``.
    A token listed here may be defined later (ECC by ``trade.equity.define``)."""

    pairs: dict[TokenId, Lot] = Field(default_factory=dict)


MODELS: Final[dict[str, type[Payload]]] = {PLACE: OrderPlace, CANCEL: OrderCancel}
