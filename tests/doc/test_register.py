"""doc.register: a document is a unique asset: one registration per file hash and per business
key, whoever tries, and only an issuer whose role fits the document type."""

from __future__ import annotations

from typing import Any

import pytest

from tests.doc.helpers import Actor, Cast, Ledger, bl_payload, file_hash
from traco.services.doc import queries, tables


def register(label: str, doc_type: str, namespace: str, reference: str, scope: str = "document") -> dict[str, Any]:
    return {
        "file_hash": file_hash(label),
        "type": doc_type,
        "business_key": {"namespace": namespace, "reference": reference, "scope": scope},
    }


def test_registration_anchors_the_hash_and_the_issuer_holds_it(ledger: Ledger, cast: Cast) -> None:
    accepted = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1"))
    doc_id = accepted.result["doc_id"]
    record = queries.document(ledger.state, doc_id)
    assert record is not None
    assert record["doc_id"] == record["lineage"] == doc_id
    assert record["registered"]["height"] == ledger.height
    assert record["file_hash"] == file_hash("bl-1")
    assert record["issuer"] == record["holder"] == {"member_id": "carrier", "key": cast.carrier.key}
    assert record["negotiable"] is True and record["status"] == "active" and record["pledge"] is None
    assert record["metadata"] == {"vessel": "MAERSK ESSEN", "portOfLoading": "CNSHA"}
    assert [entry["type"] for entry in queries.history(ledger.state, doc_id)] == ["DocumentRegistered"]


def test_doc_id_is_the_registering_transaction_id(ledger: Ledger, cast: Cast) -> None:
    accepted = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1"))
    assert accepted.events[0].data["tx_id"] == accepted.result["doc_id"]


def test_a_named_first_holder_holds_it(ledger: Ledger, cast: Cast) -> None:
    doc_id = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key)).result["doc_id"]
    record = queries.document(ledger.state, doc_id)
    assert record is not None
    assert record["holder"] == {"member_id": "exporter", "key": cast.exporter.key}
    assert record["issuer"]["member_id"] == "carrier"


@pytest.mark.parametrize("who", ["stranger", "applicant", "suspended"])
def test_the_first_holder_must_be_an_admitted_member(ledger: Ledger, cast: Cast, who: str) -> None:
    holder: Actor = getattr(cast, who)
    assert ledger.code(cast.carrier, "doc.register", bl_payload("bl-1", holder=holder.key)) == "NOT_A_MEMBER"


def test_same_file_cannot_be_registered_twice_by_anyone(ledger: Ledger, cast: Cast) -> None:
    ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", "REF-1"))
    assert ledger.code(cast.carrier, "doc.register", bl_payload("bl-1", "REF-2")) == "DUPLICATE_DOCUMENT"
    assert ledger.code(cast.carrier2, "doc.register", bl_payload("bl-1", "REF-3")) == "DUPLICATE_DOCUMENT"
    other_type = register("bl-1", "warehouse_receipt", "LEI:WAREHOUSE", "WR-1")
    assert ledger.code(cast.warehouse, "doc.register", other_type) == "DUPLICATE_DOCUMENT"


def test_same_business_key_cannot_be_registered_twice_by_anyone(ledger: Ledger, cast: Cast) -> None:
    ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", "HHL71800000"))
    assert ledger.code(cast.carrier, "doc.register", bl_payload("bl-2", "HHL71800000")) == "DUPLICATE_BUSINESS_KEY"
    assert ledger.code(cast.carrier2, "doc.register", bl_payload("bl-3", "HHL71800000")) == "DUPLICATE_BUSINESS_KEY"


@pytest.mark.parametrize("variant", ["hhl71800000", "HHL-718-00000", "HHL 71800000", "hhl.718.000.00"])
def test_business_keys_compare_without_case_or_separators(ledger: Ledger, cast: Cast, variant: str) -> None:
    ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", "HHL71800000"))
    payload = bl_payload("bl-2", variant)
    payload["business_key"]["namespace"] = "nmfta:maeu"
    assert ledger.code(cast.carrier2, "doc.register", payload) == "DUPLICATE_BUSINESS_KEY"


def test_document_scope_is_per_type_and_namespace(ledger: Ledger, cast: Cast) -> None:
    ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", "REF-1"))
    # the same number from another carrier, or on another type of document, is another key
    other_carrier = bl_payload("bl-2", "REF-1")
    other_carrier["business_key"]["namespace"] = "NMFTA:HLCU"
    ledger.ok(cast.carrier2, "doc.register", other_carrier)
    ledger.ok(cast.exporter, "doc.register", register("pl-1", "packing_list", "NMFTA:MAEU", "REF-1"))


