"""Members, keys, KYC, agreements and delegations: every rule a member meets, with its receipt code."""

from __future__ import annotations

import hashlib

import pytest

from tests.party.kit import CHAIN_ID, DAY, Chain, agreement_payload, pub, register_payload, rotate_payload, sig
from traco.core.domain import Accepted, Event, Rejected, TxContext
from traco.services.party import proofs, queries
from traco.services.party.domain import KINDS, PARTY
from traco.services.party.models import MAX_KEY_OVERLAP_MS

DOC = hashlib.sha256(b"sales contract 42").hexdigest()


@pytest.fixture
def chain() -> Chain:
    return Chain.dev()


def admit(chain: Chain, member_id: str) -> None:
    chain.pass_proposal({"type": "admit_member", "member_id": member_id})


# --------------------------------------------------------------------------- the domain object


def test_domain_declares_service_and_kinds() -> None:
    assert PARTY.service == "party"
    assert (
        PARTY.kinds
        == KINDS
        == {
            "party.register",
            "party.kyc",
            "party.agreement",
            "party.key.rotate",
            "party.propose",
            "party.vote",
            "party.delegate",
            "party.node.register",
            "party.node.rotate",
        }
    )


def test_foreign_kinds_and_unknown_events_are_bugs_not_guesses(chain: Chain) -> None:
    tx = TxContext(CHAIN_ID, 1, 0, chain.time, "00" * 32, pub("exporter"), "doc.register", {})
    outcome = PARTY.execute(chain.state, {}, tx)
    assert isinstance(outcome, Rejected) and outcome.code == "UNKNOWN_KIND"
    with pytest.raises(ValueError, match="unknown party event"):
        PARTY.mutate(chain.state, Event(type="MemberTeleported", aggregate_id="x", data={}))


def test_non_member_sender_is_refused(chain: Chain) -> None:
    chain.refused("NOT_A_MEMBER", "stranger", "party.register", register_payload("acme", ["acme"]))


