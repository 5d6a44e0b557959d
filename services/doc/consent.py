"""The holder's consent to amending a title document it holds (rules version 2, ``doc.amend``).

Why a signature in the amendment rather than a separate consent transaction: one transaction
carries the whole decision, nothing waits in state for a later step, and the signed bytes name
exactly what the holder agreed to — this chain, this version of the document (so the consent
cannot be replayed: the version is superseded by the amendment it allowed), the new file's hash
and the new metadata (``null``: unchanged). The issuer collects the signature from the holder
off the chain, as the parties of ``party.agreement`` do.

Whose key: any key of the holder's member that is valid at the block time (a rotated-out key
still in its overlap counts, as for submitting transactions).
"""

from __future__ import annotations

from typing import Any

from traco.core import crypto
from traco.core.canonical import canonicalize

PURPOSE = "traco/doc.amend.consent/v1"


def amend_message(chain_id: str, doc_id: str, file_hash: str, metadata: dict[str, Any] | None) -> bytes:
    """The bytes the holder signs to consent to amending ``doc_id`` to ``file_hash``."""
    body = {"purpose": PURPOSE, "chain_id": chain_id, "doc_id": doc_id, "file_hash": file_hash}
    return canonicalize({**body, "metadata": metadata})


def sign_amend(seed: bytes, chain_id: str, doc_id: str, file_hash: str, metadata: dict[str, Any] | None) -> str:
    """The holder's consent signature (hex), for clients and tests."""
    return crypto.sign(seed, amend_message(chain_id, doc_id, file_hash, metadata)).hex()


def verifies(public_key: str, message: bytes, signature: str) -> bool:
    """``crypto.verify`` over hex key and signature; ``False`` for malformed hex."""
    try:
        return crypto.verify(bytes.fromhex(public_key), message, bytes.fromhex(signature))
    except ValueError:
        return False
