"""Payload schemas of the escrow kinds (``rules.py`` says what each decides).

Kinds::

    trade.escrow.open     escrow_id, token, seller, amount, expires_at, release, memo?
    trade.escrow.confirm  escrow_id                  (the buyer: pay the seller now)
    trade.escrow.cancel   escrow_id                  (the seller: give the buyer its money back)
    trade.escrow.dispute  escrow_id, reason          (buyer or seller: freeze it for the arbiter)
    trade.escrow.resolve  escrow_id, to_seller, reason   (the arbiter: split it)

``release`` names what pays the seller besides the buyer's confirmation: ``{"on": "confirm"}``
(only that), or ``{"on": "milestone", "doc_id", "milestone", "reporter"?}`` — a milestone of a
document recorded in doc after the escrow opened, by ``reporter`` (a member id; default: the
document's issuer, the carrier of record for a bill of lading).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints

from traco.services.trade.fields import Account, Amount, Millis, NonNegative, OperationId, Payload, Text, TokenId

OPEN: Final = "trade.escrow.open"
CONFIRM: Final = "trade.escrow.confirm"
CANCEL: Final = "trade.escrow.cancel"
DISPUTE: Final = "trade.escrow.dispute"
RESOLVE: Final = "trade.escrow.resolve"

DocId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Milestone = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,31}$")]


class OnConfirm(Payload):
    on: Literal["confirm"]


class OnMilestone(Payload):
    on: Literal["milestone"]
    doc_id: DocId
    milestone: Milestone
    reporter: Account | None = None


class EscrowOpen(Payload):
    """``trade.escrow.open``: hold ``amount`` of the buyer's (sender's) ``token`` for ``seller``
    until ``expires_at`` (block time, ms), released as ``release`` says."""

    escrow_id: OperationId
    token: TokenId
    seller: Account
    amount: Amount
    expires_at: Millis
    release: Annotated[OnConfirm | OnMilestone, Field(discriminator="on")]
    memo: Text | None = None


class EscrowRef(Payload):
    escrow_id: OperationId


class EscrowDispute(Payload):
    escrow_id: OperationId
    reason: Text


class EscrowResolve(Payload):
    """``trade.escrow.resolve``: the arbiter pays ``to_seller`` of the escrow to the seller and
    returns the rest to the buyer."""

    escrow_id: OperationId
    to_seller: NonNegative
    reason: Text


MODELS: Final[dict[str, type[Payload]]] = {
    OPEN: EscrowOpen,
    CONFIRM: EscrowRef,
    CANCEL: EscrowRef,
    DISPUTE: EscrowDispute,
    RESOLVE: EscrowResolve,
}
