"""Coco's liquidity share, paid by traded volume (``coco`` rule 4; architecture: The code (trade)).

When the clause pays Coco epoch ``n``, the part of its amount that is not the holders' share
(70% by default) goes to the members who traded in that epoch, pro rata to their volume: each
member's volume is the TRC (quote minor units) of every trade it was either side of, during block
times in the epoch (``xvol/<n>/<member>``, recorded by ``OrderFilled``).

Rounding: member ``m`` is paid ``share · volume_m // Σ volume`` (integer division, rounded down);
the remainders, and the whole share of an epoch in which nobody traded, stay in the pool. So
Σ paid ≤ share, and Coco's supply + pool stays the fixed total.

Why volume and not transfers: a transfer back and forth costs nothing, while a trade needs a
counterparty on the book (a member cannot trade with itself: ``SELF_MATCH``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traco.core.domain import Event, StateView
from traco.services.trade.codes import SERVICE
from traco.services.trade.exchange import state as s


def payouts(share: int, volumes: list[tuple[str, int]]) -> list[list[Any]]:
    """``[member, share · volume // Σ volume]`` for each member paid something, in member order."""
    whole = sum(v for _, v in volumes)
    if share <= 0 or whole == 0:
        return []
    return [[m, share * v // whole] for m, v in volumes if share * v // whole > 0]


def liquidity_event(state: StateView, params: Mapping[str, Any], epoch_paid: Mapping[str, Any]) -> Event | None:
    """The ``LiquidityPaid`` event that follows ``CocoEpochPaid`` (its ``data``), or ``None``
    when nobody traded in that epoch (then the share simply stays in the pool)."""
    n = int(epoch_paid["epoch"])
    share = int(epoch_paid["amount"]) - int(epoch_paid["holders_share"])
    volumes = [(m, v) for m, v in s.volumes(state, n) if not m.startswith("service:")]
    if not volumes:
        return None
    paid = payouts(share, volumes)
    data = {
        "epoch": n,
        "token": params["token"],
        "share": share,
        "payouts": paid,
        "paid": sum(int(a) for _, a in paid),
        "by": f"service:{SERVICE}",
        "tx_id": None,
        "height": epoch_paid["height"],
        "time": epoch_paid["time"],
    }
    return Event("LiquidityPaid", f"coco:epoch:{n}", data)
