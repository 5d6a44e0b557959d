"""Equity-anchored tokens (ECC: 3 tokens per 2 custodied shares): definition, issue against
deposits within the ratio, qualified investors only, exercise by hold and settlement by burning,
refusal and expiry returning the tokens; and a Hypothesis machine for the ratio invariant."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.trade.helpers import DAY, Chain
from traco.services.trade import queries as q
from traco.services.trade import views

ECC = "ECC"
TERMS = {
    "token": ECC,
    "name": "ECC equity-anchored token",
    "security": "HKEX:0001",
    "ratio_tokens": 3,
    "ratio_shares": 2,
    "circulation": "TRACO consortium members (qualified investors)",
    "exercise": {"centre": "Hong Kong exercise centre", "settlement_agent": "agent", "custodian": "custodian"},
    "max_tokens": 210_000_000,
}


def defined() -> Chain:
    chain = Chain()
    chain.ok(chain.cast.custodian, "trade.equity.define", TERMS)
    return chain


def shares(chain: Chain) -> int:
    record = q.equity(chain.state, ECC)
    assert record is not None
    return int(record["custodied_shares"])


def test_define_fixes_the_four_elements_once_by_the_custodian() -> None:
    chain = Chain()
    assert chain.code(chain.cast.bank_a, "trade.equity.define", TERMS) == "NOT_CUSTODIAN"
    chain.ok(chain.cast.custodian, "trade.equity.define", TERMS)
    assert chain.code(chain.cast.custodian, "trade.equity.define", TERMS) == "TOKEN_EXISTS"
    record = q.equity(chain.state, ECC)
    assert (
        record is not None and record["security"] == "HKEX:0001" and record["exercise"]["settlement_agent"] == "agent"
    )
    token = q.token(chain.state, ECC)
    assert token is not None and token["asset_class"] == "equity_anchored"


def test_issue_within_ratio_to_qualified_investors_only() -> None:
    chain = defined()
    cast = chain.cast
    issue = {"token": ECC, "to": "investor", "amount": 30_000_000, "shares": 20_000_000}
    assert chain.code(cast.bank_a, "trade.equity.issue", issue) == "NOT_CUSTODIAN"
    assert chain.code(cast.custodian, "trade.equity.issue", {**issue, "to": "exporter"}) == "NOT_QUALIFIED"
    assert chain.code(cast.custodian, "trade.equity.issue", {**issue, "amount": 30_000_001}) == "RATIO_EXCEEDED"
    chain.ok(cast.custodian, "trade.equity.issue", issue)
    assert (chain.supply(ECC), shares(chain)) == (30_000_000, 20_000_000)
    assert chain.code(cast.custodian, "trade.equity.issue", {**issue, "amount": 1, "shares": 0}) == "RATIO_EXCEEDED"
    big = {**issue, "amount": 180_000_001, "shares": 200_000_000}
    assert chain.code(cast.custodian, "trade.equity.issue", big) == "RATIO_EXCEEDED"  # the 210,000,000 cap
    move = {"token": ECC, "to": "exporter", "amount": 3}
    assert chain.code(cast.investor, "trade.transfer", move) == "NOT_QUALIFIED"
    chain.ok(cast.investor, "trade.transfer", {**move, "to": "investor-2"})
    assert chain.replay() == chain.snapshot()


def test_exercise_holds_settlement_burns_and_removes_shares() -> None:
    chain = defined()
    cast = chain.cast
    chain.ok(cast.custodian, "trade.equity.issue", {"token": ECC, "to": "investor", "amount": 30_000, "shares": 20_000})
    assert chain.code(cast.investor, "trade.equity.exercise", {"token": ECC, "amount": 4}) == "INVALID_AMOUNT"
    assert chain.code(cast.investor, "trade.equity.exercise", {"token": ECC, "amount": 30_003}) == "INSUFFICIENT_FUNDS"
    done = chain.ok(cast.investor, "trade.equity.exercise", {"token": ECC, "amount": 3_000})
    ex = done["exercise_id"]
    assert done["shares"] == 2_000
    assert chain.account("investor", ECC) == {"total": 30_000, "held": 3_000, "locked": 0, "available": 27_000}
    assert chain.code(cast.agent, "trade.hold.execute", {"hold_id": q.exercise_hold_id(ex)}) == "NOT_PERMITTED"
    front_run = {"hold_id": f"exercise:{ex}", "token": ECC, "beneficiary": "investor-2", "amount": 3}
    assert chain.code(cast.investor, "trade.hold.create", {**front_run, "expires_height": 99}) == "INVALID_PAYLOAD"
    assert chain.code(cast.custodian, "trade.equity.settled", {"exercise_id": ex, "accepted": True}) == (
        "NOT_SETTLEMENT_AGENT"
    )
    chain.ok(cast.agent, "trade.equity.settled", {"exercise_id": ex, "accepted": True})
    assert (chain.supply(ECC), shares(chain), chain.total("investor", ECC)) == (27_000, 18_000, 27_000)
    assert chain.total("service:trade", ECC) == 0
    assert chain.code(cast.agent, "trade.equity.settled", {"exercise_id": ex, "accepted": True}) == "HOLD_CLOSED"
    assert chain.replay() == chain.snapshot()


def test_a_refused_or_unanswered_settlement_returns_the_tokens() -> None:
    chain = defined()
    cast = chain.cast
    chain.ok(cast.custodian, "trade.equity.issue", {"token": ECC, "to": "investor", "amount": 300, "shares": 200})
    refused = chain.ok(cast.investor, "trade.equity.exercise", {"token": ECC, "amount": 30})["exercise_id"]
    chain.ok(cast.agent, "trade.equity.settled", {"exercise_id": refused, "accepted": False, "reason": "no account"})
    assert chain.account("investor", ECC)["available"] == 300
    assert q.exercise(chain.state, refused)["status"] == "refused"  # type: ignore[index]
    late = chain.ok(cast.investor, "trade.equity.exercise", {"token": ECC, "amount": 60})["exercise_id"]
    chain.block(dt=14 * DAY)  # the settlement window passes: the clause returns them
    assert q.exercise(chain.state, late)["status"] == "refused"  # type: ignore[index]
    assert q.exercise(chain.state, late)["reason"] == "expired"  # type: ignore[index]
    assert chain.account("investor", ECC) == {"total": 300, "held": 0, "locked": 0, "available": 300}
    assert (chain.supply(ECC), shares(chain)) == (300, 200)
    assert chain.replay() == chain.snapshot()


def test_the_custodian_lists_custody_statements_once_each() -> None:
    chain = defined()
    cast = chain.cast
    chain.ok(cast.custodian, "trade.equity.issue", {"token": ECC, "to": "investor", "amount": 30, "shares": 20})
    listed = {"token": ECC, "anchor_tx_id": "ab" * 32, "digest": "cd" * 32, "shares": 20}
    assert chain.code(cast.bank_a, "trade.equity.statement", listed) == "NOT_CUSTODIAN"
    assert chain.ok(cast.custodian, "trade.equity.statement", listed)["matches_custody"] is True
    assert chain.code(cast.custodian, "trade.equity.statement", listed) == "DUPLICATE_STATEMENT"
    short = {**listed, "anchor_tx_id": "ef" * 32, "shares": 19}
    assert chain.ok(cast.custodian, "trade.equity.statement", short)["matches_custody"] is False
    shown = views.equity_view(chain.state, ECC)
    assert shown is not None and [s["anchor_tx_id"] for s in shown["statements"]] == ["ab" * 32, "ef" * 32]
    assert chain.replay() == chain.snapshot()


class EquityMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = defined()
        self.supply = 0
        self.shares = 0
        self.open: dict[str, int] = {}

    @rule(amount=st.integers(1, 3_000), deposit=st.integers(0, 2_000))
    def issue(self, amount: int, deposit: int) -> None:
        payload = {"token": ECC, "to": "investor", "amount": amount, "shares": deposit}
        receipt = self.chain.run(self.chain.cast.custodian, "trade.equity.issue", payload)
        assert receipt.accepted is ((self.supply + amount) * 2 <= 3 * (self.shares + deposit)), receipt.code
        if receipt.accepted:
            self.supply += amount
            self.shares += deposit

    @rule(lots=st.integers(1, 300))
    def exercise(self, lots: int) -> None:
        receipt = self.chain.run(self.chain.cast.investor, "trade.equity.exercise", {"token": ECC, "amount": 3 * lots})
        if receipt.accepted:
            self.open[receipt.result["exercise_id"]] = 3 * lots

    @rule(data=st.data(), accepted=st.booleans())
    def settle(self, data: st.DataObject, accepted: bool) -> None:
        if not self.open:
            return
        ex = data.draw(st.sampled_from(sorted(self.open)))
        amount = self.open.pop(ex)
        self.chain.ok(self.chain.cast.agent, "trade.equity.settled", {"exercise_id": ex, "accepted": accepted})
        if accepted:
            self.supply -= amount
            self.shares -= amount * 2 // 3

    @invariant()
    def tokens_never_exceed_ratio_times_shares(self) -> None:
        supply, custodied = self.chain.supply(ECC), shares(self.chain)
        assert (supply, custodied) == (self.supply, self.shares)
        assert supply * 2 <= 3 * custodied

    @invariant()
    def the_ledger_keeps_its_promises(self) -> None:
        assert views.invariants(self.chain.state) == []

    def teardown(self) -> None:
        assert self.chain.replay() == self.chain.snapshot()


TestEquityMachine = EquityMachine.TestCase
TestEquityMachine.settings = settings(max_examples=80, stateful_step_count=30, deadline=None)
