"""Title holds (doc.hold, doc.hold.execute, doc.hold.release, doc.hold.renew) and the
``hold_expiry`` clause: a held title goes only to its beneficiary or back to its holder."""

from __future__ import annotations

from typing import Any

import pytest

from tests.doc.helpers import DAY, Cast, Ledger, bl_payload
from traco.core.domain import Accepted, DictState, Rejected
from traco.services.doc import queries
from traco.services.doc.holds import load


@pytest.fixture
def bl(ledger: Ledger, cast: Cast) -> str:
    return str(ledger.ok(cast.carrier, "doc.register", bl_payload("bl-1", holder=cast.exporter.key)).result["doc_id"])


def hold(doc_id: str, beneficiary: str, hold_id: str = "h-1", **extra: Any) -> dict[str, Any]:
    return {"hold_id": hold_id, "doc_id": doc_id, "beneficiary": beneficiary, **extra}


def holder(ledger: Ledger, doc_id: str) -> str:
    record = queries.document(ledger.state, doc_id)
    assert record is not None
    return str(record["holder"]["member_id"])


def status(ledger: Ledger, hold_id: str = "h-1") -> str:
    stored = load(ledger.state, hold_id)
    assert stored is not None
    return str(stored["status"])


def test_a_held_title_cannot_move_be_pledged_amended_or_held_again(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, expires_height=50))
    pledge = {
        "doc_id": bl,
        "financier": cast.bank_a.key,
        "amount": 1,
        "currency": "USD",
        "expires_at": ledger.time + DAY,
    }
    assert ledger.code(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.bank_b.key}) == "HELD"
    assert ledger.code(cast.exporter, "doc.surrender", {"doc_id": bl}) == "HELD"
    assert ledger.code(cast.exporter, "doc.pledge", pledge) == "HELD"
    assert ledger.code(cast.carrier, "doc.amend", {"doc_id": bl, "file_hash": "ab" * 32}) == "HELD"
    again = hold(bl, cast.bank_a.key, "h-2", expires_height=50)
    assert ledger.code(cast.exporter, "doc.hold", again) == "HELD"
    assert holder(ledger, bl) == "exporter"


def test_the_beneficiary_executes_and_the_title_moves_to_it_once(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, expires_height=50))
    assert ledger.code(cast.bank_a, "doc.hold.execute", {"hold_id": "h-1"}) == "NOT_BENEFICIARY"
    assert ledger.code(cast.exporter, "doc.hold.execute", {"hold_id": "h-1"}) == "NOT_BENEFICIARY"
    ledger.ok(cast.importer, "doc.hold.execute", {"hold_id": "h-1"})
    assert holder(ledger, bl) == "importer" and status(ledger) == "executed"
    assert ledger.code(cast.importer, "doc.hold.execute", {"hold_id": "h-1"}) == "HOLD_CLOSED"
    reuse = hold(bl, cast.exporter.key, expires_height=90)
    assert ledger.code(cast.importer, "doc.hold", reuse) == "HOLD_EXISTS"  # ids are never reused
    ledger.ok(cast.importer, "doc.transfer", {"doc_id": bl, "to": cast.bank_a.key})  # free again


def test_with_a_notary_only_the_notary_executes_and_the_beneficiary_may_refuse(
    ledger: Ledger, cast: Cast, bl: str
) -> None:
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, notary=cast.bank_a.key, expires_height=50))
    assert ledger.code(cast.importer, "doc.hold.execute", {"hold_id": "h-1"}) == "NOT_BENEFICIARY"
    assert ledger.code(cast.exporter, "doc.hold.release", {"hold_id": "h-1"}) == "NOT_BENEFICIARY"
    ledger.ok(cast.importer, "doc.hold.release", {"hold_id": "h-1"})
    assert status(ledger) == "released_by_beneficiary" and holder(ledger, bl) == "exporter"
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, "h-2", notary=cast.bank_a.key, expires_height=50))
    ledger.ok(cast.bank_a, "doc.hold.execute", {"hold_id": "h-2"})
    assert holder(ledger, bl) == "importer"


def test_at_the_expiry_height_the_clause_returns_the_title_in_that_very_block(
    ledger: Ledger, cast: Cast, bl: str
) -> None:
    expires = ledger.height + 3
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, expires_height=expires))
    ledger.block([])
    assert ledger.height == expires - 1 and status(ledger) == "ordered"
    assert ledger.code(cast.importer, "doc.hold.execute", {"hold_id": "h-1"}) == "HOLD_EXPIRED"
    assert ledger.height == expires and status(ledger) == "expired"
    assert [(c.clause, c.subject) for c in ledger.clauses] == [("hold_expiry", "h-1")]
    assert holder(ledger, bl) == "exporter"
    record = queries.document(ledger.state, bl)
    assert record is not None and record["hold"] is None
    assert not list(ledger.state.scan("hold_due/"))
    ledger.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.bank_a.key})


def test_one_block_before_expiry_the_beneficiary_may_still_execute(ledger: Ledger, cast: Cast, bl: str) -> None:
    expires = ledger.height + 3  # made at the next height, executed at the one after: expires - 1
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, expires_height=expires))
    ledger.ok(cast.importer, "doc.hold.execute", {"hold_id": "h-1"})
    assert ledger.height == expires - 1
    assert holder(ledger, bl) == "importer" and ledger.clauses == []


