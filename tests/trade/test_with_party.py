"""The trade rules against party's real state: party's development genesis (its own events, its
role table, its founders' KYC) rather than a hand-built view, so a change in party's layout or
role table that breaks trade's reads shows here."""

from __future__ import annotations

from tests.trade.helpers import Actor, Cast, Chain, MemberSpec
from traco.core.domain import DictState
from traco.services.party import genesis as party_genesis
from traco.services.trade import genesis as trade_genesis


def real_party() -> tuple[Cast, DictState]:
    cast = Cast()
    cast.specs = {}
    for name, _, _, roles in party_genesis.DEVELOPMENT_CAST:
        cast.specs[Actor.named(name)] = MemberSpec(name, roles)
    keys = {spec.member_id: actor.key for actor, spec in cast.specs.items()}
    state = party_genesis.genesis_state(party_genesis.development_genesis(keys), rules=2)
    return cast, state


def actor(cast: Cast, name: str) -> Actor:
    return next(a for a, s in cast.specs.items() if s.member_id == name)


def test_the_dev_cast_pays_mints_and_holds_under_party_rules() -> None:
    cast, party = real_party()
    section = trade_genesis.development_section(custodians=("custodian",), threshold=1)
    chain = Chain(cast=cast, section=section)
    chain.party = party
    bank_b, custodian, exporter = actor(cast, "bank-b"), actor(cast, "custodian"), actor(cast, "exporter")
    chain.ok(bank_b, "trade.transfer", {"token": "COCO", "to": "exporter", "amount": 1_000})
    assert chain.code(actor(cast, "council-2"), "trade.transfer", {"token": "COCO", "to": "exporter", "amount": 1}) == (
        "NOT_PERMITTED"  # party's council role submits no trade kinds
    )
    chain.ok(custodian, "trade.trc.attest", {"reserve": 10_000, "as_of": chain.time, "seq": 1})
    chain.ok(custodian, "trade.trc.mint", {"to": "exporter", "amount": 5_000})  # the founders' genesis KYC
    hold = {"hold_id": "h", "token": "TRC", "beneficiary": "importer", "amount": 2_000, "expires_height": 20}
    chain.ok(exporter, "trade.hold.create", hold)
    chain.ok(actor(cast, "importer"), "trade.hold.execute", {"hold_id": "h"})
    assert (chain.total("exporter", "TRC"), chain.total("importer", "TRC")) == (3_000, 2_000)
    assert chain.code(actor(cast, "bank-a"), "trade.trc.attest", {"reserve": 1, "as_of": chain.time, "seq": 2}) == (
        "NOT_PERMITTED"  # a bank is no TRC custodian in party's development role table
    )
