"""Named mutants of party's governance and membership rules (the validator set and the
council live there: architecture, Consensus and Nodes).

An upgrade that does not move a rule version up, a council left without the kinds it governs
with, the last council member removed, a KYC or a delegation in force from the block it
expires at, a node key that stays free after a node rotated to it."""

from __future__ import annotations

from mutants_consensus import Mutant

GOVERNANCE = "services/party/governance.py"
DOMAIN = "services/party/domain.py"
EVENTS = "services/party/events.py"
RECORDS = "tests/party/test_governance_records.py"
MEMBERS = "tests/party/test_member_records.py"

PARTY_MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "upgrade-same-rules-version",
        "party: an upgrade may schedule the rule version already scheduled",
        GOVERNANCE,
        "        if current is not None and version <= current:",
        "        if current is not None and version < current:",
        (f"{RECORDS}::test_each_refusal_of_an_upgrade_stands_alone_and_all_are_named_at_once",),
    ),
    Mutant(
        "council-loses-governance-kinds",
        "party: the council's role table may drop party.propose or party.vote",
        GOVERNANCE,
        "            if role == queries.COUNCIL_ROLE and not all(kind_matches(kinds, k) for k in GOVERNANCE_KINDS):",
        "            if role == queries.COUNCIL_ROLE and not any(kind_matches(kinds, k) for k in GOVERNANCE_KINDS):",
        (f"{RECORDS}::test_the_council_may_be_given_more_kinds_but_never_lose_its_governance_kinds",),
    ),
    Mutant(
        "last-council-member-removed",
        "party: the last council member may be suspended or lose the council role",
        GOVERNANCE,
        "    if queries.council(view, time) == [member_id]:",
        "    if False:",
        ("tests/party/test_governance.py::test_the_council_cannot_vote_itself_out_of_existence",),
    ),
    Mutant(
        "kyc-expiring-at-once",
        "party: a KYC attestation may expire at the very block that records it",
        DOMAIN,
        "    if not tx.time < p.expires_at <= tx.time + MAX_KYC_VALIDITY_MS:",
        "    if not tx.time <= p.expires_at <= tx.time + MAX_KYC_VALIDITY_MS:",
        (f"{MEMBERS}::test_kyc_expires_after_the_block_time_and_no_later_than_the_longest_validity",),
    ),
    Mutant(
        "delegation-past-longest-term",
        "party: a delegation may run one millisecond past its longest term",
        DOMAIN,
        "    if p.expires_at is None or not tx.time < p.expires_at <= tx.time + MAX_DELEGATION_MS:",
        "    if p.expires_at is None or not tx.time < p.expires_at <= tx.time + MAX_DELEGATION_MS + 1:",
        (f"{MEMBERS}::test_a_delegation_expires_after_the_block_time_and_no_later_than_the_longest_term",),
    ),
    Mutant(
        "rotated-node-key-left-free",
        "party: a key a node rotated to stays free for another node to register",
        EVENTS,
        'keys.node_key(data["new_key"]): encode(data["node_id"])}',
        'keys.node_key(data["node_id"]): encode(data["node_id"])}',
        (f"{MEMBERS}::test_a_key_a_node_rotated_to_is_taken_for_every_other_node",),
    ),
)
