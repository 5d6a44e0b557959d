"""What ``GET /markets/{pair}`` and ``traco market PAIR`` show of a pair: the book by price level,
the last trades and the volume. Pure reads of the exchange's records (``state``)."""

from __future__ import annotations

from itertools import islice
from typing import Any

from traco.core.domain import StateView
from traco.services.trade import orderbook as ob
from traco.services.trade.exchange import state as s


def normal_pair(pair: str) -> str:
    """``COCO/TRC`` also written ``COCO-TRC`` (a pair in a URL path segment or a shell word)."""
    return pair.replace("-", "/", 1) if "/" not in pair else pair


def market_view(state: StateView, pair_id: str, depth: int, last: int) -> dict[str, Any] | None:
    """The pair's lot, its best ``depth`` price levels per side (``price``, ``qty``: base minor
    units resting there, ``orders``), its last ``last`` trades (newest first) and its totals;
    ``None`` if no such pair is listed."""
    pair = s.pair(state, pair_id)
    if pair is None:
        return None
    sides = {
        "bids" if side is ob.Side.BUY else "asks": list(islice(s.levels(state, pair_id, side), depth))
        for side in ob.Side
    }
    counts = s.stat(state, pair_id)
    return {
        "pair": pair_id,
        "base": pair["base"],
        "quote": pair["quote"],
        "lot": pair["lot"],
        **sides,
        "trades": s.trades(state, pair_id, last),
        "volume": {"trades": counts["trades"], "base": counts["volume_base"], "quote": counts["volume_quote"]},
        "last_price": counts["last_price"],
        "orders_placed": counts["orders"],
    }
