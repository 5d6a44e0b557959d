"""Rules version 2 of doc (decision 0021), beside version 1's unchanged decisions: milestones
only from a document's parties of record, a held title amended only with its holder's signed
consent, one canonical namespace form, and KYC for the kinds and parties that need it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.doc.helpers import CHAIN, DAY, T0, Actor, Cast, Ledger, bl_payload, file_hash, party_queries
from traco.services.doc import consent, queries

# --------------------------------------------------------------------------- fix 1: milestones


def _bl(ledger: Ledger, cast: Cast, label: str = "bl-1", **extra: Any) -> str:
    payload = bl_payload(label, holder=cast.exporter.key, **extra)
    return str(ledger.ok(cast.carrier, "doc.register", payload).result["doc_id"])


def _event(doc_id: str, milestone: str) -> dict[str, Any]:
    return {"doc_id": doc_id, "milestone": milestone}


def test_v1_any_carrier_or_importer_reports_on_any_document(ledger: Ledger, cast: Cast) -> None:
    bl = _bl(ledger, cast)
    ledger.ok(cast.carrier2, "doc.event", _event(bl, "delivered"))  # not its B/L: version 1 records it
    ledger.ok(cast.importer, "doc.event", _event(bl, "disputed"))  # no part in it: version 1 records it


def test_v2_only_parties_of_record_report_milestones(ledger2: Ledger, cast: Cast) -> None:
    bl = _bl(ledger2, cast)
    assert ledger2.code(cast.carrier2, "doc.event", _event(bl, "delivered")) == "NOT_A_PARTY"
    assert ledger2.code(cast.importer, "doc.event", _event(bl, "disputed")) == "NOT_A_PARTY"
    ledger2.ok(cast.carrier, "doc.event", _event(bl, "loaded"))  # the carrier that issued it
    ledger2.ok(cast.exporter, "doc.event", _event(bl, "disputed"))  # its holder
    ledger2.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})
    ledger2.ok(cast.importer, "doc.event", _event(bl, "goods_accepted"))  # the new holder
    ledger2.ok(cast.exporter, "doc.event", _event(bl, "dispute_resolved"))  # the holder named at registration
    assert ledger2.code(cast.importer, "doc.event", _event(bl, "loaded")) == "WRONG_ROLE"  # roles still count


def test_v2_parties_named_at_registration_report(ledger2: Ledger, cast: Cast) -> None:
    bl = _bl(ledger2, cast, parties=[cast.importer.key, cast.regulator.key])
    record = queries.document(ledger2.state, bl)
    assert record is not None
    assert [p["member_id"] for p in record["parties"]] == ["exporter", "importer", "regulator"]
    ledger2.ok(cast.importer, "doc.event", _event(bl, "disputed"))
    ledger2.ok(cast.regulator, "doc.event", _event(bl, "customs_cleared"))
    assert ledger2.code(cast.insurer, "doc.event", _event(bl, "inspected")) == "NOT_A_PARTY"
    bad = bl_payload("bl-2", parties=[cast.stranger.key])
    assert ledger2.code(cast.carrier, "doc.register", bad) == "NOT_A_MEMBER"
    twice = bl_payload("bl-3", parties=[cast.importer.key, cast.importer.key])
    assert ledger2.code(cast.carrier, "doc.register", twice) == "INVALID_PAYLOAD"


def test_v1_refuses_the_parties_field_as_it_always_did(ledger: Ledger, cast: Cast) -> None:
    outcome = ledger.submit(cast.carrier, "doc.register", bl_payload("bl-1", parties=[cast.importer.key]))
    assert getattr(outcome, "code", None) == "INVALID_PAYLOAD" and "parties" in getattr(outcome, "message", "")


def test_v2_on_an_upgraded_chain_the_v1_registration_holder_is_a_party(ledger: Ledger, cast: Cast) -> None:
    bl = _bl(ledger, cast)
    ledger.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})
    ledger.rules = 2  # the council's upgrade takes effect
    ledger.ok(cast.exporter, "doc.event", _event(bl, "disputed"))  # named holder at registration, in history
    assert ledger.code(cast.carrier2, "doc.event", _event(bl, "delivered")) == "NOT_A_PARTY"


def test_v2_the_financier_of_a_pledge_in_force_is_a_party(ledger2: Ledger, cast: Cast) -> None:
    bl = _bl(ledger2, cast)
    assert ledger2.code(cast.bank_a, "doc.event", _event(bl, "paid")) == "NOT_A_PARTY"
    terms = {"doc_id": bl, "financier": cast.bank_a.key, "amount": 5, "currency": "USD", "expires_at": T0 + DAY}
    ledger2.ok(cast.exporter, "doc.pledge", terms)
    assert ledger2.code(cast.bank_a, "doc.event", _event(bl, "paid")) == "NOT_A_PARTY"  # an offer binds no one
    ledger2.ok(cast.bank_a, "doc.pledge.accept", {"doc_id": bl})
    ledger2.ok(cast.bank_a, "doc.event", _event(bl, "paid"))


# --------------------------------------------------------------------------- fix 2: amendment consent


def _amend(ledger: Ledger, doc_id: str, label: str, signer: Actor | None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"doc_id": doc_id, "file_hash": file_hash(label), **extra}
    if signer is not None:
        signature = consent.sign_amend(signer.seed, CHAIN, doc_id, file_hash(label), extra.get("metadata"))
        payload["holder_consent"] = {"key": signer.key, "signature": signature}
    return payload


def test_v1_the_issuer_amends_a_title_held_by_someone_else_alone(ledger: Ledger, cast: Cast) -> None:
    bl = _bl(ledger, cast)
    ledger.ok(cast.carrier, "doc.amend", _amend(ledger, bl, "bl-1 v2", None))
    refused = ledger.submit(cast.carrier, "doc.amend", _amend(ledger, bl, "v3", cast.exporter))
    assert getattr(refused, "code", None) in ("INVALID_PAYLOAD", "SUPERSEDED")


def test_v2_amending_a_held_title_needs_the_holders_signature(ledger2: Ledger, cast: Cast) -> None:
    bl = _bl(ledger2, cast)
    assert ledger2.code(cast.carrier, "doc.amend", _amend(ledger2, bl, "v2", None)) == "HOLDER_CONSENT_REQUIRED"
    by_other = _amend(ledger2, bl, "v2", cast.importer)
    assert ledger2.code(cast.carrier, "doc.amend", by_other) == "HOLDER_CONSENT_REQUIRED"
    wrong_file = {**_amend(ledger2, bl, "v2", cast.exporter), "file_hash": file_hash("something else")}
    assert ledger2.code(cast.carrier, "doc.amend", wrong_file) == "HOLDER_CONSENT_REQUIRED"
    other_metadata = {**_amend(ledger2, bl, "v2", cast.exporter), "metadata": {"vessel": "ANOTHER"}}
    assert ledger2.code(cast.carrier, "doc.amend", other_metadata) == "HOLDER_CONSENT_REQUIRED"
    new = ledger2.ok(cast.carrier, "doc.amend", _amend(ledger2, bl, "v2", cast.exporter, metadata={"v": 2}))
    # The exporter's rotated-out key, still in its overlap, signs for the member too.
    ledger2.ok(cast.carrier, "doc.amend", _amend(ledger2, new.result["doc_id"], "v3", cast.exporter_old))


def test_v2_no_consent_is_needed_from_the_issuer_itself_or_for_documents_not_of_title(
    ledger2: Ledger, cast: Cast
) -> None:
    own = str(ledger2.ok(cast.carrier, "doc.register", bl_payload("bl-own")).result["doc_id"])
    ledger2.ok(cast.carrier, "doc.amend", _amend(ledger2, own, "own v2", None))
    straight = bl_payload("sea-waybill", holder=cast.exporter.key, negotiable=False)
    waybill = str(ledger2.ok(cast.carrier, "doc.register", straight).result["doc_id"])
    ledger2.ok(cast.carrier, "doc.amend", _amend(ledger2, waybill, "waybill v2", None))


# --------------------------------------------------------------------------- fix 5: namespaces


def _keyed(label: str, namespace: str, reference: str = "BL-7") -> dict[str, Any]:
    return {**bl_payload(label), "business_key": {"namespace": namespace, "reference": reference}}


def test_v1_prefixed_namespaces_are_separate(ledger: Ledger, cast: Cast) -> None:
    for i, namespace in enumerate(("MAEU", "NMFTA:MAEU", "SMDG:MAEU")):
        ledger.ok(cast.carrier, "doc.register", _keyed(f"f{i}", namespace))
    ledger.ok(cast.carrier, "doc.register", _keyed("hl", "NMFTA:HLCU"))  # HLCU is carrier-two's; this is "another"


def test_v2_one_namespace_under_any_spelling(ledger2: Ledger, cast: Cast) -> None:
    first = ledger2.ok(cast.carrier, "doc.register", _keyed("f0", "nmfta:maeu")).result["doc_id"]
    for i, namespace in enumerate(("MAEU", "SMDG:MAEU", "BIC:maeu"), start=1):
        assert ledger2.code(cast.carrier, "doc.register", _keyed(f"f{i}", namespace)) == "DUPLICATE_BUSINESS_KEY"
    record = queries.document(ledger2.state, first)
    assert record is not None and record["business_key"]["index"] == "bkey/bill_of_lading/MAEU/BL7"
    assert record["business_key"]["namespace"] == "nmfta:maeu"  # as registered
    spellings = party_queries().namespace_spellings("SMDG:MAEU")
    found = queries.by_business_key(ledger2.state, "bill_of_lading", "SMDG:MAEU", "bl 7", spellings=spellings)
    assert found is not None and found["doc_id"] == first
    assert ledger2.code(cast.carrier, "doc.register", _keyed("hl", "NMFTA:HLCU")) == "NOT_NAMESPACE_OWNER"
    ledger2.ok(cast.carrier2, "doc.register", _keyed("hl2", "SMDG:HLCU"))


def test_v2_on_an_upgraded_chain_old_spellings_still_claim(ledger: Ledger, cast: Cast) -> None:
    ledger.ok(cast.carrier, "doc.register", _keyed("old", "NMFTA:MAEU"))
    ledger.rules = 2
    assert ledger.code(cast.carrier, "doc.register", _keyed("new", "MAEU")) == "DUPLICATE_BUSINESS_KEY"
    ledger.ok(cast.carrier, "doc.register", _keyed("new", "MAEU", reference="BL-8"))


# --------------------------------------------------------------------------- fix 6: KYC


def _without_kyc(cast: Cast, ledger: Ledger, actor: Actor, kyc: dict[str, Any] | None) -> None:
    cast.specs[actor] = replace(cast.specs[actor], kyc=kyc)
    ledger.party = cast.view()


BAD_KYC = {
    "missing": None,
    "pending": {"status": "pending", "expires_at": T0 + 400 * DAY, "provider": "kyc"},
    "expired": {"status": "verified", "expires_at": T0, "provider": "kyc"},
}


@pytest.mark.parametrize("kyc", sorted(BAD_KYC))
def test_v2_an_issuer_without_valid_kyc_cannot_register(ledger2: Ledger, cast: Cast, kyc: str) -> None:
    _without_kyc(cast, ledger2, cast.carrier, BAD_KYC[kyc])
    outcome = ledger2.submit(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key))
    assert getattr(outcome, "code", None) == "KYC_REQUIRED" and "sender" in getattr(outcome, "message", "")


def test_v1_kyc_is_never_checked(ledger: Ledger, cast: Cast) -> None:
    for actor in (cast.carrier, cast.importer, cast.bank_a):
        _without_kyc(cast, ledger, actor, None)
    bl = _bl(ledger, cast)
    terms = {"doc_id": bl, "financier": cast.bank_a.key, "amount": 5, "currency": "USD", "expires_at": T0 + DAY}
    ledger.ok(cast.exporter, "doc.pledge", terms)
    ledger.ok(cast.bank_a, "doc.release", {"doc_id": bl})
    ledger.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})


def test_v2_those_taking_title_or_credit_need_kyc_those_giving_it_up_do_not(ledger2: Ledger, cast: Cast) -> None:
    bl = _bl(ledger2, cast)
    _without_kyc(cast, ledger2, cast.importer, None)
    _without_kyc(cast, ledger2, cast.bank_b, BAD_KYC["expired"])
    assert ledger2.code(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key}) == "KYC_REQUIRED"
    hold = {"hold_id": "h-1", "doc_id": bl, "beneficiary": cast.importer.key, "expires_height": 50}
    assert ledger2.code(cast.exporter, "doc.hold", hold) == "KYC_REQUIRED"
    terms = {"doc_id": bl, "financier": cast.bank_b.key, "amount": 5, "currency": "USD", "expires_at": T0 + DAY}
    assert ledger2.code(cast.exporter, "doc.pledge", terms) == "KYC_REQUIRED"
    register = bl_payload("bl-2", holder=cast.importer.key)
    message = getattr(ledger2.submit(cast.carrier, "doc.register", register), "message", "")
    assert message.startswith("doc.register needs verified KYC") and "holder: member 'importer'" in message
    # The exporter, whose own KYC lapses, may still give the title up.
    ledger2.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.bank_a.key})
    _without_kyc(cast, ledger2, cast.bank_a, None)
    ledger2.ok(cast.bank_a, "doc.transfer", {"doc_id": bl, "to": cast.exporter.key})
    # A stranger named as recipient is still NOT_A_MEMBER, not a KYC problem.
    assert ledger2.code(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.stranger.key}) == "NOT_A_MEMBER"


def test_v2_a_financier_without_kyc_cannot_accept(ledger2: Ledger, cast: Cast) -> None:
    bl = _bl(ledger2, cast)
    terms = {"doc_id": bl, "financier": cast.bank_a.key, "amount": 5, "currency": "USD", "expires_at": T0 + DAY}
    ledger2.ok(cast.exporter, "doc.pledge", terms)
    _without_kyc(cast, ledger2, cast.bank_a, BAD_KYC["pending"])
    assert ledger2.code(cast.bank_a, "doc.pledge.accept", {"doc_id": bl}) == "KYC_REQUIRED"
