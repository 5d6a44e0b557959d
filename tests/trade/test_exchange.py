"""The exchange (``services/trade/exchange``) through the trade service's own block execution: orders
on managed holds, matches settled in the placing transaction, partial fills re-held, cancel and
expiry returning what is held, every refusal's code, qualified-only ECC, council-listed pairs,
Coco's liquidity share paid by traded volume, and replay/rebuild giving the same state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tests.trade.helpers import Chain, Tx, block_of, chain_genesis
from tests.trade.test_equity import TERMS
from tests.trade.test_governed import council_sets
from tests.trade.test_trc import attested
from traco.core import commands as cmd
from traco.core.domain import CommandOutcome, DictState, Event
from traco.core.service_exec import GENESIS_DIGEST, ServiceBlockResult, execute_service_block
from traco.services.trade import codes, views
from traco.services.trade import genesis as trade_genesis
from traco.services.trade import queries as q
from traco.services.trade.exchange import state as xs
from traco.services.trade.exchange.events import EVENT_DATA

PLACE, CANCEL = "trade.order.place", "trade.order.cancel"
COCO, TRC, PAIR = "COCO", "TRC", "COCO/TRC"
LOT = 10_000  # one COCO (4 decimals): prices are TRC cents per COCO


@dataclass
class FlowChain(Chain):
    """``Chain`` under trade rules version 2 (the flows' kinds exist from it)."""

    rules: int = codes.RULES_VERSION

    def block(
        self,
        txs: Iterable[Tx] = (),
        *,
        dt: int | None = None,
        requests: Sequence[cmd.CommandRequest] = (),
        outcomes: Sequence[CommandOutcome] = (),
    ) -> ServiceBlockResult:
        self.height += 1
        self.time += self.tick if dt is None else dt
        block = block_of(self.height, self.time, [self.envelope(*tx) for tx in txs])
        upstream = {"party": self.party}
        result = execute_service_block(
            self.domain, block, self.state, upstream, self.digest, requests, outcomes, self.rules
        )
        self.inputs.append((block, requests, outcomes))
        self.state.apply(result.writes)
        self.digest = result.checkpoint.state_digest
        self.results.append(result)
        kept = (e for e in result.events if e.type not in cmd.RUNTIME_EVENTS)
        self.events.extend(Event(e.type, e.aggregate_id, e.data, e.version) for e in kept)
        return result

    def rebuild(self) -> tuple[list[str], dict[str, bytes]]:
        state = DictState()
        for event in self.domain.genesis(self.section, chain_genesis(self.genesis_time)):
            state.apply(self.domain.mutate(state, event))
        digest, digests = GENESIS_DIGEST, []
        for block, requests, outcomes in self.inputs:
            upstream = {"party": self.party}
            result = execute_service_block(self.domain, block, state, upstream, digest, requests, outcomes, self.rules)
            state.apply(result.writes)
            digest = result.checkpoint.state_digest
            digests.append(digest)
        return digests, dict(state.scan(""))


def market(section: Mapping[str, Any] | None = None) -> FlowChain:
    """A chain with TRC minted to the traders and COCO handed out by its issuance holder."""
    chain = FlowChain(section=section or trade_genesis.development_section())
    cast = chain.cast
    attested(chain, 100_000_000, 1)
    for who in ("exporter", "importer", "bank-a", "investor", "investor-2"):
        chain.ok(cast.custodian, "trade.trc.mint", {"to": who, "amount": 1_000_000})
        chain.ok(cast.council1, "trade.transfer", {"token": COCO, "to": who, "amount": 100 * LOT})
    return chain


def order(oid: str, side: str, price: int, lots: int, pair: str = PAIR, lot: int = LOT, **more: Any) -> dict[str, Any]:
    return {"order_id": oid, "pair": pair, "side": side, "price": price, "qty": lots * lot, **more}


def book(chain: Chain, side: str, pair: str = PAIR) -> list[tuple[str, int, int]]:
    from traco.services.trade.orderbook import Side

    return [(o.order_id, o.price, o.qty) for o in xs.resting(chain.state, pair, Side(side))]


def sound(chain: FlowChain, rebuild: bool = True) -> None:
    """Totals equal supplies, held equals open holds, Coco conserved; replay and rebuild agree
    (no rebuild after a council vote: the test's party view is changed in place, not per height)."""
    assert views.invariants(chain.state) == []
    assert chain.replay() == chain.snapshot()
    for event in chain.events:  # every exchange event fits its published schema
        model = EVENT_DATA.get(event.type)
        if model is not None:
            model.model_validate_json(orjson.dumps(dict(event.data)))
    if not rebuild:
        return
    digests, rebuilt = chain.rebuild()
    assert digests == chain.digests and rebuilt == chain.snapshot()


# --------------------------------------------------------------------------- placing and matching


def test_a_crossing_order_settles_both_legs_in_its_own_transaction() -> None:
    chain = market()
    cast = chain.cast
    before = {w: (chain.total(w, COCO), chain.total(w, TRC)) for w in ("exporter", "importer")}
    placed = chain.ok(cast.exporter, PLACE, order("s1", "sell", 150, 3))
    assert placed == {
        "order_id": "s1",
        "pair": PAIR,
        "seq": 1,
        "filled": 0,
        "remaining": 3 * LOT,
        "status": "open",
        "trades": 0,
        "quote": 0,
    }
    assert chain.account("exporter", COCO)["held"] == 3 * LOT
    hold = q.hold(chain.state, "exchange:s1:0")
    assert hold is not None and (hold.notary, hold.beneficiary) == ("service:trade", "service:trade")
    bought = chain.ok(cast.importer, PLACE, order("b1", "buy", 160, 2))  # fills at the maker's 150
    assert (bought["status"], bought["filled"], bought["quote"], bought["trades"]) == ("filled", 2 * LOT, 300, 1)
    assert (chain.total("importer", COCO), chain.total("importer", TRC)) == (
        before["importer"][0] + 2 * LOT,
        before["importer"][1] - 300,
    )
    assert (chain.total("exporter", COCO), chain.total("exporter", TRC)) == (
        before["exporter"][0] - 2 * LOT,
        before["exporter"][1] + 300,
    )
    # the maker's first hold was executed for what it gave; what is left is held anew
    first, second = q.hold(chain.state, "exchange:s1:0"), q.hold(chain.state, "exchange:s1:1")
    assert first is not None and (first.status.value, first.executed, first.returned) == ("executed", 2 * LOT, LOT)
    assert second is not None and second.is_open and second.amount == LOT
    assert chain.account("exporter", COCO)["held"] == LOT and chain.account("importer", TRC)["held"] == 0
    assert book(chain, "sell") == [("s1", 150, LOT)] and book(chain, "buy") == []
    assert q.balance(chain.state, COCO, "service:trade") == {"total": 0, "held": 0}
    sound(chain)


def test_a_sweep_fills_by_price_then_time_and_rests_the_rest_at_its_limit() -> None:
    chain = market()
    cast = chain.cast
    chain.block(
        [
            (cast.exporter, PLACE, order("a", "sell", 152, 1)),
            (cast.bank_a, PLACE, order("b", "sell", 150, 1)),
            (cast.investor, PLACE, order("c", "sell", 150, 2)),
            (cast.investor2, PLACE, order("d", "sell", 170, 1)),
        ]
    )
    trc = chain.total("importer", TRC)
    done = chain.ok(cast.importer, PLACE, order("t", "buy", 155, 6))
    assert (done["filled"], done["quote"], done["remaining"], done["status"]) == (
        4 * LOT,
        150 * 3 + 152,
        2 * LOT,
        "open",
    )
    trades = xs.trades(chain.state, PAIR, 10)
    assert [(t["maker_id"], t["price"], t["qty"]) for t in reversed(trades)] == [
        ("b", 150, LOT),  # placed before c at the same price
        ("c", 150, 2 * LOT),
        ("a", 152, LOT),
    ]
    # paid only for what filled (at the makers' prices); the rest holds 2 lots at the 155 limit
    assert chain.total("importer", TRC) == trc - 602
    assert chain.account("importer", TRC)["held"] == 2 * 155
    assert book(chain, "buy") == [("t", 155, 2 * LOT)] and book(chain, "sell") == [("d", 170, LOT)]
    stat = xs.stat(chain.state, PAIR)
    assert (stat["trades"], stat["volume_base"], stat["volume_quote"], stat["last_price"]) == (3, 4 * LOT, 602, 152)
    sound(chain)


def test_a_seller_into_bids_is_paid_the_bid() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.importer, PLACE, order("b", "buy", 200, 2))
    assert chain.account("importer", TRC)["held"] == 400
    trc = chain.total("exporter", TRC)
    chain.ok(cast.exporter, PLACE, order("s", "sell", 180, 1))
    assert chain.total("exporter", TRC) == trc + 200
    assert chain.account("importer", TRC)["held"] == 200 and book(chain, "buy") == [("b", 200, LOT)]
    sound(chain)


