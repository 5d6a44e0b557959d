"""Money and title conservation across the flows, on the whole dev chain, at every height.

A Hypothesis state machine drives escrow, pledge-backed loans and delivery against payment with
random members, amounts, orders and time jumps (expiries and defaults fire by clause), and after
every height checks the ledger against two simple reference models built from the flows'
records alone, never from balances:

- **Money**: every member's TRC equals its funding plus what the closed escrows, disbursed and
  repaid loans and settled DvPs say moved (``expected_totals``); total supply is unchanged; each
  account's ``held`` equals the open holds it owns.
- **Title**: a document with an active or pledging loan has exactly the loan's pledge in force
  (financier the lender, managed by trade); no document backs two active loans (double
  financing); a settled DvP's document is held by its buyer.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.trade.story import Story
from traco.services.trade import queries as q
from traco.services.trade import risk_state, views

TRADERS = ("exporter", "importer")
BANKS = ("bank-a", "bank-b")
FUNDING = {"exporter": 2_000_000, "importer": 2_000_000, "bank-a": 5_000_000, "bank-b": 5_000_000}


def records(view: Any, prefix: str) -> list[dict[str, Any]]:
    import orjson

    return [orjson.loads(raw) for key, raw in view.scan(prefix) if key.count("/") == prefix.count("/")]


class FlowsMachine(RuleBasedStateMachine):
    story: Story

    @initialize()
    def start(self) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="flows-machine-")
        self.story = Story(Path(self.folder.name))
        self.story.fund_trc(**FUNDING)
        self.story.set_flows(loan_grace_ms=3_000, escrow_arbiter="bank-b")
        self.docs: list[str] = []
        self.n = 0
        self.supply = self.story.trc_supply()

    def teardown(self) -> None:
        """The run's chain (its genesis and keys) goes with the run."""
        folder = getattr(self, "folder", None)
        if folder is not None:
            folder.cleanup()

    def next_id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    # ----------------------------------------------------------------- escrow

    @rule(buyer=st.sampled_from(TRADERS), amount=st.integers(1, 900_000), confirm=st.booleans(), life=st.integers(2, 9))
    def escrow(self, buyer: str, amount: int, confirm: bool, life: int) -> None:
        seller = "exporter" if buyer == "importer" else "importer"
        terms = {"escrow_id": self.next_id("e"), "token": "TRC", "seller": seller, "amount": amount}
        terms |= {"expires_at": self.story.tip.time + life * 1_000, "release": {"on": "confirm"}}
        self.story.run(buyer, "trade.escrow.open", terms)
        if confirm:
            self.story.run(buyer, "trade.escrow.confirm", {"escrow_id": terms["escrow_id"]})

    @rule(data=st.data())
    def escrow_dispute_and_resolve(self, data: st.DataObject) -> None:
        open_ = [e for e in records(self.story.trade, "escrow/") if e["status"] in ("open", "disputed")]
        if not open_:
            return
        record = data.draw(st.sampled_from(open_))
        if record["status"] == "open":
            self.story.run(record["seller"], "trade.escrow.dispute", {"escrow_id": record["escrow_id"], "reason": "r"})
        split = data.draw(st.integers(0, record["amount"]))
        self.story.run(
            "bank-b", "trade.escrow.resolve", {"escrow_id": record["escrow_id"], "to_seller": split, "reason": "r"}
        )

    # ----------------------------------------------------------------- loans

    @rule(holder=st.sampled_from(TRADERS))
    def document(self, holder: str) -> None:
        self.docs.append(self.story.register("carrier", holder=self.story.pub(holder)))

    @rule(data=st.data(), amount=st.integers(1, 3_000_000), rate=st.integers(0, 5_000), twice=st.booleans())
    def finance(self, data: st.DataObject, amount: int, rate: int, twice: bool) -> None:
        if not self.docs:
            return
        doc_id = data.draw(st.sampled_from(self.docs))
        holder = self.story.document(doc_id)["holder"]["member_id"]
        if holder not in TRADERS:
            return
        requests = [self.next_id("r") for _ in range(2 if twice else 1)]
        for request_id in requests:
            payload = {"request_id": request_id, "doc_id": doc_id, "token": "TRC", "amount": amount}
            self.story.run(
                holder,
                "trade.finance.request",
                {**payload, "tenor_ms": 5_000, "offers_until": self.story.tip.time + 30_000},
            )
            bank = data.draw(st.sampled_from(BANKS))
            offer = {"offer_id": self.next_id("o"), "request_id": request_id, "rate_bp": rate}
            self.story.run(bank, "trade.finance.offer", {**offer, "valid_until": self.story.tip.time + 30_000})
        # both acceptances in one block: doc decides which pledge stands
        self.story.block(*(self.story.tx(holder, "trade.finance.accept", {"request_id": r}) for r in requests))

    @rule(data=st.data(), amount=st.integers(1, 3_000_000), offers=st.integers(0, 2))
    def finance_at_deadline(self, data: st.DataObject, amount: int, offers: int) -> None:
        """A standing instruction: the best offer is taken by clause at the deadline."""
        if not self.docs:
            return
        doc_id = data.draw(st.sampled_from(self.docs))
        holder = self.story.document(doc_id)["holder"]["member_id"]
        if holder not in TRADERS:
            return
        request_id = self.next_id("r")
        deadline = self.story.tip.time + 2_000
        payload = {"request_id": request_id, "doc_id": doc_id, "token": "TRC", "amount": amount, "tenor_ms": 5_000}
        self.story.run(holder, "trade.finance.request", {**payload, "offers_until": deadline, "accept_best": True})
        for _ in range(offers):
            bank = data.draw(st.sampled_from(BANKS))
            offer = {"offer_id": self.next_id("o"), "request_id": request_id, "rate_bp": data.draw(st.integers(0, 900))}
            self.story.run(bank, "trade.finance.offer", {**offer, "valid_until": deadline + 30_000})

    @rule(data=st.data(), share=st.integers(1, 100))
    def repay(self, data: st.DataObject, share: int) -> None:
        active = [loan for loan in records(self.story.trade, "loan/") if loan["status"] == "active"]
        if not active:
            return
        loan = data.draw(st.sampled_from(active))
        from traco.services.trade.loans import rules as loan_rules

        _, due = loan_rules.position(loan).owed(loan["rate_bp"], self.story.tip.time + 1_000)
        amount = max(1, due * share // 100)
        self.story.run(loan["borrower"], "trade.loan.repay", {"loan_id": loan["loan_id"], "amount": amount})

    # ----------------------------------------------------------------- delivery against payment

    @rule(data=st.data(), amount=st.integers(1, 1_500_000), refuse=st.booleans())
    def dvp(self, data: st.DataObject, amount: int, refuse: bool) -> None:
        if not self.docs:
            return
        doc_id = data.draw(st.sampled_from(self.docs))
        seller = self.story.document(doc_id)["holder"]["member_id"]
        if seller not in TRADERS:
            return
        buyer = "exporter" if seller == "importer" else "importer"
        h, dvp_id, hold_id = self.story.tip.height, self.next_id("d"), self.next_id("t")
        terms = {"dvp_id": dvp_id, "seller": seller, "buyer": buyer, "doc_id": doc_id, "token": "TRC", "amount": amount}
        self.story.run(seller, "trade.dvp.open", {**terms, "allocate_by": h + 6, "settle_by": h + 9})
        self.story.run(buyer, "trade.dvp.fund", {"dvp_id": dvp_id})
        title = {"hold_id": hold_id, "doc_id": doc_id, "beneficiary": self.story.pub(buyer), "notary": "service:trade"}
        self.story.run(seller, "doc.hold", {**title, "expires_height": h + 12})
        self.story.run(seller, "trade.dvp.allocate", {"dvp_id": dvp_id, "title_hold_id": hold_id})
        settle = self.story.tx(buyer, "trade.dvp.settle", {"dvp_id": dvp_id})
        if refuse:
            self.story.block(self.story.tx(buyer, "doc.hold.release", {"hold_id": hold_id}), settle)
        else:
            self.story.block(settle)

    @rule(heights=st.integers(1, 4), dt=st.sampled_from([500, 1_000, 4_000]))
    def time_passes(self, heights: int, dt: int) -> None:
        self.story.idle(heights, dt=dt)

    # ----------------------------------------------------------------- the reference models

    def expected_totals(self) -> dict[str, int]:
        expected: dict[str, int] = defaultdict(int, FUNDING)
        trade = self.story.trade
        for e in records(trade, "escrow/"):
            if "closed" in e:
                expected[e["buyer"]] -= e["closed"]["to_seller"]
                expected[e["seller"]] += e["closed"]["to_seller"]
        for loan in records(trade, "loan/"):
            if loan["start"] is not None:
                expected[loan["lender"]] -= loan["principal"]
                expected[loan["borrower"]] += loan["principal"]
            for payment in loan["payments"]:
                expected[loan["borrower"]] -= payment["amount"]
                expected[loan["lender"]] += payment["amount"]
        for d in records(trade, "dvp/"):
            if d["status"] == "settled":
                expected[d["buyer"]] -= d["amount"]
                expected[d["seller"]] += d["amount"]
        return dict(expected)

    @invariant()
    def money_is_conserved(self) -> None:
        trade = self.story.trade
        assert self.story.trc_supply() == self.supply == self.story.trc_everywhere()
        actual = {account: bal["total"] for account, bal in q.holders(trade, "TRC")}
        expected = {k: v for k, v in self.expected_totals().items() if v}
        assert actual == expected
        held: dict[str, int] = defaultdict(int)
        for raw in records(trade, "hold/"):
            if raw["status"] == "ordered" and raw["asset"] == "TRC":
                held[raw["owner"]] += raw["amount"]
        assert {a: b["held"] for a, b in q.holders(trade, "TRC") if b["held"]} == dict(held)
        assert views.invariants(trade) == []

    @invariant()
    def titles_are_never_financed_twice(self) -> None:
        by_doc: dict[str, list[dict[str, Any]]] = defaultdict(list)
        lent: dict[str, int] = defaultdict(int)
        for loan in records(self.story.trade, "loan/"):
            if loan["status"] == "active":
                by_doc[loan["doc_id"]].append(loan)
                lent[loan["lender"]] += loan["outstanding"]
        for doc_id, loans in by_doc.items():
            assert len(loans) == 1, f"document {doc_id} backs {len(loans)} active loans"
            pledge = self.story.document(doc_id)["pledge"]
            assert pledge is not None and pledge["manager"] == "service:trade"
            assert pledge["financier"]["member_id"] == loans[0]["lender"]
            assert pledge["reference"] == f"loan:{loans[0]['loan_id']}"
        for bank in BANKS:
            assert risk_state.totals(self.story.trade, bank)["lent"] == lent[bank]
        # The title follows the last executed DvP title hold (to the buyer; doc's height) or the
        # last enforced default (to the lender; doc acts one height before trade records it).
        moves: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for d in records(self.story.trade, "dvp/"):
            if d["title_hold_id"] is None:
                continue
            hold = q.read(self.story.state("doc"), f"hold/{d['title_hold_id']}")
            if hold is not None and hold["status"] == "executed":
                assert d["status"] in ("settling", "settled"), "a title moved only at trade's command"
                moves[d["doc_id"]].append((hold["closed_height"], d["buyer"]))
        pending: set[str] = set()  # enforced in doc, not yet recorded in trade (one height)
        for loan in records(self.story.trade, "loan/"):
            collateral = loan["collateral"]
            if loan["status"] == "defaulted" and collateral is None:
                pending.add(loan["doc_id"])
            if collateral and collateral["action"] == "enforce" and collateral["accepted"]:
                moves[loan["doc_id"]].append((collateral["height"] - 1, loan["lender"]))
        for doc_id, found in moves.items():
            if doc_id in pending:
                continue
            assert self.story.document(doc_id)["holder"]["member_id"] == max(found)[1]


FlowsMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestFlowsConserveMoneyAndTitle = FlowsMachine.TestCase
