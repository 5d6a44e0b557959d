"""Party's rules version 2 (decision 0021), each fix beside version 1's unchanged decision:
rotation only by a key that is not itself rotating out, one canonical namespace form, the KYC
query services enforce with, and the development role table without ``trade.*``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.party.kit import DAY, T0, Chain, dev_genesis, pub, register_payload, rotate_payload
from traco.core.domain import DictState
from traco.schemas.genesis import ChainParams, Genesis, GenesisValidator
from traco.services.consensus.genesis import init_chain
from traco.services.party import queries
from traco.services.party.events import mutate
from traco.services.party.genesis import DEFAULT_ROLE_KINDS, genesis_state, genesis_state_events
from traco.services.party.models import kind_matches
from traco.services.party.state import canonical_namespace, namespace_spellings
from traco.services.trade.domain import TRADE

TRADE_KINDS = frozenset(TRADE.kinds)


def _admit(chain: Chain, member_id: str) -> None:
    chain.pass_proposal({"type": "admit_member", "member_id": member_id})


# --------------------------------------------------------------------------- fix 4: rotation


def _rotating_exporter(rules: int) -> Chain:
    """The exporter has rotated ``exporter`` out (7 days' overlap) in favour of ``exporter-2``."""
    chain = Chain.dev(rules=rules)
    chain.ok("exporter", "party.key.rotate", rotate_payload("exporter", "exporter", "exporter-2"))
    return chain


def test_v1_a_key_in_its_overlap_can_rotate_out_the_members_new_key() -> None:
    chain = _rotating_exporter(rules=1)
    payload = rotate_payload("exporter", "exporter-2", "thief", old_key=pub("exporter-2"))
    chain.ok("exporter", "party.key.rotate", payload)  # version 1's decision, kept for replay
    assert queries.member(chain.state, pub("exporter-2"), chain.time)["valid_until"] is not None  # type: ignore[index]


def test_v2_a_key_in_its_overlap_cannot_rotate_any_key() -> None:
    chain = _rotating_exporter(rules=2)
    payload = rotate_payload("exporter", "exporter-2", "thief", old_key=pub("exporter-2"))
    refused = chain.refused("NOT_PERMITTED", "exporter", "party.key.rotate", payload)
    assert "rotated out" in refused.message
    assert queries.member(chain.state, pub("exporter-2"), chain.time)["valid_until"] is None  # type: ignore[index]
    assert queries.member(chain.state, pub("thief"), chain.time) is None


def test_v2_a_current_key_still_rotates_and_can_revoke_the_old_one_at_once() -> None:
    chain = _rotating_exporter(rules=2)
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme", "acme-2"]))
    _admit(chain, "acme")
    # A member with two current keys: either rotates the other out.
    chain.ok(
        "acme", "party.key.rotate", rotate_payload("acme", "acme-2", "acme-3", old_key=pub("acme-2"), overlap_ms=0)
    )
    assert queries.member(chain.state, pub("acme-2"), chain.time) is None
    # The exporter's fresh key may not re-rotate the old one (already rotating), but rotates itself.
    chain.refused(
        "NOT_PERMITTED",
        "exporter-2",
        "party.key.rotate",
        rotate_payload("exporter", "exporter", "x", old_key=pub("exporter")),
    )
    chain.ok("exporter-2", "party.key.rotate", rotate_payload("exporter", "exporter-2", "exporter-3"))


# --------------------------------------------------------------------------- fix 5: namespaces


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("MAEU", "MAEU"),
        ("nmfta:maeu", "MAEU"),
        ("SMDG:MAEU", "MAEU"),
        ("BIC:MAEU", "MAEU"),
        ("NMFTA:SMDG:MAEU", "MAEU"),
        ("LEI:529900T8BM49AURSDO55", "LEI:529900T8BM49AURSDO55"),
        ("MEMBER:carrier", "MEMBER:CARRIER"),
        ("NMFTA:", "NMFTA:"),
    ],
)
def test_the_canonical_namespace(spelling: str, canonical: str) -> None:
    assert canonical_namespace(spelling) == canonical
    assert namespace_spellings(spelling)[0] == canonical


def test_v1_prefixed_spellings_are_separate_namespaces() -> None:
    chain = Chain.dev(rules=1)
    chain.pass_proposal({"type": "assign_namespace", "namespace": "NMFTA:HLCU", "member_id": "exporter"})
    chain.pass_proposal({"type": "assign_namespace", "namespace": "SMDG:HLCU", "member_id": "importer"})
    assert queries.namespace_owner(chain.state, "NMFTA:HLCU") == "exporter"
    assert queries.namespace_owner(chain.state, "SMDG:HLCU") == "importer"
    assert queries.namespace_owner(chain.state, "HLCU") is None


