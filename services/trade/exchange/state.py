"""The exchange's records: key layout, reads and the mutators of its events.

Keys (``<pair>`` is ``BASE/QUOTE``, two key segments)::

    xpair/<pair>                        {pair, base, quote, lot, listed_by, height}: a listed pair
    xstat/<pair>                        {orders, trades, volume_base, volume_quote, last_price}
    xlvl/<pair>/<side>/<price_key>      {price, qty, orders}: one price level of the book
                                        (``orderbook.price_key``: sorted order is best first)
    xbook/<pair>/<side>/<order_key>     an open order's book entry (``orderbook.order_key``:
                                        ``<price_key>/<seq>``, so price-time priority)
    xorder/<order_id>                   the order, open or closed, forever (ids are never reused)
    xtrade/<pair>/<trade_seq:012d>      one trade; the last ``TRADES_KEPT`` of each pair are kept
    xvol/<epoch:08d>/<member>           {quote, trades}: traded volume in quote minor units
                                        (TRC) per member per Coco epoch, both sides of each trade

An epoch's liquidity payout is recorded on Coco's own record of the epoch (``coco/paid/<epoch>``:
``paid`` becomes holders' plus liquidity's, beside ``liquidity_share``, ``liquidity_paid``,
``traders``), so ``traco coco schedule`` shows what each epoch paid in all.

Why a level index beside the entries: the matcher reads a side best first and stops at the
first price that does not cross, so it lists the levels (few) and then only the orders of the
levels it reaches, never the whole side; market data reads the levels alone.

The money is not here: an open order's reservation is its managed hold ``exchange:<id>:<n>``
(``n`` counts the order's holds: a partial fill of a resting order executes its hold and holds
what is left anew), moved by the core hold and transfer events. Events::

    PairListed      pair, base, quote, lot, by… (genesis, or the first order on a council pair)
    OrderPlaced     order (the record as matching left it: remaining, status, hold_id), by…
    OrderFilled     pair, trade_seq, maker_id, taker_id, buyer, seller, price, qty, quote,
                    maker_left, maker_hold (its new hold, or null), epoch (null: no Coco epoch), by…
    OrderCancelled  order_id, by…
    OrderExpired    order_id, by… (its hold expired: the clause returned the reservation)
    LiquidityPaid   epoch, token, share, payouts [[member, amount]…], paid, by…
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

import orjson

from traco.core.domain import DictState, StateView, scan_from
from traco.services.trade import orderbook as ob
from traco.services.trade import queries as q
from traco.services.trade.writer import Data, Writer, credit, supply

HOLD_PREFIX: Final = "exchange:"
TRADES_KEPT: Final = 100
"""Trades kept per pair for market data; older ones live on in the events (``events.trade``)."""
VOLUME: Final = "xvol/"
OPEN: Final = "open"


def pair_key(pair: str) -> str:
    return f"xpair/{pair}"


def stat_key(pair: str) -> str:
    return f"xstat/{pair}"


def book_prefix(pair: str, side: str) -> str:
    return f"xbook/{pair}/{side}/"


def book_key(pair: str, side: str, price: int, seq: int) -> str:
    return f"{book_prefix(pair, side)}{ob.order_key(ob.Side(side), price, seq)}"


def level_prefix(pair: str, side: str) -> str:
    return f"xlvl/{pair}/{side}/"


def level_key(pair: str, side: str, price: int) -> str:
    return f"{level_prefix(pair, side)}{ob.price_key(ob.Side(side), price)}"


def order_key(order_id: str) -> str:
    return f"xorder/{order_id}"


def trade_prefix(pair: str) -> str:
    return f"xtrade/{pair}/"


def trade_key(pair: str, seq: int) -> str:
    return f"{trade_prefix(pair)}{seq:012d}"


def volume_prefix(epoch: int) -> str:
    return f"{VOLUME}{epoch:08d}/"


def hold_id(order_id: str, n: int) -> str:
    """The order's ``n``-th hold (0: when it first rests)."""
    return f"{HOLD_PREFIX}{order_id}:{n}"


def order_of_hold(hold: str) -> str | None:
    return hold[len(HOLD_PREFIX) :].rsplit(":", 1)[0] if hold.startswith(HOLD_PREFIX) else None


# --------------------------------------------------------------------------- reads


def pair(view: StateView, pair_id: str) -> dict[str, Any] | None:
    return q.read(view, pair_key(pair_id))


def pairs(view: StateView) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for _, raw in view.scan("xpair/")]


EMPTY_STAT: Final = {"orders": 0, "trades": 0, "volume_base": 0, "volume_quote": 0, "last_price": None}


