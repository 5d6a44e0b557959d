"""Council governance: proposals, votes, deadlines, rule changes and what passing a proposal does."""

from __future__ import annotations

import pytest

from tests.party.kit import DAY, Chain, pub, register_payload, rotate_payload
from traco.core.domain import Accepted
from traco.services.party import queries
from traco.services.party.genesis import GenesisMember, PartyGenesis, genesis_state
from traco.services.party.governance import decide
from traco.services.party.models import DEFAULT_RULES

MAJORITY = DEFAULT_RULES.model_dump()


@pytest.fixture
def chain() -> Chain:
    return Chain.dev()


def status(chain: Chain, pid: int) -> str:
    record = queries.proposal(chain.state, pid, chain.time)
    assert record is not None
    return str(record["status"])


# --------------------------------------------------------------------------- the tally rule


@pytest.mark.parametrize(
    ("size", "yes", "no", "abstain", "expected"),
    [
        (3, 1, 0, 0, "open"),
        (3, 2, 0, 0, "passed"),
        (3, 1, 1, 0, "open"),
        (3, 1, 2, 0, "rejected"),
        (3, 1, 1, 1, "rejected"),
        (4, 2, 0, 0, "open"),  # half is not a strict majority
        (4, 2, 2, 0, "rejected"),
        (4, 3, 1, 0, "passed"),
        (1, 1, 0, 0, "passed"),
        (1, 0, 1, 0, "rejected"),
    ],
)
def test_default_rule_is_strict_majority_of_all_council(
    size: int, yes: int, no: int, abstain: int, expected: str
) -> None:
    assert decide(size, MAJORITY, yes, no, abstain) == expected


def test_quorum_holds_a_majority_back_until_enough_votes_are_cast() -> None:
    rules = {**MAJORITY, "quorum": 4}
    assert decide(5, rules, 3, 0, 0) == "open"
    assert decide(5, rules, 3, 0, 1) == "passed"
    assert decide(3, rules, 2, 0, 0) == "open"  # quorum is capped at the council size
    assert decide(3, rules, 2, 1, 0) == "passed"


# --------------------------------------------------------------------------- proposals


