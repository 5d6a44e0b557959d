"""One busy exchange block, as the orders benchmark (``bench/flows.py``) makes it: ``n`` resting
sells of one lot at one price, then one block of ``n`` buys that each fill one of them — run by
the trade service's own block execution over a SQLite state store (as a node runs it) or over
the in-memory ``DictState``. ``tests/trade/test_exchange_block.py`` checks its results; run as a
module it times and profiles the block (not a test: short, in process, no mesh)::

    .venv/bin/python -m tests.trade.exchange_block 200 500 1000 [--memory] [--naive] [--profile]

``--naive`` matches with the reader from before the hints (each level from its head), the
reference for "before". The SQLite store seeks (``scan_from``) and bounds each scan by its
prefix's end, in pages that start at 16 rows.

Why a block of fills matters: each fill deletes its maker's book entry in the block's overlay
while the store still holds it, so a reader that scanned each level from its head walked past
every maker filled earlier in the block (quadratic in the block's fills).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson

from tests.trade.helpers import Tx, block_of
from tests.trade.test_exchange import LOT, PAIR, PLACE, FlowChain, market
from traco.core.adapters.sqlite import SqliteStateStore
from traco.core.domain import StateView
from traco.core.ports import StateBatch
from traco.core.service_exec import ServiceBlockResult, execute_service_block
from traco.schemas.block import SealedBlock
from traco.services.trade import orderbook as ob
from traco.services.trade.exchange import state as xs

PRICE = 25


def sell(i: int) -> dict[str, Any]:
    return {"order_id": f"s{i}", "pair": PAIR, "side": "sell", "price": PRICE, "qty": LOT}


def buy(i: int) -> dict[str, Any]:
    return {"order_id": f"b{i}", "pair": PAIR, "side": "buy", "price": PRICE, "qty": LOT}


def resting_market(n: int, head: str | None = None) -> FlowChain:
    """The development market with ``n`` sells of bank-b resting at one price (one block).

    ``head``: first an exporter's sell at that price that matching passes over in the next
    block: ``"expiring"`` (it expires at that height), ``"frozen"`` (the exporter's TRC is
    frozen, so it could not be paid)."""
    chain = market()
    chain.ok(chain.cast.custodian, "trade.trc.mint", {"to": "importer", "amount": n * PRICE})
    if head is not None:
        expiry = {"expires_height": chain.height + 3} if head == "expiring" else {}
        chain.ok(chain.cast.exporter, PLACE, {**sell(-1), "order_id": "head", **expiry})
    txs: list[Tx] = [(chain.cast.bank_b, PLACE, sell(i)) for i in range(n)]
    if head == "frozen":
        txs.append((chain.cast.regulator, "trade.trc.freeze", {"account": "exporter", "reason": "court order"}))
    chain.block(txs)
    return chain


def buy_block(chain: FlowChain, n: int) -> SealedBlock:
    """The next height: the importer's ``n`` crossing buys."""
    txs = [chain.envelope(chain.cast.importer, PLACE, buy(i)) for i in range(n)]
    return block_of(chain.height + 1, chain.time + chain.tick, txs)


def execute(chain: FlowChain, block: SealedBlock, own: StateView) -> ServiceBlockResult:
    """``block`` executed over ``own`` (the chain's state, or a store holding it); the chain
    itself is not advanced, so the same block can run over several copies."""
    upstream = {"party": chain.party}
    return execute_service_block(chain.domain, block, own, upstream, chain.digest, rules=chain.rules)


def sqlite_copy(chain: FlowChain, path: Path) -> SqliteStateStore:
    """The chain's trade state in a fresh SQLite state store (committed as its first height: the
    execution reads only the state)."""
    store = SqliteStateStore(path)
    writes = dict(chain.state.scan(""))
    store.commit(StateBatch(1, writes, (), (), chain.digest))
    return store


def naive_resting(view: StateView, pair_id: str, side: ob.Side) -> Iterator[ob.Order]:
    """The book reader as it was before it kept hints: every level scanned from its head."""
    for level in xs.levels(view, pair_id, side):
        prefix = f"{xs.book_prefix(pair_id, side.value)}{ob.price_key(side, level['price'])}/"
        for _, raw in view.scan(prefix):
            e = orjson.loads(raw)
            yield ob.Order(e["order_id"], e["owner"], side, e["price"], e["remaining"], e["seq"], e["expires_height"])


@contextmanager
def naive_reader() -> Iterator[None]:
    """Match with ``naive_resting`` for the duration (the reference the tests compare with)."""
    kept = xs.resting
    xs.resting = naive_resting
    try:
        yield
    finally:
        xs.resting = kept


def fingerprint(result: ServiceBlockResult) -> str:
    """One hash of everything the block records: writes, receipts, events and the digest."""
    h = hashlib.sha256()
    for key in sorted(result.writes):
        h.update(key.encode() + b"\0" + (result.writes[key] or b"<deleted>") + b"\0")
    for receipt in result.receipts:
        h.update(receipt.model_dump_json().encode())
    for event in result.events:
        h.update(event.model_dump_json().encode())
    h.update(result.checkpoint.state_digest.encode())
    return h.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", type=int, nargs="*", default=[200, 500, 1000])
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of each block")
    parser.add_argument("--memory", action="store_true", help="also time the in-memory DictState")
    parser.add_argument("--naive", action="store_true", help="match with the reader from before (each level's head)")
    args = parser.parse_args()
    for n in args.sizes:
        chain = resting_market(n)
        block = buy_block(chain, n)
        reading = naive_reader() if args.naive else nullcontext()
        with tempfile.TemporaryDirectory(prefix="traco-xblock-") as tmp, reading:
            bases: list[tuple[str, StateView]] = [("sqlite", sqlite_copy(chain, Path(tmp) / "trade.db"))]
            if args.memory:
                bases.append(("memory", chain.state))
            for name, own in bases:
                profiler = cProfile.Profile() if args.profile else None
                start = time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                result = execute(chain, block, own)
                if profiler is not None:
                    profiler.disable()
                took = time.perf_counter() - start
                trades = sum(r.result.get("trades", 0) for r in result.receipts if r.accepted)
                reader = "naive" if args.naive else "hints"
                print(
                    f"{reader} {name:6} n={n:5}  {took * 1000:8.0f} ms  {took * 1000 / n:6.2f} ms/order"
                    f"  trades={trades}  fingerprint={fingerprint(result)[:16]}"
                )
                if profiler is not None:
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
