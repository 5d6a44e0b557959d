"""doc.transfer and doc.surrender: only the holder moves title, the endorsement chain is kept,
and a surrendered document is final."""

from __future__ import annotations

from typing import Any

import pytest

from tests.doc.helpers import DAY, Actor, Cast, Ledger, bl_payload, file_hash
from traco.services.doc import client, queries


@pytest.fixture
def bl(ledger: Ledger, cast: Cast) -> str:
    """A negotiable B/L issued by the carrier to the exporter."""
    return str(ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key)).result["doc_id"])


def holder_of(ledger: Ledger, doc_id: str) -> str:
    record = queries.document(ledger.state, doc_id)
    assert record is not None
    return str(record["holder"]["member_id"])


def test_the_holder_transfers_and_the_endorsement_chain_is_kept(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.bank_a.key})
    ledger.ok(cast.bank_a, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})
    assert holder_of(ledger, bl) == "importer"
    chain = queries.endorsements(ledger.state, bl)
    assert [(e["details"]["from"]["member_id"], e["details"]["to"]["member_id"]) for e in chain] == [
        ("exporter", "bank-a"),
        ("bank-a", "importer"),
    ]
    assert [e["height"] for e in chain] == sorted(e["height"] for e in chain)


@pytest.mark.parametrize("who", ["carrier", "importer", "bank_a"])
def test_only_the_holder_may_transfer(ledger: Ledger, cast: Cast, bl: str, who: str) -> None:
    assert ledger.code(getattr(cast, who), "doc.transfer", {"doc_id": bl, "to": cast.importer.key}) == "NOT_HOLDER"


def test_a_former_holder_can_no_longer_transfer(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})
    assert ledger.code(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.bank_a.key}) == "NOT_HOLDER"


@pytest.mark.parametrize("who", ["stranger", "applicant", "suspended"])
def test_the_recipient_must_be_an_admitted_member(ledger: Ledger, cast: Cast, bl: str, who: str) -> None:
    recipient: Actor = getattr(cast, who)
    assert ledger.code(cast.exporter, "doc.transfer", {"doc_id": bl, "to": recipient.key}) == "NOT_A_MEMBER"


def test_transfer_to_oneself_is_refused(ledger: Ledger, cast: Cast, bl: str) -> None:
    # another key of the same member is still the same holder
    assert ledger.code(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.exporter_old.key}) == "INVALID_PAYLOAD"


def test_holding_follows_the_member_across_key_rotation(ledger: Ledger, cast: Cast) -> None:
    doc_id = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter_old.key)).result["doc_id"]
    ledger.ok(cast.exporter, "doc.transfer", {"doc_id": doc_id, "to": cast.importer.key})
    assert holder_of(ledger, doc_id) == "importer"


def test_a_rotated_out_key_stops_working_after_its_overlap(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.time += 31 * DAY
    assert ledger.code(cast.exporter_old, "doc.transfer", {"doc_id": bl, "to": cast.importer.key}) == "NOT_PERMITTED"


def test_only_negotiable_documents_are_transferred_or_surrendered(ledger: Ledger, cast: Cast) -> None:
    payload = {
        "file_hash": file_hash("inv-1"),
        "type": "invoice",
        "business_key": {"namespace": "MEMBER:EXPORTER", "reference": "INV-1"},
    }
    invoice = ledger.ok(cast.exporter, "doc.register", payload).result["doc_id"]
    assert ledger.code(cast.exporter, "doc.transfer", {"doc_id": invoice, "to": cast.importer.key}) == "NOT_NEGOTIABLE"
    assert ledger.code(cast.exporter, "doc.surrender", {"doc_id": invoice}) == "NOT_NEGOTIABLE"


def test_unknown_documents(ledger: Ledger, cast: Cast) -> None:
    missing = file_hash("nothing")
    for kind, payload in [
        ("doc.transfer", {"doc_id": missing, "to": cast.importer.key}),
        ("doc.surrender", {"doc_id": missing}),
        ("doc.release", {"doc_id": missing}),
        ("doc.amend", {"doc_id": missing, "file_hash": file_hash("x")}),
        ("doc.event", {"doc_id": missing, "milestone": "loaded"}),
    ]:
        assert ledger.code(cast.carrier, kind, payload) == "UNKNOWN_DOCUMENT"


def test_only_the_holder_may_surrender(ledger: Ledger, cast: Cast, bl: str) -> None:
    assert ledger.code(cast.carrier, "doc.surrender", {"doc_id": bl}) == "NOT_HOLDER"
    ledger.ok(cast.exporter, "doc.surrender", {"doc_id": bl, "reason": "delivery"})
    record = queries.document(ledger.state, bl)
    assert record is not None and record["status"] == "surrendered"
    assert record["surrender"]["reason"] == "delivery"


def test_a_surrendered_document_is_final(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.surrender", {"doc_id": bl})
    expires = ledger.time + DAY
    attempts: list[tuple[Actor, str, dict[str, Any]]] = [
        (cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key}),
        (cast.exporter, "doc.surrender", {"doc_id": bl}),
        (cast.exporter, "doc.pledge", {"doc_id": bl, "financier": cast.bank_a.key, "amount": 1, "currency": "USD",
                                       "expires_at": expires}),
        (cast.exporter, "doc.release", {"doc_id": bl}),
        (cast.carrier, "doc.amend", {"doc_id": bl, "file_hash": file_hash("bl-1 v2")}),
        (cast.exporter, "doc.share_key", client.share_key_payload(bl, b"k" * 32, [cast.importer.key])),
    ]  # fmt: skip
    for sender, kind, payload in attempts:
        assert ledger.code(sender, kind, payload) == "SURRENDERED", kind


def test_what_happens_to_the_goods_after_surrender_is_still_recorded(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.surrender", {"doc_id": bl, "reason": "delivery"})
    ledger.ok(cast.carrier, "doc.event", {"doc_id": bl, "milestone": "released"})
    ledger.ok(cast.carrier, "doc.event", {"doc_id": bl, "milestone": "delivered"})
    record = queries.document(ledger.state, bl)
    assert record is not None and record["status"] == "surrendered"
    assert record["last_milestone"]["milestone"] == "delivered"
    assert ledger.code(cast.exporter, "doc.event", {"doc_id": bl, "milestone": "loaded"}) == "WRONG_ROLE"