def test_goods_scope_excludes_every_other_document_type(ledger: Ledger, cast: Cast) -> None:
    lot = ("LEI:5493001KJTIIGC8Y1R12", "LOT-2024-0042")
    ledger.ok(cast.warehouse, "doc.register", register("wr-1", "warehouse_receipt", *lot, scope="goods"))
    # the same goods cannot also be represented by a B/L (nor a second receipt), in either scope
    assert ledger.code(cast.carrier, "doc.register", register("bl-1", "bill_of_lading", *lot, "goods")) == (
        "DUPLICATE_BUSINESS_KEY"
    )
    assert ledger.code(cast.carrier, "doc.register", register("bl-2", "bill_of_lading", *lot)) == (
        "DUPLICATE_BUSINESS_KEY"
    )
    assert ledger.code(cast.warehouse, "doc.register", register("wr-2", "warehouse_receipt", *lot)) == (
        "DUPLICATE_BUSINESS_KEY"
    )


def test_a_goods_claim_cannot_be_made_over_an_existing_document_key(ledger: Ledger, cast: Cast) -> None:
    ledger.ok(cast.carrier, "doc.register", register("bl-1", "bill_of_lading", "NMFTA:MAEU", "LOT-9"))
    goods = register("wr-1", "warehouse_receipt", "NMFTA:MAEU", "LOT-9", scope="goods")
    assert ledger.code(cast.warehouse, "doc.register", goods) == "DUPLICATE_BUSINESS_KEY"


def test_duplicates_within_one_block_are_caught(ledger: Ledger, cast: Cast) -> None:
    outcomes = ledger.block(
        [
            (cast.carrier, "doc.register", bl_payload("bl-1", "REF-1")),
            (cast.carrier2, "doc.register", bl_payload("bl-1", "REF-2")),
            (cast.carrier2, "doc.register", bl_payload("bl-3", "REF-1")),
        ]
    )
    assert [getattr(o, "code", "OK") for o in outcomes] == ["OK", "DUPLICATE_DOCUMENT", "DUPLICATE_BUSINESS_KEY"]


@pytest.mark.parametrize(
    ("doc_type", "role"), sorted((t, r) for t, roles in tables.ISSUER_ROLES.items() for r in roles)
)
def test_each_type_is_issued_by_its_roles(ledger: Ledger, cast: Cast, doc_type: str, role: str) -> None:
    issuer = {
        "carrier": cast.carrier,
        "warehouse": cast.warehouse,
        "bank": cast.bank_a,
        "exporter": cast.exporter,
        "importer": cast.importer,
        "regulator": cast.regulator,
        "insurer": cast.insurer,
    }[role]
    ledger.ok(issuer, "doc.register", register(f"{doc_type}-{role}", doc_type, "MEMBER:TEST", f"{doc_type}-1"))


@pytest.mark.parametrize(
    ("who", "doc_type"),
    [("bank_a", "bill_of_lading"), ("exporter", "warehouse_receipt"), ("carrier", "letter_of_credit"),
     ("importer", "invoice"), ("bank_a", "insurance_certificate"), ("factor", "contract")],
)  # fmt: skip
def test_an_issuer_whose_role_does_not_fit_is_refused(ledger: Ledger, cast: Cast, who: str, doc_type: str) -> None:
    payload = register("doc", doc_type, "MEMBER:TEST", "REF-1")
    assert ledger.code(getattr(cast, who), "doc.register", payload) == "WRONG_ROLE"


@pytest.mark.parametrize("who", ["kyc", "applicant", "suspended", "stranger"])
def test_party_decides_who_may_submit(ledger: Ledger, cast: Cast, who: str) -> None:
    assert ledger.code(getattr(cast, who), "doc.register", bl_payload("bl-1")) == "NOT_PERMITTED"


def test_a_straight_bill_of_lading_is_not_negotiable(ledger: Ledger, cast: Cast) -> None:
    doc_id = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", negotiable=False)).result["doc_id"]
    assert ledger.code(cast.carrier, "doc.transfer", {"doc_id": doc_id, "to": cast.importer.key}) == "NOT_NEGOTIABLE"


def test_only_documents_of_title_can_be_negotiable(ledger: Ledger, cast: Cast) -> None:
    payload = {**register("inv-1", "invoice", "MEMBER:EXPORTER", "INV-1"), "negotiable": True}
    assert ledger.code(cast.exporter, "doc.register", payload) == "INVALID_PAYLOAD"


def test_an_assigned_namespace_is_its_owners_alone(ledger: Ledger, cast: Cast) -> None:
    """HLCU is carrier-two's (council-assigned in party): no other carrier can squat its B/L numbers."""
    squat = register("squat", "bill_of_lading", "hlcu", "HLCU-BL-1")
    assert ledger.code(cast.carrier, "doc.register", squat) == "NOT_NAMESPACE_OWNER"
    ledger.ok(cast.carrier2, "doc.register", register("own", "bill_of_lading", "HLCU", "HLCU-BL-1"))
    # an unassigned namespace is open to any issuer of the type; uniqueness still holds
    ledger.ok(cast.carrier, "doc.register", register("open", "bill_of_lading", "MAEU", "BL-9"))
    assert ledger.code(cast.carrier2, "doc.register", register("open-2", "bill_of_lading", "MAEU", "BL-9")) == (
        "DUPLICATE_BUSINESS_KEY"
    )
