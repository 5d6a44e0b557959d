"""Payload schemas of the delivery-versus-payment kinds (``rules.py`` says what each decides).

Kinds::

    trade.dvp.open      dvp_id, seller, buyer, doc_id, token, amount, allocate_by, settle_by, agent?
    trade.dvp.fund      dvp_id                        (the buyer: its tokens held for the seller)
    trade.dvp.allocate  dvp_id, title_hold_id         (the seller: its doc title hold, made first)
    trade.dvp.settle    dvp_id                        (buyer, seller or the named agent)

``allocate_by`` and ``settle_by`` are block heights, not times: the settlement's command path
is counted in heights (doc acts at +1, trade completes at +2), and only height bounds let the
rules prove that neither hold can expire half way.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import StringConstraints

from traco.services.trade.fields import Account, Amount, Height, OperationId, Payload, TokenId

OPEN: Final = "trade.dvp.open"
FUND: Final = "trade.dvp.fund"
ALLOCATE: Final = "trade.dvp.allocate"
SETTLE: Final = "trade.dvp.settle"

DocId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
TitleHoldId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]


class DvpOpen(Payload):
    """``trade.dvp.open``: terms of one delivery against payment, proposed by the buyer or the
    seller; the other side agrees by allocating its leg."""

    dvp_id: OperationId
    seller: Account
    buyer: Account
    doc_id: DocId
    token: TokenId
    amount: Amount
    allocate_by: Height
    settle_by: Height
    agent: Account | None = None


class DvpRef(Payload):
    dvp_id: OperationId


class DvpAllocate(Payload):
    dvp_id: OperationId
    title_hold_id: TitleHoldId


MODELS: Final[dict[str, type[Payload]]] = {OPEN: DvpOpen, FUND: DvpRef, ALLOCATE: DvpAllocate, SETTLE: DvpRef}
