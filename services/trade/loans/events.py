"""The ``data`` of the financing events, for the AsyncAPI contract (``state.py`` applies them)."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field

from traco.schemas.asyncapi_events import EventData
from traco.schemas.asyncapi_events_trade import ByTradeData


class FinanceRequested(ByTradeData):
    request: dict[str, Any] = Field(
        description="request_id, borrower, doc_id, doc_type, token, amount, tenor_ms, offers_until, status, opened"
    )


class FinanceOffered(ByTradeData):
    offer: dict[str, Any] = Field(description="offer_id, request_id, lender, rate_bp, valid_until, status, rank, made")


class FinanceOfferWithdrawn(ByTradeData):
    offer_id: str
    request_id: str


class FinanceRequestCancelled(ByTradeData):
    request_id: str


class FinanceRequestLapsed(ByTradeData):
    request_id: str
    code: str = Field(description="why no offer was taken at the deadline (NO_OFFER, INSUFFICIENT_FUNDS, …)")
    reason: str


class LoanAccepted(ByTradeData):
    loan: dict[str, Any] = Field(
        description="loan_id, borrower, lender, doc_id, doc_type, token, principal, rate_bp, tenor_ms, grace_ms,"
        " pledge_until, status (pledging), accepted, and the running figures (outstanding, accrued_pms, …)"
    )
    offer_id: str


class LoanDisbursed(ByTradeData):
    loan_id: str
    start: int = Field(ge=0)
    maturity: int = Field(ge=0)
    default_at: int = Field(ge=0, description="maturity + the grace in force at acceptance")


class LoanRefused(ByTradeData):
    loan_id: str
    code: str = Field(description="doc's refusal of the pledge (ALREADY_PLEDGED, NOT_HOLDER, …) or EXPIRED")
    reason: str


class LoanRepaid(ByTradeData):
    loan_id: str
    amount: int = Field(gt=0)
    to_interest: int = Field(ge=0)
    to_principal: int = Field(ge=0)
    outstanding: int = Field(ge=0)
    accrued_pms: int = Field(ge=0, description="principal x milliseconds accrued so far (the exact accrual)")
    accrued_to: int = Field(ge=0)
    interest_paid: int = Field(ge=0)
    closed: bool


class LoanDefaulted(ByTradeData):
    loan_id: str
    outstanding: int = Field(ge=0)
    interest_owed: int = Field(ge=0)


class LoanCollateral(ByTradeData):
    loan_id: str
    action: Literal["discharge", "enforce"]
    accepted: bool
    code: str


EVENT_DATA: Final[dict[str, type[EventData]]] = {
    "FinanceRequested": FinanceRequested,
    "FinanceOffered": FinanceOffered,
    "FinanceOfferWithdrawn": FinanceOfferWithdrawn,
    "FinanceRequestCancelled": FinanceRequestCancelled,
    "FinanceRequestLapsed": FinanceRequestLapsed,
    "LoanAccepted": LoanAccepted,
    "LoanDisbursed": LoanDisbursed,
    "LoanRefused": LoanRefused,
    "LoanRepaid": LoanRepaid,
    "LoanDefaulted": LoanDefaulted,
    "LoanCollateral": LoanCollateral,
}
