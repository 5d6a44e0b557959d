"""Escrowed payment on the whole dev chain (``tests/trade/story.py``): paid to the seller when
the buyer confirms or when the carrier of record reports delivery in doc; refunded at expiry by
clause; a dispute freezes it for the council's arbiter, who splits it; every way out closes the
hold once and TRC is never created or lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.trade.story import Story
from traco.services.trade import queries as q
from traco.services.trade.escrow import state as s

OPEN = "trade.escrow.open"


@pytest.fixture
def story(tmp_path: Path) -> Story:
    chain = Story(tmp_path)
    chain.fund_trc(importer=1_000_000)
    return chain


def terms(story: Story, escrow_id: str = "e1", amount: int = 400_000, **release: Any) -> dict[str, Any]:
    return {
        "escrow_id": escrow_id,
        "token": "TRC",
        "seller": "exporter",
        "amount": amount,
        "expires_at": story.tip.time + 60_000,
        "release": release or {"on": "confirm"},
    }


def test_confirmation_pays_the_seller_and_nothing_else_can_touch_the_hold(story: Story) -> None:
    assert story.ok("importer", OPEN, terms(story)) == {"escrow_id": "e1", "hold_id": "escrow:e1"}
    assert story.available("importer") == 600_000 and story.total("importer") == 1_000_000
    assert story.refused("importer", "trade.hold.release", {"hold_id": "escrow:e1"}).code == "NOT_PERMITTED"
    assert story.refused("exporter", "trade.hold.execute", {"hold_id": "escrow:e1"}).code == "NOT_PERMITTED"
    assert story.refused("exporter", "trade.escrow.confirm", {"escrow_id": "e1"}).code == "NOT_BUYER"
    assert story.ok("importer", "trade.escrow.confirm", {"escrow_id": "e1"})["to_seller"] == 400_000
    assert (story.total("importer"), story.total("exporter")) == (600_000, 400_000)
    assert story.refused("importer", "trade.escrow.confirm", {"escrow_id": "e1"}).code == "ESCROW_CLOSED"
    assert story.refused("importer", OPEN, terms(story)).code == "ESCROW_EXISTS"
    assert story.trc_everywhere() == story.trc_supply() == 1_000_000


def test_the_carriers_delivery_report_releases_it_and_no_one_elses_does(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"), parties=[story.pub("importer")])
    story.ok("importer", OPEN, terms(story, doc_id=doc_id, milestone="delivered", on="milestone"))
    record = s.escrow(story.trade, "e1")
    assert record is not None and record["release"]["reporter"] == "carrier"  # the issuer of record by default
    # the importer is a party of record and may report "damaged", but its report does not pay
    story.ok("importer", "doc.event", {"doc_id": doc_id, "milestone": "damaged"})
    story.idle(2)
    assert story.total("exporter") == 0
    story.ok("carrier", "doc.event", {"doc_id": doc_id, "milestone": "delivered"})
    assert story.total("exporter") == 0, "trade sees doc's milestone one height later"
    results = story.block()
    clauses = story.clause_receipts(results, "escrow_release")
    assert [c.result for c in clauses] == [{"clause": "escrow_release", "subject": "e1"}]
    assert story.total("exporter") == 400_000 and story.total("importer") == 600_000
    record = s.escrow(story.trade, "e1")
    assert record is not None and record["status"] == "released" and "delivered" in record["closed"]["reason"]


def test_a_delivery_before_the_escrow_opened_does_not_pay_it(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    story.ok("carrier", "doc.event", {"doc_id": doc_id, "milestone": "delivered"})
    story.ok("importer", OPEN, terms(story, doc_id=doc_id, milestone="delivered", on="milestone"))
    story.idle(3)
    assert story.total("exporter") == 0 and s.escrow(story.trade, "e1")["status"] == "open"  # type: ignore[index]


def test_expiry_refunds_the_buyer_by_clause(story: Story) -> None:
    story.ok("importer", OPEN, {**terms(story), "expires_at": story.tip.time + 3_000})
    story.idle(3)
    hold = q.hold(story.trade, "escrow:e1")
    assert hold is not None and hold.status.value == "expired"
    assert s.escrow(story.trade, "e1")["status"] == "expired"  # type: ignore[index]
    assert story.available("importer") == 1_000_000
    assert story.refused("importer", "trade.escrow.confirm", {"escrow_id": "e1"}).code == "ESCROW_CLOSED"


def test_a_dispute_freezes_it_until_the_arbiter_splits_it(story: Story) -> None:
    story.ok("importer", OPEN, {**terms(story), "expires_at": story.tip.time + 5_000})
    story.ok("exporter", "trade.escrow.dispute", {"escrow_id": "e1", "reason": "goods short"})
    assert story.refused("importer", "trade.escrow.confirm", {"escrow_id": "e1"}).code == "DISPUTED"
    resolve = {"escrow_id": "e1", "to_seller": 150_000, "reason": "a third short"}
    assert story.refused("bank-a", "trade.escrow.resolve", resolve).code == "NOT_ARBITER"
    story.set_flows(escrow_arbiter="bank-a")
    story.idle(2, dt=5_000)  # past the original expiry: the dispute extended it
    assert s.escrow(story.trade, "e1")["status"] == "disputed"  # type: ignore[index]
    assert story.refused("bank-a", "trade.escrow.resolve", {**resolve, "to_seller": 400_001}).code == "INVALID_TERMS"
    story.ok("bank-a", "trade.escrow.resolve", resolve)
    assert (story.total("exporter"), story.total("importer")) == (150_000, 850_000)
    assert story.trc_everywhere() == story.trc_supply()


def test_open_names_every_problem_at_once(story: Story) -> None:
    bad = {**terms(story), "seller": "importer", "expires_at": story.tip.time - 1}
    receipt = story.refused("importer", OPEN, bad)
    assert receipt.code == "INVALID_TERMS"
    assert "seller:" in receipt.message and "expires_at:" in receipt.message
    assert story.refused("importer", OPEN, terms(story, amount=5_000_000)).code == "INSUFFICIENT_FUNDS"
    unknown = terms(story, doc_id="ab" * 32, milestone="delivered", on="milestone")
    assert story.refused("importer", OPEN, unknown).code == "UNKNOWN_DOCUMENT"
    assert story.refused("exporter", "trade.escrow.cancel", {"escrow_id": "nope"}).code == "UNKNOWN_ESCROW"


def test_the_seller_may_cancel_and_refund(story: Story) -> None:
    story.ok("importer", OPEN, terms(story))
    assert story.refused("importer", "trade.escrow.cancel", {"escrow_id": "e1"}).code == "NOT_SELLER"
    story.ok("exporter", "trade.escrow.cancel", {"escrow_id": "e1"})
    assert story.available("importer") == 1_000_000


def test_the_invariants_name_a_managed_hold_no_flow_waits_for(story: Story) -> None:
    from traco.core.domain import DictState, encode
    from traco.services.trade import views

    story.ok("importer", OPEN, terms(story))
    assert views.invariants(story.trade) == []
    record = s.escrow(story.trade, "e1")
    assert record is not None
    broken = DictState(base=story.trade)
    broken.apply({s.key("e1"): encode({**record, "status": "confirmed"})})
    assert views.invariants(broken) == [
        "hold escrow:e1 is open but no flow record waits for it",
    ]
