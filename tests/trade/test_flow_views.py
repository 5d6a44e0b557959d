"""The flows' views (``services/trade/flow_views.py``) and the exposure view
(``services/trade/risk.py``) on state made by running the real rules on the whole dev chain
(``tests/trade/story.py``), and the exposure of 10,000 loans made by the loan mutators checked
against a naive computation over every loan record — reading only a handful of keys."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.trade.story import Story
from traco.core.domain import DictState, Event
from traco.services.trade import flow_views as fv
from traco.services.trade import mutations
from traco.services.trade import risk as r
from traco.services.trade.loans import interest

REQUEST, OFFER, ACCEPT, REPAY = (
    "trade.finance.request",
    "trade.finance.offer",
    "trade.finance.accept",
    "trade.loan.repay",
)
TENOR = 20_000


@pytest.fixture
def story(tmp_path: Path) -> Story:
    chain = Story(tmp_path)
    chain.fund_trc(**{"bank-a": 2_000_000, "bank-b": 2_000_000, "exporter": 100_000, "importer": 1_000_000})
    return chain


def ask(
    story: Story, request_id: str, amount: int, borrower: str = "exporter", doc_type: str = "bill_of_lading"
) -> str:
    issuer = "carrier" if doc_type == "bill_of_lading" else "exporter"  # doc's issuer roles
    doc_id = story.register(issuer, doc_type=doc_type, holder=story.pub(borrower))
    payload = {"request_id": request_id, "doc_id": doc_id, "token": "TRC", "amount": amount, "tenor_ms": TENOR}
    story.ok(borrower, REQUEST, {**payload, "offers_until": story.tip.time + 60_000})
    return doc_id


def offer(story: Story, bank: str, offer_id: str, rate_bp: int, request_id: str, valid_ms: int = 60_000) -> None:
    payload = {"offer_id": offer_id, "request_id": request_id, "rate_bp": rate_bp}
    story.ok(bank, OFFER, {**payload, "valid_until": story.tip.time + valid_ms})


def active(story: Story, request_id: str, bank: str, amount: int, rate_bp: int = 1_000, **kw: Any) -> None:
    ask(story, request_id, amount, **kw)
    offer(story, bank, f"{request_id}-{bank}", rate_bp, request_id)
    story.ok(kw.get("borrower", "exporter"), ACCEPT, {"request_id": request_id})
    story.idle(2)  # doc pledges at +1, trade disburses at +2


def test_unknown_ids_have_no_view(story: Story) -> None:
    trade = story.trade
    assert fv.escrow_view(trade, "nope") is None
    assert fv.finance_request_view(trade, "nope", story.tip.time) is None
    assert fv.loan_view(trade, "nope", story.tip.time) is None
    assert fv.dvp_view(trade, "nope") is None


def test_an_escrow_shows_its_hold_open_then_paid(story: Story) -> None:
    terms = {"escrow_id": "e1", "token": "TRC", "seller": "exporter", "amount": 400_000}
    story.ok(
        "importer", "trade.escrow.open", {**terms, "expires_at": story.tip.time + 60_000, "release": {"on": "confirm"}}
    )
    shown = fv.escrow_view(story.trade, "e1")
    assert shown is not None and shown["status"] == "open" and shown["buyer"] == "importer"
    assert shown["hold"]["status"] == "ordered" and shown["hold"]["amount"] == 400_000
    story.ok("importer", "trade.escrow.confirm", {"escrow_id": "e1"})
    shown = fv.escrow_view(story.trade, "e1")
    assert shown is not None and shown["status"] == "confirmed"
    assert shown["closed"]["to_seller"] == 400_000 and shown["closed"]["to_buyer"] == 0
    assert (shown["hold"]["status"], shown["hold"]["executed"]) == ("executed", 400_000)


def test_a_request_lists_its_open_offers_best_first_and_which_are_still_valid(story: Story) -> None:
    ask(story, "r1", 500_000)
    offer(story, "bank-a", "o-a", 900, "r1")
    offer(story, "bank-b", "o-b", 700, "r1")
    offer(story, "bank-a", "o-a2", 700, "r1", valid_ms=1_500)  # same rate, later: after o-b; expires soon
    offer(story, "bank-b", "o-gone", 100, "r1")
    story.ok("bank-b", "trade.finance.withdraw", {"offer_id": "o-gone"})  # withdrawn: not listed
    shown = fv.finance_request_view(story.trade, "r1", story.tip.time)
    assert shown is not None and shown["status"] == "open" and shown["loan"] is None
    assert [(o["offer_id"], o["position"]) for o in shown["offers"]] == [("o-b", 1), ("o-a2", 2), ("o-a", 3)]
    assert [o["offer_id"] for o in shown["offers"] if not o["valid"]] == ["o-a2"]  # lapsed since
    story.ok("exporter", ACCEPT, {"request_id": "r1"})
    shown = fv.finance_request_view(story.trade, "r1", story.tip.time)
    assert shown is not None and shown["status"] == "accepted"
    assert shown["loan"] == {"loan_id": "r1", "status": "pledging", "lender": "bank-b", "rate_bp": 700}
    assert [o["offer_id"] for o in shown["offers"]] == ["o-a2", "o-a"]  # the accepted one left the ranking
    assert not any(o["valid"] for o in shown["offers"])  # the request took one: no other can be accepted


def test_a_loan_shows_interest_owed_and_total_due_at_the_time_asked(story: Story) -> None:
    ask(story, "r1", 1_000_000)
    offer(story, "bank-a", "o1", 1_500, "r1")
    story.ok("exporter", ACCEPT, {"request_id": "r1"})
    pledging = fv.loan_view(story.trade, "r1", story.tip.time)
    assert pledging is not None and pledging["status"] == "pledging"
    assert pledging["interest_owed"] is None and pledging["hold"]["status"] == "ordered"
    story.idle(2)
    loan = fv.loan_view(story.trade, "r1", story.tip.time)
    assert loan is not None and loan["status"] == "active" and loan["hold"]["status"] == "executed"
    later = loan["start"] + 12_345
    at_later = fv.loan_view(story.trade, "r1", later)
    assert at_later is not None
    # by hand: 1,000,000 × 12,345 ms × 15% / a year of ms, rounded up
    owed = -(-1_500 * 1_000_000 * 12_345 // (10_000 * interest.YEAR_MS))
    assert (at_later["interest_owed"], at_later["total_due"]) == (owed, 1_000_000 + owed)
    assert at_later["now"] == later and not at_later["in_default"]
    assert fv.loan_view(story.trade, "r1", loan["default_at"])["in_default"]  # type: ignore[index]
    story.ok("exporter", REPAY, {"loan_id": "r1", "amount": 400_000})
    after = fv.loan_view(story.trade, "r1", story.tip.time)
    assert after is not None and after["outstanding"] < 1_000_000 and len(after["payments"]) == 1
    paid = after["payments"][0]
    assert paid["to_interest"] + paid["to_principal"] == 400_000
    assert after["total_due"] == after["outstanding"] + after["interest_owed"]
    at_next = fv.loan_view(story.trade, "r1", story.tip.time + 1_000)  # the next block's time
    assert at_next is not None
    story.ok("exporter", REPAY, {"loan_id": "r1", "amount": at_next["total_due"]}, dt=1_000)
    closed = fv.loan_view(story.trade, "r1", story.tip.time)
    assert closed is not None and closed["status"] == "repaid" and closed["total_due"] is None
    assert closed["outstanding"] == 0 and not closed["in_default"]


def test_a_dvp_shows_its_legs_and_the_buyers_hold(story: Story) -> None:
    doc_id = story.register("carrier", holder=story.pub("exporter"))
    h = story.tip.height
    terms = {"dvp_id": "d1", "seller": "exporter", "buyer": "importer", "doc_id": doc_id, "token": "TRC"}
    story.ok("exporter", "trade.dvp.open", {**terms, "amount": 700_000, "allocate_by": h + 10, "settle_by": h + 20})
    shown = fv.dvp_view(story.trade, "d1")
    assert shown is not None and shown["status"] == "open" and not shown["funded"] and shown["token_hold"] is None
    story.ok("importer", "trade.dvp.fund", {"dvp_id": "d1"})
    shown = fv.dvp_view(story.trade, "d1")
    assert shown is not None and shown["funded"] and shown["title_hold_id"] is None
    assert (shown["token_hold"]["owner"], shown["token_hold"]["amount"]) == ("importer", 700_000)


def test_exposure_of_members_after_real_loans_and_an_escrow(story: Story) -> None:
    active(story, "r1", "bank-a", 600_000)
    active(story, "r2", "bank-b", 200_000)
    active(story, "r3", "bank-a", 100_000, borrower="importer", doc_type="invoice")
    terms = {"escrow_id": "e1", "token": "TRC", "seller": "exporter", "amount": 50_000}
    story.ok(
        "importer", "trade.escrow.open", {**terms, "expires_at": story.tip.time + 60_000, "release": {"on": "confirm"}}
    )
    exporter = r.risk_view(story.trade, "exporter")
    assert exporter["loans"] == {
        "lent": 0,
        "borrowed": 800_000,
        "count_lent": 0,
        "count_borrowed": 2,
        "defaulted_lent": 0,
        "defaulted_borrowed": 0,
    }
    assert exporter["pledged"] == {"documents_in": 0, "documents_out": 2}
    # shares 600,000 and 200,000 of 800,000: 10,000 × (0.75² + 0.25²) = 6,250 exactly
    conc = exporter["concentration"]
    assert conc["counterparty_hhi_bp"] == 6_250 and conc["doctype_hhi_bp"] is None  # a borrower lends nothing
    assert [(e["name"], e["share_bp"], e["borrowed"]) for e in conc["by_counterparty"]] == [
        ("bank-a", 7_500, 600_000),
        ("bank-b", 2_500, 200_000),
    ]
    assert exporter["escrow"] == {"paying": {}, "receiving": {"TRC": 50_000}, "count_paying": 0, "count_receiving": 1}
    importer = r.risk_view(story.trade, "importer")
    assert importer["held"] == {"TRC": 50_000} and importer["escrow"]["paying"] == {"TRC": 50_000}
    bank_a = r.risk_view(story.trade, "bank-a")
    loans, pledged = bank_a["loans"], bank_a["pledged"]
    assert (loans["lent"], loans["count_lent"], pledged["documents_in"]) == (700_000, 2, 2)
    # 600,000 to the exporter and 100,000 to the importer: floor(10,000 × (36 + 1) / 49) = 7,551
    assert bank_a["concentration"]["counterparty_hhi_bp"] == 7_551
    by_type = {e["name"]: (e["amount"], e["count"], e["share_bp"]) for e in bank_a["concentration"]["by_doctype"]}
    assert by_type == {"bill_of_lading": (600_000, 1, 8_571), "invoice": (100_000, 1, 1_428)}
    assert bank_a["concentration"]["doctype_hhi_bp"] == 7_551
    nobody = r.risk_view(story.trade, "custodian")
    assert nobody["concentration"]["counterparty_hhi_bp"] is None and nobody["loans"]["lent"] == 0


def test_hhi_is_rounded_down_and_bounded() -> None:
    assert r.hhi_bp([]) is None and r.hhi_bp([0, 0]) is None
    assert r.hhi_bp([5]) == 10_000 and r.hhi_bp([1, 1, 1, 1]) == 2_500
    assert r.hhi_bp([1, 1, 1]) == 3_333  # 3,333.33…
    assert r.hhi_bp([2, 1]) == 5_555  # 5,555.55… rounded down


# --------------------------------------------------------------------------- 10,000 loans


class CountingView:
    """A state view that counts the keys read (gets, and entries a scan yields)."""

    def __init__(self, inner: DictState) -> None:
        self.inner = inner
        self.reads = 0

    def get(self, key: str) -> bytes | None:
        self.reads += 1
        return self.inner.get(key)

    def scan(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        for item in self.inner.scan(prefix):
            self.reads += 1
            yield item


MEMBERS = [f"m{i:02d}" for i in range(40)]
TYPES = ["bill_of_lading", "invoice", "warehouse_receipt", "insurance_certificate"]


def _stamp(n: int) -> dict[str, Any]:
    return {"by": "service:trade", "tx_id": f"{n:064x}", "height": n, "time": 1_000 + n}


def _loan_events(state: DictState, rng: random.Random, n: int) -> None:
    """One loan through the real mutators: accepted, disbursed, then maybe repaid in part or in
    full, or defaulted."""
    lender, borrower = rng.sample(MEMBERS, 2)
    principal = rng.randrange(1, 5_000_000)
    loan_id = f"L{n}"
    record = {
        "loan_id": loan_id,
        "borrower": borrower,
        "lender": lender,
        "doc_id": f"{n:064x}",
        "doc_type": rng.choice(TYPES),
        "token": "TRC",
        "principal": principal,
        "rate_bp": 800,
        "status": "pledging",
        "outstanding": principal,
        "accrued_pms": 0,
        "interest_paid": 0,
        "payments": [],
    }
    events = [
        Event(
            "FinanceRequested", f"loan:{loan_id}", {"request": {"request_id": loan_id, "status": "open"}, **_stamp(n)}
        ),
        Event(
            "FinanceOffered",
            f"loan:{loan_id}",
            {"offer": {"offer_id": f"O{n}", "rank": f"fin/rank/{loan_id}/x"}, **_stamp(n)},
        ),
        Event("LoanAccepted", f"loan:{loan_id}", {"loan": record, "offer_id": f"O{n}", **_stamp(n)}),
        Event(
            "LoanDisbursed",
            f"loan:{loan_id}",
            {"loan_id": loan_id, "start": 1, "maturity": 2, "default_at": 3, **_stamp(n)},
        ),
    ]
    fate = rng.random()
    if fate < 0.5:
        part = rng.randrange(0, principal)
        closed = fate < 0.1
        paid = principal if closed else part
        if paid:
            figures = {"amount": paid, "to_interest": 0, "to_principal": paid, "outstanding": principal - paid}
            figures |= {"accrued_pms": 0, "accrued_to": 1, "interest_paid": 0, "closed": closed}
            events.append(Event("LoanRepaid", f"loan:{loan_id}", {"loan_id": loan_id, **figures, **_stamp(n)}))
    elif fate < 0.6:
        data = {"loan_id": loan_id, "outstanding": principal, "interest_owed": 7, **_stamp(n)}
        events.append(Event("LoanDefaulted", f"loan:{loan_id}", data))
    for event in events:
        state.apply(mutations.mutate(state, event))


def naive(state: DictState, member: str) -> dict[str, Any]:
    """The exposure from every loan record, the slow way."""
    import orjson

    lent = borrowed = count_lent = count_borrowed = defaulted_lent = defaulted_borrowed = 0
    per_cp: dict[str, int] = defaultdict(int)
    per_type: dict[str, int] = defaultdict(int)
    for key, raw in state.scan("loan/"):
        if key.startswith("loan/due/"):
            continue
        loan = orjson.loads(raw)
        mine_l, mine_b = loan["lender"] == member, loan["borrower"] == member
        if loan["status"] == "defaulted":
            defaulted_lent += loan["defaulted"]["outstanding"] if mine_l else 0
            defaulted_borrowed += loan["defaulted"]["outstanding"] if mine_b else 0
        if loan["status"] != "active":
            continue
        if mine_l:
            lent, count_lent = lent + loan["outstanding"], count_lent + 1
            per_cp[loan["borrower"]] += loan["outstanding"]
            per_type[loan["doc_type"]] += loan["outstanding"]
        if mine_b:
            borrowed, count_borrowed = borrowed + loan["outstanding"], count_borrowed + 1
            per_cp[loan["lender"]] += loan["outstanding"]
    exposures, types = [x for x in per_cp.values() if x], [x for x in per_type.values() if x]
    total, type_total = sum(exposures), sum(types)
    return {
        "loans": {
            "lent": lent,
            "borrowed": borrowed,
            "count_lent": count_lent,
            "count_borrowed": count_borrowed,
            "defaulted_lent": defaulted_lent,
            "defaulted_borrowed": defaulted_borrowed,
        },
        "pledged": {"documents_in": count_lent, "documents_out": count_borrowed},
        # the exact HHI in bp as a fraction, floored by integer division
        "counterparty_hhi_bp": 10_000 * sum(x * x for x in exposures) // (total * total) if total else None,
        "doctype_hhi_bp": 10_000 * sum(x * x for x in types) // (type_total * type_total) if type_total else None,
    }


def test_ten_thousand_loans_agree_with_a_naive_count_reading_a_handful_of_keys() -> None:
    state, rng = DictState(), random.Random(20261129)
    for n in range(10_000):
        _loan_events(state, rng, n)
    for member in MEMBERS:
        counted = CountingView(state)
        shown = r.risk_view(counted, member)
        expected = naive(state, member)
        assert shown["loans"] == expected["loans"], member
        assert shown["pledged"] == expected["pledged"], member
        conc = shown["concentration"]
        assert conc["counterparty_hhi_bp"] == expected["counterparty_hhi_bp"], member
        assert conc["doctype_hhi_bp"] == expected["doctype_hhi_bp"], member
        assert sum(e["share_bp"] for e in conc["by_counterparty"]) <= 10_000
        # a total, ≤ 39 counterparties, ≤ 4 document types: never the loans themselves
        assert counted.reads <= 1 + len(MEMBERS) + len(TYPES), (member, counted.reads)
