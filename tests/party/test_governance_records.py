"""What governance writes down, and the edges of its checks: each event's aggregate (the Kafka
key integrators group by), the proposal's and the vote's records, every refusal of an upgrade
on its own, the service parameter's size bound, and the roles an admission grants.

Found by mutmut over ``services/party/{governance,events,domain}.py``: the rules decided
right, but no test read these records, so a proposal that forgot its proposer, or events that
lost their aggregate, passed every test."""

from __future__ import annotations

from typing import Any

import pytest

from tests.party.kit import Chain, pub, register_payload
from traco.core.domain import Accepted, encode
from traco.services.party import queries
from traco.services.party.governance import MAX_SERVICE_PARAM_BYTES


@pytest.fixture
def chain() -> Chain:
    return Chain.dev()


def passing_events(chain: Chain, action: dict[str, Any]) -> list[tuple[str, str]]:
    """``(type, aggregate)`` of the events of the vote that carries ``action``."""
    chain.pass_proposal(action)
    _, outcome = chain.log[-1]  # the deciding vote
    assert isinstance(outcome, Accepted)
    return [(e.type, e.aggregate_id) for e in outcome.events]


def test_every_governance_event_is_keyed_by_what_it_changes(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"], roles=["exporter"]))
    passed = [("VoteCast", "proposal:1"), ("ProposalPassed", "proposal:1")]
    assert passing_events(chain, {"type": "admit_member", "member_id": "acme"}) == [
        *passed,
        ("MemberAdmitted", "member:acme"),
    ]
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({"type": "grant_role", "member_id": "acme", "role": "insurer"}, ("RoleGranted", "member:acme")),
        ({"type": "revoke_role", "member_id": "acme", "role": "insurer"}, ("RoleRevoked", "member:acme")),
        ({"type": "suspend_member", "member_id": "acme"}, ("MemberSuspended", "member:acme")),
        (
            {"type": "add_validator", "public_key": pub("v-new"), "power": 3},
            ("ValidatorAdded", f"validator:{pub('v-new')}"),
        ),
        ({"type": "remove_validator", "public_key": pub("v-new")}, ("ValidatorRemoved", f"validator:{pub('v-new')}")),
        (
            {"type": "assign_namespace", "namespace": "hlcu", "member_id": "exporter"},
            ("NamespaceAssigned", "namespace:HLCU"),
        ),
        ({"type": "set_role_kinds", "role": "insurer", "kinds": ["doc.register"]}, ("RoleKindsSet", "role:insurer")),
        (
            {"type": "set_rules", "rules": {"quorum": 1, "threshold_num": 1, "threshold_den": 2, "timeout_ms": 9_000}},
            ("RulesSet", "rules"),
        ),
        ({"type": "set_chain_params", "empty_block_interval_ms": 2_500}, ("ChainParamsSet", "chain_params")),
        (
            {"type": "upgrade", "name": "doc-2", "height": 50, "rules": {"doc": 2}},
            ("UpgradeScheduled", "upgrade:doc-2"),
        ),
    ]
    for n, (action, caused) in enumerate(cases, start=2):
        assert passing_events(chain, action) == [
            ("VoteCast", f"proposal:{n}"),
            ("ProposalPassed", f"proposal:{n}"),
            caused,
        ], action


def test_a_service_parameter_is_keyed_by_its_service() -> None:
    chain = Chain.dev(rules=2)
    action = {"type": "set_service_param", "service": "trade", "key": "trc", "value": {"max_reserve_age_ms": 1}}
    assert passing_events(chain, action)[-1] == ("ServiceParamSet", "service:trade")


def test_a_proposal_records_who_made_it_and_how_it_closed(chain: Chain) -> None:
    action = {"type": "grant_role", "member_id": "exporter", "role": "insurer"}
    made_at = chain.time + 1000
    pid = int(
        chain.ok("council-1", "party.propose", {"action": action, "description": "insure the exporter"}).result[
            "proposal_id"
        ]
    )
    record = queries.proposal(chain.state, pid, chain.time)
    assert record is not None
    assert {k: record[k] for k in ("proposer", "proposer_key", "description", "created_at", "status")} == {
        "proposer": "council-1",
        "proposer_key": pub("council-1"),
        "description": "insure the exporter",
        "created_at": made_at,
        "status": "open",
    }
    cast = chain.vote("council-2", pid, "no")
    assert isinstance(cast, Accepted)
    (event,) = cast.events
    assert event.type == "VoteCast" and event.data["key"] == pub("council-2")  # which key signed, for the audit
    closing = chain.vote("council-3", pid, "no")
    assert isinstance(closing, Accepted)
    assert [e.type for e in closing.events] == ["VoteCast", "ProposalRejected"]
    reason = "the remaining votes can no longer reach the threshold"
    assert closing.events[1].data["reason"] == reason
    record = queries.proposal(chain.state, pid, chain.time)
    assert record is not None
    assert (record["status"], record["reason"], record["closed_at"], record["closed_height"]) == (
        "rejected",
        reason,
        chain.time,
        chain.height,
    )