def test_v2_every_spelling_is_one_namespace_with_one_owner() -> None:
    chain = Chain.dev(rules=2)
    chain.pass_proposal({"type": "assign_namespace", "namespace": "nmfta:hlcu", "member_id": "exporter"})
    assert chain.state.get("namespace/HLCU") is not None and chain.state.get("namespace/NMFTA:HLCU") is None
    for spelling in ("HLCU", "NMFTA:HLCU", "SMDG:HLCU", "bic:hlcu"):
        assert queries.namespace_owners(chain.state, spelling) == ["exporter"]
    proposal = {"action": {"type": "assign_namespace", "namespace": "SMDG:HLCU", "member_id": "exporter"}}
    chain.refused("INVALID_ACTION", "council-1", "party.propose", proposal)  # already the exporter's
    chain.pass_proposal({"type": "assign_namespace", "namespace": "SMDG:HLCU", "member_id": "importer"})
    assert queries.namespace_owners(chain.state, "HLCU") == ["importer"]
    chain.pass_proposal({"type": "assign_namespace", "namespace": "HLCU", "member_id": None})
    assert queries.namespace_owners(chain.state, "NMFTA:HLCU") == []


def test_v2_takes_over_the_spellings_an_upgraded_chain_assigned_under_v1() -> None:
    chain = Chain.dev(rules=1)
    chain.pass_proposal({"type": "assign_namespace", "namespace": "NMFTA:HLCU", "member_id": "exporter"})
    chain.pass_proposal({"type": "assign_namespace", "namespace": "SMDG:HLCU", "member_id": "importer"})
    chain.rules = 2  # the council's upgrade is in force from here
    assert queries.namespace_owners(chain.state, "HLCU") == ["exporter", "importer"]  # both old claims count
    chain.pass_proposal({"type": "assign_namespace", "namespace": "HLCU", "member_id": "carrier"})
    assert queries.namespace_owners(chain.state, "SMDG:HLCU") == ["carrier"]
    assert chain.state.get("namespace/NMFTA:HLCU") is None and chain.state.get("namespace/SMDG:HLCU") is None


def test_genesis_namespaces_by_rules_version() -> None:
    genesis = dev_genesis()  # the carrier holds "MAEU" and "NMFTA:MAEU"
    v1, v2 = genesis_state(genesis, 1), genesis_state(genesis, 2)
    assert v1.get("namespace/MAEU") is not None and v1.get("namespace/NMFTA:MAEU") is not None
    assert v2.get("namespace/MAEU") is not None and v2.get("namespace/NMFTA:MAEU") is None
    assert queries.namespace_owners(v2, "SMDG:MAEU") == ["carrier"]
    clash = genesis.model_copy(
        update={
            "members": (
                *genesis.members,
                genesis.members[0].model_copy(
                    update={"name": "x", "public_key": pub("x"), "namespaces": ("SMDG:MAEU",)}
                ),
            )
        }
    )
    with pytest.raises(ValueError, match="one namespace, one owner"):
        genesis_state(clash, 2)
    genesis_state(clash, 1)  # version 1: separate namespaces, as it always was


def test_a_genesis_file_starts_party_at_its_rules_version() -> None:
    validators = (GenesisValidator(name="v", public_key=pub("validator-0"), power=1),)
    section = dev_genesis({pub("validator-0"): 1}).model_dump(mode="json")

    def state(params: ChainParams) -> DictState:
        chain = Genesis(
            chain_id="c", genesis_time=T0, validators=validators, params=params, extensions={"party": section}
        )
        view = DictState()
        for event in genesis_state_events(section, chain):
            view.apply(mutate(view, event))
        return view

    assert state(ChainParams()).get("namespace/NMFTA:MAEU") is not None
    assert state(ChainParams(rules={"party": 2})).get("namespace/NMFTA:MAEU") is None


# --------------------------------------------------------------------------- fix 6: the KYC query


