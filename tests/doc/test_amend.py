"""doc.amend: a new version supersedes the old one, which can no longer be pledged (or used at
all); the new one inherits holder, business key and history."""

from __future__ import annotations

from typing import Any

import pytest

from tests.doc.helpers import DAY, Actor, Cast, Ledger, bl_payload, file_hash
from traco.services.doc import client, queries


@pytest.fixture
def bl(ledger: Ledger, cast: Cast) -> str:
    return str(ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key)).result["doc_id"])


def amend(doc_id: str, label: str, **extra: Any) -> dict[str, Any]:
    return {"doc_id": doc_id, "file_hash": file_hash(label), **extra}


def test_amend_creates_a_linked_new_version(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})
    accepted = ledger.ok(cast.carrier, "doc.amend", amend(bl, "bl-1 v2", reason="port of discharge corrected"))
    new_id = accepted.result["doc_id"]
    old, new = queries.document(ledger.state, bl), queries.document(ledger.state, new_id)
    assert old is not None and new is not None
    assert (old["status"], old["next"]) == ("superseded", new_id)
    assert (new["status"], new["previous"], new["version"], new["lineage"]) == ("active", bl, 2, bl)
    assert new["holder"]["member_id"] == "importer"  # inherits the holder
    assert new["business_key"] == old["business_key"] and new["type"] == old["type"]
    assert new["metadata"] == old["metadata"]  # inherited when not given
    types = [entry["type"] for entry in queries.history(ledger.state, new_id)]
    assert types == ["DocumentRegistered", "TitleTransferred", "DocumentAmended"]
    assert queries.history(ledger.state, new_id) == queries.history(ledger.state, bl)


def test_the_old_version_can_no_longer_be_pledged_or_used(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.carrier, "doc.amend", amend(bl, "bl-1 v2"))
    expires = ledger.time + DAY
    attempts: list[tuple[Actor, str, dict[str, Any]]] = [
        (cast.exporter, "doc.pledge", {"doc_id": bl, "financier": cast.bank_a.key, "amount": 1, "currency": "EUR",
                                       "expires_at": expires}),
        (cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key}),
        (cast.exporter, "doc.surrender", {"doc_id": bl}),
        (cast.exporter, "doc.release", {"doc_id": bl}),
        (cast.carrier, "doc.amend", amend(bl, "bl-1 v2b")),
        (cast.carrier, "doc.event", {"doc_id": bl, "milestone": "loaded"}),
        (cast.exporter, "doc.share_key", client.share_key_payload(bl, b"k" * 32, [cast.importer.key])),
    ]  # fmt: skip
    codes = [ledger.code(sender, kind, payload) for sender, kind, payload in attempts]
    assert codes == ["SUPERSEDED"] * len(attempts)


def test_the_new_version_can_be_pledged(ledger: Ledger, cast: Cast, bl: str) -> None:
    new_id = ledger.ok(cast.carrier, "doc.amend", amend(bl, "bl-1 v2")).result["doc_id"]
    terms = {"doc_id": new_id, "financier": cast.bank_a.key, "amount": 10, "currency": "EUR",
             "expires_at": ledger.time + DAY}  # fmt: skip
    ledger.ok(cast.exporter, "doc.pledge", terms)


def test_only_the_issuer_amends(ledger: Ledger, cast: Cast, bl: str) -> None:
    assert ledger.code(cast.exporter, "doc.amend", amend(bl, "bl-1 v2")) == "NOT_ISSUER"
    assert ledger.code(cast.carrier2, "doc.amend", amend(bl, "bl-1 v2")) == "NOT_ISSUER"


def test_a_pledged_document_is_amended_only_after_release(ledger: Ledger, cast: Cast, bl: str) -> None:
    terms = {"doc_id": bl, "financier": cast.bank_a.key, "amount": 10, "currency": "EUR",
             "expires_at": ledger.time + DAY}  # fmt: skip
    ledger.ok(cast.exporter, "doc.pledge", terms)
    assert ledger.code(cast.carrier, "doc.amend", amend(bl, "bl-1 v2")) == "PLEDGED"
    ledger.ok(cast.bank_a, "doc.release", {"doc_id": bl})
    ledger.ok(cast.carrier, "doc.amend", amend(bl, "bl-1 v2"))


def test_an_amendment_needs_a_new_file(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.carrier, "doc.register", bl_payload("bl-2"))
    assert ledger.code(cast.carrier, "doc.amend", amend(bl, "bl-1")) == "DUPLICATE_DOCUMENT"
    assert ledger.code(cast.carrier, "doc.amend", amend(bl, "bl-2")) == "DUPLICATE_DOCUMENT"


def test_versions_chain_and_verify_by_any_version(ledger: Ledger, cast: Cast, bl: str) -> None:
    v2 = ledger.ok(cast.carrier, "doc.amend", amend(bl, "bl-1 v2", metadata={"note": "v2"})).result["doc_id"]
    v3 = ledger.ok(cast.carrier, "doc.amend", amend(v2, "bl-1 v3")).result["doc_id"]
    found = queries.by_hash(ledger.state, file_hash("bl-1"), ledger.time)
    assert found is not None
    assert found["doc_id"] == bl and found["superseded"] is True and found["current"]["doc_id"] == v3
    assert [v["doc_id"] for v in found["versions"]] == [bl, v2, v3]
    assert [v["status"] for v in found["versions"]] == ["superseded", "superseded", "active"]
    v3_record = queries.document(ledger.state, v3)
    assert v3_record is not None and v3_record["metadata"] == {"note": "v2"}
    # the business key now leads to the newest version, and is still taken
    assert queries.by_business_key(ledger.state, "bill_of_lading", "NMFTA:MAEU", "BL-1") == v3_record
    assert ledger.code(cast.carrier, "doc.register", bl_payload("bl-1 other", "BL-1")) == "DUPLICATE_BUSINESS_KEY"
