"""Edges of the trade flows' safety rules that the flows' main tests walk past: written to kill
named mutants (``tools/mutants_flows.py``, run by ``tools/named_mutants.py``) that survived them. Each test
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
from traco.services.trade import queries as q
from traco.services.trade import risk_state
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


def test_each_repayment_lowers_exposure_by_its_principal_and_a_repaid_loan_is_not_a_default(story: Story) -> None:
    story.fund_trc(exporter=10_000)  # to pay the interest on top of the principal
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    _request(story, doc_id, "r1")
    _offer(story, "bank-a", "o1", "r1")
    story.ok("exporter", ACCEPT, {"request_id": "r1"})
    story.idle(2)
    one = story.ok("exporter", REPAY, {"loan_id": "r1", "amount": 1})  # the smallest payment: interest first
    assert (one["to_interest"], one["to_principal"], one["closed"]) == (1, 0, False)
    part = story.ok("exporter", REPAY, {"loan_id": "r1", "amount": 300_000})
    left = 1_000_000 - part["to_principal"]
    assert left == _loan(story, "r1")["outstanding"]
    assert (
        risk_state.totals(story.trade, "bank-a")["lent"],
        risk_state.totals(story.trade, "exporter")["borrowed"],
    ) == (
        left,
        left,
    )
    assert risk_state.by_prefix(story.trade, risk_state.counterparty_prefix("bank-a"))["exporter"]["lent"] == left
    assert risk_state.by_prefix(story.trade, risk_state.counterparty_prefix("exporter"))["bank-a"]["borrowed"] == left
    assert risk_state.by_prefix(story.trade, risk_state.doctype_prefix("bank-a"))["bill_of_lading"]["amount"] == left
    owed = story.refused("exporter", REPAY, {"loan_id": "r1", "amount": 10**9}).message
    due = int(owed.split(" has ")[1].split(" due")[0])
    assert story.ok("exporter", REPAY, {"loan_id": "r1", "amount": due})["closed"] is True
    assert loan_state.due_loans(story.trade, 2**62) == [], "a repaid loan leaves the index the default clause scans"
    payments = _loan(story, "r1")["payments"]
    assert [(x["amount"], x["to_interest"]) for x in payments[:2]] == [(1, 1), (300_000, part["to_interest"])]
    for who in ("bank-a", "exporter"):
        totals = risk_state.totals(story.trade, who)
        assert totals["lent"] == totals["borrowed"] == totals["defaulted_lent"] == totals["defaulted_borrowed"] == 0


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
    refusal = _loan(story, "r2")["refusal"]
    assert _loan(story, "r2")["status"] == "refused" and refusal["code"] == "ALREADY_PLEDGED" and refusal["reason"]
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


def test_cancel_and_withdraw_name_their_codes_and_mark_their_records(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    _request(story, doc_id, "r1")
    _offer(story, "bank-a", "o1", "r1")
    assert story.refused("bank-a", "trade.finance.withdraw", {"offer_id": "nope"}).code == "UNKNOWN_OFFER"
    assert story.refused("exporter", "trade.finance.cancel", {"request_id": "nope"}).code == "UNKNOWN_REQUEST"
    assert story.ok("bank-a", "trade.finance.withdraw", {"offer_id": "o1"}) == {"offer_id": "o1", "request_id": "r1"}
    offer = loan_state.offer(story.trade, "o1")
    assert offer is not None and offer["status"] == "withdrawn"
    assert story.ok("exporter", "trade.finance.cancel", {"request_id": "r1"}) == {"request_id": "r1"}
    request = loan_state.request(story.trade, "r1")
    assert request is not None and request["status"] == "cancelled"
    again = story.refused("exporter", "trade.finance.cancel", {"request_id": "r1"})
    assert again.code == "REQUEST_CLOSED" and "cancelled" in again.message


def test_a_default_is_recorded_with_what_was_owed_and_leaves_the_due_index(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    _request(story, doc_id, "r1")
    _offer(story, "bank-a", "o1", "r1")
    story.ok("exporter", ACCEPT, {"request_id": "r1"})
    story.idle(2)
    story.idle(1, dt=70_000)  # past maturity (60 s) + grace (5 s)
    record = _loan(story, "r1")
    assert record["status"] == "defaulted"
    assert record["defaulted"]["outstanding"] == 1_000_000 and record["defaulted"]["interest_owed"] > 0
    assert loan_state.due_loans(story.trade, 2**62) == [], "a defaulted loan leaves the index the clause scans"
    lender, borrower = risk_state.totals(story.trade, "bank-a"), risk_state.totals(story.trade, "exporter")
    assert (lender["lent"], lender["loans_lent"], lender["pledged_in"], lender["defaulted_lent"]) == (
        0,
        0,
        0,
        1_000_000,
    )
    assert (borrower["borrowed"], borrower["loans_borrowed"], borrower["pledged_out"]) == (0, 0, 0)
    assert borrower["defaulted_borrowed"] == 1_000_000
    for who in ("bank-a", "exporter"):
        assert risk_state.by_prefix(story.trade, risk_state.counterparty_prefix(who)) == {}
    assert risk_state.by_prefix(story.trade, risk_state.doctype_prefix("bank-a")) == {}


def test_a_held_title_cannot_be_pledged_so_the_loan_is_refused_and_the_lender_repaid(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    hold = {"hold_id": "h1", "doc_id": doc_id, "beneficiary": story.pub("importer"), "expires_height": 500}
    story.ok("exporter", "doc.hold", hold)
    _request(story, doc_id, "r1")
    _offer(story, "bank-a", "o1", "r1")
    story.ok("exporter", ACCEPT, {"request_id": "r1"})
    story.idle(2)
    record = _loan(story, "r1")
    assert record["status"] == "refused" and record["refusal"]["code"] == "HELD"
    assert story.available("bank-a") == 2_000_000 and story.document(doc_id)["pledge"] is None


def test_the_best_offer_is_the_cheapest_still_valid_and_repayment_needs_the_funds(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    _request(story, doc_id, "r1")
    cheap = {"offer_id": "cheap", "request_id": "r1", "rate_bp": 100, "valid_until": story.tip.time + 2_000}
    story.ok("bank-b", "trade.finance.offer", cheap)
    _offer(story, "bank-a", "dear", "r1")
    story.idle(2)  # the cheap offer lapses
    assert story.ok("exporter", ACCEPT, {"request_id": "r1"})["offer_id"] == "dear"
    story.idle(2)
    story.idle(1, dt=10_000)
    owed = story.refused("exporter", REPAY, {"loan_id": "r1", "amount": 10**9}).message
    due = int(owed.split(" has ")[1].split(" due")[0])
    assert due > 1_000_000 == story.total("exporter")
    receipt = story.refused("exporter", REPAY, {"loan_id": "r1", "amount": due})
    assert receipt.code == "INSUFFICIENT_FUNDS"
    assert _loan(story, "r1")["outstanding"] == 1_000_000


def test_an_escrow_must_expire_after_its_block_and_within_a_year_and_a_day(story: Story) -> None:
    base = {"escrow_id": "e1", "token": "TRC", "seller": "exporter", "amount": 1_000, "release": {"on": "confirm"}}
    now = story.tip.time + 1_000  # the next block's time
    assert story.refused("importer", ESCROW_OPEN, {**base, "expires_at": now}).code == "INVALID_TERMS"
    year_and_day = 366 * 86_400_000
    now = story.tip.time + 1_000
    assert story.ok("importer", ESCROW_OPEN, {**base, "expires_at": now + year_and_day})["escrow_id"] == "e1"
    now = story.tip.time + 1_000
    late = {**base, "escrow_id": "e2", "expires_at": now + year_and_day + 1}
    assert story.refused("importer", ESCROW_OPEN, late).code == "INVALID_TERMS"


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


def test_escrow_exposure_follows_it_open_and_closed_and_confirm_is_recorded(story: Story) -> None:
    _escrow(story)
    paying = risk_state.by_prefix(story.trade, risk_state.escrow_prefix("importer"))
    receiving = risk_state.by_prefix(story.trade, risk_state.escrow_prefix("exporter"))
    assert paying == {"TRC": {"paying": 400_000, "receiving": 0, "count_paying": 1, "count_receiving": 0}}
    assert receiving == {"TRC": {"paying": 0, "receiving": 400_000, "count_paying": 0, "count_receiving": 1}}
    story.ok("importer", "trade.escrow.confirm", {"escrow_id": "e1"})
    record = escrow_state.escrow(story.trade, "e1")
    assert record is not None and record["status"] == "confirmed"
    assert (record["closed"]["to_seller"], record["closed"]["to_buyer"]) == (400_000, 0)
    for who in ("importer", "exporter"):
        assert risk_state.by_prefix(story.trade, risk_state.escrow_prefix(who)) == {}


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


def test_only_the_arbiter_resolves_and_may_award_everything_to_the_seller(story: Story) -> None:
    story.set_flows(escrow_arbiter="bank-a")
    _escrow(story)
    assert story.refused("bank-b", "trade.escrow.dispute", {"escrow_id": "e1", "reason": "x"}).code == "NOT_A_PARTY"
    result = story.ok("importer", "trade.escrow.dispute", {"escrow_id": "e1", "reason": "goods short"})
    assert set(result) == {"escrow_id", "until"} and result["escrow_id"] == "e1"
    record = escrow_state.escrow(story.trade, "e1")
    assert record is not None and record["dispute"]["reason"] == "goods short"
    assert record["dispute"]["until"] == result["until"]
    assert story.refused("exporter", "trade.escrow.dispute", {"escrow_id": "e1", "reason": "y"}).code == "DISPUTED"
    award = {"escrow_id": "e1", "to_seller": 400_000, "reason": "delivered in full"}
    assert story.refused("bank-b", "trade.escrow.resolve", award).code == "NOT_ARBITER"
    story.ok("bank-a", "trade.escrow.resolve", award)
    record = escrow_state.escrow(story.trade, "e1")
    assert record is not None and record["status"] == "resolved"
    assert record["closed"]["reason"] == "delivered in full" and record["closed"]["to_seller"] == 400_000
    assert record["closed"]["to_buyer"] == 0
    assert (story.total("exporter"), story.total("importer")) == (400_000, 600_000)


def test_a_dispute_extends_the_hold_by_the_governed_window_and_never_shortens_it(story: Story) -> None:
    story.set_flows(escrow_dispute_ms=120_000)
    _escrow(story)  # expires in 60 s
    until = story.ok("exporter", "trade.escrow.dispute", {"escrow_id": "e1", "reason": "x"})["until"]
    assert until == story.tip.time + 120_000
    hold = q.hold(story.trade, "escrow:e1")
    assert hold is not None and hold.expires_time == until
    far = story.tip.time + 200 * 86_400_000
    terms = {"escrow_id": "e2", "token": "TRC", "seller": "exporter", "amount": 1_000, "expires_at": far}
    story.ok("importer", ESCROW_OPEN, {**terms, "release": {"on": "confirm"}})
    assert story.ok("importer", "trade.escrow.dispute", {"escrow_id": "e2", "reason": "x"})["until"] == far
    hold = q.hold(story.trade, "escrow:e2")
    assert hold is not None and hold.expires_time == far


def test_a_dispute_no_arbiter_decides_ends_in_expiry_refunding_the_buyer(story: Story) -> None:
    story.set_flows(escrow_dispute_ms=60_000)
    _escrow(story)
    message = story.refused(
        "bank-b", "trade.escrow.resolve", {"escrow_id": "e1", "to_seller": 1, "reason": "r"}
    ).message
    assert "council has named none" in message
    story.ok("exporter", "trade.escrow.dispute", {"escrow_id": "e1", "reason": "x"})
    story.idle(3, dt=30_000)
    record = escrow_state.escrow(story.trade, "e1")
    assert record is not None and record["status"] == "expired"
    assert (record["closed"]["to_buyer"], record["closed"]["reason"]) == (400_000, "expired")
    assert story.available("importer") == 1_000_000


def test_the_sellers_cancel_is_recorded_as_a_refund(story: Story) -> None:
    _escrow(story)
    story.ok("exporter", "trade.escrow.cancel", {"escrow_id": "e1"})
    record = escrow_state.escrow(story.trade, "e1")
    assert record is not None and record["status"] == "cancelled"
    assert (record["closed"]["to_seller"], record["closed"]["to_buyer"]) == (0, 400_000)


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
