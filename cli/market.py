"""``traco order place|cancel`` and ``traco market PAIR``: the exchange from the command line.

A pair is ``BASE/TRC`` (``COCO-TRC`` works too); ``price`` is TRC minor units per lot of base and
``qty`` is base minor units, a multiple of the pair's lot (``traco market`` shows it). A refused
order prints its receipt code (``LOT_SIZE``, ``SELF_MATCH``, ``INSUFFICIENT_FUNDS`` …) and exits 1;
every problem of the input is named at once, before anything is signed.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

import typer

from traco.cli.common import ApiOpt, DataDirOpt, JsonOpt, KeyOpt, fetch, out, print_json, service_client
from traco.cli.submit import TradeApiOpt, submit

order_app = typer.Typer(no_args_is_help=True, help="Limit orders on the exchange: place and cancel")

PairArg = Annotated[str, typer.Argument(help="BASE/TRC, e.g. COCO/TRC or ECC/TRC (COCO-TRC works too)")]


def _pair(pair: str) -> str:
    return pair.replace("-", "/", 1) if "/" not in pair else pair


@order_app.command("place")
def place(
    pair: PairArg,
    side: Annotated[Literal["buy", "sell"], typer.Argument(help="buy or sell the base token")],
    price: Annotated[int, typer.Argument(help="limit: TRC minor units per lot of base")],
    qty: Annotated[int, typer.Argument(help="base minor units, a multiple of the pair's lot")],
    order_id: Annotated[str | None, typer.Option("--id", help="your id for the order [default: random]")] = None,
    expires_height: Annotated[int | None, typer.Option("--expires-height", help="off the book at this height")] = None,
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Place a limit order: what crosses the book fills at once at the resting orders' prices,
    the rest rests on its hold until filled, cancelled or expired."""
    payload = {
        "order_id": order_id or f"o-{secrets.token_hex(6)}",
        "pair": _pair(pair),
        "side": side,
        "price": price,
        "qty": qty,
        "expires_height": expires_height,
    }
    found = [f"{name}: must be positive, not {value}" for name, value in (("price", price), ("qty", qty)) if value <= 0]
    submit("trade.order.place", payload, key, data_dir, api, found, skip=("price", "qty"))


@order_app.command("cancel")
def cancel(
    order_id: Annotated[str, typer.Argument(help="the order's id")],
    key: KeyOpt = None,
    data_dir: DataDirOpt = None,
    api: ApiOpt = None,
) -> None:
    """Cancel an open order of yours: what it still holds returns to you."""
    submit("trade.order.cancel", {"order_id": order_id}, key, data_dir, api)


def market(
    pair: PairArg,
    depth: Annotated[int, typer.Option("--depth", min=1, max=500, help="price levels per side")] = 10,
    trades: Annotated[int, typer.Option("--trades", min=1, max=100, help="last trades shown")] = 10,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    trade_api: TradeApiOpt = None,
) -> None:
    """A pair's book by price level, its last trades and its volume."""
    path = f"/markets/{_pair(pair)}?depth={depth}&trades={trades}"
    answer = fetch(service_client(data_dir, "trade", trade_api), path, f"no pair {pair} is listed")
    if as_json:
        print_json(answer, True)
        return
    _show(answer)


def _show(m: dict[str, Any]) -> None:
    base, quote = m["base"], m["quote"]
    volume = m["volume"]
    out.print(f"{m['pair']}  lot {m['lot']} {base} minor units  (as of height {m['as_of_height']})")
    last = "none" if m["last_price"] is None else f"{m['last_price']} {quote} per lot"
    out.print(f"  last price {last}; {volume['trades']} trades, {volume['base']} {base}, {volume['quote']} {quote}")
    for title, levels in (("asks", reversed(m["asks"])), ("bids", m["bids"])):
        out.print(f"  {title}")
        shown = list(levels)
        if not shown:
            out.print("    none")
        for level in shown:
            count = "order" if level["orders"] == 1 else "orders"
            out.print(f"    {level['price']:>12}  {level['qty']:>16} {base}  ({level['orders']} {count})")
    out.print("  last trades")
    if not m["trades"]:
        out.print("    none")
    for t in m["trades"]:
        who = f"{t['seller']} -> {t['buyer']}"
        out.print(f"    #{t['trade_seq']:<5} {t['price']:>12} x {t['qty']:<12} {who}  (height {t['height']})")


def register(app: typer.Typer) -> None:
    """Add ``traco order …`` and ``traco market`` to ``traco``."""
    app.add_typer(order_app, name="order")
    app.command(name="market")(market)
