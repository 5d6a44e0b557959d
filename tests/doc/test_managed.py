"""Managed pledges and liens (``services/doc/managed.py``), decided by doc alone.

A later service (trade: loans, securitisation pools) commands them with the holder's authority;
doc still decides everything about the title. What must hold: no transaction can place, end or
enforce them, only a command; a managed pledge is the same encumbrance as any pledge (the
double-financing check); only the service that placed it, naming the same record, ends it —
released to the holder, or the title moved to the financier — and never while the title is held;
a lien freezes the title for as long as it stands. The trade flows test these end to end; here
each refusal is named at doc's own door.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.doc.helpers import CHAIN, DAY, Actor, Cast, Ledger, registered
from traco.core.domain import Accepted, Outcome, Rejected, TxContext
from traco.services.doc import queries, tables

LOAN = "loan:bl-1"


@pytest.fixture
def bl(ledger2: Ledger, cast: Cast) -> str:
    return registered(ledger2, cast)


def command(ledger: Ledger, authority: Actor, kind: str, payload: dict[str, Any], origin: str = "trade") -> Outcome:
    """One command from ``origin`` with ``authority`` (the originating transaction's sender)."""
    return ledger.command(authority, kind, payload, origin)


def refused(outcome: Outcome) -> str:
    assert isinstance(outcome, Rejected), f"accepted: {outcome}"
    assert outcome.message
    return outcome.code


def place(ledger: Ledger, doc_id: str, financier: str = "bank-a", **extra: Any) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "financier": financier,
        "amount": 1_000_000,
        "currency": "USD",
        "expires_at": ledger.time + ledger.tick + 30 * DAY,
        "reference": LOAN,
        **extra,
    }


def pledged(ledger: Ledger, cast: Cast, doc_id: str) -> Accepted:
    outcome = command(ledger, cast.exporter, tables.KIND_PLEDGE_PLACE, place(ledger, doc_id))
    assert isinstance(outcome, Accepted), outcome
    return outcome


def record(ledger: Ledger, doc_id: str) -> dict[str, Any]:
    found = queries.document(ledger.state, doc_id)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (tables.KIND_PLEDGE_PLACE, {"financier": "bank-a", "amount": 1, "currency": "USD", "expires_at": 1}),
        (tables.KIND_PLEDGE_DISCHARGE, {}),
        (tables.KIND_PLEDGE_ENFORCE, {}),
        (tables.KIND_LIEN_PLACE, {}),
    ],
)
def test_no_transaction_can_place_end_or_enforce_a_managed_pledge(
    ledger2: Ledger, cast: Cast, bl: str, kind: str, payload: dict[str, Any]
) -> None:
    """Not a doc transaction kind (the chain refuses it at admission); and were one executed
    without a commanding service, doc would not know the kind either."""
    assert kind not in ledger2.domain.kinds and kind in ledger2.domain.command_kinds
    assert ledger2.block([(cast.exporter, kind, {"doc_id": bl, "reference": LOAN, **payload})]) == []
    tx = TxContext(CHAIN, ledger2.height, 0, ledger2.time, "ab" * 32, cast.exporter.key, kind, {"doc_id": bl})
    assert refused(ledger2.domain.execute(ledger2.state, {"party": ledger2.party}, tx)) == "UNKNOWN_KIND"


def test_a_placed_pledge_is_in_force_for_the_financier_and_names_its_manager(
    ledger2: Ledger, cast: Cast, bl: str
) -> None:
    placed = pledged(ledger2, cast, bl)
    assert placed.result == {"doc_id": bl, "pledge_id": placed.result["pledge_id"], "status": "in_force"}
    terms = queries.active_pledge(ledger2.state, bl, ledger2.time)
    assert terms is not None
    assert (terms["financier"]["member_id"], terms["manager"], terms["reference"]) == ("bank-a", "service:trade", LOAN)
    assert (terms["amount"], terms["currency"]) == (1_000_000, "USD")
    assert record(ledger2, bl)["holder"]["member_id"] == "exporter"  # a pledge moves no title
    [event] = placed.events
    assert (event.type, event.data["holder"]["member_id"], event.data["lapsed_pledge"]) == (
        "DocumentPledged",
        "exporter",
        None,
    )
    assert ledger2.code(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key}) == "PLEDGED"


