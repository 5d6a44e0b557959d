"""Edges of cash against documents (DvP) that its main tests walk past, written to kill the
mutmut survivors in ``services/trade/dvp`` (``tools/named_mutants.py mutmut --flows``): every
deadline is exact at its height (opening, funding, allocating, settling), and a title hold is
this settlement's only if it expires by height alone and serves no other DvP."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trade.story import Story
from traco.services.trade.dvp import state as s

OPEN, FUND, ALLOCATE, SETTLE = "trade.dvp.open", "trade.dvp.fund", "trade.dvp.allocate", "trade.dvp.settle"


@pytest.fixture
def story(tmp_path: Path) -> Story:
    chain = Story(tmp_path)
    chain.fund_trc(importer=1_000_000)
    return chain


def _terms(story: Story, doc_id: str, dvp_id: str, allocate_by: int, settle_by: int) -> dict[str, object]:
    terms: dict[str, object] = {"dvp_id": dvp_id, "seller": "exporter", "buyer": "importer", "doc_id": doc_id}
    return {**terms, "token": "TRC", "amount": 700_000, "allocate_by": allocate_by, "settle_by": settle_by}


def _title_hold(story: Story, doc_id: str, hold_id: str, expires_height: int, **extra: object) -> None:
    payload = {"hold_id": hold_id, "doc_id": doc_id, "beneficiary": story.pub("importer"), "notary": "service:trade"}
    story.ok("exporter", "doc.hold", {**payload, "expires_height": expires_height, **extra})


def _until(story: Story, height: int) -> None:
    """Seal empty blocks until the tip is at ``height`` (the next transaction lands at height + 1)."""
    story.idle(height - story.tip.height)


def test_open_refuses_an_allocation_deadline_at_its_own_height_and_allows_settle_by_equal_to_it(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    here = story.tip.height + 1  # the height the open lands at
    receipt = story.refused("exporter", OPEN, _terms(story, doc_id, "d0", here, here + 5))
    assert receipt.code == "INVALID_TERMS" and "allocate_by" in receipt.message
    here = story.tip.height + 1
    story.ok("exporter", OPEN, _terms(story, doc_id, "d1", here + 5, here + 5))
    early = _terms(story, doc_id, "d2", here + 5, here + 4)
    receipt = story.refused("exporter", OPEN, early)
    assert receipt.code == "INVALID_TERMS" and "settle_by" in receipt.message


def test_legs_are_taken_until_the_height_before_allocate_by(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    allocate_by = story.tip.height + 6
    story.ok("exporter", OPEN, _terms(story, doc_id, "d1", allocate_by, allocate_by + 10))
    _title_hold(story, doc_id, "t1", allocate_by + 12)
    _until(story, allocate_by - 1)
    assert story.refused("importer", FUND, {"dvp_id": "d1"}).code == "DEADLINE_PASSED"
    record = s.dvp(story.trade, "d1")
    assert record is not None and record["status"] == "expired" and not record["funded"]
    assert story.available("importer") == 1_000_000


def test_the_seller_cannot_allocate_at_allocate_by_either(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    allocate_by = story.tip.height + 6
    story.ok("exporter", OPEN, _terms(story, doc_id, "d1", allocate_by, allocate_by + 10))
    story.ok("importer", FUND, {"dvp_id": "d1"})
    _title_hold(story, doc_id, "t1", allocate_by + 12)
    _until(story, allocate_by - 1)
    receipt = story.refused("exporter", ALLOCATE, {"dvp_id": "d1", "title_hold_id": "t1"})
    assert receipt.code == "DEADLINE_PASSED"


def test_settlement_at_settle_by_exactly_completes(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    h = story.tip.height
    story.ok("exporter", OPEN, _terms(story, doc_id, "d1", h + 6, h + 9))
    story.ok("importer", FUND, {"dvp_id": "d1"})
    _title_hold(story, doc_id, "t1", h + 9 + 2)  # the shortest a title hold may be
    story.ok("exporter", ALLOCATE, {"dvp_id": "d1", "title_hold_id": "t1"})
    _until(story, h + 9 - 1)
    assert story.ok("importer", SETTLE, {"dvp_id": "d1"}) == {"dvp_id": "d1", "status": "settling"}
    record = s.dvp(story.trade, "d1")
    assert record is not None and record["settling"]["height"] == h + 9
    story.idle(2)
    assert s.dvp(story.trade, "d1")["status"] == "settled"  # type: ignore[index]
    assert story.total("exporter") == 700_000 and story.document(doc_id)["holder"]["member_id"] == "importer"


def test_a_title_hold_that_expires_by_time_or_serves_another_dvp_is_refused(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    h = story.tip.height
    story.ok("exporter", OPEN, _terms(story, doc_id, "d1", h + 20, h + 30))
    story.ok("exporter", OPEN, _terms(story, doc_id, "d2", h + 20, h + 30))
    _title_hold(story, doc_id, "t1", h + 40, expires_at=story.tip.time + 10 * 86_400_000)
    receipt = story.refused("exporter", ALLOCATE, {"dvp_id": "d1", "title_hold_id": "t1"})
    assert receipt.code == "BAD_TITLE_HOLD" and "expires by time" in receipt.message
    story.ok("importer", "doc.hold.release", {"hold_id": "t1"})
    _title_hold(story, doc_id, "t2", h + 40)
    story.ok("exporter", ALLOCATE, {"dvp_id": "d1", "title_hold_id": "t2"})
    receipt = story.refused("exporter", ALLOCATE, {"dvp_id": "d2", "title_hold_id": "t2"})
    assert receipt.code == "BAD_TITLE_HOLD" and "already serves another DvP" in receipt.message


def test_settle_reads_the_title_hold_again_and_refuses_once_the_buyer_released_it(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    h = story.tip.height
    story.ok("exporter", OPEN, _terms(story, doc_id, "d1", h + 10, h + 20))
    story.ok("importer", FUND, {"dvp_id": "d1"})
    _title_hold(story, doc_id, "t1", h + 30)
    story.ok("exporter", ALLOCATE, {"dvp_id": "d1", "title_hold_id": "t1"})
    story.ok("importer", "doc.hold.release", {"hold_id": "t1"})
    receipt = story.refused("exporter", SETTLE, {"dvp_id": "d1"})
    assert receipt.code == "TOO_LATE" and "status" in receipt.message
    record = s.dvp(story.trade, "d1")
    assert record is not None and record["status"] == "allocated"
