"""The ``data`` of every trade event type (see ``asyncapi_events`` for why these models exist).

Trade names accounts by member id (or ``service:<name>`` for a service's own account); amounts
are integers in the token's minor units. Events a transaction caused carry its ``tx_id``;
genesis events (height 0) and clause events (hold expiry, Coco epochs) carry ``tx_id: null``.
Nested records (an asset class, an equity's terms, an exercise, a redemption) are described by
the trade service's own docs and typed loosely here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from traco.schemas.asyncapi_events import EventData, HoldRecord, Millis
from traco.schemas.base import Hex32


class TradeData(EventData):
    tx_id: Hex32 | None = Field(description="null for genesis and clause events")
    height: int = Field(ge=0, description="block height (0: genesis)")
    time: Millis


class ByTradeData(TradeData):
    by: str = Field(description="member id of the submitter, or service:trade for a clause")


class AssetClassDefined(TradeData):
    asset_class: dict[str, Any] = Field(description="name, decimals, transferable, holdable, mint, burn, eligibility")


class TokenDefined(TradeData):
    token: dict[str, Any] = Field(description="token, name, asset_class, decimals, supply, kind")
    by: str | None = Field(default=None, description="absent at genesis")


class Configured(TradeData):
    area: Literal["trc", "coco", "equity"]
    params: dict[str, Any]


class Allocated(TradeData):
    token: str
    account: str
    amount: int = Field(ge=0)


class PoolFunded(TradeData):
    token: str
    amount: int = Field(ge=0)


class LockSet(TradeData):
    token: str
    account: str
    amount: int = Field(ge=0)
    until_height: int = Field(ge=0)


class Transferred(ByTradeData):
    token: str
    from_: str = Field(alias="from")
    to: str
    amount: int = Field(gt=0)
    memo: str | None


class HoldCreated(ByTradeData):
    hold: HoldRecord


class HoldExecuted(ByTradeData):
    hold: HoldRecord


class HoldReleased(ByTradeData):
    hold: HoldRecord


class HoldExpired(ByTradeData):
    hold: HoldRecord


class HoldExpiry(EventData):
    expires_height: int | None
    expires_time: Millis | None


class HoldRenewed(ByTradeData):
    hold: HoldRecord = Field(description="with its new expiry")
    previous: HoldExpiry


class AttestationSigned(ByTradeData):
    seq: int = Field(ge=0)
    custodian: str
    reserve: int = Field(ge=0)
    as_of: Millis


class ReserveAttested(ByTradeData):
    seq: int = Field(ge=0)
    reserve: int = Field(ge=0)
    as_of: Millis
    signers: list[str]
    supply: int = Field(ge=0)
    pending: int = Field(ge=0, description="TRC redeemed whose fiat is not yet paid")
    paid_since: int = Field(ge=0, description="fiat paid out after as_of")
    shortfall: int = Field(ge=0)


class Minted(ByTradeData):
    token: str
    account: str
    amount: int = Field(gt=0)


class Burned(ByTradeData):
    token: str
    account: str
    amount: int = Field(gt=0)


class RedemptionRequested(ByTradeData):
    redemption: dict[str, Any] = Field(description="redemption_id, holder, custodian, amount, fee, status, stamp")


class RedemptionPaid(ByTradeData):
    redemption_id: Hex32


class AccountFrozen(ByTradeData):
    token: str
    account: str
    reason: str


class AccountUnfrozen(ByTradeData):
    token: str
    account: str
    reason: str


class CocoEpochPaid(ByTradeData):
    epoch: int = Field(ge=0)
    amount: int = Field(ge=0)
    holders_share: int = Field(ge=0)
    payouts: list[Annotated[list[str | int], Field(min_length=2, max_length=2)]] = Field(
        description="[account, amount] pairs"
    )
    paid: int = Field(ge=0, description="the sum of the payouts")


class EquityDefined(ByTradeData):
    equity: dict[str, Any] = Field(description="token, security, ratio, circulation, exercise terms, max_tokens…")


class SharesDeposited(ByTradeData):
    token: str
    shares: int = Field(gt=0)


class AssetClassAdopted(ByTradeData):
    asset_class: dict[str, Any] = Field(description="a class the council added, copied when a token first uses it")


class CorrectionDecided(ByTradeData):
    """A council-voted corrective transfer, carried out (``applied``) or not (``problem``)."""

    correction_id: str
    applied: bool
    problem: str | None


class CustodyStatementListed(ByTradeData):
    token: str
    statement: dict[str, Any] = Field(description="anchor_tx_id, digest (SHA-256 of the statement), shares")


class ExerciseFiled(ByTradeData):
    exercise: dict[str, Any] = Field(description="exercise_id, hold_id, token, holder, amount, shares, status…")


class ExerciseSettled(ByTradeData):
    exercise_id: Hex32
    accepted: bool
    shares: int = Field(ge=0)
    reason: str | None


class CommandSent(ByTradeData):
    command_id: str
    target: str = Field(description="the service the command is for")
    kind: str
    payload: dict[str, Any]


class CommandSettled(ByTradeData):
    command_id: str
    accepted: bool
    code: str
    result: dict[str, Any]