def test_admit_member_by_majority(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"], roles=["exporter", "bank"]))
    proposed = chain.ok("council-1", "party.propose", {"action": {"type": "admit_member", "member_id": "acme"}})
    pid = proposed.result["proposal_id"]
    assert proposed.result["council"] == ["council-1", "council-2", "council-3"]
    assert proposed.result["deadline"] == chain.time + MAJORITY["timeout_ms"]
    first = chain.vote("council-1", pid)
    assert isinstance(first, Accepted) and first.result == {
        "proposal_id": pid,
        "status": "open",
        "yes": 1,
        "no": 0,
        "abstain": 0,
    }
    assert not queries.is_admitted(chain.state, pub("acme"), chain.time)
    second = chain.vote("council-3", pid)
    assert isinstance(second, Accepted) and second.result["status"] == "passed"
    assert [e.type for e in second.events] == ["VoteCast", "ProposalPassed", "MemberAdmitted"]
    assert queries.roles_of(chain.state, pub("acme"), chain.time) == {"exporter", "bank"}
    record = queries.proposal(chain.state, pid, chain.time)
    assert record is not None
    assert record["votes"] == {"council-1": "yes", "council-3": "yes"} and record["closed_height"] == chain.height
    chain.refused("PROPOSAL_CLOSED", "council-2", "party.vote", {"proposal_id": pid, "choice": "yes"})


def test_admission_can_override_roles_applied_for(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"], roles=["exporter", "bank"]))
    chain.pass_proposal({"type": "admit_member", "member_id": "acme", "roles": ["exporter"]})
    assert queries.roles_of(chain.state, pub("acme"), chain.time) == {"exporter"}


def test_proposal_is_rejected_once_it_cannot_pass(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"]))
    pid = chain.propose("council-1", {"type": "admit_member", "member_id": "acme"})
    chain.vote("council-1", pid, "no")
    closing = chain.vote("council-2", pid, "abstain")
    assert isinstance(closing, Accepted) and closing.result["status"] == "rejected"
    assert status(chain, pid) == "rejected"
    assert not queries.is_admitted(chain.state, pub("acme"), chain.time)
    chain.refused("PROPOSAL_CLOSED", "council-3", "party.vote", {"proposal_id": pid, "choice": "yes"})


def test_votes_after_the_deadline_are_refused(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"]))
    pid = chain.propose("council-1", {"type": "admit_member", "member_id": "acme"})
    record = queries.proposal(chain.state, pid, chain.time)
    assert record is not None
    chain.vote("council-1", pid)
    chain.refused(
        "PROPOSAL_EXPIRED",
        "council-2",
        "party.vote",
        {"proposal_id": pid, "choice": "yes"},
        advance=MAJORITY["timeout_ms"],
    )
    assert chain.time > record["deadline"]
    assert status(chain, pid) == "expired"
    assert queries.proposals(chain.state, chain.time, status="expired")[0]["proposal_id"] == pid
    assert not queries.is_admitted(chain.state, pub("acme"), chain.time)


def test_a_vote_at_exactly_the_deadline_counts(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"]))
    pid = chain.propose("council-1", {"type": "admit_member", "member_id": "acme"})
    chain.vote("council-1", pid, advance=0)
    assert isinstance(chain.vote("council-2", pid, advance=MAJORITY["timeout_ms"]), Accepted)
    assert queries.is_admitted(chain.state, pub("acme"), chain.time)


def test_each_council_member_votes_once_whatever_key_it_uses(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"]))
    pid = chain.propose("council-1", {"type": "admit_member", "member_id": "acme"})
    chain.vote("council-1", pid, "no")
    chain.refused("ALREADY_VOTED", "council-1", "party.vote", {"proposal_id": pid, "choice": "yes"})
    chain.ok("council-1", "party.key.rotate", rotate_payload("council-1", "council-1", "council-1b"))
    chain.refused("ALREADY_VOTED", "council-1b", "party.vote", {"proposal_id": pid, "choice": "yes"})


def test_vote_rules(chain: Chain) -> None:
    chain.refused("UNKNOWN_PROPOSAL", "council-1", "party.vote", {"proposal_id": 99, "choice": "yes"})
    chain.refused("INVALID_PAYLOAD", "council-1", "party.vote", {"proposal_id": 1, "choice": "maybe"})
    chain.refused("NOT_PERMITTED", "exporter", "party.vote", {"proposal_id": 1, "choice": "yes"})
    chain.refused(
        "NOT_PERMITTED", "exporter", "party.propose", {"action": {"type": "suspend_member", "member_id": "bank-b"}}
    )


def test_only_the_council_at_proposal_time_votes(chain: Chain) -> None:
    pid = chain.propose("council-1", {"type": "grant_role", "member_id": "exporter", "role": "insurer"})
    chain.pass_proposal({"type": "grant_role", "member_id": "bank-b", "role": "council"})
    assert queries.council(chain.state, chain.time) == ["bank-b", "council-1", "council-2", "council-3"]
    chain.refused("NOT_PERMITTED", "bank-b", "party.vote", {"proposal_id": pid, "choice": "yes"})
    # ... while a new proposal counts the new council of four: 2 yes are no longer enough.
    pid2 = chain.propose("bank-b", {"type": "grant_role", "member_id": "exporter", "role": "factor"})
    chain.vote("council-1", pid2)
    assert isinstance(outcome := chain.vote("bank-b", pid2), Accepted) and outcome.result["status"] == "open"
    assert isinstance(outcome := chain.vote("council-3", pid2), Accepted) and outcome.result["status"] == "passed"


def test_proposals_are_numbered_in_order_and_checked_when_made(chain: Chain) -> None:
    assert chain.propose("council-1", {"type": "suspend_member", "member_id": "bank-b"}) == 1
    assert chain.propose("council-2", {"type": "suspend_member", "member_id": "carrier"}) == 2
    assert [p["proposal_id"] for p in queries.proposals(chain.state, chain.time)] == [1, 2]
    refusals = [
        ("UNKNOWN_MEMBER", {"type": "admit_member", "member_id": "nobody"}),
        ("INVALID_ACTION", {"type": "admit_member", "member_id": "exporter"}),
        ("UNKNOWN_ROLE", {"type": "grant_role", "member_id": "exporter", "role": "pirate"}),
        ("INVALID_ACTION", {"type": "grant_role", "member_id": "exporter", "role": "exporter"}),
        ("INVALID_ACTION", {"type": "revoke_role", "member_id": "exporter", "role": "bank"}),
        ("UNKNOWN_VALIDATOR", {"type": "remove_validator", "public_key": pub("nobody")}),
        ("INVALID_ACTION", {"type": "add_validator", "public_key": pub("validator-0"), "power": 1}),
        ("INVALID_ACTION", {"type": "set_role_kinds", "role": "council", "kinds": ["party.vote"]}),
        (
            "INVALID_PAYLOAD",
            {"type": "set_rules", "rules": {"quorum": 1, "threshold_num": 1, "threshold_den": 3, "timeout_ms": 5}},
        ),
        (
            "INVALID_PAYLOAD",
            {"type": "set_rules", "rules": {"quorum": 1, "threshold_num": 2, "threshold_den": 2, "timeout_ms": 5}},
        ),
        ("INVALID_PAYLOAD", {"type": "launch_rockets"}),
    ]
    for code, action in refusals:
        chain.refused(code, "council-1", "party.propose", {"action": action})


# --------------------------------------------------------------------------- what passing does


def test_changing_the_rules_is_a_vote_and_then_governs_new_proposals(chain: Chain) -> None:
    unanimous = {"quorum": 3, "threshold_num": 2, "threshold_den": 3, "timeout_ms": DAY}
    old_rules_pid = chain.propose("council-1", {"type": "grant_role", "member_id": "exporter", "role": "insurer"})
    chain.pass_proposal({"type": "set_rules", "rules": unanimous})
    assert queries.rules(chain.state) == unanimous
    # An open proposal keeps the rules it was made under: two yes still carry it.
    chain.vote("council-1", old_rules_pid)
    assert (
        isinstance(outcome := chain.vote("council-2", old_rules_pid), Accepted) and outcome.result["status"] == "passed"
    )
    # A new one needs all three (2/3 of 3 is not enough: yes * 3 must exceed 2 * 3).
    pid = chain.propose("council-1", {"type": "grant_role", "member_id": "exporter", "role": "factor"})
    record = queries.proposal(chain.state, pid, chain.time)
    assert record is not None and record["rules"] == unanimous and record["deadline"] == chain.time + DAY
    chain.vote("council-1", pid)
    assert isinstance(outcome := chain.vote("council-2", pid), Accepted) and outcome.result["status"] == "open"
    assert isinstance(outcome := chain.vote("council-3", pid), Accepted) and outcome.result["status"] == "passed"
    assert "factor" in queries.roles_of(chain.state, pub("exporter"), chain.time)


def test_validator_changes_take_effect_two_heights_later(chain: Chain) -> None:
    before = queries.validator_set(chain.state, chain.height)
    assert before == sorted((pub(f"validator-{i}"), 1) for i in range(4))
    chain.pass_proposal({"type": "add_validator", "public_key": pub("validator-new"), "power": 3})
    h = chain.height
    assert queries.validator_set(chain.state, h) == before
    assert queries.validator_set(chain.state, h + 1) == before
    assert queries.validator_set(chain.state, h + 2) == sorted([*before, (pub("validator-new"), 3)])

    chain.pass_proposal({"type": "remove_validator", "public_key": pub("validator-0")})
    h2 = chain.height
    assert (pub("validator-0"), 1) in queries.validator_set(chain.state, h2 + 1)
    after = queries.validator_set(chain.state, h2 + 2)
    assert (pub("validator-0"), 1) not in after and len(after) == 4
    # History stays answerable: the set at the first height is unchanged.
    assert queries.validator_set(chain.state, 1) == before
    assert queries.scheduled_validators(chain.state) == dict(after)
    chain.pass_proposal({"type": "add_validator", "public_key": pub("validator-new"), "power": 5})
    assert dict(queries.validator_set(chain.state, chain.height + 2))[pub("validator-new")] == 5
    assert dict(queries.validator_set(chain.state, chain.height + 1))[pub("validator-new")] == 3


def test_the_last_validator_cannot_be_removed() -> None:
    chain = Chain.dev(validators={pub("solo"): 1})
    chain.refused(
        "INVALID_ACTION",
        "council-1",
        "party.propose",
        {"action": {"type": "remove_validator", "public_key": pub("solo")}},
    )


def test_revoked_role_loses_permission(chain: Chain) -> None:
    assert queries.may_submit(chain.state, pub("carrier"), "doc.register", chain.time)
    chain.pass_proposal({"type": "revoke_role", "member_id": "carrier", "role": "carrier"})
    assert not queries.may_submit(chain.state, pub("carrier"), "doc.register", chain.time)
    assert queries.roles_of(chain.state, pub("carrier"), chain.time) == frozenset()
    chain.pass_proposal({"type": "grant_role", "member_id": "carrier", "role": "warehouse"})
    assert queries.may_submit(chain.state, pub("carrier"), "doc.register", chain.time)
    assert [h["type"] for h in queries.history(chain.state, "carrier")][-2:] == ["RoleRevoked", "RoleGranted"]


def test_role_table_is_changed_by_vote(chain: Chain) -> None:
    assert not queries.may_submit(chain.state, pub("carrier"), "doc.pledge", chain.time)
    chain.pass_proposal({"type": "set_role_kinds", "role": "carrier", "kinds": ["doc.*", "party.key.rotate"]})
    assert queries.may_submit(chain.state, pub("carrier"), "doc.pledge", chain.time)
    assert not queries.may_submit(chain.state, pub("carrier"), "party.agreement", chain.time)
    assert queries.role_kinds(chain.state)["carrier"] == ["doc.*", "party.key.rotate"]
    chain.pass_proposal({"type": "set_role_kinds", "role": "auditor", "kinds": ["party.agreement"]})
    chain.pass_proposal({"type": "grant_role", "member_id": "carrier", "role": "auditor"})
    assert queries.may_submit(chain.state, pub("carrier"), "party.agreement", chain.time)


def test_suspended_member_cannot_act_and_can_be_reinstated(chain: Chain) -> None:
    chain.pass_proposal({"type": "suspend_member", "member_id": "bank-b"})
    assert not queries.is_admitted(chain.state, pub("bank-b"), chain.time)
    assert queries.member(chain.state, pub("bank-b"), chain.time) is not None
    chain.refused("NOT_A_MEMBER", "bank-b", "party.register", register_payload("acme", ["acme"]))
    chain.pass_proposal({"type": "admit_member", "member_id": "bank-b"})
    assert queries.roles_of(chain.state, pub("bank-b"), chain.time) == {"bank"}


def test_the_council_cannot_vote_itself_out_of_existence() -> None:
    chain = Chain.dev()
    chain.pass_proposal({"type": "revoke_role", "member_id": "council-3", "role": "council"})
    chain.pass_proposal({"type": "suspend_member", "member_id": "council-2"})
    assert queries.council(chain.state, chain.time) == ["council-1"]
    chain.refused(
        "INVALID_ACTION", "council-1", "party.propose", {"action": {"type": "suspend_member", "member_id": "council-1"}}
    )
    chain.refused(
        "INVALID_ACTION",
        "council-1",
        "party.propose",
        {"action": {"type": "revoke_role", "member_id": "council-1", "role": "council"}},
    )
    # A council of one decides alone.
    pid = chain.propose("council-1", {"type": "grant_role", "member_id": "exporter", "role": "insurer"})
    assert isinstance(outcome := chain.vote("council-1", pid), Accepted) and outcome.result["status"] == "passed"


def test_a_proposal_overtaken_by_events_is_voided(chain: Chain) -> None:
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"]))
    first = chain.propose("council-1", {"type": "admit_member", "member_id": "acme"})
    chain.pass_proposal({"type": "admit_member", "member_id": "acme"})
    chain.vote("council-1", first)
    outcome = chain.vote("council-2", first)
    assert isinstance(outcome, Accepted) and outcome.result["status"] == "void"
    assert [e.type for e in outcome.events] == ["VoteCast", "ProposalVoided"]
    record = queries.proposal(chain.state, first, chain.time)
    assert record is not None and record["status"] == "void" and "already admitted" in record["reason"]


def test_no_council_means_no_proposals() -> None:
    bare = PartyGenesis(
        members=(
            GenesisMember(
                name="bank", organisation="Bank", jurisdiction="GB", public_key=pub("bank-a"), roles=["bank"]
            ),
        ),
        role_kinds={"bank": ["party.propose"]},
    )
    lonely = Chain(genesis_state(bare))
    lonely.refused("NO_COUNCIL", "bank-a", "party.propose", {"action": {"type": "suspend_member", "member_id": "bank"}})


def test_business_key_namespaces_are_assigned_by_vote(chain: Chain) -> None:
    assert queries.namespace_owner(chain.state, "maeu") == "carrier"  # the development carrier's, any case
    assert queries.namespace_owner(chain.state, "HLCU") is None
    chain.pass_proposal({"type": "assign_namespace", "namespace": "hlcu", "member_id": "exporter"})
    assert queries.namespace_owner(chain.state, "HLCU") == "exporter"
    chain.refused(
        "INVALID_ACTION",
        "council-1",
        "party.propose",
        {"action": {"type": "assign_namespace", "namespace": "HLCU", "member_id": "exporter"}},
    )
    chain.refused(
        "UNKNOWN_MEMBER",
        "council-1",
        "party.propose",
        {"action": {"type": "assign_namespace", "namespace": "OOLU", "member_id": "nobody"}},
    )
    chain.refused(
        "INVALID_PAYLOAD",
        "council-1",
        "party.propose",
        {"action": {"type": "assign_namespace", "namespace": "bad/namespace", "member_id": "exporter"}},
    )
    chain.pass_proposal({"type": "assign_namespace", "namespace": "HLCU", "member_id": None})
    assert queries.namespace_owner(chain.state, "HLCU") is None
    chain.refused(
        "INVALID_ACTION",
        "council-1",
        "party.propose",
        {"action": {"type": "assign_namespace", "namespace": "HLCU", "member_id": None}},
    )


def test_genesis_refuses_a_namespace_held_twice() -> None:
    def member(name: str) -> GenesisMember:
        return GenesisMember(
            name=name,
            organisation=name,
            jurisdiction="SG",
            public_key=pub(name),
            roles=["carrier"],
            namespaces=("MAEU",) if name == "a" else ("maeu",),
        )

    with pytest.raises(ValueError, match="namespace 'MAEU' appears twice"):
        PartyGenesis(members=(member("a"), member("b")), role_kinds={"carrier": ["doc.*"]})


def test_the_council_sets_the_chains_empty_block_interval(chain: Chain) -> None:
    assert queries.chain_params(chain.state) == {}
    chain.pass_proposal({"type": "set_chain_params", "empty_block_interval_ms": 2500})
    assert queries.chain_params(chain.state) == {"empty_block_interval_ms": 2500}
    chain.refused(
        "INVALID_PAYLOAD",
        "council-1",
        "party.propose",
        {"action": {"type": "set_chain_params", "empty_block_interval_ms": -1}},
    )


def test_an_upgrade_schedules_activations_and_rule_versions_never_sooner_than_two_heights(chain: Chain) -> None:
    section = {"tokens": ["TRC"]}
    upgrade = {"type": "upgrade", "name": "trade-1", "height": 1, "activate": ["trade"], "sections": {"trade": section}}
    chain.pass_proposal({**upgrade, "rules": {"doc": 2}})
    passed_at = chain.height
    assert queries.activation_height(chain.state, "trade") == passed_at + 2  # asked for 1: too late
    assert queries.upgrade_section(chain.state, "trade") == section
    assert queries.activation_height(chain.state, "doc") is None
    assert queries.rules_version(chain.state, "doc", passed_at + 1) is None  # the genesis version stands
    assert queries.rules_version(chain.state, "doc", passed_at + 2) == 2
    later = passed_at + 100
    chain.pass_proposal({"type": "upgrade", "name": "doc-3", "height": later, "rules": {"doc": 3}})
    assert [queries.rules_version(chain.state, "doc", h) for h in (later - 1, later)] == [2, 3]
    chain.refused(
        "INVALID_ACTION",
        "council-1",
        "party.propose",
        {"action": {"type": "upgrade", "name": "trade-1", "height": later, "activate": ["trade"], "rules": {"doc": 3}}},
    )
    chain.refused(
        "INVALID_PAYLOAD",
        "council-1",
        "party.propose",
        {"action": {"type": "upgrade", "name": "empty", "height": later, "sections": {"map": {}}}},
    )
