"""Payload validation (every bad input is a receipt, never an exception), the tables' internal
consistency, and the read queries that ``doc verify`` and other services use."""

from __future__ import annotations

import typing
from typing import Any

import pytest

from tests.doc.helpers import DAY, Cast, Ledger, bl_payload, file_hash, party_queries
from traco.core.domain import DictState, Rejected, TxContext
from traco.services.doc import payloads, queries, tables
from traco.services.doc.domain import DocDomain


def test_tables_agree_with_each_other() -> None:
    assert typing.get_args(payloads.DocType) == tables.DOC_TYPES
    assert set(tables.ISSUER_ROLES) == set(tables.DOC_TYPES)
    assert set(tables.DOC_TYPES) >= tables.NEGOTIABLE_TYPES
    assert set(payloads.MODELS) == tables.KINDS
    assert typing.get_args(payloads.Surrender.model_fields["reason"].annotation) == tables.SURRENDER_REASONS


REGISTER_BAD: list[tuple[dict[str, Any], str]] = [
    ({"file_hash": "ABC"}, "file_hash: "),
    ({"file_hash": "A" * 64}, "file_hash: "),
    ({"type": "passport"}, "type: "),
    ({"business_key": "NMFTA:MAEU/1"}, "business_key: "),
    ({"business_key": {"namespace": "NMFTA:MAEU"}}, "business_key.reference: Field required"),
    ({"business_key": {"namespace": "NMFTA/MAEU", "reference": "1"}}, "business_key.namespace: "),
    ({"business_key": {"namespace": "X", "reference": "-1"}}, "business_key.reference: "),
    ({"business_key": {"namespace": "X", "reference": "1", "scope": "all"}}, "business_key.scope: "),
    ({"metadata": {"price": 1.25}}, "metadata: floats are not allowed"),
    ({"metadata": {"n": 2**53}}, "metadata: integers must lie within"),
    ({"metadata": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "metadata: nesting deeper than 4"),
    ({"metadata": {"blob": "x" * 5000}}, "metadata: is 5011 bytes"),
    ({"metadata": {"": 1}}, "metadata: object keys must be strings of 1 to 64"),
    ({"metadata": []}, "metadata: "),
    ({"holder": "traco:main:00"}, "holder: "),
    ({"negotiable": "yes"}, "negotiable: "),
    ({"signature": "forged"}, "signature: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("change", "message"), REGISTER_BAD)
def test_bad_register_payloads_are_receipts(ledger: Ledger, cast: Cast, change: dict[str, Any], message: str) -> None:
    outcome = ledger.submit(cast.carrier, "doc.register", {**bl_payload("bl-1"), **change})
    assert isinstance(outcome, Rejected) and outcome.code == "INVALID_PAYLOAD"
    assert outcome.message.startswith(message), outcome.message


@pytest.mark.parametrize("rules", [1, 2])
@pytest.mark.parametrize("kind", sorted(tables.KINDS))
@pytest.mark.parametrize("payload", [{}, {"doc_id": None}, {"doc_id": "../../etc"}, {"doc_id": 7, "keys": []}])
def test_garbage_never_raises(ledger: Ledger, cast: Cast, kind: str, payload: dict[str, Any], rules: int) -> None:
    ledger.rules = rules
    expected = "UNKNOWN_KIND" if rules == 1 and kind in tables.V2_KINDS else "INVALID_PAYLOAD"
    assert ledger.code(cast.carrier, kind, payload) == expected


@pytest.mark.parametrize("payload", [[], "doc", None, 7])
def test_a_payload_that_is_not_an_object_is_a_receipt(cast: Cast, payload: Any) -> None:
    tx = TxContext("doctest", 1, 0, 1, "00" * 32, cast.carrier.key, "doc.register", payload)
    outcome = DocDomain(party_queries()).execute(DictState(), {"party": cast.view()}, tx)
    assert outcome == Rejected("INVALID_PAYLOAD", "payload: must be a JSON object")


def test_permission_is_checked_before_the_payload(ledger: Ledger, cast: Cast) -> None:
    assert ledger.code(cast.stranger, "doc.register", {"garbage": True}) == "NOT_PERMITTED"


def test_a_kind_that_is_not_doc_is_refused(cast: Cast) -> None:
    tx = TxContext("doctest", 1, 0, 1, "00" * 32, cast.carrier.key, "doc.burn", {})
    outcome = DocDomain().execute(DictState(), {"party": cast.view()}, tx)
    assert outcome == Rejected("UNKNOWN_KIND", "'doc.burn' is not a doc transaction kind")


def test_the_default_domain_reads_party_through_its_queries_module(ledger: Ledger, cast: Cast) -> None:
    pytest.importorskip("traco.services.party.queries", reason="the party service has no queries module yet")
    domain = DocDomain()
    tx = TxContext("doctest", 1, 0, 1, "00" * 32, cast.carrier.key, "doc.register", bl_payload("bl-1"))
    assert domain.execute(DictState(), {"party": cast.view()}, tx).__class__.__name__ == "Accepted"
    assert domain.party.__name__ == "traco.services.party.queries"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- queries


def test_verify_a_file(ledger: Ledger, cast: Cast) -> None:
    assert queries.by_hash(ledger.state, file_hash("bl-1")) is None
    doc_id = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key)).result["doc_id"]
    terms = {"doc_id": doc_id, "financier": cast.bank_a.key, "amount": 99, "currency": "SGD",
             "expires_at": ledger.time + DAY}  # fmt: skip
    ledger.ok(cast.exporter, "doc.pledge", terms)
    found = queries.by_hash(ledger.state, file_hash("bl-1"), ledger.time)
    assert found is not None
    assert (found["doc_id"], found["status"], found["superseded"]) == (doc_id, "active", False)
    assert found["issuer"]["member_id"] == "carrier" and found["holder"]["member_id"] == "exporter"
    assert found["pledged"] is True and found["pledge"]["amount"] == 99
    assert queries.by_hash(ledger.state, file_hash("bl-1"), ledger.time + DAY)["pledged"] is False  # type: ignore[index]
    assert queries.by_hash(ledger.state, file_hash("bl-1"))["pledged"] is None  # type: ignore[index]
    assert [v["version"] for v in found["versions"]] == [1]
    history = queries.history(ledger.state, doc_id)
    assert [(h["seq"], h["type"]) for h in history] == [(0, "DocumentRegistered"), (1, "DocumentPledged")]
    assert all(h["height"] >= 1 and len(h["tx_id"]) == 64 for h in history)


@pytest.mark.parametrize("bad", ["", "xyz", "../doc", "A" * 64, "0" * 63])
def test_queries_find_nothing_for_malformed_ids(ledger: Ledger, bad: str) -> None:
    assert queries.document(ledger.state, bad) is None
    assert queries.by_hash(ledger.state, bad) is None
    assert queries.active_pledge(ledger.state, bad, 0) is None
    assert queries.history(ledger.state, bad) == []
    assert queries.shared_keys(ledger.state, bad) == {}
    assert queries.shared_key(ledger.state, bad, bad) is None
    assert queries.versions(ledger.state, bad) == []


def test_business_key_lookup_normalises(ledger: Ledger, cast: Cast) -> None:
    doc_id = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", "HHL-718")).result["doc_id"]
    found = queries.by_business_key(ledger.state, "bill_of_lading", "nmfta:maeu", "hhl 718")
    assert found is not None and found["doc_id"] == doc_id
    assert queries.by_business_key(ledger.state, "invoice", "NMFTA:MAEU", "HHL718") is None
    assert queries.by_business_key(ledger.state, "passport", "NMFTA:MAEU", "HHL718") is None
