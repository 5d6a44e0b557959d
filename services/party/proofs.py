"""The exact bytes that party transactions ask a key to sign, besides the envelope itself.

Why: the envelope signature only shows that the *sender* agreed. Registering or rotating to a
key must also show that someone holds that key (else a member could bind a stranger's key to
itself), and an agreement must carry every party's consent, not only the submitter's. Each
message is the RFC 8785 canonical JSON of a small object that names the chain, so a proof made
for one chain or one purpose cannot be replayed for another.

Clients (the CLI, tests) build the same bytes with these functions and sign them with
``traco.core.crypto.sign``; the rules check them with ``verify_hex``.
"""

from __future__ import annotations

from collections.abc import Iterable

from traco.core import crypto
from traco.core.canonical import canonicalize


def register_message(chain_id: str, organisation: str, public_key: str) -> bytes:
    """Signed by each key of an applicant in ``party.register``."""
    return canonicalize({"chain_id": chain_id, "organisation": organisation, "public_key": public_key})


def rotate_message(chain_id: str, member_id: str, old_key: str, new_key: str) -> bytes:
    """Signed by the new key in ``party.key.rotate``; binds it to one member and one old key."""
    return canonicalize({"chain_id": chain_id, "member_id": member_id, "old_key": old_key, "public_key": new_key})


def node_key_message(chain_id: str, member_id: str, node_id: str, public_key: str) -> bytes:
    """Signed by a node key registered or rotated in: binds it to one node of one member."""
    body = {"purpose": "traco/node-key/v1", "chain_id": chain_id, "member_id": member_id, "node_id": node_id}
    return canonicalize({**body, "public_key": public_key})


def agreement_message(chain_id: str, agreement_hash: str, parties: Iterable[str]) -> bytes:
    """Signed by every party key of ``party.agreement``; ``parties`` is the set of keys (sorted here)."""
    return canonicalize({"chain_id": chain_id, "agreement_hash": agreement_hash, "parties": sorted(parties)})


def verify_hex(public_key: str, message: bytes, signature: str) -> bool:
    """``crypto.verify`` over hex-encoded key and signature; ``False`` for malformed hex."""
    try:
        return crypto.verify(bytes.fromhex(public_key), message, bytes.fromhex(signature))
    except ValueError:
        return False
