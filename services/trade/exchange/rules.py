"""The exchange's rules: limit orders on managed holds, matched by ``orderbook`` and settled in the
same transaction (the ECC seed's market; TRACO's liquidity).

Pairs. A pair is a token against the chain's TRC (``BASE/TRC``) with a lot, listed at genesis
(``trade.exchange.pairs``) or by the council (``service_param/trade/pair/<BASE>`` = ``{"lot"}``;
the first order on it records the listing, and the lot never changes afterwards, since every
resting quantity is a multiple of it). Quoting every pair in TRC keeps traded volume in one unit,
which is what Coco's liquidity share is divided by. ``UNKNOWN_PAIR`` otherwise, or while the base
token is not defined (ECC/TRC before ``trade.equity.define``).

Placing (``trade.order.place``), checks in this order, each naming every problem it finds:
the payload's (pair, price, quantity, lot, order id, expiry), then whether the sender may receive
what the order buys (the token's holder eligibility: ECC only to qualified investors), then funds
for the whole reservation (``FROZEN``, ``INSUFFICIENT_FUNDS``, ``HELD``, ``LOCKED_UNTIL``), then
matching (``SELF_MATCH``: see ``orderbook`` rule 6). The reservation is ``qty`` base for a sell and
``qty // lot · price`` TRC for a buy (the limit).

Settlement of one fill (all in the placing transaction's events, applied in order):

1. the maker's hold is executed for what the maker gives (base, or ``lots · maker price`` TRC)
   to ``service:trade`` and the rest of it returns to the maker at once;
2. ``service:trade`` transfers that to the taker, and the taker transfers its side to the maker
   straight from its available balance (checked above against the whole reservation);
3. what is left of the maker is held anew (``exchange:<id>:<n+1>``, same expiry): exactly
   ``left // lot · price`` or ``left``, so an open order's hold is always its reservation;
4. ``OrderFilled`` records the trade, the maker's order and both members' volume in the Coco
   epoch of the block's time.

The taker never holds what fills at once: after matching, what is left of it (if anything) is
held as ``exchange:<id>:0`` and rests; a buying taker filled below its limit therefore keeps the
difference at once (never reserved). Orders without ``expires_height`` live
``ORDER_LIFETIME_HEIGHTS`` heights (a hold always has an expiry); when the hold expires, the
hold-expiry clause returns the reservation and the order leaves the book (``flow.on_expiry``).

Makers who can no longer settle are skipped, not filled: an order is skipped while its owner is
frozen in either token or may no longer receive what it would get (KYC lapsed, or no longer a
qualified investor) — a token must never reach a holder its class does not admit. Such an order
stays on the book until its owner cancels it or it expires.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Final

from traco.core import holds
from traco.core.domain import Accepted, Event, Outcome, Rejected, StateView
from traco.core.holds import Hold
from traco.services.trade import orderbook as ob
from traco.services.trade import queries as q
from traco.services.trade.codes import SERVICE, Code, reject
from traco.services.trade.exchange import payloads as p
from traco.services.trade.exchange import state as s
from traco.services.trade.flow import AUTHORITY, Rule, close_managed, hold_managed
from traco.services.trade.ledger import Context, can_receive, can_spend, token_and_class

ORDER_LIFETIME_HEIGHTS: Final = 1_000_000
"""How long an order without ``expires_height`` may rest (its hold needs an expiry)."""


class ExchangeCode(StrEnum):
    UNKNOWN_PAIR = "UNKNOWN_PAIR"
    """Not a listed pair, or its base token is not defined yet."""
    INVALID_PRICE = "INVALID_PRICE"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    LOT_SIZE = "LOT_SIZE"
    """The quantity is not a multiple of the pair's lot."""
    SELF_MATCH = "SELF_MATCH"
    """The order would trade with a resting order of its own owner."""
    ORDER_EXISTS = "ORDER_EXISTS"
    """An order with this id exists or existed; order ids are never reused."""
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    NOT_ORDER_OWNER = "NOT_ORDER_OWNER"
    ORDER_CLOSED = "ORDER_CLOSED"
    """The order is filled, cancelled or expired (or expires in this block)."""