def test_expiry_by_block_time_is_exact_and_fires_on_an_empty_block(ledger: Ledger, cast: Cast, bl: str) -> None:
    expires_at = ledger.time + 3 * ledger.tick
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, expires_at=expires_at))
    ledger.block([])
    assert ledger.time == expires_at - ledger.tick and status(ledger) == "ordered"
    ledger.block([])  # nobody acts: the clause alone returns it
    assert ledger.time == expires_at and status(ledger) == "expired" and holder(ledger, bl) == "exporter"


def test_only_the_holder_renews_only_later_and_only_while_live(ledger: Ledger, cast: Cast, bl: str) -> None:
    first = ledger.height + 10
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, expires_height=first))
    assert ledger.code(cast.importer, "doc.hold.renew", {"hold_id": "h-1", "expires_height": first + 5}) == "NOT_OWNER"
    earlier = {"hold_id": "h-1", "expires_height": first - 1}
    assert ledger.code(cast.exporter, "doc.hold.renew", earlier) == "INVALID_EXPIRY"
    ledger.ok(cast.exporter, "doc.hold.renew", {"hold_id": "h-1", "expires_height": first + 5})
    while ledger.height < first:
        ledger.block([])
    assert status(ledger) == "ordered"  # the old due entry is gone with the renewal
    while ledger.height < first + 5:
        ledger.block([])
    assert status(ledger) == "expired"


def test_a_pledged_title_can_be_held_only_for_its_pledgee_and_executing_ends_the_pledge(
    ledger: Ledger, cast: Cast, bl: str
) -> None:
    terms = {
        "doc_id": bl,
        "financier": cast.bank_a.key,
        "amount": 100,
        "currency": "USD",
        "expires_at": ledger.time + DAY,
    }
    ledger.ok(cast.exporter, "doc.pledge", terms)
    assert ledger.code(cast.exporter, "doc.hold", hold(bl, cast.importer.key, expires_height=90)) == "PLEDGED"
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.bank_a.key, expires_height=90))
    ledger.ok(cast.bank_a, "doc.hold.execute", {"hold_id": "h-1"})
    record = queries.document(ledger.state, bl)
    assert record is not None and record["holder"]["member_id"] == "bank-a" and record["pledge"] is None


def test_holds_need_a_negotiable_title_a_member_and_a_bounded_expiry(ledger: Ledger, cast: Cast, bl: str) -> None:
    straight = ledger.ok(cast.carrier, "doc.register", bl_payload("bl-2", holder=cast.exporter.key, negotiable=False))
    straight_id = str(straight.result["doc_id"])
    assert ledger.code(cast.exporter, "doc.hold", hold(straight_id, cast.importer.key, expires_height=9)) == (
        "NOT_NEGOTIABLE"
    )
    assert ledger.code(cast.exporter, "doc.hold", hold(bl, cast.stranger.key, expires_height=90)) == "NOT_A_MEMBER"
    assert ledger.code(cast.exporter, "doc.hold", hold(bl, cast.importer.key)) == "INVALID_EXPIRY"
    far = hold(bl, cast.importer.key, expires_at=ledger.time + 400 * DAY)
    assert ledger.code(cast.exporter, "doc.hold", far) == "INVALID_PAYLOAD"
    assert ledger.code(cast.importer, "doc.hold", hold(bl, cast.bank_a.key, expires_height=90)) == "NOT_HOLDER"
    assert ledger.code(cast.exporter, "doc.hold", hold(bl, cast.exporter.key, expires_height=90)) == "SELF_HOLD"


def test_a_service_named_notary_decides_only_by_its_own_command(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, notary="service:trade", expires_height=90))
    assert ledger.code(cast.importer, "doc.hold.execute", {"hold_id": "h-1"}) == "NOT_BENEFICIARY"
    [by_bridge] = ledger.block([(cast.importer, "doc.hold.execute", {"hold_id": "h-1"})], origin="bridge")
    assert isinstance(by_bridge, Rejected) and by_bridge.code == "NOT_BENEFICIARY"
    [by_trade] = ledger.block([(cast.importer, "doc.hold.execute", {"hold_id": "h-1"})], origin="trade")
    assert isinstance(by_trade, Accepted) and holder(ledger, bl) == "importer"


def test_a_command_acts_with_its_senders_authority_and_no_more(ledger: Ledger, cast: Cast, bl: str) -> None:
    [foreign] = ledger.block([(cast.importer, "doc.hold", hold(bl, cast.bank_a.key, expires_height=90))], "trade")
    assert isinstance(foreign, Rejected) and foreign.code == "NOT_HOLDER"
    [own] = ledger.block([(cast.exporter, "doc.hold", hold(bl, cast.bank_a.key, expires_height=90))], "trade")
    assert isinstance(own, Accepted) and status(ledger) == "ordered"


def test_replaying_the_events_rebuilds_the_same_state(ledger: Ledger, cast: Cast, bl: str) -> None:
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, expires_height=ledger.height + 4))
    ledger.ok(cast.exporter, "doc.hold.renew", {"hold_id": "h-1", "expires_height": ledger.height + 6})
    for _ in range(6):
        ledger.block([])
    assert status(ledger) == "expired"
    ledger.ok(cast.exporter, "doc.hold", hold(bl, cast.importer.key, "h-2", expires_height=ledger.height + 9))
    ledger.ok(cast.importer, "doc.hold.execute", {"hold_id": "h-2"})
    replayed = DictState()
    for event in ledger.events:
        replayed.apply(ledger.domain.mutate(replayed, event))
    assert {k: v for k, v in replayed.data.items() if v is not None} == ledger.snapshot()