def test_kyc_problem_names_what_is_missing() -> None:
    chain = Chain.dev(rules=2)
    assert queries.kyc_problem(chain.state, pub("importer"), chain.time) is None  # the founders' genesis KYC
    chain.ok("bank-a", "party.register", register_payload("acme", ["acme"]))
    key = pub("acme")
    assert "no KYC attestation" in (queries.kyc_problem(chain.state, key, chain.time) or "")
    chain.ok("kyc", "party.kyc", {"member_id": "acme", "status": "pending", "expires_at": chain.time + DAY})
    assert "pending, not verified" in (queries.kyc_problem(chain.state, key, chain.time) or "")
    expires = chain.time + 1000 + DAY
    chain.ok("kyc", "party.kyc", {"member_id": "acme", "status": "verified", "expires_at": expires})
    assert queries.kyc_problem(chain.state, key, chain.time) is None
    assert queries.kyc_problem(chain.state, key, expires - 1) is None
    assert "expired" in (queries.kyc_problem(chain.state, key, expires) or "")
    assert "no member" in (queries.kyc_problem(chain.state, pub("stranger"), chain.time) or "")
    assert queries.kyc_valid(chain.state, key, chain.time) == (
        queries.kyc_problem(chain.state, key, chain.time) is None
    )


# --------------------------------------------------------------------------- fix 7: roles per kind


def test_the_development_roles_list_trade_kinds_one_by_one() -> None:
    granted = {kind for kinds in DEFAULT_ROLE_KINDS.values() for kind in kinds}
    assert not any(kind.endswith(".*") for kind in granted), "no role gets a whole service"
    trade = {kind for kind in granted if kind.startswith("trade.")}
    assert trade <= TRADE_KINDS, f"kinds trade does not have: {sorted(trade - TRADE_KINDS)}"
    assert trade == TRADE_KINDS, f"kinds no role may submit: {sorted(TRADE_KINDS - trade)}"
    holders = {role for role, kinds in DEFAULT_ROLE_KINDS.items() if kind_matches(kinds, "trade.trc.mint")}
    assert holders == {"custodian"}
    assert {r for r, k in DEFAULT_ROLE_KINDS.items() if kind_matches(k, "trade.trc.freeze")} == {"regulator"}
    assert not kind_matches(DEFAULT_ROLE_KINDS["exporter"], "trade.trc.attest")
    assert kind_matches(DEFAULT_ROLE_KINDS["exporter"], "trade.transfer")
    assert not any(
        kind_matches(DEFAULT_ROLE_KINDS[r], "trade.transfer") for r in ("carrier", "kyc_provider", "council")
    )
    for role in ("bank", "factor"):
        assert kind_matches(DEFAULT_ROLE_KINDS[role], "doc.pledge.accept")
        assert kind_matches(DEFAULT_ROLE_KINDS[role], "doc.pledge.extend")


# --------------------------------------------------------------------------- new chains


def test_traco_init_starts_party_and_doc_at_version_2(tmp_path: Path) -> None:
    genesis = init_chain(tmp_path, "fresh", 1)
    assert genesis.params.genesis_rules("party") == genesis.params.genesis_rules("doc") == 2
    state = DictState()
    for event in genesis_state_events(genesis.extensions["party"], genesis):
        state.apply(mutate(state, event))
    assert state.get("namespace/MAEU") is not None and state.get("namespace/NMFTA:MAEU") is None
    members = genesis.extensions["party"]["members"]
    assert all(m["kyc"] is not None for m in members if "kyc_provider" not in m["roles"] and m["name"] != "member")


def test_v2_kyc_records_whether_the_member_is_a_qualified_investor() -> None:
    for rules, expected in ((2, True), (1, None)):
        chain = Chain.dev(rules=rules)
        payload = {"member_id": "exporter", "status": "verified", "expires_at": chain.time + 86_400_000}
        if rules == 1:
            chain.refused("INVALID_PAYLOAD", "kyc", "party.kyc", {**payload, "qualified_investor": True})
            chain.ok("kyc", "party.kyc", payload)
        else:
            chain.ok("kyc", "party.kyc", {**payload, "qualified_investor": True})
        record = queries.member_by_id(chain.state, "exporter")
        assert record is not None and record["kyc"].get("qualified_investor") == expected


def test_v2_the_council_sets_a_service_parameter_that_v1_does_not_know() -> None:
    action = {"type": "set_service_param", "service": "trade", "key": "trc", "value": {"max_reserve_age_ms": 3600000}}
    old = Chain.dev(rules=1)
    old.refused("INVALID_PAYLOAD", "council-1", "party.propose", {"action": action})
    chain = Chain.dev(rules=2)
    chain.pass_proposal(action)
    assert queries.service_param(chain.state, "trade", "trc") == {"max_reserve_age_ms": 3600000}
    chain.pass_proposal({**action, "key": "correction/c-1", "value": {"token": "TRC"}})
    assert [k for k, _ in queries.service_params(chain.state, "trade", "correction/")] == ["correction/c-1"]
    chain.pass_proposal({**action, "value": None})
    assert queries.service_param(chain.state, "trade", "trc") is None