def test_a_managed_pledge_is_the_double_financing_check_both_ways(ledger2: Ledger, cast: Cast, bl: str) -> None:
    pledged(ledger2, cast, bl)
    again = command(ledger2, cast.exporter, tables.KIND_PLEDGE_PLACE, place(ledger2, bl, "bank-b"))
    assert refused(again) == "ALREADY_PLEDGED"
    other = registered(ledger2, cast, "bl-2")
    ledger2.ok(cast.exporter, "doc.pledge", {**place(ledger2, other), "financier": cast.bank_b.key, "reference": None})
    ledger2.ok(cast.bank_b, "doc.pledge.accept", {"doc_id": other})
    over = command(ledger2, cast.exporter, tables.KIND_PLEDGE_PLACE, place(ledger2, other))
    assert refused(over) == "ALREADY_PLEDGED"


def test_placing_refuses_each_wrong_authority_financier_and_term(ledger2: Ledger, cast: Cast, bl: str) -> None:
    def code(authority: Actor = cast.exporter, **extra: Any) -> str:
        return refused(command(ledger2, authority, tables.KIND_PLEDGE_PLACE, place(ledger2, bl, **extra)))

    assert code(authority=cast.importer) == "NOT_HOLDER"
    assert code(financier="nobody") == "NOT_A_MEMBER"
    assert code(financier="suspended") == "NOT_A_MEMBER"
    assert code(financier="importer") == "NOT_FINANCIER"
    assert code(expires_at=ledger2.time + ledger2.tick) == "INVALID_PAYLOAD"  # not after the block time
    longest = ledger2.time + ledger2.tick + tables.MAX_PLEDGE_MS
    assert code(expires_at=longest + 1) == "INVALID_PAYLOAD"
    assert isinstance(
        command(
            ledger2, cast.exporter, tables.KIND_PLEDGE_PLACE, place(ledger2, bl, expires_at=longest + ledger2.tick)
        ),
        Accepted,
    )


def test_the_holder_cannot_be_its_own_financier(ledger2: Ledger, cast: Cast) -> None:
    own = registered(ledger2, cast, "bl-bank")
    ledger2.ok(cast.exporter, "doc.transfer", {"doc_id": own, "to": cast.bank_a.key})
    outcome = command(ledger2, cast.bank_a, tables.KIND_PLEDGE_PLACE, place(ledger2, own))
    assert refused(outcome) == "INVALID_PAYLOAD" and "itself" in str(outcome)


def test_only_the_placing_service_naming_its_record_discharges(ledger2: Ledger, cast: Cast, bl: str) -> None:
    pledged(ledger2, cast, bl)
    managed = {"doc_id": bl, "reference": LOAN}
    assert (
        refused(command(ledger2, cast.exporter, tables.KIND_PLEDGE_DISCHARGE, managed, origin="bridge"))
        == "NOT_MANAGED"
    )
    other = {**managed, "reference": "loan:bl-9"}
    assert refused(command(ledger2, cast.exporter, tables.KIND_PLEDGE_DISCHARGE, other)) == "NOT_MANAGED"
    done = command(ledger2, cast.exporter, tables.KIND_PLEDGE_DISCHARGE, managed)
    assert isinstance(done, Accepted) and done.result == {"doc_id": bl}
    assert queries.active_pledge(ledger2.state, bl, ledger2.time) is None
    assert record(ledger2, bl)["holder"]["member_id"] == "exporter"
    released = queries.history(ledger2.state, bl)[-1]
    assert released["type"] == "PledgeReleased" and released["details"]["expired"] is False
    assert refused(command(ledger2, cast.exporter, tables.KIND_PLEDGE_DISCHARGE, managed)) == "NOT_MANAGED"
    ledger2.ok(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})  # free again


def test_enforcing_moves_the_title_to_the_financier_and_ends_the_pledge(ledger2: Ledger, cast: Cast, bl: str) -> None:
    placed = pledged(ledger2, cast, bl)
    managed = {"doc_id": bl, "reference": LOAN}
    assert (
        refused(command(ledger2, cast.exporter, tables.KIND_PLEDGE_ENFORCE, managed, origin="bridge")) == "NOT_MANAGED"
    )
    done = command(ledger2, cast.exporter, tables.KIND_PLEDGE_ENFORCE, managed)
    assert isinstance(done, Accepted) and done.result == {"doc_id": bl, "holder": "bank-a"}
    now = record(ledger2, bl)
    assert now["holder"]["member_id"] == "bank-a" and now["pledge"] is None
    enforced = queries.history(ledger2.state, bl)[-1]
    assert enforced["type"] == "PledgeEnforced"
    assert enforced["details"]["pledge_id"] == placed.result["pledge_id"]
    assert (enforced["details"]["from"]["member_id"], enforced["details"]["to"]["member_id"]) == ("exporter", "bank-a")
    assert refused(command(ledger2, cast.exporter, tables.KIND_PLEDGE_ENFORCE, managed)) == "NOT_MANAGED"
    ledger2.ok(cast.bank_a, "doc.transfer", {"doc_id": bl, "to": cast.importer.key})  # the financier's to move


