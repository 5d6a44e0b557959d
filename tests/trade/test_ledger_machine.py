"""Tokens and holds against a slow, obviously-right reference model (Hypothesis state machine).

Every step is one block through ``execute_service_block``. The model knows each account's total
and held amount and each hold's terms; it predicts whether each transaction is accepted and
closes holds at the end of the first block whose height or time reaches their expiry (blocks
come at irregular times, so time expiries fall between heights). Checked at every step:
the state equals the model (so held amounts never moved and expiry was exact), Coco is conserved
(Σ balances + pool = 10,000,000,000 × 10^decimals, supply + pool the same), and at the end a
replay of the events through JSON rebuilds the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.trade.helpers import Actor, Chain
from traco.services.trade import queries as q
from traco.services.trade import views

COCO = "COCO"
ACCOUNTS = ("exporter", "importer", "bank-a", "carrier")
"""``carrier``'s role may not submit trade kinds: its transactions are refused (NOT_PERMITTED),
but it may receive."""


@dataclass
class ModelHold:
    owner: str
    beneficiary: str
    amount: int
    expires_height: int | None
    expires_time: int | None
    open: bool = True

    def live(self, height: int, time: int) -> bool:
        by_height = self.expires_height is None or height < self.expires_height
        by_time = self.expires_time is None or time < self.expires_time
        return self.open and by_height and by_time


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain()
        for who in ACCOUNTS:
            self.chain.ok(self.chain.cast.council1, "trade.transfer", {"token": COCO, "to": who, "amount": 1_000})
        self.total = {a: 1_000 for a in ACCOUNTS}
        self.held = dict.fromkeys(ACCOUNTS, 0)
        self.holds: dict[str, ModelHold] = {}
        self.count = 0
        params = q.params(self.chain.state, "coco")
        assert params is not None
        self.coco_total = int(params["total"])

    def actor(self, name: str) -> Actor:
        return next(a for a, spec in self.chain.cast.specs.items() if spec.member_id == name)

    @property
    def next_block(self) -> tuple[int, int]:
        """Height and time of the block the next transaction lands in."""
        return self.chain.height + 1, self.chain.time + self.chain.tick

    def submit(self, sender: str, kind: str, payload: dict[str, object]) -> tuple[bool, str]:
        """One block with one transaction; the model's end of block runs after the caller has
        applied the transaction (``end_of_block``), as the clause runs after the transactions."""
        receipt = self.chain.block([(self.actor(sender), kind, payload)]).receipts[0]
        return receipt.accepted, receipt.code

    def end_of_block(self) -> None:
        for h in self.holds.values():
            if h.open and not h.live(self.chain.height, self.chain.time):
                h.open = False
                self.held[h.owner] -= h.amount

    def may_act(self, who: str) -> bool:
        return who != "carrier"

    @rule(sender=st.sampled_from(ACCOUNTS), to=st.sampled_from(ACCOUNTS), amount=st.integers(1, 1_200))
    def transfer(self, sender: str, to: str, amount: int) -> None:
        free = self.total[sender] - self.held[sender]  # a due hold still counts until the clause
        ok, code = self.submit(sender, "trade.transfer", {"token": COCO, "to": to, "amount": amount})
        expected = self.may_act(sender) and sender != to and amount <= free
        assert ok is expected, code
        if not self.may_act(sender):
            assert code == "NOT_PERMITTED"
        elif sender != to and amount > free:
            assert code == ("INSUFFICIENT_FUNDS" if amount > self.total[sender] else "HELD")
        if ok:
            self.total[sender] -= amount
            self.total[to] += amount
        self.end_of_block()

    @rule(
        owner=st.sampled_from(ACCOUNTS),
        beneficiary=st.sampled_from(ACCOUNTS),
        amount=st.integers(1, 1_200),
        bounds=st.sampled_from(("height", "time", "both")),
        ttl=st.integers(1, 4),
        ttl_ms=st.integers(1, 4_000),
    )
    def create(self, owner: str, beneficiary: str, amount: int, bounds: str, ttl: int, ttl_ms: int) -> None:
        self.count += 1
        hold_id = f"h{self.count}"
        height, time = self.next_block
        eh = height + ttl if bounds != "time" else None
        et = time + ttl_ms if bounds != "height" else None
        payload = {"hold_id": hold_id, "token": COCO, "beneficiary": beneficiary, "amount": amount}
        payload.update({k: v for k, v in (("expires_height", eh), ("expires_time", et)) if v is not None})
        free = self.total[owner] - self.held[owner]
        ok, code = self.submit(owner, "trade.hold.create", payload)
        assert ok is (self.may_act(owner) and owner != beneficiary and amount <= free), code
        if ok:
            self.holds[hold_id] = ModelHold(owner, beneficiary, amount, eh, et)
            self.held[owner] += amount
        self.end_of_block()

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), by=st.sampled_from(ACCOUNTS), part=st.integers(1, 1_300))
    def execute(self, data: st.DataObject, by: str, part: int) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        h = self.holds[hold_id]
        live = h.live(*self.next_block)
        ok, code = self.submit(by, "trade.hold.execute", {"hold_id": hold_id, "amount": part})
        assert ok is (self.may_act(by) and live and by == h.beneficiary and part <= h.amount), code
        if ok:
            h.open = False
            self.held[h.owner] -= h.amount
            self.total[h.owner] -= part
            self.total[h.beneficiary] += part
        self.end_of_block()

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), by=st.sampled_from(ACCOUNTS))
    def release(self, data: st.DataObject, by: str) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        h = self.holds[hold_id]
        live = h.live(*self.next_block)
        ok, code = self.submit(by, "trade.hold.release", {"hold_id": hold_id})
        assert ok is (self.may_act(by) and live and by == h.beneficiary), code
        if ok:
            h.open = False
            self.held[h.owner] -= h.amount
        self.end_of_block()

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), by=st.sampled_from(ACCOUNTS), more=st.integers(-1, 3), more_ms=st.integers(-500, 3_000))
    def renew(self, data: st.DataObject, by: str, more: int, more_ms: int) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        h = self.holds[hold_id]
        live = h.live(*self.next_block)
        eh = None if h.expires_height is None else h.expires_height + more
        et = None if h.expires_time is None else h.expires_time + more_ms
        deltas = [d for d, bound in ((more, eh), (more_ms, et)) if bound is not None]
        payload: dict[str, object] = {"hold_id": hold_id}
        payload.update({k: v for k, v in (("expires_height", eh), ("expires_time", et)) if v is not None})
        ok, code = self.submit(by, "trade.hold.renew", payload)
        later = all(d >= 0 for d in deltas) and any(d > 0 for d in deltas)
        assert ok is (self.may_act(by) and live and by == h.owner and later), code
        if ok:
            h.expires_height, h.expires_time = eh, et
        self.end_of_block()

    @rule(dt=st.integers(1, 3_000))
    def idle(self, dt: int) -> None:
        self.chain.block(dt=dt)
        self.end_of_block()

    @invariant()
    def state_equals_model(self) -> None:
        for a in ACCOUNTS:
            bal = q.balance(self.chain.state, COCO, a)
            assert (bal["total"], bal["held"]) == (self.total[a], self.held[a]), a
        for hold_id, h in self.holds.items():
            record = q.hold(self.chain.state, hold_id)
            assert record is not None and record.is_open is h.open, hold_id
            assert (record.expires_height, record.expires_time) == (h.expires_height, h.expires_time)

    @invariant()
    def coco_is_conserved(self) -> None:
        balances = sum(bal["total"] for _, bal in q.holders(self.chain.state, COCO))
        assert balances + q.pool(self.chain.state) == self.coco_total
        assert self.chain.supply(COCO) + q.pool(self.chain.state) == self.coco_total

    @invariant()
    def the_ledger_keeps_its_promises(self) -> None:
        assert views.invariants(self.chain.state) == []

    def teardown(self) -> None:
        assert self.chain.replay() == self.chain.snapshot()


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