def stat(view: StateView, pair_id: str) -> dict[str, Any]:
    """Orders placed (the last sequence number), trades, volumes and the last price of a pair."""
    found = q.read(view, stat_key(pair_id))
    return dict(EMPTY_STAT) if found is None else found


def order(view: StateView, order_id: str) -> dict[str, Any] | None:
    return q.read(view, order_key(order_id))


def levels(view: StateView, pair_id: str, side: ob.Side) -> Iterator[dict[str, int]]:
    """One side's price levels ``{price, qty, orders}``, best first."""
    for _, raw in view.scan(level_prefix(pair_id, side.value)):
        yield orjson.loads(raw)


def resting(view: StateView, pair_id: str, side: ob.Side) -> Iterator[ob.Order]:
    """One side's open orders, best first: level by level, each level's orders by time, so a
    reader that stops early has read only the levels it reached."""
    for level in levels(view, pair_id, side):
        yield from _level_orders(view, f"{book_prefix(pair_id, side.value)}{ob.price_key(side, level['price'])}/", side)


def _level_orders(view: StateView, prefix: str, side: ob.Side) -> Iterator[ob.Order]:
    """One level's open orders by time, skipping what is known to be gone without reading it.

    Why: a block's fills delete their makers' entries in the block's overlay while the store
    below still holds them, so a scan from the level's head made the k-th taker of a block
    walk past the k-1 makers filled before it (quadratic in the block's fills). So the reader
    notes, in the state view's ``DictState.hints`` (not state: they live as long as the
    block's overlay), what each scan found: ``hints[prefix]`` is the first entry of the level,
    ``hints[key]`` the entry that came next after ``key`` — nothing lay between them. That
    stays true in every later state: an entry that is gone never comes back (a closed order
    never reopens) and none is ever added between two entries, since a new order gets the
    pair's next ``seq`` and sorts after every order resting at its price. So a later scan
    seeks to the noted entry instead of reading the gap (the makers filled since, which the
    store still holds), and yields what a scan from the head would, for every input. Notes
    after an entry matter when a maker is passed over but stays on the book (it expires at
    this height, or its owner cannot settle): the fills behind it are skipped too."""
    notes = view if isinstance(view, DictState) else None
    mark = prefix
    at = (notes.hint(prefix) if notes is not None else None) or prefix
    while True:
        for key, raw in scan_from(view, prefix, at):
            if notes is not None:
                notes.hints[mark] = key
            e = orjson.loads(raw)
            yield ob.Order(e["order_id"], e["owner"], side, e["price"], e["remaining"], e["seq"], e["expires_height"])
            mark = key
            after = notes.hint(key) if notes is not None else None
            if after is not None:
                at = after
                break
        else:
            return


