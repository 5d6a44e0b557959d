"""Securitisation end to end in one process: the development chain (``init_chain``: party, doc
and trade with their real runtimes) where banks may arrange pools (by genesis, else by a council
vote), the exporter registers invoices held by bank-a, custodians mint TRC, bank-a pools the
invoices, sells units to bank-b and collects twice; then the trade API served by uvicorn answers
``GET /abs/{pool_id}`` and ``traco abs show|tranche`` read it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from tests.cli.conftest import _Server
from tests.consensus.servicechain import ServiceChain, file_hash
from traco.cli.main import app as cli
from traco.services.party import queries as party_queries
from traco.services.trade import queries as q
from traco.services.trade import views as trade_views
from traco.services.trade.abs import state as s
from traco.services.trade.abs import views as abs_views
from traco.services.trade.api import router as trade_router

DAY = 86_400_000


def ok(chain: ServiceChain, txs: list[Any]) -> list[dict[str, Any]]:
    chain.seal(txs)
    chain.seal([])  # the results of that block are sealed by the next header
    receipts = [chain.receipt(tx.tx_id) for tx in txs]
    for receipt in receipts:
        assert receipt.accepted, f"{receipt.code}: {receipt.message}"
    return [dict(r.result or {}) for r in receipts]


def invoice(chain: ServiceChain, label: str, amount: int) -> Any:
    payload = {
        "file_hash": file_hash(label),
        "type": "invoice",
        "business_key": {"namespace": "HARBOUR", "reference": f"INV-{label}"},
        "holder": chain.pub("bank-a"),
        "metadata": {"amount": amount, "debtor": "importer", "due_date": "2099-12-31"},
    }
    return chain.tx("exporter", "doc.register", payload)


@pytest.fixture(scope="module")
def pool_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceChain, Path]]:
    data_dir = tmp_path_factory.mktemp("abs")
    chain = ServiceChain(data_dir, "abs")
    try:
        chain.seal([])  # genesis state is seeded by the first height
        bank = party_queries.role_kinds(chain.runtimes["party"].store)["bank"]
        missing = [k for k in ("trade.abs.pool", "trade.abs.collect") if k not in bank]
        if missing:  # a chain whose genesis predates securitisation: the council lets banks arrange pools
            action = {"type": "set_role_kinds", "role": "bank", "kinds": [*bank, *missing]}
            proposal = ok(chain, [chain.tx("council-1", "party.propose", {"action": action})])[0]["proposal_id"]
            votes = [
                chain.tx(seat, "party.vote", {"proposal_id": proposal, "choice": "yes"})
                for seat in ("council-1", "council-2")
            ]
            ok(chain, votes)
        docs = [invoice(chain, "a", 600_000), invoice(chain, "b", 400_000)]
        now = chain.blocks[-1].header.time
        attest = {"reserve": 10**10, "as_of": now, "seq": 1}
        ok(
            chain,
            [
                *docs,
                chain.tx("custodian", "trade.trc.attest", attest),
                chain.tx("custodian-2", "trade.trc.attest", attest),
            ],
        )
        ok(chain, [chain.tx("custodian", "trade.trc.mint", {"to": "bank-a", "amount": 5_000_000})])
        terms = {
            "pool_id": "HX1",
            "assets": [{"receivable": d.tx_id} for d in docs],
            "tranches": [
                {"name": "A", "size": 700_000, "coupon_bp": 450},
                {"name": "B", "size": 200_000, "coupon_bp": 900},
            ],
            "fees": {"senior": {"rate_bp": 25, "fixed": 50}},
            "reserve_target": 10_000,
            "loss_trigger_bp": 800,
        }
        pooled = ok(chain, [chain.tx("bank-a", "trade.abs.pool", terms)])[0]
        assert pooled == {"pool_id": "HX1", "size": 1_000_000, "equity": 100_000, "tokens": ["HX1A", "HX1B"]}
        ok(chain, [chain.tx("bank-a", "trade.transfer", {"token": "HX1A", "to": "bank-b", "amount": 350_000})])
        ok(chain, [chain.tx("bank-a", "trade.abs.collect", {"pool_id": "HX1", "amount": 90_000})])
        ok(chain, [chain.tx("bank-a", "trade.abs.collect", {"pool_id": "HX1", "amount": 250_000, "losses": 5_000})])
        yield chain, data_dir
    finally:
        chain.close()


def test_the_pool_runs_on_the_real_runtimes(pool_chain: tuple[ServiceChain, Path]) -> None:
    chain, _ = pool_chain
    trade = chain.runtimes["trade"].store
    record = s.pool(trade, "HX1")
    assert record is not None and record["collections"] == 2 and record["collected"] == 340_000
    a = record["deal"]["tranches"][0]
    assert a["balance"] < 700_000 and a["unpaid_interest"] == 0  # interest paid, principal amortising
    # bank-b holds half the A units and was paid exactly half of what A received, rounded down.
    paid_to_a = 0
    for _, raw in trade.scan(s.dist_prefix("HX1")):
        dist = json.loads(raw)
        paid_to_a += sum(amount for step, to, amount in dist["lines"] if to == "A")
    assert paid_to_a // 2 - 1 <= q.balance(trade, "TRC", "bank-b")["total"] <= paid_to_a // 2
    assert trade_views.invariants(trade) == [] and abs_views.invariants(trade) == []
    supply = q.token(trade, "TRC")
    assert supply is not None and supply["supply"] == sum(b["total"] for _, b in q.holders(trade, "TRC"))
    # A second pool cannot reuse the invoices; a refusal is a receipt with its code.
    again: dict[str, Any] = {
        "pool_id": "HX2",
        "assets": [{"receivable": a_id} for a_id in (x["id"] for x in record["assets"])],
    }
    again |= {"tranches": [{"name": "A", "size": 1, "coupon_bp": 0}], "loss_trigger_bp": 1}
    tx = chain.tx("bank-a", "trade.abs.pool", again)
    chain.seal([tx])
    chain.seal([])
    assert chain.receipt(tx.tx_id).code == "ASSET_POOLED"


def test_the_api_and_the_cli_show_the_pool(pool_chain: tuple[ServiceChain, Path]) -> None:
    chain, data_dir = pool_chain
    app = FastAPI()
    app.include_router(trade_router(chain.runtimes["trade"]))
    runner = CliRunner()
    with _Server(app) as url:
        shown = runner.invoke(cli, ["abs", "show", "HX1", "--json", "--trade-api", url, "--data-dir", str(data_dir)])
        assert shown.exit_code == 0, shown.output
        answer = json.loads(shown.output)
        assert answer["pool_id"] == "HX1" and answer["arranger"] == "bank-a" and len(answer["distributions"]) == 2
        assert answer["cash"] == answer["reserve"] + sum(answer["carry"].values())
        assert answer["tranches"][0]["holders"] == {"bank-a": 350_000, "bank-b": 350_000}
        text = runner.invoke(cli, ["abs", "show", "HX1", "--trade-api", url, "--data-dir", str(data_dir)])
        assert text.exit_code == 0 and "HX1A" in text.output and "#2" in text.output, text.output
        tranche = runner.invoke(cli, ["abs", "tranche", "HX1", "B", "--trade-api", url, "--data-dir", str(data_dir)])
        assert tranche.exit_code == 0 and "bank-a" in tranche.output and "200000 units" in tranche.output
        missing = runner.invoke(cli, ["abs", "show", "NOPE", "--trade-api", url, "--data-dir", str(data_dir)])
        assert missing.exit_code == 1
    bad = runner.invoke(
        cli, ["abs", "pool", "hx", "--tranche", "A:1", "--loss-trigger-bp", "1", "--data-dir", str(data_dir)]
    )
    assert bad.exit_code == 2
