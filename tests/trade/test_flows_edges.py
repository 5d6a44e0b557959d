"""Edges of the trade flows' safety rules that the flows' main tests walk past: written to kill
named mutants (``tools/named_mutants.py``, ``FLOW_MUTANTS``) that survived them. Each test
pins one rule at its boundary on the whole dev chain (``tests/trade/story.py``): a loan is not
closed while interest is owed, a refused loan frees the lender's TRC at once and closes its
request, an escrow pays only on its named reporter's milestone, is resolved only when disputed
and records an expiry as the buyer's; a DvP title hold must name trade as notary, the buyer as
beneficiary and outlive the settlement path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.trade.story import Story
from traco.services.trade.dvp import state as dvp_state
from traco.services.trade.escrow import state as escrow_state
from traco.services.trade.loans import state as loan_state

ACCEPT = "trade.finance.accept"
REPAY = "trade.loan.repay"
ESCROW_OPEN = "trade.escrow.open"


@pytest.fixture
def story(tmp_path: Path) -> Story:
    chain = Story(tmp_path)
    chain.fund_trc(**{"bank-a": 2_000_000, "bank-b": 2_000_000, "importer": 1_000_000})
    chain.set_flows(loan_grace_ms=5_000)
    return chain


def _request(story: Story, doc_id: str, request_id: str) -> None:
    payload = {"request_id": request_id, "doc_id": doc_id, "token": "TRC", "amount": 1_000_000}
    story.ok(
        "exporter", "trade.finance.request", {**payload, "tenor_ms": 60_000, "offers_until": story.tip.time + 60_000}
    )


def _offer(story: Story, bank: str, offer_id: str, request_id: str) -> None:
    payload = {"offer_id": offer_id, "request_id": request_id, "rate_bp": 5_000}
    story.ok(bank, "trade.finance.offer", {**payload, "valid_until": story.tip.time + 60_000})


def _loan(story: Story, loan_id: str) -> dict[str, Any]:
    record = loan_state.loan(story.trade, loan_id)
    assert record is not None
    return record


def test_paying_the_principal_while_interest_is_owed_does_not_close_the_loan(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    _request(story, doc_id, "r1")
    _offer(story, "bank-a", "o1", "r1")
    story.ok("exporter", ACCEPT, {"request_id": "r1"})
    story.idle(2)
    principal = _loan(story, "r1")["outstanding"]
    story.idle(1, dt=10_000)  # interest accrues (50% a year on a million: about 16 units in 10 s)
    result = story.ok("exporter", REPAY, {"loan_id": "r1", "amount": principal})
    assert result["to_interest"] >= 1 and result["closed"] is False
    record = _loan(story, "r1")
    assert record["status"] == "active" and record["outstanding"] == result["to_interest"] > 0
    story.idle(2)
    assert story.document(doc_id)["pledge"] is not None, "the pledge stays until the whole due is paid"


def test_a_refused_loan_frees_the_lenders_trc_at_once_and_closes_its_request(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    _request(story, doc_id, "r1")
    _request(story, doc_id, "r2")
    _offer(story, "bank-a", "o1", "r1")
    _offer(story, "bank-b", "o2", "r2")
    story.block(
        story.tx("exporter", ACCEPT, {"request_id": "r1"}),
        story.tx("exporter", ACCEPT, {"request_id": "r2"}),
    )
    assert story.available("bank-b") == 1_000_000
    story.idle(2)  # doc refuses the second pledge at +1; trade records it at +2
    assert _loan(story, "r2")["status"] == "refused"
    assert story.available("bank-b") == 2_000_000, "the refused lender's TRC is free at once, not at the hold's expiry"
    request = loan_state.request(story.trade, "r2")
    assert request is not None and request["status"] == "refused"
    late_offer = story.refused(
        "bank-a",
        "trade.finance.offer",
        {
            "offer_id": "o3",
            "request_id": "r2",
            "rate_bp": 1,
            "valid_until": story.tip.time + 60_000,
        },
    )
    assert late_offer.code == "REQUEST_CLOSED"
    assert story.refused("exporter", ACCEPT, {"request_id": "r2"}).code == "REQUEST_CLOSED"


def _escrow(story: Story, **release: Any) -> None:
    terms = {"escrow_id": "e1", "token": "TRC", "seller": "exporter", "amount": 400_000}
    terms |= {"expires_at": story.tip.time + 60_000, "release": release or {"on": "confirm"}}
    story.ok("importer", ESCROW_OPEN, terms)


def test_only_the_named_reporters_milestone_pays_even_against_the_issuers(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    _escrow(story, on="milestone", doc_id=doc_id, milestone="delivered", reporter="bank-a")
    story.ok("carrier", "doc.event", {"doc_id": doc_id, "milestone": "delivered"})
    story.idle(2)
    record = escrow_state.escrow(story.trade, "e1")
    assert record is not None and record["status"] == "open"
    assert story.total("exporter") == 0 and story.available("importer") == 600_000


def test_the_arbiter_cannot_resolve_an_escrow_that_is_not_disputed(story: Story) -> None:
    story.set_flows(escrow_arbiter="bank-a")
    _escrow(story)
    receipt = story.refused("bank-a", "trade.escrow.resolve", {"escrow_id": "e1", "to_seller": 400_000, "reason": "x"})
    assert receipt.code == "NOT_DISPUTED"
    assert story.total("exporter") == 0 and story.available("importer") == 600_000


def test_an_expired_escrow_records_everything_returned_to_the_buyer(story: Story) -> None:
    terms = {"escrow_id": "e1", "token": "TRC", "seller": "exporter", "amount": 400_000}
    story.ok("importer", ESCROW_OPEN, {**terms, "expires_at": story.tip.time + 2_000, "release": {"on": "confirm"}})
    story.idle(3)
    record = escrow_state.escrow(story.trade, "e1")
    assert record is not None and record["status"] == "expired"
    assert (record["closed"]["to_seller"], record["closed"]["to_buyer"]) == (0, 400_000)
    assert story.total("exporter") == 0 and story.available("importer") == 1_000_000


def _dvp(story: Story) -> tuple[str, int]:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    h = story.tip.height
    terms = {"dvp_id": "d1", "seller": "exporter", "buyer": "importer", "doc_id": doc_id, "token": "TRC"}
    story.ok("exporter", "trade.dvp.open", {**terms, "amount": 700_000, "allocate_by": h + 20, "settle_by": h + 30})
    story.ok("importer", "trade.dvp.fund", {"dvp_id": "d1"})
    record = dvp_state.dvp(story.trade, "d1")
    assert record is not None
    return doc_id, record["settle_by"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"notary": "bank-a"}, "notary"),
        ({"beneficiary": "bank-a"}, "beneficiary"),
        ({"expires_height": -1}, "must live through"),
    ],
)
def test_allocate_refuses_a_title_hold_not_made_for_this_settlement(
    story: Story, change: dict[str, Any], named: str
) -> None:
    doc_id, settle_by = _dvp(story)
    hold: dict[str, Any] = {"hold_id": "t1", "doc_id": doc_id, "beneficiary": story.pub("importer")}
    hold["notary"] = "service:trade"
    hold["expires_height"] = settle_by + 2
    if "notary" in change:
        hold["notary"] = story.pub(change["notary"])
    if "beneficiary" in change:
        hold["beneficiary"] = story.pub(change["beneficiary"])
    if "expires_height" in change:
        hold["expires_height"] = settle_by + 1  # doc would execute at settle_by + 1, when it has expired
    story.ok("exporter", "doc.hold", hold)
    receipt = story.refused("exporter", "trade.dvp.allocate", {"dvp_id": "d1", "title_hold_id": "t1"})
    assert receipt.code == "BAD_TITLE_HOLD" and named in receipt.message
    record = dvp_state.dvp(story.trade, "d1")
    assert record is not None and record["status"] == "open" and record["title_hold_id"] is None