def test_the_last_hundred_trades_of_a_pair_are_kept() -> None:
    chain = market()
    cast = chain.cast
    makers = [(cast.exporter, PLACE, order("a", "sell", 100, 60)), (cast.bank_a, PLACE, order("b", "sell", 101, 60))]
    chain.block(makers)
    chain.block([(cast.importer, PLACE, order(f"t{i}", "buy", 101, 1)) for i in range(102)])
    kept = [int(key.rsplit("/", 1)[1]) for key, _ in chain.state.scan(xs.trade_prefix(PAIR))]
    assert kept == list(range(2, 102))  # trades 0 and 1 live on in the events only
    newest = xs.trades(chain.state, PAIR, 3)
    assert [(t["trade_seq"], t["maker_id"], t["taker_id"]) for t in newest] == [
        (101, "b", "t101"),
        (100, "b", "t100"),
        (99, "b", "t99"),
    ]
    assert xs.stat(chain.state, PAIR)["trades"] == 102


def test_cancel_releases_what_is_left_and_only_the_owner_may() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.importer, PLACE, order("b", "buy", 100, 3))
    chain.ok(cast.exporter, PLACE, order("s", "sell", 100, 1))
    assert chain.code(cast.exporter, CANCEL, {"order_id": "b"}) == "NOT_ORDER_OWNER"
    assert chain.code(cast.exporter, CANCEL, {"order_id": "nope"}) == "UNKNOWN_ORDER"
    assert chain.code(cast.exporter, CANCEL, {"order_id": "s"}) == "ORDER_CLOSED"  # filled
    assert chain.ok(cast.importer, CANCEL, {"order_id": "b"}) == {"order_id": "b", "released": 200, "token": TRC}
    assert chain.account("importer", TRC)["held"] == 0 and book(chain, "buy") == []
    released = [e for e in chain.events if e.type == "HoldReleased" and e.aggregate_id.startswith("hold:exchange:b:")]
    assert [e.data["by"] for e in released] == ["importer"]  # the record names who cancelled
    assert chain.code(cast.importer, CANCEL, {"order_id": "b"}) == "ORDER_CLOSED"
    record = xs.order(chain.state, "b")
    assert record is not None and (record["status"], record["remaining"], record["filled"]) == (
        "cancelled",
        2 * LOT,
        LOT,
    )
    sound(chain)


