"""Cash against documents on the whole dev chain: the seller's title (a doc hold decided by
trade) and the buyer's TRC (a managed hold) change hands as one outcome, or neither does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trade.story import Story
from traco.services.trade.dvp import state as s


@pytest.fixture
def story(tmp_path: Path) -> Story:
    chain = Story(tmp_path)
    chain.fund_trc(importer=1_000_000)
    return chain


def opened(story: Story, agent: str | None = None, settle_in: int = 20) -> str:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    h = story.tip.height
    terms: dict[str, object] = {
        "dvp_id": "d1",
        "seller": "exporter",
        "buyer": "importer",
        "doc_id": doc_id,
        "token": "TRC",
    }
    terms |= {"amount": 700_000, "allocate_by": h + 10, "settle_by": h + settle_in}
    if agent:
        terms["agent"] = agent
    story.ok("exporter", "trade.dvp.open", terms)
    return doc_id


def title_hold(story: Story, doc_id: str, expires: int, **extra: str) -> None:
    payload = {"hold_id": "t1", "doc_id": doc_id, "beneficiary": story.pub("importer"), "notary": "service:trade"}
    story.ok("exporter", "doc.hold", {**payload, "expires_height": expires, **extra})


def allocated(story: Story, agent: str | None = None) -> str:
    doc_id = opened(story, agent)
    story.ok("importer", "trade.dvp.fund", {"dvp_id": "d1"})
    record = s.dvp(story.trade, "d1")
    assert record is not None
    title_hold(story, doc_id, record["settle_by"] + 2)
    story.ok("exporter", "trade.dvp.allocate", {"dvp_id": "d1", "title_hold_id": "t1"})
    assert s.dvp(story.trade, "d1")["status"] == "allocated"  # type: ignore[index]
    return doc_id


def test_settlement_moves_the_title_first_then_the_payment(story: Story) -> None:
    doc_id = allocated(story, agent="bank-a")
    story.ok("bank-a", "trade.dvp.settle", {"dvp_id": "d1"})
    assert story.total("exporter") == 0
    story.idle()  # doc executes the title hold at +1
    assert story.document(doc_id)["holder"]["member_id"] == "importer"
    assert story.total("exporter") == 0, "no payment until trade sees doc's confirmation"
    story.idle()  # trade completes at +2
    assert (story.total("exporter"), story.total("importer")) == (700_000, 300_000)
    assert s.dvp(story.trade, "d1")["status"] == "settled"  # type: ignore[index]
    assert story.trc_everywhere() == story.trc_supply()


def test_when_doc_refuses_the_title_the_payment_returns_to_the_buyer(story: Story) -> None:
    doc_id = allocated(story)
    # the buyer (beneficiary) refuses the title hold in doc in the same block as the settlement
    story.block(
        story.tx("importer", "doc.hold.release", {"hold_id": "t1"}),
        story.tx("exporter", "trade.dvp.settle", {"dvp_id": "d1"}),
    )
    story.idle(2)
    record = s.dvp(story.trade, "d1")
    assert record is not None and record["status"] == "failed" and record["closed"]["code"] == "HOLD_CLOSED"
    assert story.document(doc_id)["holder"]["member_id"] == "exporter"
    assert (story.total("exporter"), story.available("importer")) == (0, 1_000_000)


def test_the_title_hold_must_be_this_settlements_and_live_long_enough(story: Story) -> None:
    doc_id = opened(story)
    record = s.dvp(story.trade, "d1")
    assert record is not None
    title_hold(story, doc_id, record["settle_by"])  # too short: doc acts at settle_by + 1
    receipt = story.refused("exporter", "trade.dvp.allocate", {"dvp_id": "d1", "title_hold_id": "t1"})
    assert receipt.code == "BAD_TITLE_HOLD" and "must live through" in receipt.message
    assert story.refused("importer", "trade.dvp.allocate", {"dvp_id": "d1", "title_hold_id": "t1"}).code == "NOT_SELLER"
    assert story.refused("exporter", "trade.dvp.settle", {"dvp_id": "d1"}).code == "NOT_ALLOCATED"
    assert story.refused("exporter", "trade.dvp.fund", {"dvp_id": "d1"}).code == "NOT_BUYER"


def test_a_leg_missing_at_the_deadline_expires_it_and_returns_the_other(story: Story) -> None:
    opened(story)
    story.ok("importer", "trade.dvp.fund", {"dvp_id": "d1"})
    assert story.available("importer") == 300_000
    story.idle(10)
    record = s.dvp(story.trade, "d1")
    assert record is not None and record["status"] == "expired"
    assert story.available("importer") == 1_000_000


def test_settling_too_close_to_expiry_is_refused(story: Story) -> None:
    allocated(story)
    record = s.dvp(story.trade, "d1")
    assert record is not None
    story.idle(record["settle_by"] - story.tip.height)  # the next block is settle_by + 1
    assert story.refused("importer", "trade.dvp.settle", {"dvp_id": "d1"}).code == "DEADLINE_PASSED"


def test_no_one_takes_a_title_trade_decides_without_the_flow(story: Story) -> None:
    """Doc lets the commanding service decide a hold whose notary is service:trade, so a bare
    ``trade.title.execute`` by the buyer would take the title and keep the money: refused."""
    doc_id = allocated(story)
    receipt = story.refused("importer", "trade.title.execute", {"hold_id": "t1"})
    assert receipt.code == "NOT_PERMITTED" and "trade.dvp.settle" in receipt.message
    story.idle(2)
    assert story.document(doc_id)["holder"]["member_id"] == "exporter"
    # before any DvP names it, too: a title hold decided by trade waits for its flow
    other = story.register("carrier", holder=story.pub("exporter"))
    title = {"hold_id": "t2", "doc_id": other, "beneficiary": story.pub("importer"), "notary": "service:trade"}
    story.ok("exporter", "doc.hold", {**title, "expires_height": story.tip.height + 50})
    story.idle()
    assert story.refused("importer", "trade.title.execute", {"hold_id": "t2"}).code == "NOT_PERMITTED"


def test_when_the_council_lists_settlement_agents_only_they_may_be_named(story: Story) -> None:
    story.set_flows(settlement_agents=["bank-b"])
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    h = story.tip.height
    terms: dict[str, object] = {
        "dvp_id": "d9",
        "seller": "exporter",
        "buyer": "importer",
        "doc_id": doc_id,
        "token": "TRC",
    }
    terms |= {"amount": 1, "allocate_by": h + 10, "settle_by": h + 20}
    receipt = story.refused("exporter", "trade.dvp.open", {**terms, "agent": "bank-a"})
    assert receipt.code == "INVALID_TERMS" and "settlement agents (bank-b)" in receipt.message
    story.ok("exporter", "trade.dvp.open", {**terms, "agent": "bank-b"})
