"""Payload schemas of the securitisation kinds (``rules.py`` says what each decides).

Kinds::

    trade.abs.pool     pool_id, assets [{loan} | {receivable}], tranches [{name, size, coupon_bp}],
                       fees?{senior?, sub?}, reserve_target, loss_trigger_bp, token   (the arranger)
    trade.abs.collect  pool_id, amount, losses?                         (the arranger, as servicer)

A tranche's units are the token ``<pool_id><name>`` (``POOL1A``): one unit per minor unit of its
original size. A fee is ``rate_bp`` a year of the pool balance plus ``fixed`` per collection,
paid to ``to`` (default: the arranger).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import Discriminator, Field, StringConstraints, Tag

from traco.services.trade.fields import Account, Amount, NonNegative, OperationId, Payload, TokenId

POOL: Final = "trade.abs.pool"
COLLECT: Final = "trade.abs.collect"

MAX_ASSETS: Final = 200
MAX_TRANCHES: Final = 8
MAX_COUPON_BP: Final = 100_000
MAX_FEE_BP: Final = 10_000
BP: Final = 10_000

PoolId = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{1,12}$")]
"""Upper case, so that ``<pool_id><tranche>`` is a token id (at most 16 characters)."""
TrancheName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]?$")]
DocId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Bp = Annotated[int, Field(ge=0, le=BP)]


class LoanAsset(Payload):
    loan: OperationId


class ReceivableAsset(Payload):
    receivable: DocId


def _asset_kind(value: Any) -> str:
    """Which asset an entry names, so that a bad entry is reported against that kind alone."""
    if isinstance(value, dict):
        return "loan" if "loan" in value else "receivable"
    return "loan" if isinstance(value, LoanAsset) else "receivable"


Asset = Annotated[
    Annotated[LoanAsset, Tag("loan")] | Annotated[ReceivableAsset, Tag("receivable")], Discriminator(_asset_kind)
]
"""``{"loan": loan_id}`` or ``{"receivable": doc_id}``."""


class TrancheTerms(Payload):
    name: TrancheName
    size: Amount
    coupon_bp: Annotated[int, Field(ge=0, le=MAX_COUPON_BP)]


class FeeTerms(Payload):
    rate_bp: Annotated[int, Field(ge=0, le=MAX_FEE_BP)] = 0
    fixed: NonNegative = 0
    to: Account | None = None


class Fees(Payload):
    senior: FeeTerms = FeeTerms()
    sub: FeeTerms = FeeTerms()


class AbsPool(Payload):
    """``trade.abs.pool``: pool ``assets`` the sender holds (loans as lender, invoices as holder)
    and issue ``tranches`` (senior first) to the sender; what the tranches do not cover of the
    pool is the equity, which the arranger keeps."""

    pool_id: PoolId
    assets: Annotated[list[Asset], Field(min_length=1, max_length=MAX_ASSETS)]
    tranches: Annotated[list[TrancheTerms], Field(min_length=1, max_length=MAX_TRANCHES)]
    fees: Fees = Fees()
    reserve_target: NonNegative = 0
    loss_trigger_bp: Annotated[int, Field(ge=1, le=BP)]
    token: TokenId = "TRC"


class AbsCollect(Payload):
    """``trade.abs.collect``: pay ``amount`` of the pool's token into the pool and report
    ``losses`` (principal lost this period); the waterfall distributes at once."""

    pool_id: PoolId
    amount: NonNegative
    losses: NonNegative = 0


MODELS: Final[dict[str, type[Payload]]] = {POOL: AbsPool, COLLECT: AbsCollect}
