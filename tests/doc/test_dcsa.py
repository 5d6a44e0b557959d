"""Importing a DCSA eBL 3.0 transport document: the carrier's B/L number is the business key,
the canonical JSON's SHA-256 is the file hash, and non-documents are refused clearly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.doc.helpers import Cast, Ledger
from traco.core.canonical import canonicalize
from traco.services.doc import queries
from traco.services.doc.dcsa import import_dcsa

FIXTURE = Path(__file__).parent / "fixtures" / "dcsa_ebl_to_order.json"


@pytest.fixture
def raw() -> bytes:
    return FIXTURE.read_bytes()


@pytest.fixture
def td(raw: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(raw)
    return parsed


def test_import_builds_a_bill_of_lading_registration(raw: bytes, td: dict[str, Any]) -> None:
    payload = import_dcsa(raw)
    assert payload["type"] == "bill_of_lading"
    assert payload["business_key"] == {"namespace": "NMFTA:MAEU", "reference": "MAEU240917653", "scope": "document"}
    assert payload["file_hash"] == hashlib.sha256(canonicalize(td)).hexdigest()
    assert payload["negotiable"] is True
    assert payload["metadata"] == {
        "standard": "DCSA eBL 3.0",
        "transportDocumentTypeCode": "BOL",
        "transportDocumentStatus": "ISSUED",
        "isToOrder": True,
        "isShippedOnBoardType": True,
        "issueDate": "2024-09-19",
        "shippedOnBoardDate": "2024-09-18",
        "carrierCode": "MAEU",
        "carrierCodeListProvider": "NMFTA",
        "portOfLoading": "CNSHA",
        "portOfDischarge": "NLRTM",
        "vesselName": "MAERSK ESSEN",
        "carrierExportVoyageNumber": "438W",
        "shipper": "Jiangsu Lianhua Textiles Co., Ltd.",
        "consignee": "To order of Rabobank Rotterdam",
    }


def test_the_hash_ignores_formatting(raw: bytes, td: dict[str, Any]) -> None:
    reformatted = json.dumps(dict(reversed(list(td.items()))), indent=None, separators=(",", ":")).encode()
    assert reformatted != raw
    assert import_dcsa(reformatted)["file_hash"] == import_dcsa(raw)["file_hash"]


def test_a_wrapped_transport_document_hashes_the_document(raw: bytes, td: dict[str, Any]) -> None:
    wrapped = json.dumps({"transportDocument": td, "envelopeManifestSignedContent": "eyJhbGciOi"}).encode()
    assert import_dcsa(wrapped) == import_dcsa(raw)


def test_sea_waybills_and_straight_bills_are_not_negotiable(td: dict[str, Any]) -> None:
    swb = {**td, "transportDocumentTypeCode": "SWB", "isToOrder": False}
    assert import_dcsa(json.dumps(swb).encode())["negotiable"] is False
    straight = {**td, "isToOrder": False}
    assert import_dcsa(json.dumps(straight).encode())["negotiable"] is False


def test_an_imported_bill_registers_once(ledger: Ledger, cast: Cast, raw: bytes, td: dict[str, Any]) -> None:
    payload = import_dcsa(raw, holder=cast.exporter.key)
    doc_id = ledger.ok(cast.carrier, "doc.register", payload).result["doc_id"]
    found = queries.by_hash(ledger.state, payload["file_hash"])
    assert found is not None and found["doc_id"] == doc_id and found["holder"]["member_id"] == "exporter"
    # the same document pretty-printed is the same file; an altered one is the same B/L number
    again = import_dcsa(json.dumps(td, indent=4).encode())
    assert ledger.code(cast.carrier2, "doc.register", again) == "DUPLICATE_DOCUMENT"
    altered = import_dcsa(json.dumps({**td, "issueDate": "2024-09-20"}).encode())
    assert ledger.code(cast.carrier2, "doc.register", altered) == "DUPLICATE_BUSINESS_KEY"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"transportDocumentReference": None}, "transportDocumentReference is missing"),
        ({"transportDocumentReference": "  "}, "transportDocumentReference must be a non-empty string"),
        ({"transportDocumentReference": 42}, "transportDocumentReference must be a non-empty string"),
        ({"carrierCode": None}, "carrierCode is missing"),
        ({"carrierCodeListProvider": None}, "carrierCodeListProvider is missing"),
        ({"carrierCodeListProvider": "IATA"}, "carrierCodeListProvider 'IATA' is not one of NMFTA, SMDG"),
        ({"transportDocumentReference": "BL\u00e9 1"}, "cannot be registered: business_key.reference"),
    ],
)
def test_what_is_not_a_transport_document_is_refused(td: dict[str, Any], change: dict[str, Any], message: str) -> None:
    document = {k: v for k, v in {**td, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        import_dcsa(json.dumps(document).encode())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object, found list"),
        (b'{"bookingReference": "X"}', "not a DCSA eBL 3.0 transport document: transportDocumentReference is missing"),
        (b'{"transportDocumentReference": "X", "carrierCode": "MAEU", "carrierCodeListProvider": "NMFTA", "n": 1e400}',
         "no RFC 8785 canonical form"),
    ],
)  # fmt: skip
def test_malformed_input_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        import_dcsa(raw)