def test_a_secured_title_cannot_be_held_and_a_released_or_lapsed_pledge_is_not_enforced(
    ledger2: Ledger, cast: Cast, bl: str
) -> None:
    """No title hold on a document a managed pledge secures (not even for its financier): the
    managing service ends the pledge itself, so enforcing never meets a held title."""
    pledged(ledger2, cast, bl)
    hold = {"doc_id": bl, "hold_id": "h-1", "beneficiary": cast.bank_a.key, "expires_height": ledger2.height + 50}
    assert ledger2.code(cast.exporter, "doc.hold", hold) == "PLEDGED"
    managed = {"doc_id": bl, "reference": LOAN}
    ledger2.ok(cast.bank_a, "doc.release", {"doc_id": bl})  # the financier gives its collateral up
    assert refused(command(ledger2, cast.exporter, tables.KIND_PLEDGE_ENFORCE, managed)) == "NOT_MANAGED"
    lapsing = registered(ledger2, cast, "bl-3")
    terms = place(ledger2, lapsing, expires_at=ledger2.time + 3 * ledger2.tick)
    assert isinstance(command(ledger2, cast.exporter, tables.KIND_PLEDGE_PLACE, terms), Accepted)
    ledger2.block([])
    assert (
        refused(command(ledger2, cast.exporter, tables.KIND_PLEDGE_ENFORCE, {"doc_id": lapsing, "reference": LOAN}))
        == "NOT_MANAGED"
    )
    assert record(ledger2, lapsing)["holder"]["member_id"] == "exporter"
    first = record(ledger2, lapsing)["pledge"]["tx_id"]  # lapsed, not yet cleared
    again = command(ledger2, cast.exporter, tables.KIND_PLEDGE_PLACE, place(ledger2, lapsing, "bank-b"))
    assert isinstance(again, Accepted) and again.events[0].data["lapsed_pledge"] == first


def test_a_lien_freezes_the_title_and_needs_a_free_one(ledger2: Ledger, cast: Cast, bl: str) -> None:
    lien = {"doc_id": bl, "reference": "abs:pool-1"}
    assert refused(command(ledger2, cast.importer, tables.KIND_LIEN_PLACE, lien)) == "NOT_HOLDER"
    done = command(ledger2, cast.exporter, tables.KIND_LIEN_PLACE, lien)
    assert isinstance(done, Accepted) and done.result == {"doc_id": bl}
    stands = record(ledger2, bl)["lien"]
    assert (stands["manager"], stands["reference"]) == ("service:trade", "abs:pool-1")
    assert queries.history(ledger2.state, bl)[-1]["details"] == {"lien": stands}
    assert ledger2.code(cast.exporter, "doc.transfer", {"doc_id": bl, "to": cast.importer.key}) == "LIEN"
    assert (
        ledger2.code(
            cast.exporter, "doc.pledge", {**place(ledger2, bl), "financier": cast.bank_a.key, "reference": None}
        )
        == "LIEN"
    )
    assert refused(command(ledger2, cast.exporter, tables.KIND_PLEDGE_PLACE, place(ledger2, bl))) == "LIEN"
    assert refused(command(ledger2, cast.exporter, tables.KIND_LIEN_PLACE, lien)) == "LIEN"
    pledged_doc = registered(ledger2, cast, "bl-4")
    pledged(ledger2, cast, pledged_doc)
    assert (
        refused(command(ledger2, cast.exporter, tables.KIND_LIEN_PLACE, {**lien, "doc_id": pledged_doc}))
        == "ALREADY_PLEDGED"
    )


def test_replaying_the_events_rebuilds_the_same_state(ledger2: Ledger, cast: Cast, bl: str) -> None:
    pledged(ledger2, cast, bl)
    command(ledger2, cast.exporter, tables.KIND_PLEDGE_ENFORCE, {"doc_id": bl, "reference": LOAN})
    other = registered(ledger2, cast, "bl-5")
    command(ledger2, cast.exporter, tables.KIND_LIEN_PLACE, {"doc_id": other, "reference": "abs:pool-1"})
    replay = Ledger(party=cast.view(), rules=2)
    for event in ledger2.events:
        replay.state.apply(replay.domain.mutate(replay.state, event))
    assert replay.snapshot() == ledger2.snapshot()
