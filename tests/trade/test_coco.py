"""Coco: a fixed supply allocated at genesis, the incentive pool paid per epoch by the clause,
halving every two years of block time; checked exactly over more than ten years of epochs, and
by a Hypothesis machine that moves coins around between epochs against a reference model."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.trade.helpers import DAY, Chain
from traco.core.domain import DictState, encode
from traco.services.trade import coco, views
from traco.services.trade import genesis as trade_genesis
from traco.services.trade import queries as q
from traco.services.trade.exchange import liquidity

COCO = "COCO"
TOTAL = 10_000_000_000 * 10**4
EPOCH = 7 * DAY


def balances(chain: Chain) -> dict[str, int]:
    return {a: bal["total"] for a, bal in q.holders(chain.state, COCO)}


def conserved(chain: Chain) -> None:
    assert sum(balances(chain).values()) + q.pool(chain.state) == TOTAL
    assert chain.supply(COCO) + q.pool(chain.state) == TOTAL


def test_genesis_creates_ten_billion_allocated_30_15_20_35() -> None:
    chain = Chain()
    assert balances(chain) == {"council-1": TOTAL * 30 // 100, "bank-b": TOTAL * 15 // 100, "council-2": TOTAL // 5}
    assert q.pool(chain.state) == TOTAL * 35 // 100
    conserved(chain)


def test_the_incentive_share_is_a_parameter_and_rounding_goes_to_the_pool() -> None:
    chain = Chain(section=trade_genesis.development_section(incentives_bp=1_000))
    shares = trade_genesis.development_section(incentives_bp=1_000)["coco"]["shares"]
    assert shares == {"issuance": 4_153, "private_placement": 2_076, "founders": 2_771, "incentives": 1_000}
    assert q.pool(chain.state) == TOTAL - sum(balances(chain).values())
    assert q.pool(chain.state) == TOTAL // 10
    conserved(chain)


def test_genesis_names_every_problem_at_once() -> None:
    section = trade_genesis.development_section()
    section["coco"]["shares"] = {"issuance": 3_000, "private_placement": 1_500, "founders": 2_000, "incentives": 3_000}
    section["asset_classes"][1]["decimals"] = 6
    section["trc"]["threshold"] = 4
    with pytest.raises(ValueError) as info:
        trade_genesis.parse(section)
    message = str(info.value)
    for problem in ("sum to 10,000", "exceed 2**53 - 1", "threshold 4 exceeds 3"):
        assert problem in message


def params(chain: Chain) -> dict[str, Any]:
    found = q.params(chain.state, "coco")
    assert found is not None
    return found


def test_schedule_halves_after_two_years_of_block_time() -> None:
    p = params(Chain())
    per_period = coco.epochs_per_halving(p)
    assert per_period == 105  # 730.5 days / 7 days, rounded up
    plan = coco.schedule(p, 600)
    base = q.pool(Chain().state) // (2 * per_period)
    assert plan[0]["amount"] == base
    assert plan[0]["holders_share"] == base * 3 // 10
    assert plan[0]["liquidity_share"] == base - base * 3 // 10
    first_halved = next(e["epoch"] for e in plan if e["amount"] != base)
    assert plan[first_halved]["start"] - p["start_time"] >= 2 * 36_525 * DAY // 100
    assert plan[first_halved - 1]["start"] - p["start_time"] < 2 * 36_525 * DAY // 100
    assert plan[first_halved]["amount"] == base // 2
    assert sum(e["amount"] for e in coco.schedule(p, 20_000)) <= q.pool(Chain().state)


def reference_payouts(holders: dict[str, int], share: int) -> dict[str, int]:
    whole = sum(holders.values())
    return {a: share * b // whole for a, b in holders.items() if share * b // whole > 0}


def test_ten_years_of_epochs_pay_exactly_the_schedule() -> None:
    chain = Chain()
    p = params(chain)
    plan = coco.schedule(p, 560)  # > 10 years of weekly epochs
    chain.block(dt=p["start_time"] + EPOCH - chain.time - 1)  # one ms before the first epoch ends
    assert q.epoch(chain.state) == {"next": 0, "paid": 0}
    paid = 0
    for entry in plan:
        assert chain.time + 1 == entry["end"] or entry["epoch"] > 0
        model = balances(chain)
        pool = q.pool(chain.state)
        result = chain.block(dt=entry["end"] - chain.time)  # exactly at the epoch's end
        assert [(r.kind, r.result) for r in result.receipts] == [
            ("trade.clause.coco_epoch", {"clause": "coco_epoch", "subject": str(entry["epoch"])})
        ]
        expected = reference_payouts(model, min(entry["amount"], pool) * 3 // 10)
        after = balances(chain)
        assert {a: after[a] - model.get(a, 0) for a in after if after[a] != model.get(a, 0)} == expected
        paid += sum(expected.values())
        assert q.pool(chain.state) == pool - sum(expected.values())
        conserved(chain)
    assert q.epoch(chain.state) == {"next": 560, "paid": paid}
    assert (chain.time - p["start_time"]) / (365.25 * DAY) > 10
    assert chain.replay() == chain.snapshot()


def test_a_long_pause_pays_every_missed_epoch_in_order_capped_per_block() -> None:
    chain = Chain()
    p = params(chain)
    result = chain.block(dt=p["start_time"] + 70 * EPOCH - chain.time)
    subjects = [r.result["subject"] for r in result.receipts]
    assert subjects == [str(n) for n in range(64)]  # max_epochs_per_block
    result = chain.block()
    assert [r.result["subject"] for r in result.receipts] == [str(n) for n in range(64, 70)]
    conserved(chain)


class CocoMachine(RuleBasedStateMachine):
    """Move coins and let epochs pass; a reference model pays each epoch from the schedule."""

    PEOPLE = ("council-1", "bank-b", "exporter", "importer")

    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain()
        self.p = params(self.chain)
        self.model = balances(self.chain)
        self.pool = q.pool(self.chain.state)
        self.next = 0

    def actor(self, name: str) -> Any:
        return next(a for a, s in self.chain.cast.specs.items() if s.member_id == name)

    def pay_due(self) -> None:
        """The clause of one block: every epoch ended by the block's time, at most 64."""
        for _ in range(64):
            if coco.epoch_start(self.p, self.next + 1) > self.chain.time:
                break
            amount = min(coco.epoch_amount(self.p, self.next), self.pool)
            payouts = reference_payouts({a: b for a, b in self.model.items() if b > 0}, amount * 3 // 10)
            for a, v in payouts.items():
                self.model[a] = self.model.get(a, 0) + v
            self.pool -= sum(payouts.values())
            self.next += 1

    @rule(
        sender=st.sampled_from(PEOPLE),
        to=st.sampled_from(PEOPLE),
        amount=st.one_of(st.integers(1, 3), st.integers(1, 10**12)),
    )
    def transfer(self, sender: str, to: str, amount: int) -> None:
        receipt = self.chain.run(self.actor(sender), "trade.transfer", {"token": COCO, "to": to, "amount": amount})
        assert receipt.accepted is (sender != to and amount <= self.model.get(sender, 0)), receipt.code
        if receipt.accepted:
            self.model[sender] -= amount
            self.model[to] = self.model.get(to, 0) + amount
        self.pay_due()

    @rule(epochs=st.integers(0, 60), extra=st.integers(0, EPOCH - 1))
    def wait(self, epochs: int, extra: int) -> None:
        self.chain.block(dt=epochs * EPOCH + extra + 1)
        self.pay_due()

    @invariant()
    def matches_the_model_and_the_total_never_changes(self) -> None:
        conserved(self.chain)
        assert q.epoch(self.chain.state)["next"] == self.next
        assert q.pool(self.chain.state) == self.pool
        assert {a: b for a, b in balances(self.chain).items()} == {a: b for a, b in self.model.items() if b}

    @invariant()
    def the_ledger_keeps_its_promises(self) -> None:
        assert views.invariants(self.chain.state) == []

    def teardown(self) -> None:
        assert self.chain.replay() == self.chain.snapshot()


TestCocoMachine = CocoMachine.TestCase
TestCocoMachine.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)


