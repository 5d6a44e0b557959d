"""The signed transaction envelope (architecture: Transactions).

``signature`` is Ed25519 over the canonical JSON of the envelope without ``signature`` and
without ``tx_id`` (the id is derived from those bytes, so it cannot be inside them);
``tx_id`` is the SHA-256 of the same bytes. A replay therefore has the same id and is refused
as a duplicate, and a changed byte anywhere changes the id and breaks the signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from traco.core import crypto, merkle
from traco.core.canonical import canonicalize
from traco.schemas.base import ChainId, Hex32, Hex64, Model, once

Kind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")]
"""``<service>.<verb>`` (verbs may nest: ``trade.loan.disburse``)."""

MAX_TX_BYTES = 64 * 1024
"""The size limit of one envelope's canonical JSON; documents never go on the chain."""


class TxEnvelope(Model):
    """A member's signed request; the ledger's unit of ordering."""

    chain_id: ChainId
    tx_id: Hex32
    kind: Kind
    sender: Hex32 = Field(description="hex Ed25519 public key of the signing member key")
    nonce: int = Field(ge=1, le=2**53 - 1, description="per sender, 1, 2, 3, ...")
    payload: dict[str, Any]
    signature: Hex64

    @once
    def signed_body(self) -> bytes:
        """The bytes that are signed and hashed into ``tx_id`` (computed once)."""
        return signing_bytes(self.chain_id, self.kind, self.sender, self.nonce, self.payload)

    def signing_bytes(self) -> bytes:
        return self.signed_body

    @once
    def jcs(self) -> bytes:
        """The envelope's canonical JSON, derived from ``signed_body`` instead of encoded again.

        Why this is exact: the canonical form sorts keys, and the two fields outside the signed
        body (``signature``, ``tx_id``) sort after all five inside it, in that order; both are
        lowercase hex (validated), which JCS writes unescaped. So the envelope's canonical bytes
        are the signed body's without its closing brace, then those two members. Every node
        needs both encodings of every transaction (the id and signature over one, the size and
        the Merkle leaf over the other); this computes the second from the first.
        """
        return b'%s,"signature":"%s","tx_id":"%s"}' % (
            self.signed_body[:-1],
            self.signature.encode(),
            self.tx_id.encode(),
        )

    @once
    def leaf_hash(self) -> bytes:
        """The envelope's Merkle leaf hash (RFC 9162: over its canonical bytes, signature
        included), computed once: the mempool keys compact proposals by it, and the validator
        and each service replica of a node check a block's ``tx_root`` from it."""
        return merkle.leaf_hash(self.jcs)

    def id_matches(self) -> bool:
        """Whether ``tx_id`` is really the hash of the signed content."""
        return hashlib.sha256(self.signed_body).hexdigest() == self.tx_id

    @once
    def verified(self) -> bool:
        """Whether the id matches and the signature verifies (never raises; checked once)."""
        if not self.id_matches():
            return False
        return crypto.verify(bytes.fromhex(self.sender), self.signed_body, bytes.fromhex(self.signature))

    def signature_valid(self) -> bool:
        return self.verified


def tx_leaf_hashes(txs: Sequence[TxEnvelope]) -> list[bytes]:
    """The Merkle leaf hashes of a block's transactions: over each envelope's canonical bytes,
    signature included (kept by each envelope, ``TxEnvelope.leaf_hash``)."""
    return [tx.leaf_hash for tx in txs]


def tx_root(txs: Sequence[TxEnvelope]) -> str:
    """A block's ``tx_root``: the Merkle root (hex) of ``tx_leaf_hashes``."""
    return merkle.root_from_leaf_hashes(tx_leaf_hashes(txs)).hex()


def signing_bytes(chain_id: str, kind: str, sender: str, nonce: int, payload: Any) -> bytes:
    """Canonical JSON of the envelope fields that the signature covers."""
    return canonicalize({"chain_id": chain_id, "kind": kind, "sender": sender, "nonce": nonce, "payload": payload})


def sign_tx(private_key: bytes, chain_id: str, kind: str, nonce: int, payload: dict[str, Any]) -> TxEnvelope:
    """Build and sign an envelope with a member's private key."""
    sender = crypto.public_key(private_key).hex()
    body = signing_bytes(chain_id, kind, sender, nonce, payload)
    return TxEnvelope(
        chain_id=chain_id,
        tx_id=hashlib.sha256(body).hexdigest(),
        kind=kind,
        sender=sender,
        nonce=nonce,
        payload=payload,
        signature=crypto.sign(private_key, body).hex(),
    )
