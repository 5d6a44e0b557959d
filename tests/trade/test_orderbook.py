"""The exchange's matcher (``services/trade/orderbook.py``): its edges one by one, then random order
streams checked against a naive reference matcher written here, which re-sorts the whole book and
fills one lot at a time, with balances settled from the fills and conserved throughout."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traco.core.canonical import MAX_SAFE_INTEGER
from traco.core.domain import Rejected
from traco.services.trade import orderbook as ob
from traco.services.trade.orderbook import Match, MemoryBook, Order, Side

LOT = 100


def order(oid: str, owner: str, side: str, price: int, lots: int, seq: int, expires: int | None = None) -> Order:
    return Order(oid, owner, Side(side), price, lots * LOT, seq, expires)


def book_of(*orders: Order) -> MemoryBook:
    book = MemoryBook()
    for o in orders:
        book.orders[o.order_id] = o
    return book


def matched(book: MemoryBook, taker: Order, height: int = 1) -> Match:
    done = ob.match(book, taker, LOT, height)
    assert isinstance(done, Match), done
    book.apply(done)
    return done


def refused(book: MemoryBook, taker: Order, height: int = 1) -> Rejected:
    done = ob.match(book, taker, LOT, height)
    assert isinstance(done, Rejected), done
    return done


# --------------------------------------------------------------------------- checks and keys


def test_check_names_every_problem_and_accepts_whole_lots() -> None:
    assert ob.check(5, 300, LOT) is None
    assert ob.check(ob.MAX_PRICE, LOT, LOT) is None
    bad = ob.check(0, 250, LOT)
    assert bad is not None and bad.code == "INVALID_PRICE"
    assert bad.message == (
        f"price 0 must be between 1 and {ob.MAX_PRICE}; quantity 250 is not a multiple of the pair's lot 100"
    )
    lot_only = ob.check(5, 250, LOT)
    assert lot_only is not None and lot_only.code == "LOT_SIZE"
    for qty in (0, -100):
        found = ob.check(5, qty, LOT)
        assert found is not None and found.code == "INVALID_QUANTITY"
    too_high = ob.check(ob.MAX_PRICE + 1, LOT, LOT)
    assert too_high is not None and too_high.code == "INVALID_PRICE"
    # two lots at the highest price would be a quote amount no canonical integer can carry
    overflow = ob.check(ob.MAX_PRICE, 2 * LOT, LOT)
    assert overflow is not None and overflow.code == "INVALID_QUANTITY"
    assert overflow.message == f"2 lots at {ob.MAX_PRICE} exceed {MAX_SAFE_INTEGER} quote units"
    # at the lowest price too, when the lots alone are past the bound
    lots = MAX_SAFE_INTEGER + 1
    at_one = ob.check(1, lots * LOT, LOT)
    assert at_one is not None and at_one.message == f"{lots} lots at 1 exceed {MAX_SAFE_INTEGER} quote units"


def test_quote_amounts_are_exact_and_buy_reservations_are_lots_times_limit() -> None:
    assert ob.quote_amount(700, LOT, 13) == 91
    # integers, never floats, even past what a float holds exactly
    big = ob.quote_amount(3 * (MAX_SAFE_INTEGER - 2), 3, 1)
    assert type(big) is int and big == MAX_SAFE_INTEGER - 2
    assert ob.reservation(Side.BUY, 13, 700, LOT) == 91
    assert ob.reservation(Side.SELL, 13, 700, LOT) == 700


@given(st.lists(st.tuples(st.integers(1, ob.MAX_PRICE), st.integers(0, 10**12 - 1)), min_size=2, max_size=30))
def test_order_keys_sort_best_first_on_each_side(entries: list[tuple[int, int]]) -> None:
    asks = sorted(entries, key=lambda e: ob.order_key(Side.SELL, *e))
    bids = sorted(entries, key=lambda e: ob.order_key(Side.BUY, *e))
    assert asks == sorted(entries, key=lambda e: (e[0], e[1]))
    assert bids == sorted(entries, key=lambda e: (-e[0], e[1]))
    for side in Side:
        for price, seq in entries:
            assert ob.price_of_key(side, ob.order_key(side, price, seq)) == price


# --------------------------------------------------------------------------- matching edges


def test_price_then_time_priority_at_the_makers_prices() -> None:
    book = book_of(
        order("a1", "ann", "sell", 11, 1, seq=1),
        order("a2", "bob", "sell", 10, 1, seq=3),
        order("a3", "cat", "sell", 10, 1, seq=2),
    )
    done = matched(book, order("b1", "dan", "buy", 11, 3, seq=4))
    assert [(f.maker_id, f.price, f.qty, f.quote) for f in done.fills] == [
        ("a3", 10, 100, 10),  # the older of the two at the best price
        ("a2", 10, 100, 10),
        ("a1", 11, 100, 11),
    ]
    assert not done.rests and book.orders == {}


def test_a_buyer_filled_below_its_limit_gets_the_difference_at_once() -> None:
    book = book_of(order("a1", "ann", "sell", 7, 2, seq=1))
    done = matched(book, order("b1", "dan", "buy", 10, 5, seq=2))
    (fill,) = done.fills
    assert (fill.buyer, fill.seller, fill.qty, fill.quote, fill.released) == ("dan", "ann", 200, 14, 6)
    # what is left reserves exactly lots x limit: 50 reserved - 14 paid - 6 released = 30 = 3 x 10
    assert done.taker.qty == 300 and ob.reservation(Side.BUY, 10, done.taker.qty, LOT) == 50 - 14 - 6
    assert book.orders["b1"] == done.taker


def test_a_seller_into_bids_is_paid_the_bid_and_releases_nothing() -> None:
    book = book_of(order("b1", "ann", "buy", 12, 1, seq=1), order("b2", "bob", "buy", 9, 1, seq=2))
    done = matched(book, order("s1", "cat", "sell", 10, 2, seq=3))
    assert [(f.maker_id, f.price, f.quote, f.released, f.buyer) for f in done.fills] == [("b1", 12, 12, 0, "ann")]
    assert done.rests and book.orders["s1"].qty == 100  # 9 does not cross 10: the rest rests
    assert "b2" in book.orders


def test_partial_fill_of_a_maker_keeps_its_place_in_time() -> None:
    book = book_of(order("a1", "ann", "sell", 10, 5, seq=1), order("a2", "bob", "sell", 10, 5, seq=2))
    done = matched(book, order("b1", "dan", "buy", 10, 2, seq=3))
    assert [(f.maker_id, f.maker_left) for f in done.fills] == [("a1", 300)]
    assert book.orders["a1"].qty == 300 and book.orders["a1"].seq == 1
    done = matched(book, order("b2", "eve", "buy", 10, 4, seq=4))
    assert [(f.maker_id, f.qty) for f in done.fills] == [("a1", 300), ("a2", 100)]
    assert set(book.orders) == {"a2"} and book.orders["a2"].qty == 400


def test_no_cross_rests_and_the_book_reads_best_first() -> None:
    book = book_of(order("a1", "ann", "sell", 10, 1, seq=1))
    done = matched(book, order("b1", "bob", "buy", 9, 1, seq=2))
    assert done.fills == () and done.rests
    matched(book, order("b2", "cat", "buy", 9, 2, seq=3))
    matched(book, order("b3", "dan", "buy", 8, 1, seq=4))
    assert [(o.order_id, o.price, o.qty) for o in book.resting(Side.BUY)] == [
        ("b1", 9, 100),
        ("b2", 9, 200),
        ("b3", 8, 100),
    ]
    assert [(o.order_id, o.price, o.qty) for o in book.resting(Side.SELL)] == [("a1", 10, 100)]


def test_self_match_refuses_the_whole_order_and_changes_nothing() -> None:
    book = book_of(order("a1", "bob", "sell", 9, 1, seq=1), order("a2", "ann", "sell", 10, 1, seq=2))
    before = dict(book.orders)
    found = refused(book, order("b1", "ann", "buy", 10, 2, seq=3))
    assert found.code == "SELF_MATCH" and "a2" in found.message
    assert book.orders == before  # not even bob's a1, which came first, was filled


def test_own_orders_the_taker_does_not_reach_are_no_obstacle() -> None:
    book = book_of(order("a1", "bob", "sell", 9, 1, seq=1), order("a2", "ann", "sell", 10, 1, seq=2))
    done = matched(book, order("b1", "ann", "buy", 9, 1, seq=3))  # filled by a1 before reaching a2
    assert [f.maker_id for f in done.fills] == ["a1"]
    done = matched(book, order("b2", "ann", "buy", 9, 1, seq=4))  # a2 at 10 does not cross 9
    assert done.fills == () and done.rests


def test_expired_makers_are_skipped_not_filled() -> None:
    book = book_of(order("a1", "ann", "sell", 9, 1, seq=1, expires=5), order("a2", "bob", "sell", 10, 1, seq=2))
    done = matched(book, order("b1", "cat", "buy", 10, 1, seq=3), height=5)
    assert [f.maker_id for f in done.fills] == ["a2"]
    assert "a1" in book.orders  # the hold-expiry clause takes it off at the end of the block
    # an expired order of the taker's own is skipped as well, not a self-match
    book = book_of(order("a1", "cat", "sell", 9, 1, seq=1, expires=5), order("a2", "bob", "sell", 10, 1, seq=2))
    assert [f.maker_id for f in matched(book, order("b1", "cat", "buy", 10, 1, seq=3), height=5).fills] == ["a2"]


class CountingBook(MemoryBook):
    """A book that counts how many orders the matcher read (the state's book reads each from storage)."""

    def __init__(self) -> None:
        super().__init__()
        self.read = 0

    def resting(self, side: Side) -> Iterator[Order]:
        for o in super().resting(side):
            self.read += 1
            yield o


def test_the_matcher_reads_only_what_it_fills_plus_one() -> None:
    book = CountingBook()
    for i in range(50):
        book.orders[f"a{i}"] = order(f"a{i}", "ann", "sell", 10 + i, 1, seq=i)
    done = ob.match(book, order("b1", "bob", "buy", 11, 5, seq=99), LOT, 1)
    assert isinstance(done, Match) and len(done.fills) == 2
    assert book.read == 3  # a0 and a1 filled, a2 at 12 ends the scan; 47 more never read
    book.read = 0
    assert isinstance(ob.match(book, order("b2", "bob", "buy", 10, 1, seq=100), LOT, 1), Match)
    assert book.read == 1  # filled in full by a0: nothing after it is read


# --------------------------------------------------------------------------- reference and streams


def reference_place(resting: list[Order], taker: Order, lot: int, height: int) -> list[tuple[object, ...]] | str:
    """Naive matcher: before every lot, sort the whole opposite side again and take its best
    crossing live order; move one lot. ``resting`` is changed only if the order is accepted."""
    work = list(resting)
    lots: list[tuple[str, str, int]] = []
    left = taker.qty
    while left:
        live = [o for o in work if o.side is not taker.side and (o.expires_height or height + 1) > height]
        if taker.side is Side.BUY:
            live = sorted((o for o in live if o.price <= taker.price), key=lambda o: (o.price, o.seq))
        else:
            live = sorted((o for o in live if o.price >= taker.price), key=lambda o: (-o.price, o.seq))
        if not live:
            break
        best = live[0]
        if best.owner == taker.owner:
            return "SELF_MATCH"
        lots.append((best.order_id, best.owner, best.price))
        left -= lot
        work = [replace(o, qty=o.qty - lot) if o is best else o for o in work]
        work = [o for o in work if o.qty > 0]
    if left:
        work.append(replace(taker, qty=left))
    resting[:] = work
    fills: list[tuple[object, ...]] = []
    for maker_id, owner, price in lots:  # consecutive lots of one maker are one fill
        buy = taker.side is Side.BUY
        improvement = taker.price - price if buy else 0
        buyer, seller = (taker.owner, owner) if buy else (owner, taker.owner)
        if fills and fills[-1][0] == maker_id:
            m, b, s, p, q, quote, rel = fills[-1]
            fills[-1] = (m, b, s, p, q + lot, quote + price, rel + improvement)  # type: ignore[operator]
        else:
            fills.append((maker_id, buyer, seller, price, lot, price, improvement))
    return fills


@dataclass
class Ledger:
    """Free balances and reservations per owner, settled from the matcher's fills."""

    base: Counter[str] = field(default_factory=Counter)
    quote: Counter[str] = field(default_factory=Counter)
    reserved_base: Counter[str] = field(default_factory=Counter)
    reserved_quote: Counter[str] = field(default_factory=Counter)

    def reserve(self, o: Order, lot: int) -> bool:
        need = ob.reservation(o.side, o.price, o.qty, lot)
        free, held = (self.base, self.reserved_base) if o.side is Side.SELL else (self.quote, self.reserved_quote)
        if free[o.owner] < need:
            return False
        free[o.owner] -= need
        held[o.owner] += need
        return True

    def unreserve(self, o: Order, lot: int) -> None:
        amount = ob.reservation(o.side, o.price, o.qty, lot)
        free, held = (self.base, self.reserved_base) if o.side is Side.SELL else (self.quote, self.reserved_quote)
        held[o.owner] -= amount
        free[o.owner] += amount

    def settle(self, done: Match) -> None:
        for f in done.fills:
            self.reserved_base[f.seller] -= f.qty
            self.base[f.buyer] += f.qty
            self.reserved_quote[f.buyer] -= f.quote + f.released
            self.quote[f.seller] += f.quote
            self.quote[f.buyer] += f.released


OWNERS = ("ann", "bob", "cat")
START = 10**6


@dataclass(frozen=True)
class Place:
    owner: str
    side: Side
    price: int
    lots: int
    expires_in: int | None


@dataclass(frozen=True)
class Cancel:
    pick: int


@dataclass(frozen=True)
class EndBlock:
    pass


places = st.builds(
    Place,
    st.sampled_from(OWNERS),
    st.sampled_from(list(Side)),
    st.integers(1, 8),  # a narrow range: many crosses and many equal prices
    st.integers(1, 6),
    st.one_of(st.none(), st.integers(1, 4)),
)
streams = st.lists(st.one_of(places, places, st.builds(Cancel, st.integers(0, 50)), st.just(EndBlock())), max_size=60)


@settings(max_examples=300, deadline=None)
@given(streams, st.sampled_from([1, 3, LOT]))
def test_random_streams_match_the_reference_and_conserve_both_tokens(
    stream: list[Place | Cancel | EndBlock], lot: int
) -> None:
    book, resting, ledger = MemoryBook(), list[Order](), Ledger()
    for owner in OWNERS:
        ledger.base[owner] = ledger.quote[owner] = START
    height, seq = 1, 0
    for op in stream:
        if isinstance(op, Place):
            seq += 1
            expires = None if op.expires_in is None else height + op.expires_in
            taker = Order(f"o{seq}", op.owner, op.side, op.price, op.lots * lot, seq, expires)
            assert ob.check(taker.price, taker.qty, lot) is None
            if not ledger.reserve(taker, lot):
                continue
            done = ob.match(book, taker, lot, height)
            expected = reference_place(resting, taker, lot, height)
            if isinstance(done, Rejected):
                assert done.code == "SELF_MATCH" and expected == "SELF_MATCH"
                ledger.unreserve(taker, lot)
                continue
            got = [(f.maker_id, f.buyer, f.seller, f.price, f.qty, f.quote, f.released) for f in done.fills]
            assert got == expected
            assert all(f.taker_id == taker.order_id for f in done.fills)
            book.apply(done)
            ledger.settle(done)
        elif isinstance(op, Cancel) and book.orders:
            ids = sorted(book.orders)
            victim = book.remove(ids[op.pick % len(ids)])
            resting.remove(next(o for o in resting if o.order_id == victim.order_id))
            ledger.unreserve(victim, lot)
        elif isinstance(op, EndBlock):  # the clause at the end of the block takes due orders off
            for o in [o for o in book.orders.values() if not o.live_at(height)]:
                book.remove(o.order_id)
                ledger.unreserve(o, lot)
            resting[:] = [o for o in resting if o.live_at(height)]
            height += 1
        # identical resting books, side by side, best first
        for side in Side:
            ref = sorted(
                (o for o in resting if o.side is side),
                key=lambda o: (o.price if side is Side.SELL else -o.price, o.seq),
            )
            assert list(book.resting(side)) == ref
        # conservation, and every reservation is exactly what the open orders hold
        assert sum(ledger.base.values()) + sum(ledger.reserved_base.values()) == START * len(OWNERS)
        assert sum(ledger.quote.values()) + sum(ledger.reserved_quote.values()) == START * len(OWNERS)
        for owner in OWNERS:
            mine = [o for o in book.orders.values() if o.owner == owner]
            assert ledger.reserved_base[owner] == sum(o.qty for o in mine if o.side is Side.SELL)
            assert ledger.reserved_quote[owner] == sum(
                ob.reservation(Side.BUY, o.price, o.qty, lot) for o in mine if o.side is Side.BUY
            )
            assert min(ledger.base[owner], ledger.quote[owner]) >= 0
        # everything that could trade did: the live book never crosses itself
        best_bid = next((o.price for o in book.resting(Side.BUY) if o.live_at(height)), 0)
        best_ask = next((o.price for o in book.resting(Side.SELL) if o.live_at(height)), ob.MAX_PRICE + 1)
        assert best_bid < best_ask


@pytest.mark.parametrize("side", list(Side))
def test_opposite_sides(side: Side) -> None:
    assert side.opposite.opposite is side and side.opposite is not side