def test_the_schedule_can_be_printed_from_the_genesis_section_alone() -> None:
    chain = Chain()
    from_file = trade_genesis.coco_params(trade_genesis.parse(trade_genesis.development_section()), chain.genesis_time)
    assert from_file == params(chain)
    assert coco.schedule(from_file, 3) == coco.schedule(params(chain), 3)


def tiny_coco(pool: int, holders: dict[str, int]) -> tuple[DictState, dict[str, Any]]:
    """A Coco state of a few minor units, where every rounding shows: one epoch pays the pool,
    all of it to holders (``holders_bp`` 10,000)."""
    params = {"token": "COCO", "pool_initial": 10**6, "halving_ms": 100, "epoch_ms": 100, "holders_bp": 10_000}
    data = {q.POOL: encode({"amount": pool})}
    data |= {q.balance_key("COCO", a): encode({"total": t, "held": 0}) for a, t in holders.items()}
    return DictState(data), {**params, "start_time": 0}


@pytest.mark.parametrize(
    ("holders", "expected"),
    [
        ({"a": 1, "b": 1}, [["a", 5], ["b", 5]]),  # a balance of one minor unit is a holder
        ({"a": 1}, [["a", 10]]),  # a single holder of one unit takes the whole share
        ({"a": 1, "b": 100}, [["b", 9]]),  # a share that rounds to nothing is not listed
        ({"a": 1, "service:trade": 5}, [["a", 10]]),  # the service's own accounts hold for others
        ({}, []),
    ],
)
def test_an_epoch_lists_only_the_holders_it_pays(holders: dict[str, int], expected: list[list[Any]]) -> None:
    state, params = tiny_coco(10, holders)
    paid = coco.pay_epoch(state, params, 0, 5, 500)
    assert paid.data["payouts"] == expected
    assert paid.data["paid"] == sum(part for _, part in expected)


@pytest.mark.parametrize(
    ("share", "volumes", "expected"),
    [
        (1, [("a", 1)], [["a", 1]]),  # a share of one unit is paid
        (10, [("a", 5)], [["a", 10]]),
        (1, [("a", 1), ("b", 1)], []),  # halves of one unit round to nothing: nobody is listed
        (7, [("a", 1), ("b", 2)], [["a", 2], ["b", 4]]),
        (0, [("a", 5)], []),
        (5, [("a", 0)], []),  # no volume at all: the share stays in the pool
    ],
)
def test_liquidity_lists_only_the_traders_it_pays(share: int, volumes: list[tuple[str, int]], expected: Any) -> None:
    assert liquidity.payouts(share, volumes) == expected
