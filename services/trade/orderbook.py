"""The exchange's matcher: price-time-priority limit orders in integers (architecture: The code (trade)).

A pure function over an abstract book, so the same code matches over ``MemoryBook`` in the tests and
over the service's key/value state, where the order keys (``order_key``) sort best-first.

Units (every amount exact, no rounding anywhere):

- A pair trades a *base* token against a *quote* token (``ECC/TRC``: ECC priced in TRC) with a
  positive integer ``lot`` in base minor units (e.g. one whole ECC).
- ``price`` is quote minor units per ``lot`` base minor units: ``1 <= price <= MAX_PRICE``.
- ``qty`` is base minor units and **must be a multiple of ``lot``** (``LOT_SIZE`` otherwise), so
  the quote amount of any quantity at any price, ``qty // lot * price``, is an exact integer:
  a fill never rounds, and both legs of every match are whole minor units.
- A sell order reserves its ``qty`` of base; a buy order reserves ``qty // lot * price`` of quote
  (``reservation``), which must stay within ``MAX_SAFE_INTEGER`` (the canonical encoding's bound).

Rules, each implemented in ``match`` and checked against a naive reference matcher by
``tests/trade/test_orderbook.py``:

1. Price-time priority. The incoming order (the *taker*) meets the opposite side best price
   first — lowest ask for a buy, highest bid for a sell — and, at one price, the oldest order
   first (lowest per-pair sequence number).
2. Crossing. A resting order (a *maker*) is matched while its price is at or better than the
   taker's limit (ask <= buy limit, bid >= sell limit); the first one that is not ends matching.
3. Maker's price. Every fill executes at the maker's price: the party that waited sets it.
4. Partial fills. A fill is ``min(taker left, maker left)``; both are multiples of ``lot``, so the
   fill is too. A maker with nothing left leaves the book; a taker with something left after
   matching rests on the book at its own limit with its own sequence number.
5. Price improvement, released at once. A buying taker reserved ``lots · limit``; a fill of ``n``
   lots at a maker's price ``p <= limit`` pays ``n · p`` and releases ``n · (limit − p)`` to the
   buyer in the same step (``Fill.released``), never later. So an open buy order's reservation
   is always exactly ``remaining // lot · limit`` and a cancel or expiry releases just that. A
   selling taker is paid ``n · p >= n · limit``: improvement is simply received.
6. Self-match: refused. If matching would reach a resting order of the taker's own owner, the
   whole incoming order is refused (``SELF_MATCH``, naming that order) and nothing fills: a member
   cannot trade with itself (which would also farm Coco's liquidity share out of wash volume), and
   its resting orders are never changed by its own new order. It may cancel the resting order and
   place again. Orders of its own that the taker would not reach are no obstacle.
7. Expired makers are skipped. A maker whose ``expires_height`` has been reached is due for the
   hold-expiry clause at the end of this block (``traco.core.holds``: a due hold cannot be
   executed), so it neither fills nor blocks; the clause takes it off the book.

Conservation (per fill): the seller's ``qty`` of base goes to the buyer and the buyer's
``quote`` to the seller; together with the released improvement, every unit the taker and the
makers reserved is accounted for (the tests check Σ base and Σ quote over a random stream).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final, Protocol

from traco.core.canonical import MAX_SAFE_INTEGER
from traco.core.domain import Rejected

MAX_PRICE: Final = MAX_SAFE_INTEGER
"""The highest price: prices are keyed as ``PRICE_DIGITS`` zero-padded digits."""
PRICE_DIGITS: Final = len(str(MAX_PRICE))
SEQ_DIGITS: Final = 12
"""A per-pair sequence of up to 10**12 orders keeps its keys fixed width (and so sorted)."""


class BookCode(StrEnum):
    """Receipt codes of the matcher's own checks (the service adds pair, funds and id codes)."""

    INVALID_PRICE = "INVALID_PRICE"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    LOT_SIZE = "LOT_SIZE"
    SELF_MATCH = "SELF_MATCH"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


@dataclass(frozen=True)
class Order:
    """One limit order; ``qty`` is what is left of it (base minor units, a multiple of the lot)."""

    order_id: str
    owner: str
    side: Side
    price: int
    qty: int
    seq: int
    expires_height: int | None = None

    def live_at(self, height: int) -> bool:
        """False from the height its expiry is reached (rule 7)."""
        return self.expires_height is None or height < self.expires_height


@dataclass(frozen=True)
class Fill:
    """One match between the taker and one maker, at the maker's price.

    ``quote = qty // lot * price`` moves buyer → seller and ``qty`` moves seller → buyer;
    ``released`` is the quote the buying taker reserved above the maker's price for these lots
    (0 when the taker sells), returned to it at once (rule 5)."""

    maker_id: str
    taker_id: str
    buyer: str
    seller: str
    price: int
    qty: int
    quote: int
    released: int
    maker_left: int
    """What is left of the maker after this fill (0: it leaves the book)."""


@dataclass(frozen=True)
class Match:
    """What one incoming order does: its fills in order, the makers they touched (as they are
    after the fills), and the taker as it is after matching (``qty`` 0 if filled, else it rests)."""

    taker: Order
    fills: tuple[Fill, ...]
    makers: tuple[Order, ...]

    @property
    def rests(self) -> bool:
        return self.taker.qty > 0

    @property
    def filled(self) -> int:
        return sum(f.qty for f in self.fills)

    @property
    def released(self) -> int:
        return sum(f.released for f in self.fills)


class Book(Protocol):
    """What the matcher reads: one side's live and expired resting orders, best first (rule 1)."""

    def resting(self, side: Side) -> Iterable[Order]: ...


