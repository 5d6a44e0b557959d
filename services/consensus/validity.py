"""One validity rule per transaction (architecture: Kafka is not trusted), used at admission, in the proposal check,
in sync, by the HTTP API and by the audit — so none of them can judge a transaction
differently from the others.

Why one function: the chain halted once because admission measured a transaction by its
submitted bytes while blocks measured canonical bytes, and because a signature already seen
was trusted by ``(tx_id, signature)`` alone, so a Byzantine proposer could keep a pending
transaction's id and signature, change its payload, and honest validators accepted the block.
Here the size is always the canonical size, the id is always recomputed from the signed bytes
(one SHA-256), and the signature cache is keyed by those recomputed bytes' digest and the
signature: a cached verdict is reused only for exactly the bytes that were verified.

``decode_tx`` is the ``tx`` topic's (and ``POST /tx``'s) boundary: bytes become a checked
envelope or a ``Refusal``, never an exception.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass

from traco.core import crypto
from traco.core.boundary import Rejected, decode_model
from traco.schemas.genesis import Genesis
from traco.schemas.receipt import Code
from traco.schemas.tx import TxEnvelope


@dataclass(frozen=True)
class Refusal:
    """Why a transaction cannot enter a block: becomes a rejected receipt with no height."""

    code: Code
    message: str


RAW_SLACK_BYTES = 1024
"""Submitted bytes may exceed the canonical limit by this much (whitespace, key order) before
they are refused unparsed; the rule itself always measures the canonical form."""


def decode_tx(raw: bytes, max_tx_bytes: int) -> TxEnvelope | Refusal:
    """Parse a submitted envelope; anything malformed becomes a ``Refusal``, never an exception.

    Input longer than ``max_tx_bytes + RAW_SLACK_BYTES`` is refused before it is parsed.
    """
    limit = max_tx_bytes + RAW_SLACK_BYTES
    if len(raw) > limit:
        return Refusal(Code.TOO_LARGE, f"transaction is {len(raw)} bytes submitted; the limit is {max_tx_bytes}")
    decoded = decode_model(TxEnvelope, raw, what="envelope")
    if isinstance(decoded, Rejected):
        return Refusal(Code.MALFORMED, decoded.reason)
    try:
        decoded.signing_bytes()  # the payload alone must have a canonical form too
    except (ValueError, TypeError, RecursionError) as exc:
        return Refusal(Code.MALFORMED, f"payload has no canonical JSON form: {exc}")
    return decoded


class SignatureCache:
    """Verified ``(SHA-256 of the signed bytes, signature)`` pairs, bounded, oldest dropped first.

    The key is recomputed from the envelope's own signed bytes on every lookup, never taken from
    its ``tx_id`` field, so a verdict is reused only for the exact bytes that were verified.
    """

    def __init__(self, capacity: int = 400_000) -> None:
        self.capacity = capacity
        self._ok: OrderedDict[tuple[bytes, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ok)

    def verify(self, tx: TxEnvelope, digest: bytes) -> bool:
        """Whether ``tx.signature`` is the sender's over the bytes whose digest is ``digest``."""
        key = (digest, tx.signature)
        if key in self._ok:
            return True
        if not crypto.verify(bytes.fromhex(tx.sender), tx.signing_bytes(), bytes.fromhex(tx.signature)):
            return False
        self._ok[key] = None
        if len(self._ok) > self.capacity:
            self._ok.popitem(last=False)
        return True


class Vouched:
    """Signatures a > 2/3 commit already vouches for (sync of a sealed block): ids are still
    recomputed, signatures are not re-verified (the honest validators among the signers did)."""

    def verify(self, tx: TxEnvelope, digest: bytes) -> bool:
        return True


Signatures = SignatureCache | Vouched


def check_tx(
    tx: TxEnvelope,
    genesis: Genesis,
    admitted: Container[str],
    signatures: Signatures,
    kinds: Container[str] | None = None,
) -> Refusal | None:
    """The validity rule: chain, canonical size, kind, admission, id and signature, in this
    order (the signature last: it is by far the most expensive check). ``kinds``: the kinds
    the chain takes at the height in question (``Ledger.kinds_at``: the genesis's and those of
    services an upgrade activated); the genesis's when not given."""
    if tx.chain_id != genesis.chain_id:
        return Refusal(Code.WRONG_CHAIN, f"transaction is for chain {tx.chain_id!r}, this is {genesis.chain_id!r}")
    size = len(tx.canonical_bytes())
    if size > genesis.params.max_tx_bytes:
        return Refusal(
            Code.TOO_LARGE, f"transaction is {size} bytes in canonical form; the limit is {genesis.params.max_tx_bytes}"
        )
    if tx.kind not in (genesis.params.kinds if kinds is None else kinds):
        known = sorted(genesis.params.kinds if kinds is None or not isinstance(kinds, frozenset) else kinds)
        return Refusal(Code.UNKNOWN_KIND, f"unknown transaction kind {tx.kind!r}; known: {', '.join(known)}")
    if tx.sender not in admitted:
        return Refusal(Code.NOT_ADMITTED, f"sender {tx.sender} is not an admitted member key")
    digest = hashlib.sha256(tx.signing_bytes()).digest()
    if digest.hex() != tx.tx_id:
        return Refusal(Code.INVALID_TX_ID, "tx_id is not the SHA-256 of the signed content")
    if not signatures.verify(tx, digest):
        return Refusal(Code.INVALID_SIGNATURE, "the signature does not verify against the sender key")
    return None


class Everyone:
    """Admits every key: for blocks whose commit already vouches for admission (sync, replay)."""

    def __contains__(self, key: object) -> bool:
        return True


def check_block_txs(
    genesis: Genesis,
    admitted: Container[str],
    txs: Sequence[TxEnvelope],
    read_nonce: Callable[[str], int],
    is_sealed: Callable[[str], bool],
    signatures: Signatures,
    kinds: Container[str] | None = None,
) -> str | None:
    """Why these transactions cannot be a block on the chain state behind ``read_nonce`` and
    ``is_sealed`` (None if they can): every transaction passes ``check_tx``, none is sealed or
    twice in the block, each sender's nonces follow on, and the block's limits hold."""
    seen: set[str] = set()
    nonces: dict[str, int] = {}
    total = 0
    if len(txs) > genesis.params.max_block_txs:
        return f"{len(txs)} transactions; the limit is {genesis.params.max_block_txs}"
    for i, tx in enumerate(txs):
        if tx.tx_id in seen or is_sealed(tx.tx_id):
            return f"tx {i} ({tx.tx_id[:16]}…) is already on the chain or twice in the block"
        seen.add(tx.tx_id)
        refusal = check_tx(tx, genesis, admitted, signatures, kinds)
        if refusal is not None:
            return f"tx {i} ({tx.tx_id[:16]}…): {refusal.code.value} {refusal.message}"
        last = nonces.get(tx.sender)
        if last is None:
            last = read_nonce(tx.sender)
        if tx.nonce != last + 1:
            return f"tx {i} ({tx.tx_id[:16]}…): nonce {tx.nonce}, expected {last + 1}"
        nonces[tx.sender] = tx.nonce
        total += len(tx.canonical_bytes())
    if total > genesis.params.max_block_bytes:
        return f"{total} bytes of transactions; the limit is {genesis.params.max_block_bytes}"
    return None


__all__ = [
    "RAW_SLACK_BYTES",
    "Everyone",
    "Refusal",
    "SignatureCache",
    "Signatures",
    "Vouched",
    "check_block_txs",
    "check_tx",
    "decode_tx",
]