def test_role_without_the_kind_is_not_permitted(chain: Chain) -> None:
    chain.refused("NOT_PERMITTED", "exporter", "party.kyc", {"member_id": "importer", "status": "verified"})


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "member_id"),
        ({"member_id": "Acme!"}, "member_id"),
        ({"jurisdiction": "Singapore"}, "jurisdiction"),
        ({"roles": []}, "roles"),
        ({"roles": ["exporter", "exporter"]}, "roles"),
        ({"organisation": " padded "}, "organisation"),
        ({"keys": []}, "keys"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_register_bad_payload(chain: Chain, payload: dict[str, object], field: str) -> None:
    base = register_payload("acme", ["acme"])
    body = {} if not payload else {**base, **payload}
    refused = chain.refused("INVALID_PAYLOAD", "bank-a", "party.register", body)
    assert refused.message.startswith(field), refused.message


def test_payload_types_are_not_coerced(chain: Chain) -> None:
    outcome = chain.refused(
        "INVALID_PAYLOAD", "kyc", "party.kyc", {"member_id": "exporter", "status": "verified", "expires_at": "99"}
    )
    assert outcome.message.startswith("expires_at:")
    chain.refused("INVALID_PAYLOAD", "kyc", "party.kyc", {"member_id": "exporter", "status": "ok", "expires_at": 9})


def test_non_object_payload_is_invalid(chain: Chain) -> None:
    chain.refused("INVALID_PAYLOAD", "bank-a", "party.register", ["not", "an", "object"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- register


def test_register_creates_an_applicant_who_cannot_act_until_admitted(chain: Chain) -> None:
    accepted = chain.ok("bank-a", "party.register", register_payload("acme", ["acme", "acme-2"], name="ACME"))
    assert accepted.result == {"member_id": "acme", "status": "applied"}
    record = queries.member(chain.state, pub("acme"), chain.time)
    assert record is not None
    assert record["status"] == "applied" and record["roles"] == ["exporter"] and record["name"] == "ACME"
    assert record["primary_key"] == pub("acme")
    assert queries.member(chain.state, pub("acme-2"), chain.time) == record
    assert not queries.is_admitted(chain.state, pub("acme"), chain.time)
    assert queries.roles_of(chain.state, pub("acme"), chain.time) == frozenset()
    chain.refused("NOT_A_MEMBER", "acme", "party.agreement", agreement_payload(DOC, ["acme", "exporter"]))

    admit(chain, "acme")
    assert queries.is_admitted(chain.state, pub("acme-2"), chain.time)
    assert queries.may_submit(chain.state, pub("acme"), "doc.register", chain.time)
    assert [h["type"] for h in queries.history(chain.state, "acme")] == ["MemberRegistered", "MemberAdmitted"]


def test_register_refuses_taken_id_or_key(chain: Chain) -> None:
    chain.refused("ALREADY_REGISTERED", "bank-a", "party.register", register_payload("exporter", ["fresh"]))
    chain.refused("ALREADY_REGISTERED", "bank-a", "party.register", register_payload("acme", ["importer"]))


def test_register_refuses_unknown_role(chain: Chain) -> None:
    chain.refused("UNKNOWN_ROLE", "bank-a", "party.register", register_payload("acme", ["acme"], roles=["pirate"]))


def test_register_needs_proof_of_possession(chain: Chain) -> None:
    payload = register_payload("acme", ["acme"])
    forged = sig("someone-else", proofs.register_message(CHAIN_ID, payload["organisation"], pub("acme")))
    payload["keys"][0]["proof"] = forged
    chain.refused("BAD_KEY_PROOF", "bank-a", "party.register", payload)
    # A proof made for another organisation name does not carry over either.
    payload = register_payload("acme", ["acme"])
    payload["organisation"] = "Other Name Ltd"
    chain.refused("BAD_KEY_PROOF", "bank-a", "party.register", payload)


# --------------------------------------------------------------------------- kyc


def test_kyc_provider_attests_with_expiry(chain: Chain) -> None:
    expires = chain.time + 365 * DAY
    chain.ok("kyc", "party.kyc", {"member_id": "exporter", "status": "verified", "expires_at": expires})
    record = queries.member(chain.state, pub("exporter"), chain.time)
    assert record is not None
    assert record["kyc"] == {"status": "verified", "provider": pub("kyc"), "expires_at": expires}
    assert queries.kyc_valid(chain.state, pub("exporter"), expires - 1)
    assert not queries.kyc_valid(chain.state, pub("exporter"), expires)
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"]))
    assert not queries.kyc_valid(chain.state, pub("acme"), chain.time)  # only the founders have genesis KYC


def test_kyc_rules(chain: Chain) -> None:
    later = chain.time + DAY
    chain.refused(
        "UNKNOWN_MEMBER", "kyc", "party.kyc", {"member_id": "nobody", "status": "verified", "expires_at": later}
    )
    chain.refused("NOT_PERMITTED", "kyc", "party.kyc", {"member_id": "kyc", "status": "verified", "expires_at": later})
    chain.refused(
        "INVALID_PAYLOAD", "kyc", "party.kyc", {"member_id": "exporter", "status": "verified", "expires_at": chain.time}
    )


def test_kyc_applies_to_applicants(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"]))
    chain.ok("kyc", "party.kyc", {"member_id": "acme", "status": "pending", "expires_at": chain.time + DAY})
    record = queries.member_by_id(chain.state, "acme")
    assert record is not None and record["kyc"]["status"] == "pending"


# --------------------------------------------------------------------------- agreements


def test_agreement_signed_by_every_party_is_recorded_once(chain: Chain) -> None:
    payload = {**agreement_payload(DOC, ["exporter", "importer", "bank-a"]), "title": "Sales contract 42"}
    chain.ok("exporter", "party.agreement", payload)
    record = queries.agreement(chain.state, DOC)
    assert record is not None
    assert record["parties"] == ["bank-a", "exporter", "importer"] and record["recorded_by"] == "exporter"
    assert queries.agreements_of(chain.state, "importer") == [record]
    assert queries.agreements_of(chain.state, "carrier") == []
    assert "AgreementRecorded" in [h["type"] for h in queries.history(chain.state, "bank-a")]
    chain.refused("DUPLICATE_AGREEMENT", "importer", "party.agreement", payload)


def test_agreement_needs_every_signature(chain: Chain) -> None:
    payload = agreement_payload(DOC, ["exporter"], parties=["exporter", "importer"])
    chain.refused("MISSING_SIGNATURE", "exporter", "party.agreement", payload)


def test_agreement_signature_must_cover_the_same_parties(chain: Chain) -> None:
    payload = agreement_payload(DOC, ["exporter", "importer"])
    other = proofs.agreement_message(CHAIN_ID, DOC, [pub("importer"), pub("carrier")])
    payload["signatures"][pub("importer")] = sig("importer", other)
    chain.refused("BAD_SIGNATURE", "exporter", "party.agreement", payload)


def test_agreement_sender_must_be_a_party(chain: Chain) -> None:
    chain.refused("NOT_PERMITTED", "carrier", "party.agreement", agreement_payload(DOC, ["exporter", "importer"]))


def test_agreement_parties_must_be_admitted_members(chain: Chain) -> None:
    chain.refused("UNKNOWN_MEMBER", "exporter", "party.agreement", agreement_payload(DOC, ["exporter", "stranger"]))
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"]))
    chain.refused("NOT_A_MEMBER", "exporter", "party.agreement", agreement_payload(DOC, ["exporter", "acme"]))


def test_agreement_payload_rules(chain: Chain) -> None:
    alone = agreement_payload(DOC, ["exporter"])
    chain.refused("INVALID_PAYLOAD", "exporter", "party.agreement", alone)
    stray = agreement_payload(DOC, ["exporter", "importer"])
    stray["signatures"][pub("carrier")] = "00" * 64
    chain.refused("INVALID_PAYLOAD", "exporter", "party.agreement", stray)
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme", "acme-2"]))
    admit(chain, "acme")
    twice = agreement_payload(DOC, ["acme", "acme-2"])
    assert chain.refused("INVALID_PAYLOAD", "acme", "party.agreement", twice).message.startswith("parties:")


# --------------------------------------------------------------------------- key rotation


def test_rotation_keeps_the_old_key_for_the_overlap_only(chain: Chain) -> None:
    overlap = 2 * DAY
    accepted = chain.ok(
        "exporter", "party.key.rotate", rotate_payload("exporter", "exporter", "exporter-2", overlap_ms=overlap)
    )
    until = chain.time + overlap
    assert accepted.result["valid_until"] == until
    new = queries.member(chain.state, pub("exporter-2"), chain.time)
    assert new is not None and new["member_id"] == "exporter" and new["primary_key"] == pub("exporter-2")
    assert new["valid_until"] is None
    old = queries.member(chain.state, pub("exporter"), chain.time)
    assert old is not None and old["valid_until"] == until and old["primary_key"] == pub("exporter-2")
    # During the overlap both keys act for the member; afterwards only the new one.
    assert queries.may_submit(chain.state, pub("exporter"), "doc.register", until - 1)
    assert queries.member(chain.state, pub("exporter"), until) is None
    assert not queries.is_admitted(chain.state, pub("exporter"), until)
    assert queries.roles_of(chain.state, pub("exporter-2"), until) == {"exporter"}
    assert queries.member_keys(chain.state, "exporter") == sorted([pub("exporter"), pub("exporter-2")])
    chain.ok("exporter", "party.agreement", agreement_payload(DOC, ["exporter", "importer"]))  # still in the overlap
    chain.refused(
        "NOT_A_MEMBER", "exporter", "party.delegate", {"principal": "X", "kinds": [], "expires_at": 0}, advance=overlap
    )
    chain.ok("exporter-2", "party.agreement", agreement_payload("ab" * 32, ["exporter-2", "importer"]))


def test_rotation_with_zero_overlap_revokes_at_once(chain: Chain) -> None:
    chain.ok("carrier", "party.key.rotate", rotate_payload("carrier", "carrier", "carrier-2", overlap_ms=0))
    assert queries.member(chain.state, pub("carrier"), chain.time) is None
    chain.refused("NOT_A_MEMBER", "carrier", "party.key.rotate", rotate_payload("carrier", "carrier", "carrier-3"))


def test_rotation_rules(chain: Chain) -> None:
    chain.refused("BAD_KEY_PROOF", "exporter", "party.key.rotate", rotate_payload("importer", "exporter", "exporter-2"))
    chain.refused(
        "ALREADY_REGISTERED", "exporter", "party.key.rotate", rotate_payload("exporter", "exporter", "importer")
    )
    too_long = rotate_payload("exporter", "exporter", "exporter-2", overlap_ms=MAX_KEY_OVERLAP_MS + 1)
    assert chain.refused("INVALID_PAYLOAD", "exporter", "party.key.rotate", too_long).message.startswith("overlap_ms")
    other_members_key = rotate_payload("exporter", "importer", "exporter-2", old_key=pub("importer"))
    chain.refused("NOT_PERMITTED", "exporter", "party.key.rotate", other_members_key)
    chain.ok("exporter", "party.key.rotate", rotate_payload("exporter", "exporter", "exporter-2"))
    # The rotating-out key may still act, but not start a second rotation of itself.
    chain.refused("NOT_PERMITTED", "exporter", "party.key.rotate", rotate_payload("exporter", "exporter", "exporter-3"))


def test_rotating_a_secondary_key_keeps_the_primary(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme", "acme-2"]))
    admit(chain, "acme")
    payload = rotate_payload("acme", "acme-2", "acme-3", old_key=pub("acme-2"))
    chain.ok("acme", "party.key.rotate", payload)
    record = queries.member(chain.state, pub("acme-3"), chain.time)
    assert record is not None and record["primary_key"] == pub("acme")


# --------------------------------------------------------------------------- delegation


def test_delegation_lets_a_member_act_for_a_non_member_until_expiry(chain: Chain) -> None:
    expires = chain.time + 30 * DAY
    payload = {"principal": "Small Farm Co-op", "principal_key": pub("farm"), "kinds": ["doc.register", "doc.event"]}
    chain.ok("exporter", "party.delegate", {**payload, "expires_at": expires})
    state, key = chain.state, pub("exporter")
    assert queries.acting_for(state, key, "Small Farm Co-op", "doc.register", chain.time)
    assert not queries.acting_for(state, key, "Small Farm Co-op", "doc.register", expires)
    assert not queries.acting_for(state, key, "Small Farm Co-op", "doc.transfer", chain.time)
    assert not queries.acting_for(state, key, "Other Co", "doc.register", chain.time)
    assert not queries.acting_for(state, pub("importer"), "Small Farm Co-op", "doc.register", chain.time)
    assert [d["principal"] for d in queries.delegations(state, "exporter")] == ["Small Farm Co-op"]
    chain.ok("exporter", "party.delegate", {"principal": "Small Farm Co-op", "kinds": []})
    assert not queries.acting_for(chain.state, key, "Small Farm Co-op", "doc.register", chain.time)
    chain.refused(
        "UNKNOWN_DELEGATION",
        "exporter",
        "party.delegate",
        {"principal": "Small Farm Co-op", "kinds": [], "expires_at": 0},
    )


def test_delegation_patterns_and_lost_permission(chain: Chain) -> None:
    # The development roles list trade kinds one by one; a council may still grant a pattern.
    bank_kinds = [*queries.role_kinds(chain.state)["bank"], "trade.*"]
    chain.pass_proposal({"type": "set_role_kinds", "role": "bank", "kinds": bank_kinds})
    chain.ok(
        "bank-a", "party.delegate", {"principal": "Tiny Lender", "kinds": ["trade.*"], "expires_at": chain.time + DAY}
    )
    assert queries.acting_for(chain.state, pub("bank-a"), "Tiny Lender", "trade.loan.disburse", chain.time)
    chain.pass_proposal({"type": "revoke_role", "member_id": "bank-a", "role": "bank"})
    assert not queries.acting_for(chain.state, pub("bank-a"), "Tiny Lender", "trade.loan.disburse", chain.time)


def test_delegation_rules(chain: Chain) -> None:
    later = chain.time + DAY
    chain.refused(
        "NOT_PERMITTED", "carrier", "party.delegate", {"principal": "P", "kinds": ["doc.pledge"], "expires_at": later}
    )
    chain.refused(
        "NOT_PERMITTED", "carrier", "party.delegate", {"principal": "P", "kinds": ["doc.*"], "expires_at": later}
    )
    chain.refused(
        "INVALID_PAYLOAD",
        "carrier",
        "party.delegate",
        {"principal": "P", "principal_key": pub("importer"), "kinds": ["doc.event"], "expires_at": later},
    )
    chain.refused(
        "INVALID_PAYLOAD",
        "carrier",
        "party.delegate",
        {"principal": "P", "kinds": ["doc.event"], "expires_at": chain.time},
    )
    chain.refused(
        "INVALID_PAYLOAD", "carrier", "party.delegate", {"principal": "P", "kinds": ["*"], "expires_at": later}
    )
    missing_expiry = chain.refused(
        "INVALID_PAYLOAD", "carrier", "party.delegate", {"principal": "P", "kinds": ["doc.event"]}
    )
    assert missing_expiry.message.startswith("expires_at:")


def test_outcomes_are_values_never_exceptions(chain: Chain) -> None:
    for payload in [None, 3, "x", {"member_id": None}, {"keys": [{"public_key": 1}]}]:
        outcome = chain.one("bank-a", "party.register", payload)  # type: ignore[arg-type]
        assert isinstance(outcome, Rejected) and outcome.code == "INVALID_PAYLOAD"
    assert isinstance(chain.one("bank-a", "party.register", register_payload("acme", ["acme"])), Accepted)
