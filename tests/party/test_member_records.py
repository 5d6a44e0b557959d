"""What party records about members, and the exact bounds of its time checks: a registration's
record and history, the refusals that tell a rotated-out key from an unknown one, KYC and
delegation expiries at their first and last allowed instant, and node keys that stay taken
after a rotation.

Found by mutmut over ``services/party/domain.py`` and ``events.py``: the rules decided right,
but no test read these fields or stood on these instants."""

from __future__ import annotations

from typing import Any

import pytest

from tests.party.kit import Chain, agreement_payload, node_payload, pub, register_payload, rotate_payload
from traco.core.domain import Accepted
from traco.services.party import queries
from traco.services.party.models import MAX_DELEGATION_MS, MAX_KYC_VALIDITY_MS

STEP = 1000
"""How far each block of the kit moves the clock: a transaction runs at ``chain.time + STEP``."""


@pytest.fixture
def chain() -> Chain:
    return Chain.dev()


def test_a_registration_records_the_organisation_and_who_sponsored_it(chain: Chain) -> None:
    payload = register_payload("acme", ["acme"], organisation="Acme Trading", jurisdiction="NL", name="Acme")
    accepted = chain.ok("bank-a", "party.register", payload)
    (event,) = accepted.events
    assert event.aggregate_id == "member:acme"
    record = queries.member_by_id(chain.state, "acme")
    assert record is not None
    assert (record["organisation"], record["jurisdiction"], record["status"]) == ("Acme Trading", "NL", "applied")
    (entry,) = queries.history(chain.state, "acme")
    assert entry["type"] == "MemberRegistered" and (entry["height"], entry["time"]) == (chain.height, chain.time)
    assert entry["data"]["sponsor"] == "bank-a" and entry["data"]["sponsor_key"] == pub("bank-a")
    assert not {"height", "index", "time"} & set(entry["data"]), "the position is the entry's, not repeated in data"


def test_a_refused_sender_is_told_whether_its_key_was_rotated_out_or_never_known(chain: Chain) -> None:
    chain.ok("carrier", "party.key.rotate", rotate_payload("carrier", "carrier", "carrier-2", overlap_ms=0))
    agreement = agreement_payload("ab" * 32, ["carrier", "importer"])
    gone = chain.refused("NOT_A_MEMBER", "carrier", "party.agreement", agreement)
    assert gone.message == f"sender key {pub('carrier')[:16]}… was rotated out"
    stranger = chain.refused("NOT_A_MEMBER", "stranger", "party.agreement", agreement)
    assert stranger.message == f"sender key {pub('stranger')[:16]}… belongs to no member"
    denied = chain.refused("NOT_PERMITTED", "exporter", "party.vote", {"proposal_id": 1, "choice": "yes"})
    roles = ", ".join(queries.member_by_id(chain.state, "exporter")["roles"])  # type: ignore[index]
    assert denied.message == f"member 'exporter' (roles: {roles}) may not submit party.vote"


def test_a_rotated_key_and_an_agreement_are_keyed_by_what_they_change(chain: Chain) -> None:
    rotated = chain.ok("carrier", "party.key.rotate", rotate_payload("carrier", "carrier", "carrier-2"))
    assert [e.aggregate_id for e in rotated.events] == ["member:carrier"]
    digest = "cd" * 32
    recorded = chain.ok(
        "exporter", "party.agreement", {**agreement_payload(digest, ["exporter", "importer"]), "title": "Terms"}
    )
    assert [e.aggregate_id for e in recorded.events] == [f"agreement:{digest}"]
    assert recorded.result == {"agreement_hash": digest}
    found = queries.agreement(chain.state, digest)
    assert found is not None and found["title"] == "Terms"


@pytest.mark.parametrize(("offset", "accepted"), [(0, False), (1, True), (MAX_KYC_VALIDITY_MS, True)])
def test_kyc_expires_after_the_block_time_and_no_later_than_the_longest_validity(
    chain: Chain, offset: int, accepted: bool
) -> None:
    at = chain.time + STEP
    payload = {"member_id": "exporter", "status": "verified", "expires_at": at + offset}
    outcome = chain.one("kyc", "party.kyc", payload)
    assert isinstance(outcome, Accepted) is accepted, outcome
    if accepted:
        assert isinstance(outcome, Accepted)
        assert outcome.result == {"member_id": "exporter", "status": "verified"}
        assert [e.aggregate_id for e in outcome.events] == ["member:exporter"]


def test_kyc_beyond_the_longest_validity_is_refused(chain: Chain) -> None:
    payload = {"member_id": "exporter", "status": "verified", "expires_at": chain.time + STEP + MAX_KYC_VALIDITY_MS + 1}
    chain.refused("INVALID_PAYLOAD", "kyc", "party.kyc", payload)


@pytest.mark.parametrize(
    ("offset", "accepted"), [(0, False), (1, True), (MAX_DELEGATION_MS, True), (MAX_DELEGATION_MS + 1, False)]
)
def test_a_delegation_expires_after_the_block_time_and_no_later_than_the_longest_term(
    chain: Chain, offset: int, accepted: bool
) -> None:
    expires = chain.time + STEP + offset
    payload: dict[str, Any] = {"principal": "Farm", "principal_key": pub("farm"), "kinds": ["doc.register"]}
    outcome = chain.one("exporter", "party.delegate", {**payload, "expires_at": expires})
    assert isinstance(outcome, Accepted) is accepted, outcome
    if accepted:
        assert isinstance(outcome, Accepted)
        assert outcome.result == {"member_id": "exporter", "expires_at": expires}
        (event,) = outcome.events
        assert event.data["principal_key"] == pub("farm")
        aggregate = event.aggregate_id
        revoked = chain.ok("exporter", "party.delegate", {"principal": "Farm", "kinds": []})
        assert revoked.result == {"revoked": True}
        assert [e.aggregate_id for e in revoked.events] == [aggregate] and aggregate.startswith("delegation:exporter:")


def test_a_key_a_node_rotated_to_is_taken_for_every_other_node(chain: Chain) -> None:
    registered = chain.ok("bank-a", "party.node.register", node_payload("bank-a", "a-1", "node-key-1"))
    assert [e.aggregate_id for e in registered.events] == ["node:a-1"]
    chain.ok("bank-a", "party.node.rotate", node_payload("bank-a", "a-1", "node-key-2", "new_key"))
    chain.refused("ALREADY_REGISTERED", "bank-b", "party.node.register", node_payload("bank-b", "b-1", "node-key-2"))
    chain.ok("bank-b", "party.node.register", node_payload("bank-b", "b-1", "node-key-3"))
    chain.refused(
        "ALREADY_REGISTERED", "bank-b", "party.node.rotate", node_payload("bank-b", "b-1", "node-key-2", "new_key")
    )


def test_a_node_key_rotation_names_the_member_and_the_key_it_replaces(chain: Chain) -> None:
    chain.ok("bank-a", "party.node.register", node_payload("bank-a", "a-1", "node-key-1"))
    rotated = chain.ok("bank-a", "party.node.rotate", node_payload("bank-a", "a-1", "node-key-2", "new_key"))
    (event,) = rotated.events
    assert event.type == "NodeKeyRotated" and event.aggregate_id == "node:a-1"
    assert {k: event.data[k] for k in ("node_id", "member_id", "old_key", "new_key")} == {
        "node_id": "a-1",
        "member_id": "bank-a",
        "old_key": pub("node-key-1"),
        "new_key": pub("node-key-2"),
    }
