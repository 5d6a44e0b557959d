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

Verifying a file (``traco doc verify``): the doc service's answer is untrusted, so every history
entry it shows is checked against a light-client proof of *its* transaction (``verify_history``):
the proof must be for the entry's tx id, on the trusted chain, with an accepted doc receipt, and
the proven transaction's kind and payload must be what the entry claims (file hash, holder,
financier, amount, …). Member ids (``member_id``) come from party's state and are not proven
by a transaction, only the keys are; and inclusion proofs cannot show that the service left
no entry out (the ``seq`` numbers must at least run 0, 1, 2, … without a gap).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import nacl.bindings
import nacl.exceptions
import nacl.public
from pydantic import ValidationError

from traco.core import crypto
from traco.core.lightclient import Validators, verify_tx_proof
from traco.schemas.proof import TxProof
from traco.schemas.receipt import Receipt
from traco.schemas.tx import TxEnvelope
from traco.services.doc import payloads, tables

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


# --------------------------------------------------------------------------- verifying history

HISTORY_KINDS: dict[str, str] = {
    "DocumentRegistered": tables.KIND_REGISTER,
    "MilestoneRecorded": tables.KIND_EVENT,
    "TitleTransferred": tables.KIND_TRANSFER,
    "DocumentSurrendered": tables.KIND_SURRENDER,
    "DocumentPledged": tables.KIND_PLEDGE,
    "PledgeReleased": tables.KIND_RELEASE,
    "DocumentAmended": tables.KIND_AMEND,
    "DocumentKeyShared": tables.KIND_SHARE_KEY,
    "PledgeOffered": tables.KIND_PLEDGE,
    "PledgeExtended": tables.KIND_PLEDGE_EXTEND,
    "PledgeOffersWithdrawn": tables.KIND_RELEASE,
}
"""Which transaction kind makes each type of history entry."""
ALSO_MADE_BY: dict[str, str] = {"DocumentPledged": tables.KIND_PLEDGE_ACCEPT}
"""Rules version 2: a pledge is put in force by the financier's acceptance."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
ProofSource = Callable[[str], TxProof | str | None]
"""A tx id's proof, a reason it could not be had (e.g. malformed), or None if none exists yet."""


@dataclass(frozen=True)
class EntryVerdict:
    """What ``verify_history`` concluded about one history entry: ``proven`` (its transaction
    and accepted receipt are proven and say what the entry says), ``pending`` (nothing wrong,
    but its outcome is not proven yet: its block or the next is not sealed) or ``failed``."""

    seq: Any
    type: str
    tx_id: str
    height: Any
    status: Literal["proven", "pending", "failed"]
    reason: str = ""

    def describe(self) -> str:
        return self.status if not self.reason else f"{self.status}: {self.reason}"


def verify_history(
    found: Mapping[str, Any], proof_of: ProofSource, validators: Validators, chain_id: str
) -> tuple[list[EntryVerdict], str | None]:
    """Check every history entry of a ``/documents/by-hash`` answer against the proof of its
    transaction; returns each entry's verdict and what is wrong with the history as a whole
    (``None`` if nothing): entries numbered with a gap, or no proven entry registering the file."""
    versions = {v.get("doc_id") for v in found.get("versions", []) if isinstance(v, Mapping)}
    raw = found.get("history")
    if not isinstance(raw, list):
        return [], "the doc service's answer has no history"
    history = [e if isinstance(e, Mapping) else {} for e in raw]
    verdicts = [_verify_entry(entry, versions, proof_of, validators, chain_id) for entry in history]
    if [entry.get("seq") for entry in history] != list(range(len(history))):
        return verdicts, f"the history's entries are not numbered 0 to {len(history) - 1} in order: some may be hidden"
    file_hash, doc_id = found.get("file_hash"), found.get("doc_id")
    if not any(_registers(e, v, file_hash, doc_id) for e, v in zip(history, verdicts, strict=True)):
        return verdicts, f"no proven history entry registers document {str(doc_id)[:16]}… with this file's SHA-256"
    return verdicts, None


def _registers(entry: Mapping[str, Any], verdict: EntryVerdict, file_hash: Any, doc_id: Any) -> bool:
    """Whether a proven entry registers ``doc_id`` with this file (as a first version or by amending)."""
    details = entry.get("details")
    if verdict.status != "proven" or not isinstance(details, Mapping) or details.get("file_hash") != file_hash:
        return False
    if verdict.type == "DocumentRegistered":
        return bool(entry.get("doc_id") == doc_id)
    return verdict.type == "DocumentAmended" and bool(details.get("new_doc_id") == doc_id)


def _verify_entry(
    entry: Mapping[str, Any], versions: set[Any], proof_of: ProofSource, validators: Validators, chain_id: str
) -> EntryVerdict:
    tx_id = entry.get("tx_id")
    failed = EntryVerdict(entry.get("seq"), str(entry.get("type")), str(tx_id), entry.get("height"), "failed")
    kind = HISTORY_KINDS.get(failed.type)
    if not isinstance(tx_id, str) or not _HEX64.fullmatch(tx_id):
        return replace(failed, reason="the entry's tx_id is not a transaction id")
    if kind is None:
        return replace(failed, reason=f"unknown history entry type {failed.type!r:.40}")
    if entry.get("doc_id") not in versions:
        return replace(failed, reason=f"the entry is about {str(entry.get('doc_id'))[:16]}…, not this document")
    proof = proof_of(tx_id)
    if proof is None:
        return replace(failed, status="pending", reason="no proof yet (not sealed)")
    if isinstance(proof, str):
        return replace(failed, reason=proof)
    if proof.tx.kind == ALSO_MADE_BY.get(failed.type):
        kind = proof.tx.kind
    expected = {"kind": kind, "service": tables.SERVICE, "status": "accepted", "code": "OK"}
    receipt = None if proof.result is None else proof.result.receipt
    problem = verify_tx_proof(proof, validators, chain_id, tx_id=tx_id, receipt=expected if receipt else None)
    if problem is None:
        try:
            problem = entry_mismatch(entry, proof.tx, proof.height, proof.header.time, receipt)
        except (KeyError, TypeError, AttributeError) as exc:
            problem = f"the entry is malformed ({type(exc).__name__}: {exc})"
    if problem is not None:
        return replace(failed, reason=problem)
    if receipt is None:
        waiting = f"ordered in block {proof.height}; its outcome is proven once block {proof.height + 1} is sealed"
        return replace(failed, status="pending", reason=waiting)
    return replace(failed, status="proven")