def trades(view: StateView, pair_id: str, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` trades of a pair, newest first."""
    found = [orjson.loads(raw) for _, raw in view.scan(trade_prefix(pair_id))]
    return found[::-1][:limit]


def volumes(view: StateView, epoch: int) -> list[tuple[str, int]]:
    """``(member, quote volume)`` of every member that traded in ``epoch``, in member order."""
    prefix = volume_prefix(epoch)
    return [(k[len(prefix) :], int(orjson.loads(raw)["quote"])) for k, raw in view.scan(prefix)]


# --------------------------------------------------------------------------- mutators


def _entry(record: Data) -> dict[str, Any]:
    fields = ("order_id", "owner", "price", "remaining", "seq", "expires_height", "hold_id")
    return {k: record[k] for k in fields}


def _level(w: Writer, record: Data, qty: int, orders: int) -> None:
    """Add ``qty`` and ``orders`` (either may be negative) to the order's price level."""
    key = level_key(record["pair"], record["side"], record["price"])
    level = w.get(key) or {"price": record["price"], "qty": 0, "orders": 0}
    level = {**level, "qty": level["qty"] + qty, "orders": level["orders"] + orders}
    if level["qty"] < 0 or level["orders"] < 0 or (level["orders"] == 0) != (level["qty"] == 0):
        raise ValueError(f"price level {key} would be {level}: the event stream is inconsistent")
    if level["orders"]:
        w.put(key, level)
    else:
        w.delete(key)


def _listed(w: Writer, d: Data) -> None:
    if w.get(pair_key(d["pair"])) is not None:
        raise ValueError(f"pair {d['pair']} listed twice: the event stream is inconsistent")
    fields = ("pair", "base", "quote", "lot", "by", "height")
    w.put(pair_key(d["pair"]), {k: d.get(k) for k in fields})


def _placed(w: Writer, d: Data) -> None:
    record = dict(d["order"])
    if w.get(order_key(record["order_id"])) is not None:
        raise ValueError(f"order {record['order_id']} placed twice: the event stream is inconsistent")
    counts = w.get(stat_key(record["pair"])) or dict(EMPTY_STAT)
    if record["seq"] <= counts["orders"]:  # the book reader's hints rely on it (``_level_orders``)
        why = f"order {record['order_id']}'s seq {record['seq']} is not after the pair's last, {counts['orders']}"
        raise ValueError(f"{why}: the event stream is inconsistent")
    w.put(order_key(record["order_id"]), record)
    w.put(stat_key(record["pair"]), {**counts, "orders": record["seq"]})
    if record["status"] == OPEN:
        w.put(book_key(record["pair"], record["side"], record["price"], record["seq"]), _entry(record))
        _level(w, record, record["remaining"], 1)


def _filled(w: Writer, d: Data) -> None:
    maker = w.must(order_key(d["maker_id"]))
    if maker["status"] != OPEN or maker["remaining"] - d["qty"] != d["maker_left"]:
        raise ValueError(f"order {d['maker_id']} cannot fill {d['qty']}: the event stream is inconsistent")
    book = book_key(maker["pair"], maker["side"], maker["price"], maker["seq"])
    maker.update(remaining=d["maker_left"], filled=maker["filled"] + d["qty"], quote=maker["quote"] + d["quote"])
    maker["hold_id"] = d["maker_hold"]
    if d["maker_hold"] is not None:
        maker["holds"] += 1
    if d["maker_left"] == 0:
        maker.update(status="filled", closed={k: d[k] for k in ("by", "tx_id", "height", "time")})
        w.delete(book)
    else:
        w.put(book, _entry(maker))
    _level(w, maker, -d["qty"], 0 if d["maker_left"] else -1)
    w.put(order_key(d["maker_id"]), maker)
    fields = (
        "trade_seq",
        "maker_id",
        "taker_id",
        "buyer",
        "seller",
        "price",
        "qty",
        "quote",
        "tx_id",
        "height",
        "time",
    )
    w.put(trade_key(d["pair"], d["trade_seq"]), {k: d[k] for k in fields})
    if d["trade_seq"] >= TRADES_KEPT:
        w.delete(trade_key(d["pair"], d["trade_seq"] - TRADES_KEPT))
    counts = w.get(stat_key(d["pair"])) or dict(EMPTY_STAT)
    counts.update(
        trades=d["trade_seq"] + 1,
        volume_base=counts["volume_base"] + d["qty"],
        volume_quote=counts["volume_quote"] + d["quote"],
        last_price=d["price"],
    )
    w.put(stat_key(d["pair"]), counts)
    if d["epoch"] is not None:
        for member in (d["buyer"], d["seller"]):
            key = f"{volume_prefix(d['epoch'])}{member}"
            had = w.get(key) or {"quote": 0, "trades": 0}
            w.put(key, {"quote": had["quote"] + d["quote"], "trades": had["trades"] + 1})


def _close(w: Writer, d: Data, status: str) -> None:
    record = w.must(order_key(d["order_id"]))
    if record["status"] != OPEN:
        raise ValueError(f"order {d['order_id']} is {record['status']}: the event stream is inconsistent")
    w.delete(book_key(record["pair"], record["side"], record["price"], record["seq"]))
    _level(w, record, -record["remaining"], -1)
    record.update(status=status, hold_id=None, closed={k: d[k] for k in ("by", "tx_id", "height", "time")})
    w.put(order_key(d["order_id"]), record)


def _cancelled(w: Writer, d: Data) -> None:
    _close(w, d, "cancelled")


def _expired(w: Writer, d: Data) -> None:
    _close(w, d, "expired")


def _liquidity_paid(w: Writer, d: Data) -> None:
    for member, amount in d["payouts"]:
        credit(w, d["token"], member, total=amount)
    supply(w, d["token"], d["paid"])
    pool = w.must(q.POOL)["amount"] - d["paid"]
    if pool < 0 or d["paid"] > d["share"]:
        raise ValueError("the liquidity payout exceeds its share or the pool: the event stream is inconsistent")
    w.put(q.POOL, {"amount": pool})
    progress = w.must(q.EPOCH)
    w.put(q.EPOCH, {**progress, "paid": progress["paid"] + d["paid"]})
    key = q.epoch_paid_key(d["epoch"])
    record = w.must(key)
    record.update(
        paid=record["paid"] + d["paid"], liquidity_share=d["share"], liquidity_paid=d["paid"], traders=len(d["payouts"])
    )
    w.put(key, record)


MUTATORS: Final[dict[str, Callable[[Writer, Data], None]]] = {
    "PairListed": _listed,
    "OrderPlaced": _placed,
    "OrderFilled": _filled,
    "OrderCancelled": _cancelled,
    "OrderExpired": _expired,
    "LiquidityPaid": _liquidity_paid,
}
