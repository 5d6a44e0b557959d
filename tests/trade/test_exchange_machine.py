"""Conservation on the exchange under random order streams (Hypothesis state machine).

Every step is one or more heights through the trade service's block execution: members place
crossing and resting orders (several in one block, so a later one matches against an earlier
one's writes), cancel, let orders expire, and Coco epochs pass (paying the liquidity share).
Checked after every step, from the records rather than from the rules' own arithmetic:

- no token is created or lost: TRC's supply and every total are unchanged by trading, and
  Σ COCO balances + pool is Coco's fixed total;
- each member's held TRC and COCO is exactly Σ of its open orders' reservations
  (``remaining // lot · price`` for a buy, ``remaining`` for a sell), and the ledger's own
  invariants hold (held = its open holds, totals = supply);
- the book index lists exactly the open orders, its price levels sum them, and its live part
  never crosses;
- and at the end a replay of the events rebuilds the same state.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.trade.test_exchange import CANCEL, COCO, LOT, PAIR, PLACE, TRC, FlowChain, market, order
from traco.services.trade import orderbook as ob
from traco.services.trade import queries as q
from traco.services.trade import views
from traco.services.trade.exchange import state as xs

TRADERS = ("exporter", "importer", "bank-a")
ACCEPTABLE = {"OK", "SELF_MATCH", "HELD", "INSUFFICIENT_FUNDS"}

orders = st.tuples(
    st.sampled_from(TRADERS),
    st.sampled_from(["buy", "sell"]),
    st.integers(95, 105),
    st.integers(1, 30),  # lots: up to 30 of the 100 each holds, so funds run out too
    st.one_of(st.none(), st.integers(1, 4)),
)


class ExchangeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain: FlowChain = market()
        self.actors = {spec.member_id: actor for actor, spec in self.chain.cast.specs.items()}
        self.count = 0
        self.trc_supply = self.chain.supply(TRC)
        self.trc_totals = self.totals(TRC)
        params = q.params(self.chain.state, "coco")
        assert params is not None
        self.coco_total = int(params["total"])
        self.epoch_ms = int(params["epoch_ms"])

    def totals(self, token: str) -> dict[str, int]:
        return {account: bal["total"] for account, bal in q.holders(self.chain.state, token)}

    def open_orders(self) -> list[dict[str, object]]:
        found = [orjson.loads(raw) for _, raw in self.chain.state.scan("xorder/")]
        return [o for o in found if o["status"] == "open"]

    @rule(batch=st.lists(orders, min_size=1, max_size=3))
    def place(self, batch: list[tuple[str, str, int, int, int | None]]) -> None:
        txs = []
        for who, side, price, lots, expires in batch:
            self.count += 1
            more: dict[str, Any] = {} if expires is None else {"expires_height": self.chain.height + 1 + expires}
            txs.append((self.actors[who], PLACE, order(f"o{self.count}", side, price, lots, **more)))
        result = self.chain.block(txs)
        for receipt in result.receipts:
            if receipt.kind == PLACE:
                assert receipt.code in ACCEPTABLE, (receipt.code, receipt.message)

    @rule(pick=st.integers(0, 1_000))
    def cancel(self, pick: int) -> None:
        open_now = sorted(str(o["order_id"]) for o in self.open_orders())
        if not open_now:
            return
        chosen = open_now[pick % len(open_now)]
        record = xs.order(self.chain.state, chosen)
        assert record is not None
        expired = record["expires_height"] <= self.chain.height + 1  # due at the cancel's height
        receipt = self.chain.run(self.actors[record["owner"]], CANCEL, {"order_id": chosen})
        assert receipt.code == ("ORDER_CLOSED" if expired else "OK"), receipt.message

    @rule(epochs=st.sampled_from([0, 0, 1]))
    def idle(self, epochs: int) -> None:
        """An idle height (expiries fire), sometimes a whole Coco epoch later (it pays)."""
        self.chain.block(dt=self.epoch_ms if epochs else None)

    @invariant()
    def nothing_created_or_lost(self) -> None:
        assert self.chain.supply(TRC) == self.trc_supply
        assert sum(self.totals(TRC).values()) == sum(self.trc_totals.values())
        assert sum(self.totals(COCO).values()) + q.pool(self.chain.state) == self.coco_total
        assert q.balance(self.chain.state, TRC, "service:trade") == {"total": 0, "held": 0}
        assert q.balance(self.chain.state, COCO, "service:trade") == {"total": 0, "held": 0}

    @invariant()
    def held_is_what_open_orders_reserve(self) -> None:
        reserved: Counter[tuple[str, str]] = Counter()
        for o in self.open_orders():
            side = ob.Side(str(o["side"]))
            amount = ob.reservation(side, int(str(o["price"])), int(str(o["remaining"])), LOT)
            reserved[(str(o["owner"]), TRC if side is ob.Side.BUY else COCO)] += amount
        for who in TRADERS:
            for token in (TRC, COCO):
                assert q.balance(self.chain.state, token, who)["held"] == reserved[(who, token)], (who, token)
        assert views.invariants(self.chain.state) == []

    @invariant()
    def the_book_is_the_open_orders_and_does_not_cross(self) -> None:
        listed = {o.order_id for side in ob.Side for o in xs.resting(self.chain.state, PAIR, side)}
        assert listed == {o["order_id"] for o in self.open_orders()}
        for side in ob.Side:  # the level index is the entries summed by price, best first
            entries = [orjson.loads(raw) for _, raw in self.chain.state.scan(xs.book_prefix(PAIR, side.value))]
            by_price: dict[int, list[int]] = {}
            for e in entries:
                by_price.setdefault(e["price"], []).append(e["remaining"])
            best = sorted(by_price, reverse=side is ob.Side.BUY)
            expected = [{"price": p, "qty": sum(by_price[p]), "orders": len(by_price[p])} for p in best]
            assert list(xs.levels(self.chain.state, PAIR, side)) == expected
        live = self.chain.height + 1  # the next transaction's height
        bids = [o.price for o in xs.resting(self.chain.state, PAIR, ob.Side.BUY) if o.live_at(live)]
        asks = [o.price for o in xs.resting(self.chain.state, PAIR, ob.Side.SELL) if o.live_at(live)]
        if bids and asks:
            assert bids[0] < asks[0]  # everything that could trade did

    def teardown(self) -> None:
        assert self.chain.replay() == self.chain.snapshot()


ExchangeMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=25, deadline=None)
TestExchangeMachine = ExchangeMachine.TestCase
