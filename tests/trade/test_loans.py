"""Pledge-backed loans on the whole dev chain (party, doc and trade with their real rules):
request, offers ranked by rate then time, acceptance as one outcome over three heights, the
double-financing check decided by doc, repayment releasing the pledge, default exactly at
maturity + grace moving the title to the lender."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.trade.story import Story
from traco.services.trade import risk_state
from traco.services.trade.loans import state as s

REQUEST, OFFER, ACCEPT, REPAY = (
    "trade.finance.request",
    "trade.finance.offer",
    "trade.finance.accept",
    "trade.loan.repay",
)
TENOR = 20_000  # 20 s of block time


@pytest.fixture
def story(tmp_path: Path) -> Story:
    chain = Story(tmp_path)
    chain.fund_trc(**{"bank-a": 2_000_000, "bank-b": 2_000_000, "exporter": 100_000})
    chain.set_flows(loan_grace_ms=5_000)
    return chain


def bill(story: Story) -> str:
    return story.register("carrier", holder=story.pub("exporter"))


def ask(story: Story, doc_id: str, request_id: str = "r1", amount: int = 1_000_000) -> None:
    payload = {"request_id": request_id, "doc_id": doc_id, "token": "TRC", "amount": amount}
    story.ok("exporter", REQUEST, {**payload, "tenor_ms": TENOR, "offers_until": story.tip.time + 60_000})


def offer(story: Story, bank: str, offer_id: str, rate_bp: int, request_id: str = "r1") -> None:
    payload = {"offer_id": offer_id, "request_id": request_id, "rate_bp": rate_bp}
    story.ok(bank, OFFER, {**payload, "valid_until": story.tip.time + 60_000})


def loan(story: Story, loan_id: str = "r1") -> dict[str, Any]:
    record = s.loan(story.trade, loan_id)
    assert record is not None
    return record


def test_the_best_offer_is_accepted_and_disbursed_two_heights_later(story: Story) -> None:
    doc_id = bill(story)
    ask(story, doc_id)
    offer(story, "bank-a", "o-a", 900)
    offer(story, "bank-b", "o-b", 700)
    offer(story, "bank-a", "o-a2", 700)  # same rate, later: ranks after o-b
    result = story.ok("exporter", ACCEPT, {"request_id": "r1"})
    assert (result["offer_id"], result["lender"], result["rate_bp"]) == ("o-b", "bank-b", 700)
    assert loan(story)["status"] == "pledging"
    assert story.available("bank-b") == 1_000_000 and story.total("exporter") == 100_000  # held, not yet paid
    story.idle()  # H+1: doc pledges
    assert story.document(doc_id)["pledge"]["financier"]["member_id"] == "bank-b"
    assert story.document(doc_id)["pledge"]["manager"] == "service:trade"
    story.idle()  # H+2: trade pays the borrower
    record = loan(story)
    assert record["status"] == "active" and record["maturity"] == record["start"] + TENOR
    assert record["default_at"] == record["maturity"] + 5_000
    assert (story.total("exporter"), story.total("bank-b")) == (1_100_000, 1_000_000)
    assert story.trc_everywhere() == story.trc_supply()
    totals = risk_state.totals(story.trade, "bank-b")
    assert (totals["lent"], totals["loans_lent"], totals["pledged_in"]) == (1_000_000, 1, 1)


def active_loan(story: Story) -> str:
    doc_id = bill(story)
    ask(story, doc_id)
    offer(story, "bank-a", "o-a", 1_000)
    story.ok("exporter", ACCEPT, {"request_id": "r1", "offer_id": "o-a"})
    story.idle(2)
    assert loan(story)["status"] == "active"
    return doc_id


def test_partial_then_full_repayment_releases_the_pledge(story: Story) -> None:
    doc_id = active_loan(story)
    first = story.ok("exporter", REPAY, {"loan_id": "r1", "amount": 300_000})
    assert first["to_interest"] >= 1 and first["to_interest"] + first["to_principal"] == 300_000
    assert story.refused("exporter", REPAY, {"loan_id": "r1", "amount": 10_000_000}).code == "OVERPAYMENT"
    assert story.refused("bank-a", REPAY, {"loan_id": "r1", "amount": 1}).code == "NOT_BORROWER"
    record = loan(story)
    rest = record["outstanding"] + 10  # more than the principal: interest accrued since
    receipt = story.run("exporter", REPAY, {"loan_id": "r1", "amount": rest})
    if not receipt.accepted:  # over by the few units of interest: pay exactly what the message says is due
        assert receipt.code == "OVERPAYMENT"
        due = int(receipt.message.split(" has ")[1].split(" due")[0])
        story.ok("exporter", REPAY, {"loan_id": "r1", "amount": due})
    record = loan(story)
    assert record["status"] == "repaid" and record["outstanding"] == 0 and len(record["payments"]) == 2
    paid = sum(p["amount"] for p in record["payments"])
    assert story.total("bank-a") == 2_000_000 - 1_000_000 + paid
    story.idle(2)  # doc discharges at +1, trade records it at +2
    assert story.document(doc_id)["pledge"] is None
    assert loan(story)["collateral"]["action"] == "discharge" and loan(story)["collateral"]["accepted"]
    assert risk_state.totals(story.trade, "bank-a")["lent"] == 0
    assert story.trc_everywhere() == story.trc_supply()


def test_default_exactly_at_maturity_plus_grace_moves_the_title_to_the_lender(story: Story) -> None:
    doc_id = active_loan(story)
    default_at = loan(story)["default_at"]
    story.block(dt=default_at - story.tip.time - 1)  # one millisecond before: still performing
    assert loan(story)["status"] == "active"
    receipt = story.run("exporter", REPAY, {"loan_id": "r1", "amount": 1}, dt=1)  # at default_at exactly
    assert receipt.code == "LOAN_IN_DEFAULT"
    assert loan(story)["status"] == "defaulted", "the clause at the end of that block defaulted it"
    story.idle(2)
    assert story.document(doc_id)["holder"]["member_id"] == "bank-a"
    assert story.document(doc_id)["pledge"] is None
    assert loan(story)["collateral"] == {**loan(story)["collateral"], "action": "enforce", "accepted": True}
    totals = risk_state.totals(story.trade, "bank-a")
    assert totals["lent"] == 0 and totals["defaulted_lent"] == 1_000_000


def test_two_loans_accepted_at_one_height_on_one_document_cannot_both_stand(story: Story) -> None:
    doc_id = bill(story)
    ask(story, doc_id, "r1")
    ask(story, doc_id, "r2")
    offer(story, "bank-a", "o-1", 500, "r1")
    offer(story, "bank-b", "o-2", 500, "r2")
    story.block(
        story.tx("exporter", ACCEPT, {"request_id": "r1"}),
        story.tx("exporter", ACCEPT, {"request_id": "r2"}),
    )
    assert loan(story, "r1")["status"] == loan(story, "r2")["status"] == "pledging"
    story.idle(2)
    assert loan(story, "r1")["status"] == "active"
    second = loan(story, "r2")
    assert second["status"] == "refused" and second["refusal"]["code"] == "ALREADY_PLEDGED"
    assert story.total("bank-b") == 2_000_000, "the refused lender has all its TRC back"
    assert story.total("exporter") == 1_100_000, "the borrower was paid once"
    assert story.trc_everywhere() == story.trc_supply()


def test_a_pledged_document_cannot_be_financed_again_and_requests_name_their_problems(story: Story) -> None:
    doc_id = active_loan(story)
    receipt = story.refused(
        "exporter",
        REQUEST,
        {"request_id": "r9", "doc_id": doc_id, "token": "TRC", "amount": 5, "tenor_ms": TENOR, "offers_until": 1},
    )
    assert receipt.code == "INVALID_TERMS" and "offers_until" in receipt.message
    payload = {"request_id": "r9", "doc_id": doc_id, "token": "TRC", "amount": 5, "tenor_ms": TENOR}
    late = {**payload, "offers_until": story.tip.time + 9_000}
    assert story.refused("exporter", REQUEST, late).code == "ALREADY_PLEDGED"
    assert story.refused("importer", REQUEST, {**late, "request_id": "r8"}).code == "NOT_HOLDER"
    assert story.refused("exporter", OFFER, {"offer_id": "x", "request_id": "r1", "rate_bp": 1, "valid_until": 1}).code
    assert story.refused("exporter", ACCEPT, {"request_id": "nope"}).code == "UNKNOWN_REQUEST"


def test_an_offer_the_lender_cannot_fund_is_refused_at_acceptance(story: Story) -> None:
    doc_id = bill(story)
    ask(story, doc_id, amount=5_000_000)
    offer(story, "bank-a", "o-a", 500)
    receipt = story.refused("exporter", ACCEPT, {"request_id": "r1"})
    assert receipt.code == "INSUFFICIENT_FUNDS" and "bank-a" in receipt.message
    assert s.request(story.trade, "r1")["status"] == "open"  # type: ignore[index]


def test_a_withdrawn_offer_is_never_accepted_and_a_cancelled_request_takes_nothing(story: Story) -> None:
    doc_id = bill(story)
    ask(story, doc_id)
    offer(story, "bank-a", "cheap", 100)
    offer(story, "bank-b", "dear", 900)
    assert story.refused("bank-b", "trade.finance.withdraw", {"offer_id": "cheap"}).code == "NOT_LENDER"
    story.ok("bank-a", "trade.finance.withdraw", {"offer_id": "cheap"})
    assert story.refused("bank-a", "trade.finance.withdraw", {"offer_id": "cheap"}).code == "OFFER_CLOSED"
    assert story.refused("exporter", ACCEPT, {"request_id": "r1", "offer_id": "cheap"}).code == "OFFER_CLOSED"
    assert story.ok("exporter", ACCEPT, {"request_id": "r1"})["offer_id"] == "dear"
    ask(story, story.register("carrier", holder=story.pub("exporter")), "r2")
    assert story.refused("bank-a", "trade.finance.cancel", {"request_id": "r2"}).code == "NOT_BORROWER"
    story.ok("exporter", "trade.finance.cancel", {"request_id": "r2"})
    late = {"offer_id": "late", "request_id": "r2", "rate_bp": 1, "valid_until": 2**40}
    receipt = story.refused("bank-a", OFFER, late)
    assert receipt.code == "REQUEST_CLOSED"


def test_the_best_offer_is_taken_at_the_deadline_with_the_borrowers_authority(story: Story) -> None:
    doc_id = bill(story)
    deadline = story.tip.time + 5_000
    payload = {"request_id": "r1", "doc_id": doc_id, "token": "TRC", "amount": 1_000_000, "tenor_ms": TENOR}
    story.ok("exporter", REQUEST, {**payload, "offers_until": deadline, "accept_best": True})
    for bank, offer_id, rate in (("bank-a", "o-a", 800), ("bank-b", "o-b", 750)):
        story.ok(
            bank, OFFER, {"offer_id": offer_id, "request_id": "r1", "rate_bp": rate, "valid_until": deadline + 60_000}
        )
    while story.tip.time < deadline - 1_000:
        story.idle()
    assert s.request(story.trade, "r1")["status"] == "open"  # type: ignore[index]
    results = story.block()  # the first block at the deadline
    [fired] = story.clause_receipts(results, "finance_auto_accept")
    assert fired.result == {"clause": "finance_auto_accept", "subject": "r1"}
    sent = [e for e in results.services["trade"].events if e.type == "Command"]
    assert sent and sent[0].data["authority"] == story.pub("exporter"), "the borrower's authority, not the service's"
    assert loan(story)["lender"] == "bank-b"
    story.idle(2)
    assert loan(story)["status"] == "active" and story.total("exporter") == 1_100_000
    assert story.document(doc_id)["pledge"]["financier"]["member_id"] == "bank-b"


def test_a_deadline_without_an_offer_lapses_the_request(story: Story) -> None:
    doc_id = bill(story)
    payload = {"request_id": "r1", "doc_id": doc_id, "token": "TRC", "amount": 1_000_000, "tenor_ms": TENOR}
    story.ok("exporter", REQUEST, {**payload, "offers_until": story.tip.time + 2_000, "accept_best": True})
    story.idle(3)
    record = s.request(story.trade, "r1")
    assert record is not None and record["status"] == "lapsed" and record["lapsed"]["code"] == "NO_OFFER"
    assert not list(story.trade.scan(s.AUTO))


def test_a_pooled_invoice_is_under_a_lien_in_doc_and_cannot_be_pledged_there(story: Story) -> None:
    """Securitised receivables are sold to the pool's investors: doc refuses to pledge, move or
    hold them, so the arranger cannot finance one again through doc either."""
    metadata = {"amount": 500_000, "debtor": "importer", "due_date": "2099-12-31"}
    invoice = story.register("exporter", "invoice", holder=story.pub("bank-a"), metadata=metadata)
    pool = {
        "pool_id": "P1",
        "assets": [{"receivable": invoice}],
        "tranches": [{"name": "A", "size": 400_000, "coupon_bp": 500}],
        "loss_trigger_bp": 1_000,
    }
    story.ok("bank-a", "trade.abs.pool", pool)
    story.idle(2)
    record = story.document(invoice)
    assert record["lien"]["reference"] == "abs:P1" and record["lien"]["manager"] == "service:trade"
    offer = {"doc_id": invoice, "financier": story.pub("bank-b"), "amount": 1, "currency": "TRC"}
    refused = story.refused("bank-a", "doc.pledge", {**offer, "expires_at": story.tip.time + 60_000})
    assert refused.code == "LIEN" and "abs:P1" in refused.message
    from traco.services.trade.abs import state as abs_state

    pooled = abs_state.pool(story.trade, "P1")
    assert pooled is not None and pooled["assets"][0]["lien"]["accepted"] is True


def test_a_loans_pledged_title_cannot_be_held_so_enforcement_is_never_blocked(story: Story) -> None:
    doc_id = active_loan(story)
    title = {"hold_id": "block", "doc_id": doc_id, "beneficiary": story.pub("bank-a"), "notary": story.pub("importer")}
    receipt = story.refused("exporter", "doc.hold", {**title, "expires_height": story.tip.height + 100})
    assert receipt.code == "PLEDGED" and "loan:r1" in receipt.message
    story.block(dt=loan(story)["default_at"] - story.tip.time)
    story.idle(2)
    assert story.document(doc_id)["holder"]["member_id"] == "bank-a"
