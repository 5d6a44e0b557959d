"""Import a DCSA eBL 3.0 transport document (its JSON) as a ``doc.register`` payload.

Why: carriers already exchange electronic bills of lading as DCSA ``TransportDocument`` JSON, so
a member registers the carrier's own document instead of retyping it. What is taken from it:

* business key: namespace ``<carrierCodeListProvider>:<carrierCode>`` (e.g. ``NMFTA:MAEU``,
  the SCAC's list and code) and reference ``transportDocumentReference``, scope ``document``: a
  B/L number is unique per carrier, so no one can register the same B/L again, whoever they are;
* file hash: SHA-256 of the JSON's RFC 8785 canonical form, not of the file's bytes, so a
  re-indented or re-ordered copy of the same document verifies as the same document;
* negotiability: a to-order B/L (``isToOrder: true``) is negotiable; a straight B/L and a sea
  waybill (``SWB``) are registered as non-negotiable bills of lading;
* a few metadata fields for people and dashboards (type code, status, ports, vessel, dates,
  shipper and consignee names). Everything else stays in the document, off the chain.

If the JSON is a wrapper with a ``transportDocument`` object (as an eBL platform envelope carries
it), that inner object is the document that is hashed. Caveat: DCSA allows a ``declaredValue``
with a fraction; it is hashed exactly as RFC 8785 prints it, but never copied into metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from traco.core.canonical import canonicalize
from traco.services.doc import client

STANDARD: Final = "DCSA eBL 3.0"
CODE_LIST_PROVIDERS: Final = frozenset({"SMDG", "NMFTA"})
_NOT_A_TD: Final = "not a DCSA eBL 3.0 transport document"


def import_dcsa(document_json: bytes, *, holder: str | bytes | None = None) -> dict[str, Any]:
    """The ``doc.register`` payload for a DCSA eBL 3.0 transport document.

    Raises ``ValueError`` saying what is missing or wrong when the JSON is not a transport
    document this importer can register.
    """
    document = _transport_document(document_json)
    reference = _required_text(document, "transportDocumentReference")
    carrier_code = _required_text(document, "carrierCode")
    provider = _required_text(document, "carrierCodeListProvider")
    if provider not in CODE_LIST_PROVIDERS:
        known = ", ".join(sorted(CODE_LIST_PROVIDERS))
        raise ValueError(f"{_NOT_A_TD}: carrierCodeListProvider {provider!r:.40} is not one of {known}")
    try:
        file_hash = hashlib.sha256(canonicalize(document)).hexdigest()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{_NOT_A_TD}: its JSON has no RFC 8785 canonical form ({exc})") from None
    type_code = document.get("transportDocumentTypeCode")
    negotiable = document.get("isToOrder") is True and type_code != "SWB"
    business_key = {"namespace": f"{provider}:{carrier_code}", "reference": reference, "scope": "document"}
    try:
        return client.register_payload(
            file_hash,
            "bill_of_lading",
            business_key,
            metadata=_metadata(document),
            holder=holder,
            negotiable=negotiable,
        )
    except ValueError as exc:
        raise ValueError(f"the transport document cannot be registered: {exc}") from None


def _transport_document(document_json: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(document_json)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{_NOT_A_TD}: not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{_NOT_A_TD}: expected a JSON object, found {type(parsed).__name__}")
    inner = parsed.get("transportDocument")
    if "transportDocumentReference" not in parsed and isinstance(inner, dict):
        parsed = inner
    return parsed


def _required_text(document: Mapping[str, Any], field: str) -> str:
    value = document.get(field)
    if value is None:
        raise ValueError(f"{_NOT_A_TD}: {field} is missing")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{_NOT_A_TD}: {field} must be a non-empty string")
    return value


def _metadata(document: Mapping[str, Any]) -> dict[str, Any]:
    transports = _object(document.get("transports"))
    parties = _object(document.get("documentParties"))
    voyages = transports.get("vesselVoyages")
    voyage = _object(voyages[0]) if isinstance(voyages, list) and voyages else {}
    candidates: dict[str, Any] = {
        "standard": STANDARD,
        "transportDocumentTypeCode": document.get("transportDocumentTypeCode"),
        "transportDocumentStatus": document.get("transportDocumentStatus"),
        "isToOrder": document.get("isToOrder"),
        "isShippedOnBoardType": document.get("isShippedOnBoardType"),
        "issueDate": document.get("issueDate"),
        "shippedOnBoardDate": document.get("shippedOnBoardDate"),
        "carrierCode": document.get("carrierCode"),
        "carrierCodeListProvider": document.get("carrierCodeListProvider"),
        "portOfLoading": _object(transports.get("portOfLoading")).get("UNLocationCode"),
        "portOfDischarge": _object(transports.get("portOfDischarge")).get("UNLocationCode"),
        "vesselName": voyage.get("vesselName"),
        "carrierExportVoyageNumber": voyage.get("carrierExportVoyageNumber"),
        "shipper": _object(parties.get("shipper")).get("partyName"),
        "consignee": _object(parties.get("consignee")).get("partyName"),
    }
    # Only short strings and booleans: metadata is bounded and must be float-free.
    return {k: v for k, v in candidates.items() if isinstance(v, bool) or (isinstance(v, str) and 0 < len(v) <= 200)}


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
