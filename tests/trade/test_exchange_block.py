"""A busy exchange block gives the same results whether the book is read from each level's head
(as it was) or from where the level's live orders begin (``DictState.hints``), over the
in-memory state, the SQLite store as a node has it, and a store that can seek — and the reads
of the book's entries grow linearly with the block's fills instead of quadratically.

``tests/trade/exchange_block.py`` builds the blocks (and times them when run as a module)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.trade.exchange_block import (
    buy_block,
    execute,
    fingerprint,
    naive_reader,
    resting_market,
    sqlite_copy,
)
from tests.trade.helpers import Actor, Tx, block_of
from tests.trade.test_exchange import CANCEL, LOT, PLACE, FlowChain, market
from traco.core.domain import DictState, Event, StateView
from traco.schemas.block import SealedBlock
from traco.services.trade import mutations
from traco.services.trade.exchange import state as xs
from traco.services.trade.orderbook import Side

BEFORE_HINTS_200 = "ae0bfff5333c55e82a0640a12a90834b282434aecafbe39a2fbf01d10676f504"
"""``fingerprint`` of the 200-buy block, computed by the code before the hints (commit 9ad7035)."""


def test_a_block_of_200_fills_records_what_it_recorded_before_the_hints(tmp_path: Path) -> None:
    chain = resting_market(200)
    block = buy_block(chain, 200)
    on_disk = execute(chain, block, sqlite_copy(chain, tmp_path / "trade.db"))
    in_memory = execute(chain, block, chain.state)
    assert fingerprint(on_disk) == fingerprint(in_memory) == BEFORE_HINTS_200
    assert [r.result["trades"] for r in on_disk.receipts] == [1] * 200
    assert list(xs.resting(DictState(on_disk.writes, base=chain.state), "COCO/TRC", Side.SELL)) == []


# --------------------------------------------------------------------------- a mixed block


TRADERS = ("exporter", "importer", "bank-a", "investor", "investor-2")


def actor(chain: FlowChain, name: str) -> Actor:
    return next(a for a in vars(chain.cast).values() if isinstance(a, Actor) and a.name == name)


def place(oid: str, side: str, price: int, lots: int, **more: Any) -> dict[str, Any]:
    return {"order_id": oid, "pair": "COCO/TRC", "side": side, "price": price, "qty": lots * LOT, **more}


def mixed_market(seed: int) -> tuple[FlowChain, list[Tx]]:
    """A book of several levels on both sides (some orders expiring exactly at the next height,
    so matching skips them), and the next block: crossing and resting orders of random sizes
    and prices from random members, cancels of orders resting before or placed in it, and
    members frozen and unfrozen (their orders skipped, then filled again)."""
    rng = random.Random(seed)
    chain = market()
    ids: list[str] = []
    for round_ in range(2):
        txs: list[Tx] = []
        for i in range(40):
            side = rng.choice(("buy", "sell"))
            price = rng.randint(101, 106) if side == "sell" else rng.randint(95, 100)
            expiry = {"expires_height": chain.height + 3} if rng.random() < 0.15 and round_ == 1 else {}
            oid = f"r{round_}-{i}"
            txs.append((actor(chain, rng.choice(TRADERS)), PLACE, place(oid, side, price, rng.randint(1, 3), **expiry)))
            ids.append(oid)
        chain.block(txs)
    chain.block()  # the orders of the second round with an expiry expire at the next height
    block: list[Tx] = []
    for i in range(120):
        who = actor(chain, rng.choice(TRADERS))
        if rng.random() < 0.15:
            block.append((who, CANCEL, {"order_id": rng.choice(ids)}))
            continue
        if rng.random() < 0.06:  # a maker frozen, then free again, in the same block
            kind = rng.choice(("trade.trc.freeze", "trade.trc.unfreeze"))
            block.append((chain.cast.regulator, kind, {"account": who.name, "reason": "court order"}))
            continue
        side = rng.choice(("buy", "sell"))
        price = rng.randint(99, 108) if side == "buy" else rng.randint(93, 102)
        oid = f"m{i}"
        block.append((who, PLACE, place(oid, side, price, rng.randint(1, 4))))
        ids.append(oid)
    return chain, block


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_mixed_block_gives_the_naive_readers_results_over_every_kind_of_state(seed: int, tmp_path: Path) -> None:
    chain, txs = mixed_market(seed)
    block = block_of(chain.height + 1, chain.time + chain.tick, [chain.envelope(*tx) for tx in txs])
    with naive_reader():
        reference = execute(chain, block, chain.state)
    codes = {r.code for r in reference.receipts}
    trades = sum(r.result.get("trades", 0) for r in reference.receipts if r.accepted)
    assert trades > 30 and {"OK", "SELF_MATCH", "FROZEN"} <= codes, (trades, codes)
    expired = [e for e in reference.events if e.type == "OrderExpired"]
    assert expired, "some makers expire at this height: matching skipped them"
    runs = {
        "memory": execute(chain, block, chain.state),
        "memory again": execute(chain, block, chain.state),  # no hint outlives its block
        "sqlite": execute(chain, block, sqlite_copy(chain, tmp_path / "plain.db")),
    }
    assert {name: fingerprint(run) for name, run in runs.items()} == dict.fromkeys(runs, fingerprint(reference))
    assert chain.state.hints == {}, "the hints live in the block's overlay, not in the state under it"


# --------------------------------------------------------------------------- linear reads


class CountingState(DictState):
    """A seeking base that counts the book entries it hands out."""

    def __init__(self, data: dict[str, bytes | None]) -> None:
        super().__init__(data)
        self.book_reads = 0

    def scan_from(self, prefix: str, start: str) -> Iterator[tuple[str, bytes]]:
        for key, value in super().scan_from(prefix, start):
            self.book_reads += key.startswith("xbook/")
            yield key, value


def book_reads(chain: FlowChain, block: SealedBlock) -> tuple[int, str]:
    """The book entries ``block`` reads from the state under its overlay, and its fingerprint."""
    base = CountingState(dict(chain.state.scan("")))
    result = execute(chain, block, base)
    assert [r.result["trades"] for r in result.receipts if r.kind == PLACE] == [1] * len(block.txs)
    assert all(e.data["maker_id"] != "head" for e in result.events if e.type == "OrderFilled")
    return base.book_reads, fingerprint(result)


@pytest.mark.parametrize("head", [None, "expiring", "frozen"])
def test_the_book_entries_a_block_reads_grow_with_its_fills_not_their_square(head: str | None) -> None:
    """Also with a maker at the head of the level that every taker passes over."""
    chains = [resting_market(n, head) for n in (100, 300)]
    blocks = [buy_block(chain, n) for chain, n in zip(chains, (100, 300), strict=True)]
    reads = [book_reads(chain, block) for chain, block in zip(chains, blocks, strict=True)]
    with naive_reader():
        naive = [book_reads(chain, block) for chain, block in zip(chains, blocks, strict=True)]
    assert reads[1][0] <= 4 * 300 and reads[1][0] <= 3.5 * reads[0][0], reads
    assert naive[1][0] >= 300 * 299 // 2 and naive[1][0] >= 8 * naive[0][0], naive  # the bug this guards against
    assert [fp for _, fp in reads] == [fp for _, fp in naive], "and the same results"


def test_a_view_that_keeps_no_hints_is_read_from_each_levels_head(tmp_path: Path) -> None:
    chain = resting_market(5)
    store: StateView = sqlite_copy(chain, tmp_path / "trade.db")
    assert [o.order_id for o in xs.resting(store, "COCO/TRC", Side.SELL)] == [f"s{i}" for i in range(5)]


def test_an_order_placed_with_a_seq_not_after_the_pairs_last_is_an_inconsistent_stream() -> None:
    """What the hints rely on — a new entry never sorts between two existing ones — is checked
    where the book changes, not assumed."""
    chain = resting_market(2)
    record = xs.order(chain.state, "s0")
    assert record is not None and record["seq"] == 1
    # as the rules write it (every field of the event's schema), only the seq out of order
    envelope = {"tx_id": "ab" * 32, "height": 9, "time": 1_700_000_000_000, "by": "trader"}
    again = Event("OrderPlaced", "order:late", {**envelope, "order": {**record, "order_id": "late"}})
    with pytest.raises(ValueError, match="late's seq 1 is not after the pair's last, 2"):
        mutations.mutate(chain.state, again)
    assert mutations.mutate(
        chain.state, Event("OrderPlaced", "order:next", {**envelope, "order": {**record, "order_id": "n", "seq": 3}})
    )
