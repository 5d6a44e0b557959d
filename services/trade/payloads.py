"""Payload schemas of the ``trade.*`` transaction kinds.

Why a frozen, strict model per kind: a payload is untrusted JSON. Validating it before any rule
runs (no coercion: ``"5"`` is not ``5``; unknown fields refused) means the rules only see
well-formed values, and a bad payload becomes ``INVALID_PAYLOAD "<field>: <reason>"`` rather than
an exception. Amounts are integers in the token's minor units, positive and within the canonical
encoding's safe range (±(2**53 - 1)): a larger number would not survive as JSON in every client.

Accounts are party member ids (lowercase, hyphens), never keys: a member who rotates its key
keeps its balances. Checks that need state or the block time are the rules'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import Field, StringConstraints, ValidationError

from traco.core.canonical import MAX_SAFE_INTEGER
from traco.services.trade import codes
from traco.services.trade.fields import (
    HEX64_PATTERN,
    HOLD_REF_PATTERN,
    MEMBER_ID_PATTERN,
    OPERATION_ID_PATTERN,
    TOKEN_PATTERN,
    Account,
    Amount,
    Height,
    Hex64,
    HoldRef,
    Millis,
    NonNegative,
    Notary,
    OperationId,
    Payload,
    Text,
    TokenId,
)
from traco.services.trade.flow_models import FLOW_MODELS


class Transfer(Payload):
    """``trade.transfer``: move ``amount`` of ``token`` from the sender's available balance."""

    token: TokenId
    to: Account
    amount: Amount
    memo: Text | None = None


class HoldCreate(Payload):
    """``trade.hold.create``: hold ``amount`` of the sender's ``token`` for ``beneficiary``."""

    hold_id: OperationId
    token: TokenId
    beneficiary: Account
    amount: Amount
    notary: Notary | None = None
    expires_height: Height | None = None
    expires_time: Millis | None = None


class HoldExecute(Payload):
    """``trade.hold.execute``: the decider sends ``amount`` (default all) to the beneficiary."""

    hold_id: HoldRef
    amount: Amount | None = None


class HoldRelease(Payload):
    hold_id: HoldRef


class HoldRenew(Payload):
    """``trade.hold.renew``: the owner moves the expiry later (both bounds as they will be)."""

    hold_id: HoldRef
    expires_height: Height | None = None
    expires_time: Millis | None = None


class TrcAttest(Payload):
    """``trade.trc.attest``: a custodian signs the fiat ``reserve`` (minor units) held at
    ``as_of`` (ms) under sequence number ``seq``."""

    reserve: NonNegative
    as_of: Millis
    seq: Annotated[int, Field(ge=1, le=MAX_SAFE_INTEGER)]


class TrcMint(Payload):
    to: Account
    amount: Amount


class TrcRedeem(Payload):
    """``trade.trc.redeem``: burn ``amount`` TRC; ``custodian`` pays the fiat and takes the
    Coco fee."""

    amount: Amount
    custodian: Account


class TrcRedeemed(Payload):
    redemption_id: Hex64


class TrcFreeze(Payload):
    account: Account
    reason: Text


class ExerciseTerms(Payload):
    """How an equity-anchored token is exercised back into shares (the BSA's fourth element)."""

    centre: Text
    settlement_agent: Account
    custodian: Account


class EquityDefine(Payload):
    """``trade.equity.define``: a token anchored to ``security`` at ``ratio_tokens`` tokens per
    ``ratio_shares`` shares (ECC: 3 : 2)."""

    token: TokenId
    name: Text
    security: Text
    ratio_tokens: Annotated[int, Field(ge=1, le=1_000_000)]
    ratio_shares: Annotated[int, Field(ge=1, le=1_000_000)]
    circulation: Text
    exercise: ExerciseTerms
    max_tokens: Amount | None = None
    asset_class: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")] | None = None
    """An equity asset class (mint ``deposit``, burn ``exercise``), the genesis's or one the
    council added; default: the genesis's equity class."""


class EquityIssue(Payload):
    """``trade.equity.issue``: the custodian records ``shares`` newly deposited (may be 0) and
    issues ``amount`` tokens to ``to``."""

    token: TokenId
    to: Account
    amount: Amount
    shares: NonNegative


class EquityExercise(Payload):
    token: TokenId
    amount: Amount


class EquityStatement(Payload):
    """``trade.equity.statement``: the custodian lists a periodic custody statement on the token:
    the statement's SHA-256, anchored on the chain by ``chain.anchor`` in ``anchor_tx_id``, and
    the shares it says are in custody (anyone can prove the anchor: ``traco equity show``)."""

    token: TokenId
    anchor_tx_id: Annotated[str, StringConstraints(pattern=HEX64_PATTERN)]
    digest: Annotated[str, StringConstraints(pattern=HEX64_PATTERN)]
    shares: NonNegative


class EquitySettled(Payload):
    """``trade.equity.settled``: the settlement agent delivered the shares (``accepted``) or
    refused the instruction (tokens return to the holder)."""

    exercise_id: Hex64
    accepted: bool
    reason: Text | None = None


class TitleExecute(Payload):
    """``trade.title.execute``: ask doc to execute a title hold (a command, architecture: Execution)."""

    hold_id: HoldRef


MODELS: Final[dict[str, type[Payload]]] = {
    codes.TRANSFER: Transfer,
    codes.HOLD_CREATE: HoldCreate,
    codes.HOLD_EXECUTE: HoldExecute,
    codes.HOLD_RELEASE: HoldRelease,
    codes.HOLD_RENEW: HoldRenew,
    codes.TRC_ATTEST: TrcAttest,
    codes.TRC_MINT: TrcMint,
    codes.TRC_REDEEM: TrcRedeem,
    codes.TRC_REDEEMED: TrcRedeemed,
    codes.TRC_FREEZE: TrcFreeze,
    codes.TRC_UNFREEZE: TrcFreeze,
    codes.EQUITY_DEFINE: EquityDefine,
    codes.EQUITY_ISSUE: EquityIssue,
    codes.EQUITY_EXERCISE: EquityExercise,
    codes.EQUITY_SETTLED: EquitySettled,
    codes.EQUITY_STATEMENT: EquityStatement,
    codes.TITLE_EXECUTE: TitleExecute,
    **FLOW_MODELS,
}
"""Every kind's model: the core kinds' above, then each flow's (``flow_models``)."""


def parse(kind: str, payload: Mapping[str, Any]) -> Payload | str:
    """The validated payload of ``kind``, or ``"<field>: <reason>"`` naming every problem."""
    model = MODELS[kind]
    if not isinstance(payload, Mapping):
        return "payload: must be a JSON object"
    try:
        return model.model_validate(dict(payload))
    except ValidationError as exc:
        return "; ".join(_describe(error) for error in exc.errors(include_url=False))


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "payload"
    reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {reason}"


__all__ = [
    "HEX64_PATTERN",
    "HOLD_REF_PATTERN",
    "MEMBER_ID_PATTERN",
    "MODELS",
    "OPERATION_ID_PATTERN",
    "TOKEN_PATTERN",
    "Account",
    "Amount",
    "Height",
    "Hex64",
    "HoldRef",
    "Millis",
    "NonNegative",
    "Notary",
    "OperationId",
    "Payload",
    "Text",
    "TokenId",
    "parse",
]
