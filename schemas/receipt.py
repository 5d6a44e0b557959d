"""Receipts: one per transaction, accepted or rejected with a reason code (architecture: Topics, Execution).

Receipts of a block are part of its results and are hashed into the next header's
``last_results_root``, so every field is deterministic: no clock, no node name. The
``message`` is for people and is left out of the hash (``leaf_bytes``), as Tendermint leaves a
transaction's log out of its results hash: the code, status and result are what nodes must
agree on, and the wording (some of it from pydantic's validation errors) may change between
library versions without forking the chain (decision 0011).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from traco.core import merkle
from traco.schemas.base import Hex32, Model, once


class ReceiptStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Code(StrEnum):
    """Receipt codes. Rejections are values, not exceptions: they belong to the ledger."""

    OK = "OK"
    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    INVALID_TX_ID = "INVALID_TX_ID"
    MALFORMED = "MALFORMED"
    WRONG_CHAIN = "WRONG_CHAIN"
    TOO_LARGE = "TOO_LARGE"
    UNKNOWN_KIND = "UNKNOWN_KIND"
    NOT_ADMITTED = "NOT_ADMITTED"
    NOT_PERMITTED = "NOT_PERMITTED"
    DUPLICATE_TX = "DUPLICATE_TX"
    NONCE_REUSED = "NONCE_REUSED"
    NONCE_TOO_FAR = "NONCE_TOO_FAR"
    MEMPOOL_FULL = "MEMPOOL_FULL"
    MEMBER_QUOTA = "MEMBER_QUOTA"
    EXECUTION_FAILED = "EXECUTION_FAILED"
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    DUPLICATE_ANCHOR = "DUPLICATE_ANCHOR"


class Receipt(Model):
    """The outcome of one transaction.

    ``height``/``index`` are set when the transaction is in a sealed block; a transaction
    refused before ordering (bad signature, replay, ...) gets a receipt with neither.
    """

    tx_id: Hex32
    kind: str
    status: ReceiptStatus
    code: str
    message: str = ""
    height: int | None = Field(default=None, ge=1)
    index: int | None = Field(default=None, ge=0)
    service: str = Field(description="the service that executed or refused the transaction")
    result: dict[str, Any] = Field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status is ReceiptStatus.ACCEPTED

    @once
    def _leaf(self) -> bytes:
        """The canonical receipt without ``message``, encoded from its fields (``fields_jcs``)."""
        return self.fields_jcs(_LEAF_FIELDS, status=self.status.value)

    def leaf_bytes(self) -> bytes:
        """What ``last_results_root`` commits to: the canonical receipt without ``message``
        (computed once per immutable instance: results roots are computed more than once)."""
        return self._leaf

    @once
    def leaf_hash(self) -> bytes:
        """The Merkle leaf hash of ``leaf_bytes``, once: the service's ``receipts_root`` and the
        validator's ``last_results_root`` are both built from it."""
        return merkle.leaf_hash(self._leaf)


_LEAF_FIELDS = tuple(name for name in Receipt.model_fields if name != "message")
