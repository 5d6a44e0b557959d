"""Read side of the doc service's state: the key layout and the queries over it.

Why here: the rules (``rules.py``), the mutators (``mutations.py``), the HTTP API, the CLI's
``doc verify`` and other services reading ``upstream["doc"]`` (trade checks a pledge before it
lends) must agree on one layout, so the key functions and every read live in this module and
nobody else spells a key. All functions are pure reads of a ``StateView``; none raises on an
unknown or malformed id (it simply finds nothing).

Key layout (values are canonical JSON, ``traco.core.domain.encode``)::

    doc/<doc_id>                 one version of a document (``doc_id`` = registering/amending tx_id)
    hash/<file_hash>             {"doc_id"}: the version whose file has this SHA-256
    bkey/<type>/<NS>/<REF>       {"doc_id"}: business key, scope "document" (newest version);
                                 NS upper-cased (rules v1) or canonical (v2: NMFTA:MAEU is MAEU)
    bkey/goods/<NS>/<REF>        {"doc_id"}: business key, scope "goods" (newest version)
    hist/<lineage>/<seq:08d>     one history entry of a document and all its versions
    key/<doc_id>/<recipient>     {"sealed", "by", "tx_id", "height", "time"}: a shared file key
    reached/<height:012d>/<lineage>/<seq:08d>
                                 {"doc_id", "milestone", "by", "occurred_at", "tx_id"}: the
                                 milestones recorded at a height, so that a later service (trade's
                                 escrow) finds the previous height's milestones by one prefix scan

A document record (``doc/<doc_id>``)::

    {"doc_id", "lineage", "version", "previous", "next", "type", "negotiable", "file_hash",
     "business_key": {"namespace", "reference", "scope", "index"}, "metadata",
     "issuer": {"member_id", "key"}, "holder": {"member_id", "key"},
     "status": "active" | "superseded" | "surrendered",
     "pledge": null | {"financier": {"member_id", "key"}, "amount", "currency", "expires_at",
                       "reference", "tx_id", "height", "time"},
     "surrender": null | {"reason", "tx_id", "height", "time"},
     "offers"?: {financier member id: pledge terms}   (rules v2: open pledge offers),
     "parties"?: [{"member_id", "key"}]               (rules v2: named at registration),
     "last_milestone": null | {"milestone", "occurred_at", "tx_id"},
     "registered": {"tx_id", "height", "time"}, "updated": {"tx_id", "height", "time"},
     "history_length"}

``lineage`` is the ``doc_id`` of the first version; history is kept per lineage, so a new version
inherits the old one's history. ``pledge`` is the latest pledge not yet released; it is *active*
only while ``time < expires_at`` (``active_pledge``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from traco.core.domain import StateView
from traco.services.doc.tables import DOC_TYPES

_HEX64 = re.compile(r"[0-9a-f]{64}")
_REFERENCE_SEPARATORS: Final = str.maketrans("", "", " -_./#:")
_MAX_VERSIONS: Final = 10_000  # a guard against a corrupt cycle, not a business limit


# --------------------------------------------------------------------------- keys


def doc_key(doc_id: str) -> str:
    return f"doc/{doc_id}"


def hold_key(hold_id: str) -> str:
    """A title hold, open or closed (``holds.py``)."""
    return f"hold/{hold_id}"


HOLD_DUE_BY_HEIGHT = "hold_due/h/"
HOLD_DUE_BY_TIME = "hold_due/t/"
"""The expiry indexes of open title holds, read in order by the ``hold_expiry`` clause."""


def hold_due_keys(hold: Mapping[str, Any]) -> list[str]:
    """The expiry index entries of a hold: by height and/or by time, zero-padded so that key
    order is expiry order."""
    keys = []
    if hold["expires_height"] is not None:
        keys.append(f"{HOLD_DUE_BY_HEIGHT}{hold['expires_height']:016d}/{hold['hold_id']}")
    if hold["expires_time"] is not None:
        keys.append(f"{HOLD_DUE_BY_TIME}{hold['expires_time']:016d}/{hold['hold_id']}")
    return keys


def hash_key(file_hash: str) -> str:
    return f"hash/{file_hash}"


def history_key(lineage: str, seq: int) -> str:
    return f"hist/{lineage}/{seq:08d}"


MILESTONES_AT = "reached/"


def milestones_at_prefix(height: int) -> str:
    return f"{MILESTONES_AT}{height:012d}/"


def milestone_at_key(height: int, lineage: str, seq: int) -> str:
    return f"{milestones_at_prefix(height)}{lineage}/{seq:08d}"


def shared_key_key(doc_id: str, recipient: str) -> str:
    return f"key/{doc_id}/{recipient}"


def normalise_namespace(namespace: str) -> str:
    """Namespaces compare case-insensitively: ``nmfta:maeu`` is ``NMFTA:MAEU``."""
    return namespace.upper()


def normalise_reference(reference: str) -> str:
    """References compare case-insensitively and ignore separators (space ``-_./#:``).

    Why: the business key exists to stop the same goods being registered (and financed) twice,
    and ``MAEU-123 456`` typed by one clerk is ``maeu123456`` typed by another. The price is that
    two references differing only in punctuation (``12-3`` and ``1-23``) count as the same.
    """
    return reference.upper().translate(_REFERENCE_SEPARATORS)


def business_key_index(doc_type: str, namespace: str, reference: str, scope: str) -> str:
    """The state key under which a business key is claimed.

    Scope ``document``: the reference numbers one document of this type within the namespace
    (a carrier's B/L number): unique per (type, namespace, reference). Scope ``goods``: the
    reference names the goods themselves (a consignment or warehouse lot), so at most one
    document of *any* type may claim it.
    """
    ns, ref = normalise_namespace(namespace), normalise_reference(reference)
    if scope == "goods":
        return f"bkey/goods/{ns}/{ref}"
    return f"bkey/{doc_type}/{ns}/{ref}"


def conflicting_business_keys(doc_type: str, namespace: str, reference: str, scope: str) -> list[str]:
    """Every index key whose presence makes this business key a duplicate.

    A goods claim on (namespace, reference) excludes every document-scoped key with the same
    namespace and reference, of any type, and each of those excludes the goods claim.
    """
    goods = business_key_index(doc_type, namespace, reference, "goods")
    if scope == "goods":
        return [goods, *(business_key_index(t, namespace, reference, "document") for t in DOC_TYPES)]
    return [business_key_index(doc_type, namespace, reference, "document"), goods]


# --------------------------------------------------------------------------- reads


def read(view: StateView, key: str) -> dict[str, Any] | None:
    """The decoded JSON object stored at ``key``, or ``None``."""
    raw = view.get(key)
    if raw is None:
        return None
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else None


def document(view: StateView, doc_id: str) -> dict[str, Any] | None:
    """One version of a document, or ``None`` if there is no such document."""
    if not _is_hex64(doc_id):
        return None
    return read(view, doc_key(doc_id))


def current(view: StateView, doc_id: str) -> dict[str, Any] | None:
    """The newest version of the document ``doc_id`` belongs to (itself if never amended)."""
    record = document(view, doc_id)
    for _ in range(_MAX_VERSIONS):
        if record is None or record.get("next") is None:
            return record
        record = document(view, record["next"])
    return None


def versions(view: StateView, doc_id: str) -> list[dict[str, Any]]:
    """Every version of the document, oldest first (empty if unknown)."""
    head = current(view, doc_id)
    chain: list[dict[str, Any]] = []
    record = head
    while record is not None and len(chain) < _MAX_VERSIONS:
        chain.append(record)
        record = document(view, record["previous"]) if record.get("previous") else None
    chain.reverse()
    return chain


def active_pledge(view: StateView, doc_id: str, time: int) -> dict[str, Any] | None:
    """The pledge on this version that is in force at block time ``time`` (ms), or ``None``.

    A pledge is in force from its block until released or until ``time >= expires_at``: an
    expired pledge counts as released, by block time, without anyone having to act.
    """
    record = document(view, doc_id)
    if record is None:
        return None
    return pledge_in_force(record, time)


def pledge_in_force(record: Mapping[str, Any], time: int) -> dict[str, Any] | None:
    """``record``'s pledge if it is still in force at ``time``."""
    pledge = record.get("pledge")
    if isinstance(pledge, dict) and time < pledge["expires_at"]:
        return pledge
    return None


def by_hash(view: StateView, file_hash: str, time: int | None = None) -> dict[str, Any] | None:
    """Verify this file: the registration of the file with this SHA-256, or ``None``.

    Returns ``{"file_hash", "doc_id", "document", "current", "superseded", "status", "issuer",
    "holder", "pledge", "pledged", "versions"}`` where ``document`` is the version registered
    with this very file, ``current`` the newest version of the same document (whose holder and
    pledge are the ones that count), ``versions`` the version chain oldest first
    (``{"doc_id", "version", "file_hash", "status", "registered"}``), ``pledge`` the newest
    version's unreleased pledge and ``pledged`` whether it is in force at ``time`` (``None``
    when no time is given). The file itself is never needed: hash it on the client.
    """
    if not _is_hex64(file_hash):
        return None
    entry = read(view, hash_key(file_hash))
    if entry is None:
        return None
    record = document(view, entry["doc_id"])
    head = current(view, entry["doc_id"])
    if record is None or head is None:
        return None
    return {
        "file_hash": file_hash,
        "doc_id": record["doc_id"],
        "document": record,
        "current": head,
        "superseded": head["doc_id"] != record["doc_id"],
        "status": head["status"],
        "issuer": head["issuer"],
        "holder": head["holder"],
        "pledge": head["pledge"],
        "pledged": None if time is None else pledge_in_force(head, time) is not None,
        "versions": [
            {k: v[k] for k in ("doc_id", "version", "file_hash", "status", "registered")}
            for v in versions(view, record["doc_id"])
        ],
    }


def by_business_key(
    view: StateView,
    doc_type: str,
    namespace: str,
    reference: str,
    scope: str = "document",
    spellings: Sequence[str] = (),
) -> dict[str, Any] | None:
    """The newest version of the document registered under this business key, or ``None``.

    ``spellings``: other spellings of the namespace to try after ``namespace`` itself — on a
    chain under rules version 2, party's ``namespace_spellings(namespace)``, whose first is the
    canonical form version 2 indexes under (doc cannot import party's code to find them)."""
    if doc_type not in DOC_TYPES or scope not in ("document", "goods"):
        return None
    for ns in dict.fromkeys((namespace, *spellings)):
        entry = read(view, business_key_index(doc_type, ns, reference, scope))
        if entry is not None:
            return document(view, entry["doc_id"])
    return None


def history(view: StateView, doc_id: str) -> list[dict[str, Any]]:
    """Everything that happened to the document and all its versions, oldest first.

    Each entry: ``{"seq", "type", "doc_id", "tx_id", "height", "time", "by", "details"}``
    (``type`` is the domain event's type; ``height`` and ``tx_id`` locate the transaction for an
    inclusion proof).
    """
    record = document(view, doc_id)
    if record is None:
        return []
    return [orjson.loads(raw) for _, raw in view.scan(f"hist/{record['lineage']}/")]


def endorsements(view: StateView, doc_id: str) -> list[dict[str, Any]]:
    """The endorsement chain: every title transfer of the document, oldest first."""
    return [entry for entry in history(view, doc_id) if entry["type"] == "TitleTransferred"]


def shared_keys(view: StateView, doc_id: str) -> dict[str, dict[str, Any]]:
    """``{recipient public key: share}`` of every key shared for this version."""
    if not _is_hex64(doc_id):
        return {}
    prefix = f"key/{doc_id}/"
    return {key[len(prefix) :]: orjson.loads(raw) for key, raw in view.scan(prefix)}


def shared_key(view: StateView, doc_id: str, recipient: str) -> dict[str, Any] | None:
    """The newest share of this version's key with ``recipient``; ``sealed`` opens with
    ``client.open_sealed_key``."""
    if not (_is_hex64(doc_id) and _is_hex64(recipient)):
        return None
    return read(view, shared_key_key(doc_id, recipient))


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None