def council_pair(ctx: Context, base: str) -> dict[str, Any] | None:
    """The council's listing of ``base`` against TRC, if it set a usable one."""
    raw = ctx.party.service_param(ctx.members, SERVICE, f"pair/{base}")
    lot = raw.get("lot") if isinstance(raw, dict) else None
    return {"lot": lot} if isinstance(lot, int) and not isinstance(lot, bool) and 1 <= lot <= ob.MAX_PRICE else None


TokenClasses = dict[str, tuple[dict[str, Any], dict[str, Any]]]
"""A pair's two tokens: each token's record and its asset class's, as ``token_and_class`` reads them."""


def find_pair(
    ctx: Context, pair_id: str
) -> tuple[dict[str, Any], tuple[Event, ...], TokenClasses] | tuple[None, str, None]:
    """The pair's record, the ``PairListed`` event to emit if this is its first use (council
    pairs) and its two tokens' records and classes (read here once, used by the whole order),
    or ``(None, why not, None)``."""
    base, quote = pair_id.split("/")
    record = s.pair(ctx.state, pair_id)
    events: tuple[Event, ...] = ()
    if record is None:
        trc = q.params(ctx.state, "trc")
        listed = council_pair(ctx, base)
        if listed is None or trc is None or quote != trc["token"] or base == quote:
            return None, f"{pair_id} is not a listed pair", None
        record = {"pair": pair_id, "base": base, "quote": quote, "lot": listed["lot"]}
        events = (ctx.event("PairListed", f"pair:{pair_id}", **record),)
    classes: TokenClasses = {}
    for token in (base, quote):
        found = token_and_class(ctx.state, token)
        if isinstance(found, Rejected):
            return None, f"{pair_id}: token {token} is not defined", None
        if not (found[1]["transferable"] and found[1]["holdable"]):
            return None, f"{pair_id}: {token} ({found[1]['name']}) cannot be held and transferred", None
        classes[token] = found
    return record, events, classes


def epoch_of(state: StateView, time: int) -> int | None:
    """The Coco epoch a trade at block time ``time`` counts in (``None``: no Coco, or before it)."""
    params = q.params(state, "coco")
    if params is None or time < int(params["start_time"]):
        return None
    return (time - int(params["start_time"])) // int(params["epoch_ms"])


class _StateBook:
    """The matcher's view of one pair's book in the state, skipping makers who cannot settle."""

    def __init__(self, ctx: Context, pair: dict[str, Any], classes: TokenClasses) -> None:
        self.ctx, self.pair, self.classes = ctx, pair, classes
        self.seen: dict[tuple[str, str], bool] = {}

    def can_settle(self, order: ob.Order) -> bool:
        gets = self.pair["base"] if order.side is ob.Side.BUY else self.pair["quote"]
        if (order.owner, gets) not in self.seen:
            found = self.classes[gets]
            frozen = any(q.frozen(self.ctx.state, t, order.owner) for t in (self.pair["base"], self.pair["quote"]))
            ok = not frozen and can_receive(self.ctx, found[1], gets, order.owner) is None
            self.seen[(order.owner, gets)] = ok
        return self.seen[(order.owner, gets)]

    def resting(self, side: ob.Side) -> Iterator[ob.Order]:
        for order in s.resting(self.ctx.state, self.pair["pair"], side):
            if self.can_settle(order):
                yield order


def _transfer(ctx: Context, token: str, sender: str, to: str, amount: int, memo: str) -> Event:
    moved = {"token": token, "from": sender, "to": to, "amount": amount, "memo": memo}
    return ctx.event("Transferred", f"token:{token}", **moved)


