"""Coco's emission: the incentive pool paid out per epoch by a clause (architecture: The code (trade)).

Rules, each implemented below and checked by ``tests/trade/test_coco.py``:

1. Fixed supply. ``COCO_UNITS * 10**decimals`` minor units exist from genesis and never more:
   at every height Σ balances (held included) + pool = total. Nothing here mints; an epoch
   moves Coco from the pool to holders.
2. Epochs. Epoch ``n`` covers block time ``[start + n·epoch_ms, start + (n+1)·epoch_ms)``; it is
   paid by the clause of the first block whose time is at or after its end (at most
   ``max_epochs_per_block`` epochs per block after a long pause, the rest in the next blocks).
3. Halving. The epoch amount is ``base >> k`` where ``k`` is the number of whole halving periods
   (two years of block time by default) before the epoch's start, and
   ``base = pool_initial // (2 · E)`` with ``E`` the most epochs that start in one period
   (``ceil(halving_ms / epoch_ms)``), so the amounts over all time sum to at most the initial
   pool (a geometric series of ratio 1/2).
4. Split. ``holders_bp`` (30%) of the epoch amount goes to holders pro rata to their balances
   (total, held included: a held amount is still its owner's) at the paying block, each
   ``share · balance // Σ balances``; the remainders of that integer division stay in the pool.
   The liquidity share (the rest, 70%) goes to the members who traded on the exchange during the
   epoch, pro rata to their traded volume (``exchange.liquidity``: ``share · volume // Σ volume``;
   remainders, and the whole share of an epoch without trades, stay in the pool), as a
   ``LiquidityPaid`` event in the same clause effect. Transfer volume would not do: sending tokens
   back and forth costs nothing.
5. The pool never goes negative: an epoch pays at most what the pool holds.

``schedule(params, epochs)`` is the plan (what ``traco coco schedule`` prints beside what was
paid, ``queries.epoch_paid``); it does not depend on balances, only on the parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traco.core.domain import BlockContext, ClauseEffect, Event, StateView
from traco.services.trade import queries as q
from traco.services.trade.codes import CLAUSE_COCO_EPOCH, SERVICE
from traco.services.trade.exchange.liquidity import liquidity_event

BASIS_POINTS = 10_000


def epochs_per_halving(params: Mapping[str, Any]) -> int:
    """The most epochs that start within one halving period (rounded up, so that rule 3's sum
    stays within the pool when the period is not a whole number of epochs)."""
    return -(-int(params["halving_ms"]) // int(params["epoch_ms"]))


def base_amount(params: Mapping[str, Any]) -> int:
    return int(params["pool_initial"]) // (2 * epochs_per_halving(params))


def epoch_start(params: Mapping[str, Any], n: int) -> int:
    return int(params["start_time"]) + n * int(params["epoch_ms"])


def epoch_amount(params: Mapping[str, Any], n: int) -> int:
    """The amount planned for epoch ``n`` (before the holders/liquidity split)."""
    halvings = (n * int(params["epoch_ms"])) // int(params["halving_ms"])
    return base_amount(params) >> halvings


def schedule(params: Mapping[str, Any], epochs: int) -> list[dict[str, int]]:
    """The first ``epochs`` epochs as planned: start, end, amount, holders' and liquidity share."""
    out = []
    for n in range(epochs):
        amount = epoch_amount(params, n)
        holders = amount * int(params["holders_bp"]) // BASIS_POINTS
        out.append(
            {
                "epoch": n,
                "start": epoch_start(params, n),
                "end": epoch_start(params, n + 1),
                "amount": amount,
                "holders_share": holders,
                "liquidity_share": amount - holders,
            }
        )
    return out


def pay_epoch(state: StateView, params: Mapping[str, Any], n: int, height: int, time: int) -> Event:
    """The ``CocoEpochPaid`` event of epoch ``n`` against the current balances and pool."""
    pool = q.pool(state)
    amount = min(epoch_amount(params, n), pool)
    share = amount * int(params["holders_bp"]) // BASIS_POINTS
    balances = [
        (account, bal["total"])
        for account, bal in q.holders(state, params["token"])
        if bal["total"] > 0 and not account.startswith("service:")
    ]
    whole = sum(total for _, total in balances)
    shares = [] if whole == 0 else [(a, share * total // whole) for a, total in balances]
    payouts: list[list[Any]] = [[a, part] for a, part in shares if part > 0]
    paid = sum(int(part) for _, part in payouts)
    data = {
        "epoch": n,
        "amount": amount,
        "holders_share": share,
        "payouts": payouts,
        "paid": paid,
        "by": f"service:{SERVICE}",
        "tx_id": None,
        "height": height,
        "time": time,
    }
    return Event("CocoEpochPaid", f"coco:epoch:{n}", data)


def due_epochs(state: StateView, block: BlockContext) -> list[int]:
    """The epochs whose end has passed at this block and which are not yet paid (capped)."""
    params = q.params(state, "coco")
    if params is None:
        return []
    first = q.epoch(state)["next"]
    due: list[int] = []
    n = first
    while len(due) < int(params["max_epochs_per_block"]) and epoch_start(params, n + 1) <= block.time:
        due.append(n)
        n += 1
    return due


def epoch_effect(state: StateView, block: BlockContext, n: int) -> ClauseEffect:
    """Epoch ``n``'s holders' payout, then its liquidity payout by traded volume (if anyone traded)."""
    params = q.params(state, "coco")
    assert params is not None
    paid = pay_epoch(state, params, n, block.height, block.time)
    liquidity = liquidity_event(state, params, paid.data)
    return ClauseEffect(CLAUSE_COCO_EPOCH, str(n), (paid,) if liquidity is None else (paid, liquidity))
