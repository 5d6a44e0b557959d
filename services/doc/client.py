"""Client-side helpers for the doc service: hash a file, build ``doc.*`` payloads, seal and open
shared document keys.

Why on the client: a document's bytes never go on the chain or to a service; the client hashes
the file locally and sends the SHA-256, and encrypted content is shared by sealing the file's
symmetric key to each recipient. The builders validate with the same pydantic models the rules
use (``payloads``), so a mistake surfaces as a ``ValueError`` before anything is signed. No
network here; the CLI and the HTTP client wrap these.

Sealed keys: members sign with Ed25519, and an Ed25519 key converts to an X25519 key
(RFC 7748 birational map, libsodium's ``crypto_sign_ed25519_*_to_curve25519``), so one member key
both signs transactions and receives sealed boxes. A sealed box (libsodium
``crypto_box_seal``: ephemeral X25519 + XSalsa20-Poly1305) can be opened only with the
recipient's private key; not even the sender can open it afterwards. Caveat: the box does not
say who sealed it; the chain does (the ``doc.share_key`` transaction's signed sender).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.public
from pydantic import ValidationError

from traco.core import crypto
from traco.services.doc import payloads

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Lowercase hex SHA-256 of a file's bytes, read in chunks (files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def public_key_hex(who: str | bytes) -> str:
    """A member key as the payloads want it: 32 raw bytes, 64 hex digits or a TRACO address."""
    if isinstance(who, bytes):
        if len(who) != crypto.PUBLIC_KEY_SIZE:
            raise ValueError(f"a public key is {crypto.PUBLIC_KEY_SIZE} bytes, not {len(who)}")
        return who.hex()
    if who.startswith(f"{crypto.ADDRESS_PREFIX}:"):
        return crypto.parse_address(who)[1].hex()
    if crypto.is_hex_public_key(who.lower()):
        return who.lower()
    raise ValueError(f"{who!r:.80} is neither a TRACO address nor a hex public key")


def parse_business_key(text: str, scope: str = "document") -> dict[str, str]:
    """``"NAMESPACE/REFERENCE"`` (as typed on the CLI, e.g. ``NMFTA:MAEU/HHL71800000``) as a
    payload ``business_key``; the namespace is what comes before the first ``/``."""
    namespace, sep, reference = text.partition("/")
    if not sep or not namespace or not reference:
        raise ValueError(f"business key {text!r:.80} must be NAMESPACE/REFERENCE, e.g. NMFTA:MAEU/HHL71800000")
    return _checked(payloads.BusinessKey, {"namespace": namespace, "reference": reference, "scope": scope})


def register_payload(
    file_hash: str,
    doc_type: str,
    business_key: Mapping[str, str] | str,
    *,
    metadata: Mapping[str, Any] | None = None,
    holder: str | bytes | None = None,
    negotiable: bool | None = None,
) -> dict[str, Any]:
    """A ``doc.register`` payload; ``business_key`` as a dict or ``"NAMESPACE/REFERENCE"``."""
    key = parse_business_key(business_key) if isinstance(business_key, str) else dict(business_key)
    payload: dict[str, Any] = {"file_hash": file_hash, "type": doc_type, "business_key": key}
    if metadata:
        payload["metadata"] = dict(metadata)
    if holder is not None:
        payload["holder"] = public_key_hex(holder)
    if negotiable is not None:
        payload["negotiable"] = negotiable
    return _checked(payloads.Register, payload)


def event_payload(
    doc_id: str,
    milestone: str,
    *,
    occurred_at: int | None = None,
    location: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``doc.event`` payload (milestones: ``tables.MILESTONE_ROLES``)."""
    payload: dict[str, Any] = {"doc_id": doc_id, "milestone": milestone}
    if occurred_at is not None:
        payload["occurred_at"] = occurred_at
    if location is not None:
        payload["location"] = location
    if details:
        payload["details"] = dict(details)
    return _checked(payloads.Event, payload)


def transfer_payload(doc_id: str, to: str | bytes) -> dict[str, Any]:
    """A ``doc.transfer`` payload; ``to`` as a key, hex or address."""
    return _checked(payloads.Transfer, {"doc_id": doc_id, "to": public_key_hex(to)})


def surrender_payload(doc_id: str, reason: str = "delivery") -> dict[str, Any]:
    return _checked(payloads.Surrender, {"doc_id": doc_id, "reason": reason})


