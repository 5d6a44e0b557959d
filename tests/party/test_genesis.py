"""Genesis: the development cast can show every flow without set-up, and genesis replays exactly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.party.kit import dev_genesis, pub
from traco.core.domain import DictState, encode
from traco.services.party import queries
from traco.services.party.domain import PARTY
from traco.services.party.genesis import (
    DEFAULT_ROLE_KINDS,
    DEVELOPMENT_CAST,
    DEVELOPMENT_KYC_UNTIL,
    GenesisMember,
    PartyGenesis,
    development_genesis,
    genesis_events,
    genesis_state,
)
from traco.services.party.models import DEFAULT_RULES

NAMES = [name for name, *_ in DEVELOPMENT_CAST]


def test_development_cast_is_admitted_with_the_obvious_roles() -> None:
    state = genesis_state(dev_genesis())
    t = 0
    cast = ["exporter", "importer", "carrier", "bank-a", "bank-b", "custodian", "custodian-2", "custodian-3", "kyc"]
    assert cast + [f"council-{i}" for i in (1, 2, 3)] == NAMES
    for name in NAMES:
        assert queries.is_admitted(state, pub(name), t), name
        for kind in ("party.register", "party.delegate", "party.agreement", "party.key.rotate"):
            assert queries.may_submit(state, pub(name), kind, t), (name, kind)
    assert queries.roles_of(state, pub("bank-a"), t) == {"bank"}
    assert queries.roles_of(state, pub("kyc"), t) == {"kyc_provider"}
    assert queries.council(state, t) == ["council-1", "council-2", "council-3"]
    assert queries.may_submit(state, pub("carrier"), "doc.register", t)
    assert queries.may_submit(state, pub("carrier"), "doc.transfer", t)
    assert queries.may_submit(state, pub("bank-b"), "doc.pledge", t)
    assert queries.may_submit(state, pub("bank-b"), "doc.release", t)
    assert not queries.may_submit(state, pub("carrier"), "doc.release", t)
    assert queries.may_submit(state, pub("kyc"), "party.kyc", t)
    assert queries.may_submit(state, pub("council-2"), "party.vote", t)
    assert not queries.may_submit(state, pub("exporter"), "party.vote", t)
    assert set(queries.role_kinds(state)) == set(DEFAULT_ROLE_KINDS)
    assert queries.rules(state) == DEFAULT_RULES.model_dump()
    assert queries.validator_set(state, 1) == sorted((pub(f"validator-{i}"), 1) for i in range(4))


def test_member_records_have_the_fixed_layout() -> None:
    state = genesis_state(dev_genesis())
    record = queries.member(state, pub("importer"), 0)
    assert record == {
        "member_id": "importer",
        "name": "importer",
        "organisation": "Rhine Imports GmbH",
        "jurisdiction": "DE",
        "roles": ["importer"],
        "status": "admitted",
        "kyc": {"status": "verified", "provider": pub("kyc"), "expires_at": DEVELOPMENT_KYC_UNTIL},
        "primary_key": pub("importer"),
        "valid_until": None,
    }
    assert state.get(f"member/{pub('importer')}") == encode(record)
    assert state.get("role_kinds/council") == encode(
        {
            "kinds": [
                "party.agreement",
                "party.delegate",
                "party.key.rotate",
                "party.node.register",
                "party.node.rotate",
                "party.propose",
                "party.register",
                "party.vote",
            ]
        }
    )


def test_genesis_is_reproducible_byte_for_byte() -> None:
    pg = dev_genesis()
    assert PartyGenesis.model_validate_json(pg.model_dump_json()) == pg
    one, two = genesis_state(pg), DictState()
    for event in genesis_events(pg):
        assert event.version == 1 and encode(dict(event.data))
        two.apply(PARTY.mutate(two, event))
    assert dict(one.scan("")) == dict(two.scan(""))
    assert all(e.data["height"] == 0 and e.data["index"] == i for i, e in enumerate(genesis_events(pg)))


def test_development_genesis_needs_every_key() -> None:
    with pytest.raises(ValueError, match="bank-b"):
        development_genesis({n: pub(n) for n in NAMES if n != "bank-b"})


@pytest.mark.parametrize(
    "members",
    [
        ({"name": "a", "public_key": pub("a")}, {"name": "a", "public_key": pub("b")}),
        ({"name": "a", "public_key": pub("a")}, {"name": "b", "public_key": pub("a")}),
        ({"name": "a", "public_key": pub("a"), "roles": ["pirate"]},),
        ({"name": "Not A Slug", "public_key": pub("a")},),
    ],
)
def test_inconsistent_genesis_is_refused(members: tuple[dict[str, object], ...]) -> None:
    full = [{"organisation": "Org", "jurisdiction": "GB", "roles": ["bank"], **m} for m in members]
    with pytest.raises(ValidationError):
        PartyGenesis(members=tuple(GenesisMember.model_validate(m) for m in full), role_kinds={"bank": ["doc.pledge"]})