def entry_mismatch(
    entry: Mapping[str, Any], tx: TxEnvelope, height: int, time: int, receipt: Receipt | None
) -> str | None:
    """What a history entry claims that its (proven) transaction, block and receipt do not say,
    or None. Raises ``KeyError``/``TypeError`` on an entry that lacks the fields of its type."""
    kind = HISTORY_KINDS[entry["type"]]
    if tx.kind == ALSO_MADE_BY.get(entry["type"]):
        kind = tx.kind
    if tx.kind != kind:
        return f"a {entry['type']} entry is made by a {kind} transaction, the proven one is {tx.kind}"
    parsed = payloads.parse(kind, tx.payload)
    if isinstance(parsed, str):
        return f"the proven transaction's payload is invalid ({parsed}): it changed nothing"
    claims: list[tuple[str, Any, Any]] = [
        ("height", entry["height"], height),
        ("time", entry["time"], time),
        ("sender key", entry["by"]["key"], tx.sender),
        *_payload_claims(entry, parsed, tx, time),
    ]
    if receipt is not None:
        claims += _result_claims(entry, receipt, tx)
    for name, claimed, proven in claims:
        if claimed != proven:
            return f"the entry says {name} {claimed!r:.80}, the proven transaction {proven!r:.80}"
    return None


def _payload_claims(
    entry: Mapping[str, Any], p: payloads.Payload, tx: TxEnvelope, time: int
) -> Sequence[tuple[str, Any, Any]]:
    """``(what, the entry's claim, the transaction's value)`` for each payload field the entry shows."""
    d = entry["details"]
    if isinstance(p, payloads.Register):
        negotiable = p.type in tables.NEGOTIABLE_TYPES if p.negotiable is None else p.negotiable
        key = p.business_key
        return [
            ("doc_id", entry["doc_id"], tx.tx_id),
            ("file_hash", d["file_hash"], p.file_hash),
            ("type", d["type"], p.type),
            ("business key", _business_key(d["business_key"]), (key.namespace, key.reference, key.scope)),
            ("issuer key", d["issuer"]["key"], tx.sender),
            ("holder key", d["holder"]["key"], p.holder or tx.sender),
            ("negotiable", d["negotiable"], negotiable),
        ]
    claims: list[tuple[str, Any, Any]] = [("doc_id", entry["doc_id"], getattr(p, "doc_id", None))]
    if isinstance(p, payloads.Event):
        occurred = time if p.occurred_at is None else p.occurred_at
        claims += [
            ("milestone", d["milestone"], p.milestone),
            ("occurred_at", d["occurred_at"], occurred),
            ("location", d["location"], p.location),
            ("details", d["details"], p.details),
        ]
    elif isinstance(p, payloads.Transfer):
        claims.append(("new holder key", d["to"]["key"], p.to))
    elif isinstance(p, payloads.Surrender):
        claims.append(("reason", d["reason"], p.reason))
    elif isinstance(p, payloads.Pledge):
        claims += [
            ("financier key", d["financier"]["key"], p.financier),
            ("amount", d["amount"], p.amount),
            ("currency", d["currency"], p.currency),
            ("expires_at", d["expires_at"], p.expires_at),
            ("reference", d["reference"], p.reference),
        ]
    elif isinstance(p, payloads.PledgeExtend):
        claims.append(("expires_at", d["expires_at"], p.expires_at))
    elif isinstance(p, payloads.Amend):
        claims += [
            ("new doc_id", d["new_doc_id"], tx.tx_id),
            ("file_hash", d["file_hash"], p.file_hash),
            ("reason", d["reason"], p.reason),
        ]
    elif isinstance(p, payloads.ShareKey):
        claims.append(("recipients", d["recipients"], sorted(p.keys)))
    return claims


def _business_key(claimed: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return claimed["namespace"], claimed["reference"], claimed["scope"]


def _result_claims(entry: Mapping[str, Any], receipt: Receipt, tx: TxEnvelope) -> list[tuple[str, Any, Any]]:
    """The proven receipt's result must name the entry's document (and the pledge or version)."""
    result = receipt.result
    if entry["type"] == "DocumentRegistered":
        return [("doc_id", entry["doc_id"], result.get("doc_id"))]
    if entry["type"] == "DocumentAmended":
        return [
            ("new doc_id", entry["details"]["new_doc_id"], result.get("doc_id")),
            ("doc_id", entry["doc_id"], result.get("previous")),
        ]
    claims = [("doc_id", entry["doc_id"], result.get("doc_id"))]
    if entry["type"] in ("DocumentPledged", "PledgeOffered") and tx.kind == tables.KIND_PLEDGE:
        claims.append(("pledge id", tx.tx_id, result.get("pledge_id")))
    return claims


__all__ = [
    "HISTORY_KINDS",
    "EntryVerdict",
    "amend_payload",
    "entry_mismatch",
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
    "verify_history",
]
