"""The exchange on the development chain's real runtimes (``init_chain``: party, doc and trade,
COCO/TRC listed by its genesis): custodians mint TRC, bank-a (Coco's issuance holder) offers
COCO, the importer buys across it; then the trade API served by uvicorn answers
``GET /markets/{pair}`` and ``traco market`` reads it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from tests.cli.conftest import _Server
from tests.consensus.servicechain import ServiceChain
from tests.trade.test_abs_served import ok
from traco.cli.main import app as cli
from traco.services.trade import queries as q
from traco.services.trade import views
from traco.services.trade.api import router as trade_router

LOT = 10_000  # one COCO


def order(oid: str, side: str, price: int, lots: int) -> dict[str, object]:
    return {"order_id": oid, "pair": "COCO/TRC", "side": side, "price": price, "qty": lots * LOT}


@pytest.fixture(scope="module")
def market_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceChain, Path]]:
    data_dir = tmp_path_factory.mktemp("exchange")
    chain = ServiceChain(data_dir, "ex")
    try:
        chain.seal([])  # genesis state is seeded by the first height
        now = chain.blocks[-1].header.time
        attest = {"reserve": 10**10, "as_of": now, "seq": 1}
        ok(chain, [chain.tx(c, "trade.trc.attest", attest) for c in ("custodian", "custodian-2")])
        ok(chain, [chain.tx("custodian", "trade.trc.mint", {"to": "importer", "amount": 1_000_000})])
        ok(
            chain,
            [
                chain.tx("bank-a", "trade.order.place", order("a1", "sell", 150, 3)),
                chain.tx("bank-a", "trade.order.place", order("a2", "sell", 170, 1)),
            ],
        )
        bought = ok(chain, [chain.tx("importer", "trade.order.place", order("b1", "buy", 160, 2))])[0]
        assert (bought["status"], bought["quote"]) == ("filled", 300)
        ok(chain, [chain.tx("importer", "trade.order.place", order("b2", "buy", 140, 1))])
        yield chain, data_dir
    finally:
        chain.close()


def test_the_trades_settled_on_the_real_runtimes(market_chain: tuple[ServiceChain, Path]) -> None:
    chain, _ = market_chain
    trade = chain.runtimes["trade"].store
    assert q.balance(trade, "COCO", "importer") == {"total": 2 * LOT, "held": 0}
    assert q.balance(trade, "TRC", "importer") == {"total": 1_000_000 - 300, "held": 140}
    assert q.balance(trade, "TRC", "bank-a")["total"] == 300
    assert q.balance(trade, "COCO", "bank-a")["held"] == 2 * LOT  # a1's last lot and a2
    assert views.invariants(trade) == []
    # a refusal is a receipt with its code: bank-a's own bid would meet its own ask
    tx = chain.tx("bank-a", "trade.order.place", order("a3", "buy", 150, 1))
    chain.seal([tx])
    chain.seal([])
    assert chain.receipt(tx.tx_id).code == "SELF_MATCH"


def test_the_api_and_the_cli_show_the_market(market_chain: tuple[ServiceChain, Path]) -> None:
    chain, data_dir = market_chain
    app = FastAPI()
    app.include_router(trade_router(chain.runtimes["trade"]))
    runner = CliRunner()
    with _Server(app) as url:
        where = ["--trade-api", url, "--data-dir", str(data_dir)]
        shown = runner.invoke(cli, ["market", "COCO/TRC", "--json", *where])
        assert shown.exit_code == 0, shown.output
        answer = json.loads(shown.output)
        assert (answer["pair"], answer["lot"], answer["last_price"]) == ("COCO/TRC", LOT, 150)
        assert answer["asks"] == [{"price": 150, "qty": LOT, "orders": 1}, {"price": 170, "qty": LOT, "orders": 1}]
        assert answer["bids"] == [{"price": 140, "qty": LOT, "orders": 1}]
        (trade,) = answer["trades"]
        assert (trade["buyer"], trade["seller"], trade["price"], trade["qty"]) == ("importer", "bank-a", 150, 2 * LOT)
        assert answer["volume"] == {"trades": 1, "base": 2 * LOT, "quote": 300}
        dashed = runner.invoke(cli, ["market", "COCO-TRC", "--json", "--depth", "1", *where])
        assert json.loads(dashed.output)["asks"] == [{"price": 150, "qty": LOT, "orders": 1}]
        text = runner.invoke(cli, ["market", "COCO/TRC", *where])
        assert text.exit_code == 0 and "bank-a -> importer" in text.output, text.output
        assert "last price 150 TRC per lot" in text.output
        missing = runner.invoke(cli, ["market", "NOPE/TRC", *where])
        assert missing.exit_code == 1 and "no pair NOPE/TRC" in missing.output
    bad = runner.invoke(cli, ["order", "place", "coco", "buy", "0", "5", "--data-dir", str(data_dir)])
    assert bad.exit_code == 2 and "2 problems" in bad.output and "price: must be positive" in bad.output
