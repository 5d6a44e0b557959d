"""Escrow, financing, loans, DvP and exposure on the development chain's real runtimes
(``init_chain``: party, doc and trade, each a ``ServiceRuntime`` fed the others' events as the
topics would — commands included, so doc pledges the document a loan's acceptance asks for and
trade disburses when it sees doc's outcome); then the trade API served by uvicorn answers
``/escrows``, ``/finance/requests``, ``/loans``, ``/dvp`` and ``/risk``, and ``traco escrow|
finance|loan|dvp show`` and ``traco risk`` read it: concise text with ISO 8601 times, ``--json``
everything, exit 1 naming what is missing, every input problem at once before anything is sent."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from tests.cli.conftest import _Server
from tests.consensus.servicechain import ServiceChain
from traco.cli.main import app as cli
from traco.core.adapters.memory import MemoryBroker, MemoryEventBus
from traco.core.adapters.memory_store import MemoryStateStore
from traco.core.ports import BusMessage
from traco.core.service_runtime import ServiceRuntime
from traco.schemas.block import SealedBlock
from traco.schemas.tx import TxEnvelope
from traco.services import registry
from traco.services.trade.api import router as trade_router
from traco.services.trade.loans import interest
from traco.services.trade.loans import state as loan_state

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")
RAW_MS = re.compile(r"(?<![0-9a-f])1[0-9]{12}(?![0-9a-f])")
DAY = 86_400_000


def ok(chain: ServiceChain, txs: list[TxEnvelope]) -> list[dict[str, Any]]:
    """Seal ``txs``, then an empty block (whose header seals their results); all accepted."""
    chain.seal(txs)
    chain.seal([])
    receipts = [chain.receipt(tx.tx_id) for tx in txs]
    for receipt in receipts:
        assert receipt.accepted, f"{receipt.code}: {receipt.message}"
    return [dict(r.result or {}) for r in receipts]


class CommandChain(ServiceChain):
    """``ServiceChain`` whose runtimes also read the services that command them (doc reads
    trade's commands), as a node's runtimes do."""

    def __init__(self, data_dir: Path, chain_id: str) -> None:
        super().__init__(data_dir, chain_id)
        active = registry.runnable(self.genesis)
        bus = MemoryEventBus(MemoryBroker())  # never started: the runtimes are driven directly
        self.runtimes = {
            name: ServiceRuntime(
                registry.domain(name),
                self.genesis,
                MemoryStateStore(),
                bus,
                registry.upstream_domains(name),
                registry.genesis_events(self.genesis),
                commanders=registry.commander_domains(name, active),
                order=active,
            )
            for name in self.genesis.params.services
        }

    def seal(self, txs: list[TxEnvelope], *_: Any) -> SealedBlock:
        block = self.kit.seal(self.ledger.tip, txs)
        assert self.ledger.check_sealed(block) is None
        self.ledger.apply(block)
        results = [runtime.execute(block) for runtime in self.runtimes.values()]
        for name, result in zip(self.runtimes, results, strict=True):
            published = [*result.events, result.checkpoint]
            for runtime in self.runtimes.values():
                for reader in (runtime.upstream.get(name), runtime.commanders.get(name)):
                    if reader is None:
                        continue
                    for offset, item in enumerate(published):
                        reader.offer(BusMessage(reader.topic, 0, offset, None, item.model_dump_json().encode()))
        for result in results:
            for receipt in result.receipts:
                self.ledger.offer_receipt(receipt)
            self.ledger.offer_checkpoint(result.checkpoint)
        assert self.ledger.tip.results_root is not None, self.ledger.waiting_for()
        self.blocks.append(block)
        return block


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CommandChain, Path]]:
    data_dir = tmp_path_factory.mktemp("flows")
    chain = CommandChain(data_dir, "flows")
    try:
        chain.seal([])  # genesis state is seeded by the first height
        now = chain.blocks[-1].header.time
        attest = {"reserve": 10**10, "as_of": now, "seq": 1}
        ok(chain, [chain.tx(c, "trade.trc.attest", attest) for c in ("custodian", "custodian-2")])
        mint = [chain.tx("custodian", "trade.trc.mint", {"to": m, "amount": 3_000_000}) for m in ("bank-a", "importer")]
        ok(chain, mint)
        bl1, bl2, bl3 = chain.register("flows-1"), chain.register("flows-2"), chain.register("flows-3")
        ok(chain, [bl1, bl2, bl3])
        now = chain.blocks[-1].header.time
        asks = [
            {"request_id": r, "doc_id": bl.tx_id, "token": "TRC", "amount": amount, "tenor_ms": 30 * DAY}
            for r, bl, amount in (("r1", bl1, 1_000_000), ("r2", bl2, 400_000))
        ]
        ok(chain, [chain.tx("exporter", "trade.finance.request", {**a, "offers_until": now + DAY}) for a in asks])
        offers = [("o1", "r1", 1_200), ("o2", "r2", 900), ("o3", "r2", 700)]
        terms = [{"offer_id": o, "request_id": r, "rate_bp": bp, "valid_until": now + DAY} for o, r, bp in offers]
        ok(chain, [chain.tx("bank-a", "trade.finance.offer", t) for t in terms])
        ok(chain, [chain.tx("exporter", "trade.finance.accept", {"request_id": "r1"})])  # seals H and H+1
        chain.seal([])  # H+2: trade sees doc's pledge and disburses
        ok(chain, [chain.tx("exporter", "trade.loan.repay", {"loan_id": "r1", "amount": 250_000})])
        now = chain.blocks[-1].header.time
        escrow = {"escrow_id": "e1", "token": "TRC", "seller": "exporter", "amount": 300_000}
        escrow |= {"expires_at": now + DAY, "release": {"on": "confirm"}, "memo": "order 17"}
        height = chain.blocks[-1].header.height
        dvp: dict[str, object] = {
            "dvp_id": "d1",
            "seller": "exporter",
            "buyer": "importer",
            "doc_id": bl3.tx_id,
            "token": "TRC",
        }
        dvp |= {"amount": 700_000, "allocate_by": height + 20, "settle_by": height + 40}
        ok(chain, [chain.tx("importer", "trade.escrow.open", escrow), chain.tx("exporter", "trade.dvp.open", dvp)])
        ok(chain, [chain.tx("importer", "trade.dvp.fund", {"dvp_id": "d1"})])
        yield chain, data_dir
    finally:
        chain.close()


def test_the_loan_went_through_doc_and_back(flows: tuple[CommandChain, Path]) -> None:
    chain, _ = flows
    record = loan_state.loan(chain.runtimes["trade"].store, "r1")
    assert record is not None and record["status"] == "active" and len(record["payments"]) == 1
    assert record["outstanding"] < 1_000_000


@pytest.fixture(scope="module")
def served(flows: tuple[CommandChain, Path]) -> Iterator[tuple[CommandChain, Path, str]]:
    chain, data_dir = flows
    app = FastAPI()
    app.include_router(trade_router(chain.runtimes["trade"]))
    with _Server(app) as url:
        yield chain, data_dir, url


def run(served: tuple[CommandChain, Path, str], *args: str) -> Result:
    _, data_dir, url = served
    return CliRunner().invoke(cli, [*args, "--trade-api", url, "--data-dir", str(data_dir)])


def test_unknown_ids_are_404_with_one_json_error(served: tuple[CommandChain, Path, str]) -> None:
    _, _, url = served
    for path, what in (
        ("/escrows/nope", "no escrow nope"),
        ("/finance/requests/nope", "no financing request nope"),
        ("/loans/nope", "no loan nope"),
        ("/dvp/nope", "no DvP nope"),
        ("/risk/nobody", "no member nobody"),
    ):
        answer = httpx.get(url + path)
        assert answer.status_code == 404, path
        assert answer.json() == {"detail": {"code": "NOT_FOUND", "message": what}}
    for args in (("loan", "show", "nope"), ("escrow", "show", "nope"), ("dvp", "show", "nope"), ("risk", "nobody")):
        missing = run(served, *args)
        assert missing.exit_code == 1 and "error: no " in missing.stderr, missing.output


def test_loan_show_owes_interest_as_of_the_last_block(served: tuple[CommandChain, Path, str]) -> None:
    chain, _, _ = served
    runtime = chain.runtimes["trade"]
    answer = json.loads(run(served, "loan", "show", "r1", "--json").stdout)
    assert answer["now"] == runtime.block_time and answer["as_of_height"] == runtime.height
    figures = [answer[k] for k in ("outstanding", "accrued_pms", "accrued_to", "interest_paid")]
    owed, _ = interest.Position(*figures).owed(1_200, runtime.block_time)
    assert answer["interest_owed"] == owed and answer["total_due"] == answer["outstanding"] + owed
    assert answer["lender"] == "bank-a" and answer["rate_bp"] == 1_200 and not answer["in_default"]
    text = run(served, "loan", "show", "r1")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == f"loan        r1  active  (as of height {runtime.height})"
    due_line = next(line for line in lines if line.startswith("due now"))
    assert due_line.startswith(f"due now     {answer['total_due']} TRC ({owed} interest) at ") and ISO.search(due_line)
    assert any(line.startswith("  payment #1  ") and "250000:" in line for line in lines), text.stdout
    assert not RAW_MS.search(text.stdout), text.stdout


def test_finance_show_ranks_offers_best_first(served: tuple[CommandChain, Path, str]) -> None:
    text = run(served, "finance", "show", "r2")
    assert text.exit_code == 0, text.output
    ranked = [line.split()[1] for line in text.stdout.splitlines() if line.startswith("  #")]
    assert ranked == ["o3", "o2"]
    assert "request     r2  open" in text.stdout and not RAW_MS.search(text.stdout)
    answer = json.loads(run(served, "finance", "show", "r1", "--json").stdout)
    assert answer["status"] == "accepted" and answer["offers"] == []
    assert answer["loan"] == {"loan_id": "r1", "status": "active", "lender": "bank-a", "rate_bp": 1_200}


def test_escrow_and_dvp_show_their_holds(served: tuple[CommandChain, Path, str]) -> None:
    text = run(served, "escrow", "show", "e1")
    assert text.exit_code == 0, text.output
    assert "amount      300000 TRC  buyer importer → seller exporter" in text.stdout
    assert "released on the buyer's confirmation" in text.stdout and "memo        order 17" in text.stdout
    assert "hold        escrow:e1  300000 TRC  importer → exporter  open until " in text.stdout
    assert not RAW_MS.search(text.stdout), text.stdout
    dvp = run(served, "dvp", "show", "d1")
    assert dvp.exit_code == 0, dvp.output
    assert "legs        funded; title not allocated" in dvp.stdout
    assert "hold        dvp:d1  700000 TRC  importer → exporter  open until height " in dvp.stdout
    answer = json.loads(run(served, "dvp", "show", "d1", "--json").stdout)
    assert answer["status"] == "open" and answer["token_hold"]["amount"] == 700_000


def test_risk_shows_exposure_and_concentration(served: tuple[CommandChain, Path, str]) -> None:
    exporter = json.loads(run(served, "risk", "exporter", "--json").stdout)
    borrowed = exporter["loans"]["borrowed"]
    assert 0 < borrowed < 1_000_000 and exporter["loans"]["count_borrowed"] == 1
    assert exporter["pledged"] == {"documents_in": 0, "documents_out": 1}
    assert exporter["escrow"]["receiving"] == {"TRC": 300_000}
    assert exporter["concentration"]["counterparty_hhi_bp"] == 10_000  # one lender
    importer = json.loads(run(served, "risk", "importer", "--json").stdout)
    assert importer["held"] == {"TRC": 1_000_000}  # 300,000 in escrow + 700,000 for the DvP
    text = run(served, "risk", "bank-a")
    assert text.exit_code == 0, text.output
    assert f"lent        {borrowed} outstanding in 1 loans  (defaulted 0)" in text.stdout
    assert "HHI         by counterparty 10000 bp; by document type 10000 bp" in text.stdout
    assert any(line.split()[:3] == ["counterparty", "exporter", str(borrowed)] for line in text.stdout.splitlines())
    assert any(line.split()[:4] == ["lent", "on", "bill_of_lading", str(borrowed)] for line in text.stdout.splitlines())


def test_every_input_problem_is_named_before_anything_is_sent(tmp_path: Path) -> None:
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path), "--api", "http://127.0.0.1:9"]
    asked = runner.invoke(
        cli,
        ["finance", "request", "r9", "--doc", "not-a-doc", "--amount", "0", "--tenor-ms", "5",
         "--offers-until", "next tuesday", *where],
    )  # fmt: skip
    assert asked.exit_code == 2, asked.output
    said = asked.stderr
    assert "trade.finance.request: 4 problems" in said
    for problem in (
        "--offers-until: 'next tuesday' is neither ISO 8601",
        "doc_id: String should match pattern",
        "amount: Input should be greater than 0",
        "tenor_ms: Input should be greater than or equal to 1000",
    ):
        assert problem in said, said
    assert "cannot reach" not in said
    opened = runner.invoke(cli, ["escrow", "open", "e9", "--seller", "exporter", "--amount", "5",
                                 "--expires-at", "2027-01-01T00:00Z", "--milestone", "delivered", *where])  # fmt: skip
    assert opened.exit_code == 2 and "--doc is needed for a milestone release" in opened.stderr, opened.output