def _rehold(ctx: Context, old: Hold, order_id: str, n: int, amount: int) -> Event:
    """What is left of a partly filled maker, held anew under the same terms."""
    made = holds.create(
        hold_id=s.hold_id(order_id, n),
        owner=old.owner,
        beneficiary=old.beneficiary,
        notary=old.notary,
        asset=old.asset,
        amount=amount,
        expires_height=old.expires_height,
        expires_time=old.expires_time,
        height=ctx.tx.height,
        time=ctx.tx.time,
        available=amount,  # returned to the owner by the execution just before
        id_used=False,
    )
    assert isinstance(made, Hold), made
    return ctx.event("HoldCreated", f"hold:{made.hold_id}", hold=made.to_json())


def _settle(ctx: Context, pair: dict[str, Any], fill: ob.Fill, maker: ob.Order, seq: int) -> list[Event] | Rejected:
    record = s.order(ctx.state, fill.maker_id)
    hold = None if record is None else q.hold(ctx.state, record["hold_id"])
    if record is None or hold is None:
        raise LookupError(f"resting order {fill.maker_id} has no open hold: the exchange state is inconsistent")
    base, quote, lot = pair["base"], pair["quote"], pair["lot"]
    sells = maker.side is ob.Side.SELL
    gives, give = (base, fill.qty) if sells else (quote, fill.quote)
    gets, get = (quote, fill.quote) if sells else (base, fill.qty)
    stamp = {**ctx.stamp, "by": ctx.sender}
    closed = close_managed(hold, give, ctx.tx.height, ctx.tx.time, stamp)
    if isinstance(closed, Rejected):
        return closed
    memo = f"{pair['pair']} trade {seq}: {fill.maker_id} x {fill.taker_id}"
    taker = fill.buyer if sells else fill.seller
    events = [
        closed,
        _transfer(ctx, gives, AUTHORITY, taker, give, memo),
        _transfer(ctx, gets, taker, maker.owner, get, memo),
    ]
    new_hold = None
    if fill.maker_left:
        left = ob.reservation(maker.side, maker.price, fill.maker_left, lot)
        if left != hold.amount - give:
            raise ValueError(f"order {fill.maker_id}'s hold {hold.amount} is not its reservation")
        events.append(_rehold(ctx, hold, fill.maker_id, record["holds"], left))
        new_hold = s.hold_id(fill.maker_id, record["holds"])
    trade = {
        "pair": pair["pair"],
        "trade_seq": seq,
        "maker_id": fill.maker_id,
        "taker_id": fill.taker_id,
        "buyer": fill.buyer,
        "seller": fill.seller,
        "price": fill.price,
        "qty": fill.qty,
        "quote": fill.quote,
        "maker_left": fill.maker_left,
        "maker_hold": new_hold,
        "epoch": epoch_of(ctx.state, ctx.tx.time),
    }
    events.append(ctx.event("OrderFilled", f"order:{fill.maker_id}", **trade))
    return events