def test_an_order_hold_cannot_be_touched_through_the_hold_kinds() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.importer, PLACE, order("b", "buy", 100, 1))
    assert chain.code(cast.importer, "trade.hold.release", {"hold_id": "exchange:b:0"}) == "NOT_PERMITTED"
    assert chain.code(cast.importer, "trade.transfer", {"token": TRC, "to": "exporter", "amount": 1_000_000}) == "HELD"


def test_expiry_takes_the_order_off_the_book_and_returns_its_hold() -> None:
    chain = market()
    cast = chain.cast
    expiry = chain.height + 3  # placed at the next height, then one idle height, then expired
    chain.ok(cast.exporter, PLACE, order("s", "sell", 100, 2, expires_height=expiry))
    chain.block()
    assert book(chain, "sell") == [("s", 100, 2 * LOT)]
    # at its expiry height the order no longer fills: the buyer rests instead
    result = chain.block([(cast.importer, PLACE, order("b", "buy", 100, 1))])
    assert result.receipts[0].result["filled"] == 0
    expired = [r for r in result.receipts if r.kind == "trade.clause.hold_expiry"]
    assert [r.result["subject"] for r in expired] == ["exchange:s:0"]
    record = xs.order(chain.state, "s")
    assert record is not None and record["status"] == "expired" and book(chain, "sell") == []
    assert chain.account("exporter", COCO)["held"] == 0
    assert chain.code(cast.exporter, CANCEL, {"order_id": "s"}) == "ORDER_CLOSED"
    sound(chain)