def quote_amount(qty: int, lot: int, price: int) -> int:
    """The quote value of ``qty`` base at ``price`` (exact: ``qty`` is a multiple of ``lot``)."""
    return qty // lot * price


def reservation(side: Side, price: int, qty: int, lot: int) -> int:
    """What an order of ``qty`` left holds: base for a sell, ``lots · limit`` quote for a buy."""
    return qty if side is Side.SELL else quote_amount(qty, lot, price)


def problems(price: int, qty: int, lot: int) -> list[tuple[BookCode, str]]:
    """Every problem with a price and a quantity for a pair with ``lot``, each with its code."""
    found: list[tuple[BookCode, str]] = []
    if not 1 <= price <= MAX_PRICE:
        found.append((BookCode.INVALID_PRICE, f"price {price} must be between 1 and {MAX_PRICE}"))
    if qty <= 0:
        found.append((BookCode.INVALID_QUANTITY, f"quantity {qty} must be positive"))
    elif qty % lot:
        found.append((BookCode.LOT_SIZE, f"quantity {qty} is not a multiple of the pair's lot {lot}"))
    elif 1 <= price <= MAX_PRICE and quote_amount(qty, lot, price) > MAX_SAFE_INTEGER:
        found.append((BookCode.INVALID_QUANTITY, f"{qty // lot} lots at {price} exceed {MAX_SAFE_INTEGER} quote units"))
    return found


def check(price: int, qty: int, lot: int) -> Rejected | None:
    """The refusal naming every problem (coded by the first), or ``None``."""
    found = problems(price, qty, lot)
    if not found:
        return None
    return Rejected(found[0][0].value, "; ".join(message for _, message in found))


def crosses(taker: Order, maker_price: int) -> bool:
    """Rule 2: the maker's price is at or better than the taker's limit."""
    return maker_price <= taker.price if taker.side is Side.BUY else maker_price >= taker.price


def match(book: Book, taker: Order, lot: int, height: int) -> Match | Rejected:
    """Match ``taker`` (already checked, its ``seq`` assigned) against ``book`` at ``height``.

    Pure: reads the book lazily, best first, and stops at the first maker that does not cross,
    so it reads only the orders it fills plus one. The caller applies the ``Match`` (or the
    refusal) to its book and balances."""
    left = taker.qty
    fills: list[Fill] = []
    makers: list[Order] = []
    for maker in book.resting(taker.side.opposite):
        if not maker.live_at(height):
            continue
        if not crosses(taker, maker.price):
            break
        if maker.owner == taker.owner:
            return Rejected(
                BookCode.SELF_MATCH.value,
                f"order {taker.order_id} would trade with {taker.owner}'s own resting order {maker.order_id}"
                f" ({maker.side.value} {maker.qty} at {maker.price}); cancel that order first",
            )
        qty = min(left, maker.qty)
        left -= qty
        buy = taker.side is Side.BUY
        improvement = taker.price - maker.price if buy else 0
        fills.append(
            Fill(
                maker_id=maker.order_id,
                taker_id=taker.order_id,
                buyer=taker.owner if buy else maker.owner,
                seller=maker.owner if buy else taker.owner,
                price=maker.price,
                qty=qty,
                quote=quote_amount(qty, lot, maker.price),
                released=quote_amount(qty, lot, improvement),
                maker_left=maker.qty - qty,
            )
        )
        makers.append(replace(maker, qty=maker.qty - qty))
        if left == 0:
            break
    return Match(taker=replace(taker, qty=left), fills=tuple(fills), makers=tuple(makers))


def price_key(side: Side, price: int) -> str:
    """A fixed-width string whose sorted order is the side's best-first order: asks by ascending
    price, bids by descending price (``MAX_PRICE - price``, zero-padded)."""
    value = price if side is Side.SELL else MAX_PRICE - price
    return f"{value:0{PRICE_DIGITS}d}"


def order_key(side: Side, price: int, seq: int) -> str:
    """``<price_key>/<seq>``: within one side of one pair, sorted order is price-time priority."""
    return f"{price_key(side, price)}/{seq:0{SEQ_DIGITS}d}"


def price_of_key(side: Side, key: str) -> int:
    """The price back from a ``price_key`` (or the start of an ``order_key``)."""
    value = int(key[:PRICE_DIGITS])
    return value if side is Side.SELL else MAX_PRICE - value


class MemoryBook:
    """One pair's book in memory (tests, tools): orders by id, iterated in ``order_key`` order."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}

    def resting(self, side: Side) -> Iterator[Order]:
        chosen = [o for o in self.orders.values() if o.side is side]
        return iter(sorted(chosen, key=lambda o: order_key(o.side, o.price, o.seq)))

    def apply(self, done: Match) -> None:
        """Makers left with nothing leave; the others keep what is left; a taker left over rests."""
        for maker in done.makers:
            if maker.qty == 0:
                del self.orders[maker.order_id]
            else:
                self.orders[maker.order_id] = maker
        if done.rests:
            self.orders[done.taker.order_id] = done.taker

    def remove(self, order_id: str) -> Order:
        """Cancel or expiry: the order leaves the book (its reservation is the caller's to release)."""
        return self.orders.pop(order_id)


__all__ = [
    "MAX_PRICE",
    "Book",
    "BookCode",
    "Fill",
    "Match",
    "MemoryBook",
    "Order",
    "Side",
    "check",
    "crosses",
    "match",
    "order_key",
    "price_key",
    "price_of_key",
    "problems",
    "quote_amount",
    "reservation",
]
