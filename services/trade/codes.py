"""The trade service's names: its kinds, its event types and its receipt codes.

Rejections are ledger values (architecture: Execution): every refused ``trade.*`` transaction ends in a receipt
whose ``code`` is one of these and whose message says, for a person, why. Hold codes come from
``traco.core.holds`` (one primitive, the same codes in trade and doc) and are repeated here so a
reader finds every code a trade receipt can carry in one place.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from traco.core.domain import Rejected

SERVICE: Final = "trade"
PARTY: Final = "party"
DOC: Final = "doc"

TRANSFER: Final = "trade.transfer"
HOLD_CREATE: Final = "trade.hold.create"
HOLD_EXECUTE: Final = "trade.hold.execute"
HOLD_RELEASE: Final = "trade.hold.release"
HOLD_RENEW: Final = "trade.hold.renew"
TRC_ATTEST: Final = "trade.trc.attest"
TRC_MINT: Final = "trade.trc.mint"
TRC_REDEEM: Final = "trade.trc.redeem"
TRC_REDEEMED: Final = "trade.trc.redeemed"
TRC_FREEZE: Final = "trade.trc.freeze"
TRC_UNFREEZE: Final = "trade.trc.unfreeze"
EQUITY_DEFINE: Final = "trade.equity.define"
EQUITY_ISSUE: Final = "trade.equity.issue"
EQUITY_EXERCISE: Final = "trade.equity.exercise"
EQUITY_SETTLED: Final = "trade.equity.settled"
EQUITY_STATEMENT: Final = "trade.equity.statement"
TITLE_EXECUTE: Final = "trade.title.execute"

KINDS: Final = frozenset(
    {
        TRANSFER,
        HOLD_CREATE,
        HOLD_EXECUTE,
        HOLD_RELEASE,
        HOLD_RENEW,
        TRC_ATTEST,
        TRC_MINT,
        TRC_REDEEM,
        TRC_REDEEMED,
        TRC_FREEZE,
        TRC_UNFREEZE,
        EQUITY_DEFINE,
        EQUITY_ISSUE,
        EQUITY_EXERCISE,
        EQUITY_SETTLED,
        EQUITY_STATEMENT,
        TITLE_EXECUTE,
    }
)

FLOWS_SINCE: Final = 2
"""The trade rules version from which the flows' kinds exist (``flow``): escrow, loans, delivery
against payment, the exchange, securitisation. Version 1 answers ``UNKNOWN_KIND`` for them."""
RULES_VERSION: Final = 2
"""The newest trade rules this binary knows; new chains start at it."""

CLAUSE_HOLD_EXPIRY: Final = "hold_expiry"
CLAUSE_COCO_EPOCH: Final = "coco_epoch"


class Code(StrEnum):
    DUPLICATE_STATEMENT = "DUPLICATE_STATEMENT"
    """That custody statement (its anchoring transaction) is already listed on the token."""
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    """The payload does not match the kind's schema (message: ``<field>: <reason>``)."""
    UNKNOWN_KIND = "UNKNOWN_KIND"
    NOT_PERMITTED = "NOT_PERMITTED"
    """Party's role table does not let the sender submit this kind."""
    NOT_A_MEMBER = "NOT_A_MEMBER"
    """The sender or a named account is not an admitted member."""
    UNKNOWN_TOKEN = "UNKNOWN_TOKEN"
    NOT_TRANSFERABLE = "NOT_TRANSFERABLE"
    """The token's asset class does not allow transfers."""
    NOT_HOLDABLE = "NOT_HOLDABLE"
    """The token's asset class does not allow holds."""
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    """Not enough available (total minus held minus locked)."""
    HELD = "HELD"
    """Enough in total, but part of it is held: a held amount cannot move."""
    LOCKED_UNTIL = "LOCKED_UNTIL"
    """Enough in total, but part of it is locked until a height (Coco founders' share)."""
    FROZEN = "FROZEN"
    """The account's balance of this token is frozen by compliance."""
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    """The recipient does not meet the asset class's holder eligibility (KYC)."""
    NOT_QUALIFIED = "NOT_QUALIFIED"
    """The recipient is not a qualified investor and the class admits only those."""
    SELF_TRANSFER = "SELF_TRANSFER"
    HOLD_EXISTS = "HOLD_EXISTS"
    UNKNOWN_HOLD = "UNKNOWN_HOLD"
    HOLD_CLOSED = "HOLD_CLOSED"
    HOLD_EXPIRED = "HOLD_EXPIRED"
    NOT_BENEFICIARY = "NOT_BENEFICIARY"
    NOT_OWNER = "NOT_OWNER"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    INVALID_EXPIRY = "INVALID_EXPIRY"
    SELF_HOLD = "SELF_HOLD"
    NOT_CUSTODIAN = "NOT_CUSTODIAN"
    ALREADY_ATTESTED = "ALREADY_ATTESTED"
    """This custodian already attested this sequence number."""
    STALE_ATTESTATION = "STALE_ATTESTATION"
    """``seq`` not above the last valid one, ``as_of`` earlier than it, or ``as_of`` in the future."""
    RESERVE_EXCEEDED = "RESERVE_EXCEEDED"
    RESERVE_STALE = "RESERVE_STALE"
    """No attestation yet, or the last one is older than the governed maximum age (fail closed)."""
    UNDER_RESERVED = "UNDER_RESERVED"
    """The last attestation showed supply above reserve; minting waits for one that shows cover."""
    KYC_REQUIRED = "KYC_REQUIRED"
    UNKNOWN_REDEMPTION = "UNKNOWN_REDEMPTION"
    REDEMPTION_CLOSED = "REDEMPTION_CLOSED"
    NOT_COMPLIANCE = "NOT_COMPLIANCE"
    NOT_FROZEN = "NOT_FROZEN"
    ALREADY_FROZEN = "ALREADY_FROZEN"
    TOKEN_EXISTS = "TOKEN_EXISTS"
    RATIO_EXCEEDED = "RATIO_EXCEEDED"
    UNKNOWN_EXERCISE = "UNKNOWN_EXERCISE"
    NOT_SETTLEMENT_AGENT = "NOT_SETTLEMENT_AGENT"
    NOT_CONFIGURED = "NOT_CONFIGURED"
    """The chain's trade genesis has no TRC, Coco or equity class configured."""


def reject(code: Code | str, message: str) -> Rejected:
    """A rejection receipt with a plain ``str`` code (receipts canonicalise without enums)."""
    return Rejected(str(code), message)