def pledge_payload(
    doc_id: str,
    financier: str | bytes,
    amount: int,
    currency: str,
    expires_at: int,
    *,
    reference: str | None = None,
) -> dict[str, Any]:
    """A ``doc.pledge`` payload: ``amount`` in minor units, ``expires_at`` in ms (UTC)."""
    payload: dict[str, Any] = {
        "doc_id": doc_id,
        "financier": public_key_hex(financier),
        "amount": amount,
        "currency": currency,
        "expires_at": expires_at,
    }
    if reference is not None:
        payload["reference"] = reference
    return _checked(payloads.Pledge, payload)


def release_payload(doc_id: str) -> dict[str, Any]:
    return _checked(payloads.Release, {"doc_id": doc_id})


def amend_payload(
    doc_id: str, file_hash: str, *, metadata: Mapping[str, Any] | None = None, reason: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"doc_id": doc_id, "file_hash": file_hash}
    if metadata is not None:
        payload["metadata"] = dict(metadata)
    if reason is not None:
        payload["reason"] = reason
    return _checked(payloads.Amend, payload)


def share_key_payload(doc_id: str, key: bytes, recipients: Iterable[str | bytes]) -> dict[str, Any]:
    """A ``doc.share_key`` payload sealing ``key`` (the file's symmetric key) to each recipient."""
    sealed = {}
    for recipient in recipients:
        hex_key = public_key_hex(recipient)
        sealed[hex_key] = seal_key_for(bytes.fromhex(hex_key), key)
    return _checked(payloads.ShareKey, {"doc_id": doc_id, "keys": sealed})


def seal_key_for(recipient_ed25519_public_key: bytes, key: bytes) -> str:
    """Seal ``key`` (16 to 64 bytes) so that only the holder of the recipient's Ed25519 private
    key can open it; returns standard base64."""
    if not payloads.MIN_SHARED_KEY_BYTES <= len(key) <= payloads.MAX_SHARED_KEY_BYTES:
        raise ValueError(
            f"a shared key is {payloads.MIN_SHARED_KEY_BYTES} to {payloads.MAX_SHARED_KEY_BYTES} bytes, not {len(key)}"
        )
    if len(recipient_ed25519_public_key) != crypto.PUBLIC_KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {crypto.PUBLIC_KEY_SIZE} bytes")
    try:
        curve = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(recipient_ed25519_public_key)
    except nacl.exceptions.RuntimeError as exc:
        raise ValueError("the recipient's key is not a usable Ed25519 public key") from exc
    sealed = nacl.public.SealedBox(nacl.public.PublicKey(curve)).encrypt(key)
    return base64.b64encode(sealed).decode("ascii")


def open_sealed_key(recipient_ed25519_private_key: bytes, sealed_b64: str) -> bytes:
    """Open a sealed key with the recipient's Ed25519 private key (the 32-byte seed that
    ``traco.core.crypto`` uses, or libsodium's 64-byte secret key).

    Raises ``ValueError`` if the box is malformed, was sealed for another key, or was altered.
    """
    private = recipient_ed25519_private_key
    if len(private) == crypto.PRIVATE_KEY_SIZE:
        secret = nacl.bindings.crypto_sign_seed_keypair(bytes(private))[1]
    elif len(private) == 64:
        secret = bytes(private)
    else:
        raise ValueError("an Ed25519 private key is a 32-byte seed or a 64-byte secret key")
    curve = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(secret)
    try:
        sealed = base64.b64decode(sealed_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the sealed key is not base64") from exc
    try:
        return bytes(nacl.public.SealedBox(nacl.public.PrivateKey(curve)).decrypt(sealed))
    except nacl.exceptions.CryptoError as exc:
        raise ValueError("the sealed key does not open with this key (another recipient, or altered)") from exc


def _checked(model: type[payloads.Payload], payload: dict[str, Any]) -> dict[str, Any]:
    try:
        dumped = model.model_validate(payload).model_dump(mode="json")
    except ValidationError as exc:
        raise ValueError(payloads.describe(exc)) from None
    return {name: value for name, value in dumped.items() if value is not None}


__all__ = [
    "amend_payload",
    "event_payload",
    "file_sha256",
    "open_sealed_key",
    "parse_business_key",
    "pledge_payload",
    "public_key_hex",
    "register_payload",
    "release_payload",
    "seal_key_for",
    "share_key_payload",
    "surrender_payload",
    "transfer_payload",
]