def test_each_refusal_of_an_upgrade_stands_alone_and_all_are_named_at_once(chain: Chain) -> None:
    far = 500  # beyond the 2 * 53 = 106 a mistyped bound would look at
    chain.pass_proposal({"type": "upgrade", "name": "trade-on", "height": 1, "activate": ["trade"]})
    chain.pass_proposal({"type": "upgrade", "name": "doc-2", "height": far, "rules": {"doc": 2}})

    def refused(action: dict[str, Any]) -> str:
        return chain.refused("INVALID_ACTION", "council-1", "party.propose", {"action": action}).message

    assert refused({"type": "upgrade", "name": "doc-2", "height": far + 1, "rules": {"doc": 3}}) == (
        "an upgrade named 'doc-2' exists"
    )
    assert refused({"type": "upgrade", "name": "again", "height": far + 1, "activate": ["trade"]}) == (
        "trade is already activated"
    )
    assert refused({"type": "upgrade", "name": "same", "height": far + 1, "rules": {"doc": 2}}) == (
        "doc rules version 2 is not after the scheduled 2"
    )
    everything = {"type": "upgrade", "name": "doc-2", "height": far + 1, "activate": ["trade"], "rules": {"doc": 2}}
    assert refused(everything) == (
        "an upgrade named 'doc-2' exists; trade is already activated; doc rules version 2 is not after the scheduled 2"
    )
    chain.pass_proposal({"type": "upgrade", "name": "doc-3", "height": far + 1, "rules": {"doc": 3}})


def test_a_service_parameter_may_be_exactly_the_largest_allowed() -> None:
    chain = Chain.dev(rules=2)
    base = {"type": "set_service_param", "service": "trade", "key": "big"}
    overhead = len(encode({"v": ""}))
    largest = {"v": "x" * (MAX_SERVICE_PARAM_BYTES - overhead)}
    assert len(encode(largest)) == MAX_SERVICE_PARAM_BYTES
    chain.pass_proposal({**base, "value": largest})
    assert queries.service_param(chain.state, "trade", "big") == largest
    too_big = {"v": "x" * (MAX_SERVICE_PARAM_BYTES - overhead + 1)}
    refused = chain.refused("INVALID_ACTION", "council-1", "party.propose", {"action": {**base, "value": too_big}})
    assert refused.message == f"value: at most {MAX_SERVICE_PARAM_BYTES} bytes of canonical JSON"


def test_an_admission_checks_the_roles_it_grants_not_those_applied_for(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"], roles=["exporter"]))
    refused = chain.refused(
        "UNKNOWN_ROLE",
        "council-1",
        "party.propose",
        {"action": {"type": "admit_member", "member_id": "acme", "roles": ["exporter", "pirate"]}},
    )
    assert refused.message == "role 'pirate' is not in the role table"


def test_a_v2_assignment_frees_only_the_old_spellings_that_are_held() -> None:
    chain = Chain.dev(rules=2)
    assert passing_events(chain, {"type": "assign_namespace", "namespace": "hlcu", "member_id": "exporter"})[2:] == [
        ("NamespaceAssigned", "namespace:HLCU")
    ]
    # reassigned: the canonical spelling is held, and it is assigned, not freed first
    assert passing_events(chain, {"type": "assign_namespace", "namespace": "HLCU", "member_id": "importer"})[2:] == [
        ("NamespaceAssigned", "namespace:HLCU")
    ]
    assert queries.namespace_owner(chain.state, "hlcu") == "importer"


def test_an_upgrade_records_its_terms_without_the_actions_own_fields(chain: Chain) -> None:
    action = {"type": "upgrade", "name": "doc-2", "height": 40, "rules": {"doc": 2}}
    created = chain.ok("council-1", "party.propose", {"action": action})
    pid = created.result["proposal_id"]
    assert [(e.type, e.aggregate_id) for e in created.events] == [("ProposalCreated", f"proposal:{pid}")]
    chain.vote("council-1", pid)
    outcome = chain.vote("council-2", pid)
    assert isinstance(outcome, Accepted)
    scheduled = outcome.events[-1]
    assert scheduled.type == "UpgradeScheduled"
    assert scheduled.data["height"] == chain.height  # the event's position, not the height asked for
    assert scheduled.data["from_height"] == 40
    assert "type" not in scheduled.data and scheduled.data["rules"] == {"doc": 2}


def test_the_council_may_be_given_more_kinds_but_never_lose_its_governance_kinds(chain: Chain) -> None:
    kinds = ["party.propose", "party.vote", "party.kyc"]
    chain.pass_proposal({"type": "set_role_kinds", "role": "council", "kinds": kinds})
    assert queries.role_kinds(chain.state)["council"] == sorted(kinds)
    refused = chain.refused(
        "INVALID_ACTION",
        "council-1",
        "party.propose",
        {"action": {"type": "set_role_kinds", "role": "council", "kinds": ["party.propose", "party.kyc"]}},
    )
    assert "party.vote" in refused.message


def test_a_voided_proposal_is_keyed_by_its_proposal(chain: Chain) -> None:
    pid = chain.propose("council-1", {"type": "suspend_member", "member_id": "bank-b"})
    chain.pass_proposal({"type": "suspend_member", "member_id": "bank-b"})  # overtakes the first
    chain.vote("council-1", pid)
    outcome = chain.vote("council-2", pid)
    assert isinstance(outcome, Accepted)
    assert [(e.type, e.aggregate_id) for e in outcome.events] == [
        ("VoteCast", f"proposal:{pid}"),
        ("ProposalVoided", f"proposal:{pid}"),
    ]