# --------------------------------------------------------------------------- refusals


def test_every_problem_of_an_order_is_named_with_a_specific_code() -> None:
    chain = market()
    cast = chain.cast
    assert chain.code(cast.exporter, PLACE, order("x", "sell", 1, 1, pair="TRC/COCO")) == "UNKNOWN_PAIR"
    assert chain.code(cast.investor, PLACE, order("x", "sell", 1, 1, pair="ECC/TRC", lot=1)) == "UNKNOWN_PAIR"
    assert chain.code(cast.exporter, PLACE, order("x", "sell", 0, 1)) == "INVALID_PRICE"
    assert chain.code(cast.exporter, PLACE, {**order("x", "sell", 5, 1), "qty": LOT + 1}) == "LOT_SIZE"
    assert chain.code(cast.exporter, PLACE, {**order("x", "sell", 5, 1), "qty": 0}) == "INVALID_QUANTITY"
    receipt = chain.run(cast.exporter, PLACE, {**order("x", "sell", -3, 1), "pair": "ZZZ/TRC", "qty": 7})
    assert receipt.code == "UNKNOWN_PAIR"
    assert "ZZZ/TRC is not a listed pair" in receipt.message and "price -3" in receipt.message
    assert chain.code(cast.exporter, PLACE, order("x", "sell", 5, 1, expires_height=chain.height)) == "INVALID_EXPIRY"
    assert chain.code(cast.exporter, PLACE, {**order("x", "sell", 5, 1), "side": "short"}) == "INVALID_PAYLOAD"
    chain.ok(cast.exporter, PLACE, order("x", "sell", 500, 100))
    assert chain.code(cast.exporter, PLACE, order("x", "sell", 500, 1)) == "ORDER_EXISTS"
    assert chain.code(cast.exporter, PLACE, order("y", "sell", 500, 1)) == "HELD"  # all its COCO is on the book
    assert chain.code(cast.importer, PLACE, order("z", "buy", 10**6, 2)) == "INSUFFICIENT_FUNDS"
    assert chain.code(cast.exporter, PLACE, order("w", "buy", 600, 1)) == "SELF_MATCH"
    assert chain.code(cast.unverified, PLACE, order("u", "sell", 500, 1)) == "NOT_ELIGIBLE"  # TRC needs KYC
    chain.ok(cast.regulator, "trade.trc.freeze", {"account": "importer", "reason": "court order"})
    assert chain.code(cast.importer, PLACE, order("f", "buy", 500, 1)) == "FROZEN"
    assert chain.state.get(xs.order_key("z")) is None
    sound(chain)


def test_a_maker_frozen_after_placing_is_skipped_not_filled() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.importer, PLACE, order("b1", "buy", 120, 1))
    chain.ok(cast.bank_a, PLACE, order("b2", "buy", 110, 1))
    chain.ok(cast.regulator, "trade.trc.freeze", {"account": "importer", "reason": "court order"})
    done = chain.ok(cast.exporter, PLACE, order("s", "sell", 100, 1))
    assert [t["maker_id"] for t in xs.trades(chain.state, PAIR, 5)] == ["b2"] and done["quote"] == 110
    assert book(chain, "buy") == [("b1", 120, LOT)]  # stays until cancelled or expired
    sound(chain)


