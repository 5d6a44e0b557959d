"""Payload schemas of the financing kinds (``rules.py`` says what each decides).

Kinds::

    trade.finance.request   request_id, doc_id, token, amount, tenor_ms, offers_until, accept_best?
    trade.finance.offer     offer_id, request_id, rate_bp, valid_until       (a lender)
    trade.finance.withdraw  offer_id                                          (its lender)
    trade.finance.cancel    request_id                                        (the borrower)
    trade.finance.accept    request_id, offer_id?   (the borrower; no offer_id: the best offer)
    trade.loan.repay        loan_id, amount         (the borrower; loan_id = the request's id)
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, StringConstraints

from traco.services.trade.fields import Amount, Millis, OperationId, Payload, TokenId

REQUEST: Final = "trade.finance.request"
OFFER: Final = "trade.finance.offer"
WITHDRAW: Final = "trade.finance.withdraw"
CANCEL: Final = "trade.finance.cancel"
ACCEPT: Final = "trade.finance.accept"
REPAY: Final = "trade.loan.repay"

DAY_MS: Final = 86_400_000
MAX_TENOR_MS: Final = 360 * DAY_MS
"""With the longest governed grace (30 days) and the pledge margin (7 days) the pledge stays
within doc's longest term (400 days)."""
MAX_RATE_BP: Final = 100_000

DocId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class FinanceRequest(Payload):
    """``trade.finance.request``: the holder of ``doc_id`` asks for ``amount`` of ``token`` for
    ``tenor_ms`` against a pledge of it; lenders offer until ``offers_until`` (block time)."""

    request_id: OperationId
    doc_id: DocId
    token: TokenId
    amount: Amount
    tenor_ms: Annotated[int, Field(ge=1_000, le=MAX_TENOR_MS)]
    offers_until: Millis
    accept_best: bool = False
    """A standing instruction: at the first block at or after ``offers_until``, take the best
    offer valid then (clause ``finance_auto_accept``), unless the borrower accepted one before."""


class FinanceOffer(Payload):
    """``trade.finance.offer``: lend at ``rate_bp`` a year (basis points, simple interest),
    acceptable until ``valid_until`` (block time)."""

    offer_id: OperationId
    request_id: OperationId
    rate_bp: Annotated[int, Field(ge=0, le=MAX_RATE_BP)]
    valid_until: Millis


class OfferRef(Payload):
    offer_id: OperationId


class RequestRef(Payload):
    request_id: OperationId


class FinanceAccept(Payload):
    request_id: OperationId
    offer_id: OperationId | None = None


class LoanRepay(Payload):
    loan_id: OperationId
    amount: Amount


MODELS: Final[dict[str, type[Payload]]] = {
    REQUEST: FinanceRequest,
    OFFER: FinanceOffer,
    WITHDRAW: OfferRef,
    CANCEL: RequestRef,
    ACCEPT: FinanceAccept,
    REPAY: LoanRepay,
}