def place(ctx: Context, o: p.OrderPlace) -> Outcome:
    pair, listing, classes = find_pair(ctx, o.pair)
    problems: list[tuple[str, str]] = []
    if pair is None:
        problems.append((ExchangeCode.UNKNOWN_PAIR, str(listing)))
    lot = 1 if pair is None else int(pair["lot"])
    problems.extend((code.value, why) for code, why in ob.problems(o.price, o.qty, lot))
    if s.order(ctx.state, o.order_id) is not None:
        problems.append((ExchangeCode.ORDER_EXISTS, f"an order {o.order_id} exists or existed; ids are never reused"))
    if o.expires_height is not None and o.expires_height <= ctx.tx.height:
        why = f"expiry height {o.expires_height} must be after the current height {ctx.tx.height}"
        problems.append((Code.INVALID_EXPIRY, why))
    if problems:
        return reject(problems[0][0], "; ".join(why for _, why in problems))
    assert pair is not None and isinstance(listing, tuple) and classes is not None
    side = ob.Side(o.side)
    gets, gives = (pair["base"], pair["quote"]) if side is ob.Side.BUY else (pair["quote"], pair["base"])
    reserve = ob.reservation(side, o.price, o.qty, lot)
    refused = can_receive(ctx, classes[gets][1], gets, ctx.sender) or can_spend(ctx, gives, ctx.sender, reserve)
    if refused is not None:
        return refused
    counts = s.stat(ctx.state, o.pair)
    expires = o.expires_height if o.expires_height is not None else ctx.tx.height + ORDER_LIFETIME_HEIGHTS
    taker = ob.Order(o.order_id, ctx.sender, side, o.price, o.qty, counts["orders"] + 1, expires)
    done = ob.match(_StateBook(ctx, pair, classes), taker, lot, ctx.tx.height)
    if isinstance(done, Rejected):
        return reject(done.code, done.message)
    events: list[Event] = list(listing)
    for i, (fill, maker) in enumerate(zip(done.fills, done.makers, strict=True)):
        settled = _settle(ctx, pair, fill, maker, counts["trades"] + i)
        if isinstance(settled, Rejected):
            return settled
        events.extend(settled)
    hold = None
    if done.rests:
        amount = ob.reservation(side, o.price, done.taker.qty, lot)
        made = hold_managed(ctx, s.hold_id(o.order_id, 0), gives, AUTHORITY, amount, expires_height=expires)
        if isinstance(made, Rejected):
            return made
        events.append(made)
        hold = s.hold_id(o.order_id, 0)
    record = {
        "order_id": o.order_id,
        "owner": ctx.sender,
        "pair": o.pair,
        "side": o.side,
        "price": o.price,
        "qty": o.qty,
        "remaining": done.taker.qty,
        "filled": done.filled,
        "quote": sum(f.quote for f in done.fills),
        "seq": taker.seq,
        "expires_height": expires,
        "hold_id": hold,
        "holds": 1 if hold else 0,
        "status": s.OPEN if done.rests else "filled",
        "placed": ctx.stamp,
        "closed": None if done.rests else {**ctx.stamp, "by": ctx.sender},
    }
    events.append(ctx.event("OrderPlaced", f"order:{o.order_id}", order=record))
    result = {k: record[k] for k in ("order_id", "pair", "seq", "filled", "remaining", "status")}
    return Accepted(tuple(events), {**result, "trades": len(done.fills), "quote": record["quote"]})


def cancel(ctx: Context, c: p.OrderCancel) -> Outcome:
    record = s.order(ctx.state, c.order_id)
    if record is None:
        return reject(ExchangeCode.UNKNOWN_ORDER, f"there is no order {c.order_id}")
    if record["owner"] != ctx.sender:
        return reject(ExchangeCode.NOT_ORDER_OWNER, f"order {c.order_id} is {record['owner']}'s, not {ctx.sender}'s")
    if record["status"] != s.OPEN:
        return reject(ExchangeCode.ORDER_CLOSED, f"order {c.order_id} is already {record['status']}")
    hold = q.hold(ctx.state, record["hold_id"])
    if hold is None:
        raise LookupError(f"open order {c.order_id} has no hold: the exchange state is inconsistent")
    released = close_managed(hold, 0, ctx.tx.height, ctx.tx.time, {**ctx.stamp, "by": ctx.sender})
    if isinstance(released, Rejected):
        why = f"order {c.order_id} expired at height {hold.expires_height}; its hold returns at the end of this block"
        return reject(ExchangeCode.ORDER_CLOSED, why)
    event = ctx.event("OrderCancelled", f"order:{c.order_id}", order_id=c.order_id)
    return Accepted((released, event), {"order_id": c.order_id, "released": hold.amount, "token": hold.asset})


RULES: Final[dict[str, Rule]] = {p.PLACE: place, p.CANCEL: cancel}