def test_ecc_trades_only_into_qualified_investors() -> None:
    chain = market()
    cast = chain.cast
    chain.ok(cast.custodian, "trade.equity.define", TERMS)
    chain.ok(cast.custodian, "trade.equity.issue", {"token": "ECC", "to": "investor", "amount": 30, "shares": 20})
    chain.ok(cast.investor, PLACE, order("e1", "sell", 4_000, 10, pair="ECC/TRC", lot=1))
    assert chain.code(cast.bank_a, PLACE, order("e2", "buy", 4_000, 1, pair="ECC/TRC", lot=1)) == "NOT_QUALIFIED"
    done = chain.ok(cast.investor2, PLACE, order("e3", "buy", 4_100, 4, pair="ECC/TRC", lot=1))
    assert (done["filled"], done["quote"]) == (4, 16_000)
    assert chain.total("investor-2", "ECC") == 4 and chain.account("investor", "ECC")["held"] == 6
    sound(chain)


def test_a_pair_the_council_lists_keeps_its_first_lot() -> None:
    section = {k: v for k, v in trade_genesis.development_section().items() if k != "exchange"}
    chain = market(section)
    cast = chain.cast
    assert chain.code(cast.exporter, PLACE, order("s", "sell", 5, 1, lot=100)) == "UNKNOWN_PAIR"
    council_sets(chain, "pair/COCO", {"lot": 100})
    chain.ok(cast.exporter, PLACE, order("s", "sell", 5, 1, lot=100))
    assert xs.pair(chain.state, PAIR) == {
        "pair": PAIR,
        "base": COCO,
        "quote": TRC,
        "lot": 100,
        "by": "exporter",
        "height": chain.height,
    }
    council_sets(chain, "pair/COCO", {"lot": 7})  # too late: orders rest in lots of 100
    assert chain.code(cast.importer, PLACE, order("b", "buy", 5, 1, lot=7)) == "LOT_SIZE"
    chain.ok(cast.importer, PLACE, order("b", "buy", 5, 1, lot=100))
    sound(chain, rebuild=False)


def test_flow_kinds_do_not_exist_under_rules_version_1() -> None:
    chain = market()
    chain.rules = 1
    assert chain.code(chain.cast.exporter, PLACE, order("s", "sell", 5, 1)) == "UNKNOWN_KIND"


# --------------------------------------------------------------------------- Coco's liquidity share


def test_the_liquidity_share_is_paid_by_traded_volume_and_rounds_into_the_pool() -> None:
    chain = market()
    cast = chain.cast
    params = q.params(chain.state, "coco")
    assert params is not None
    chain.ok(cast.exporter, PLACE, order("s1", "sell", 100, 3))
    chain.ok(cast.importer, PLACE, order("b1", "buy", 100, 1))  # 100 TRC each side
    chain.ok(cast.bank_a, PLACE, order("b2", "buy", 100, 2))  # 200 TRC each side
    volumes = dict(xs.volumes(chain.state, 0))
    assert volumes == {"exporter": 300, "importer": 100, "bank-a": 200}
    pool, supply = q.pool(chain.state), chain.supply(COCO)
    coco_before = {w: chain.total(w, COCO) for w in volumes}
    end = int(params["start_time"]) + int(params["epoch_ms"])
    result = chain.block(dt=end - chain.time)
    (paid,) = [e for e in result.events if e.type == "LiquidityPaid"]
    epoch = next(e for e in result.events if e.type == "CocoEpochPaid")
    share = epoch.data["amount"] - epoch.data["holders_share"]
    expected = {w: share * v // 600 for w, v in volumes.items()}
    assert paid.data["share"] == share and dict(paid.data["payouts"]) == expected
    holders = dict(epoch.data["payouts"])
    for who in volumes:
        assert chain.total(who, COCO) == coco_before[who] + expected[who] + holders.get(who, 0)
    moved = epoch.data["paid"] + sum(expected.values())
    assert q.pool(chain.state) == pool - moved and chain.supply(COCO) == supply + moved
    assert share - sum(expected.values()) in range(len(volumes))  # the remainders stayed in the pool
    record = q.epoch_paid(chain.state, 0)
    assert record is not None and (record["paid"], record["traders"]) == (moved, 3)
    assert record["liquidity_paid"] == sum(expected.values())
    # an epoch without trades pays no liquidity: its whole share stays in the pool
    result = chain.block(dt=int(params["epoch_ms"]))
    assert [e.type for e in result.events if e.type in ("CocoEpochPaid", "LiquidityPaid")] == ["CocoEpochPaid"]
    sound(chain)
