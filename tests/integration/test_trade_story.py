"""The trade-finance story on the real broker with four nodes, every node running party, doc
and trade (trade part 2): an importer pays into escrow released when the carrier reports
delivery; an exporter finances a bill of lading at the best of two banks' offers (TRC to the
exporter and the pledge to the bank as one outcome), repays it and gets the pledge released; a
second loan defaults and its title moves to the lender; goods are sold cash against documents;
ECC and Coco trade against TRC; invoices are pooled into tranches paid by the waterfall. At the
end: balances, documents and receipts as the story says, TRC conserved, and every node's trade
and doc replicas agree to the digest — after a restart, and after a rebuild from the blocks."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.mesh import MeshProcesses, running_nodes
from tests.integration.test_registry import Cast, send
from tests.integration.test_trade import code, ok, trade_digests, until
from traco.cli.client import Client
from traco.core.adapters.factory import StorageConfig, open_state_store
from traco.services.consensus.genesis import init_chain

pytestmark = pytest.mark.integration

MINTED = {"importer": 5_000_000, "bank-a": 8_000_000, "bank-b": 8_000_000, "exporter": 1_000_000}


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("story")
    genesis = init_chain(data_dir, f"st{int(time.time() * 1000) % 10**8}", 4)
    with running_nodes(data_dir, tansu_broker, genesis) as processes:
        yield processes


def digests(mesh: MeshProcesses, node: str, service: str, height: int) -> list[str | None]:
    config = StorageConfig(backend="sqlite", data_dir=mesh.data_dir)

    def read() -> list[str | None] | None:
        try:
            store = open_state_store(config, f"{node}-{service}", readonly=True)
        except Exception:
            return None
        try:
            return None if store.height() < height else [store.state_digest(h) for h in range(1, height + 1)]
        finally:
            store.close()

    found: list[str | None] = until(read, 120, f"{node}'s {service} replica to reach {height}")
    return found


def test_the_trade_finance_story_end_to_end(mesh: MeshProcesses) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    trade = Client(f"http://127.0.0.1:{mesh.api_port + 3}")
    doc_api = Client(f"http://127.0.0.1:{mesh.api_port + 2}")

    def run(who: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        return ok(cast, client, who, kind, payload)

    def total(who: str, token: str = "TRC") -> int:
        return int(trade.get_json(f"/accounts/{who}")["balances"].get(token, {}).get("total", 0))

    def holder(doc_id: str) -> str:
        return str(doc_api.get_json(f"/documents/{doc_id}")["document"]["holder"]["member_id"])

    def height() -> int:
        return int(client.get_json("/status")["height"])

    def register(doc_type: str, issuer: str, holder_of: str, **extra: Any) -> str:
        reference = f"{doc_type[:3].upper()}-{time.time_ns()}"
        namespace = "MAEU" if doc_type == "bill_of_lading" else "HARBOUR"
        payload = {
            "file_hash": hashlib.sha256(reference.encode()).hexdigest(),
            "type": doc_type,
            "business_key": {"namespace": namespace, "reference": reference},
            "holder": cast.pub(holder_of),
            **extra,
        }
        return str(run(issuer, "doc.register", payload)["doc_id"])

    # -- money and governance: a custodian quorum mints TRC; the council sets the flows' terms
    attest = {"reserve": 10**11, "as_of": int(time.time() * 1000) - 10_000, "seq": 1}
    run("custodian", "trade.trc.attest", attest)
    run("custodian-2", "trade.trc.attest", attest)
    for who, amount in MINTED.items():
        run("custodian", "trade.trc.mint", {"to": who, "amount": amount})
    flows = {"loan_grace_ms": 3_000, "escrow_arbiter": "bank-b"}
    action = {"type": "set_service_param", "service": "trade", "key": "flows", "value": flows}
    pid = run("council-1", "party.propose", {"action": action})["proposal_id"]
    run("council-1", "party.vote", {"proposal_id": pid, "choice": "yes"})
    run("council-2", "party.vote", {"proposal_id": pid, "choice": "yes"})

    # -- escrow: the importer pays, released when the carrier of record reports delivery
    bill_1 = register("bill_of_lading", "carrier", "exporter", parties=[cast.pub("importer")])
    now = int(time.time() * 1000)
    escrow = {"escrow_id": "po-77", "token": "TRC", "seller": "exporter", "amount": 1_200_000}
    release = {"on": "milestone", "doc_id": bill_1, "milestone": "delivered"}
    run("importer", "trade.escrow.open", {**escrow, "expires_at": now + 600_000, "release": release})
    assert total("exporter") == MINTED["exporter"]
    run("carrier", "doc.event", {"doc_id": bill_1, "milestone": "delivered"})
    until(lambda: trade.get_json("/escrows/po-77")["status"] == "released", 30, "the escrow to pay on delivery")
    assert total("exporter") == MINTED["exporter"] + 1_200_000

    # -- pledge-backed financing: the best offer wins; TRC and pledge are one outcome; repaid
    bill_2 = register("bill_of_lading", "carrier", "exporter")
    offers_until = int(time.time() * 1000) + 600_000
    request = {"request_id": "fin-1", "doc_id": bill_2, "token": "TRC", "amount": 2_000_000, "tenor_ms": 600_000}
    run("exporter", "trade.finance.request", {**request, "offers_until": offers_until})
    run(
        "bank-a",
        "trade.finance.offer",
        {"offer_id": "a-1", "request_id": "fin-1", "rate_bp": 650, "valid_until": offers_until},
    )
    run(
        "bank-b",
        "trade.finance.offer",
        {"offer_id": "b-1", "request_id": "fin-1", "rate_bp": 600, "valid_until": offers_until},
    )
    accepted = run("exporter", "trade.finance.accept", {"request_id": "fin-1"})
    assert (accepted["lender"], accepted["rate_bp"]) == ("bank-b", 600)
    until(lambda: trade.get_json("/loans/fin-1")["status"] == "active", 30, "the loan to be disbursed")
    pledge = doc_api.get_json(f"/documents/{bill_2}")["document"]["pledge"]
    assert pledge["financier"]["member_id"] == "bank-b" and pledge["manager"] == "service:trade"
    assert total("exporter") == MINTED["exporter"] + 1_200_000 + 2_000_000
    partial = run("exporter", "trade.loan.repay", {"loan_id": "fin-1", "amount": 500_000})
    assert partial["to_interest"] >= 1 and not partial["closed"]
    due = int(trade.get_json("/loans/fin-1")["total_due"])
    receipt = send(client, cast.key("exporter"), "trade.loan.repay", {"loan_id": "fin-1", "amount": due + 50})
    if receipt.code == "OVERPAYMENT":  # a block passed since the view: pay what the refusal says is due
        due = int(receipt.message.split(" has ")[1].split(" due")[0])
        receipt = send(client, cast.key("exporter"), "trade.loan.repay", {"loan_id": "fin-1", "amount": due})
    assert receipt.accepted and receipt.result["closed"], receipt
    until(lambda: doc_api.get_json(f"/documents/{bill_2}")["document"]["pledge"] is None, 30, "the pledge release")
    assert code(cast, client, "exporter", "trade.loan.repay", {"loan_id": "fin-1", "amount": 1}) == "LOAN_NOT_ACTIVE"

    # -- a loan left unpaid defaults at maturity + grace and its title moves to the lender
    bill_3 = register("bill_of_lading", "carrier", "exporter")
    request = {"request_id": "fin-2", "doc_id": bill_3, "token": "TRC", "amount": 700_000, "tenor_ms": 2_000}
    run("exporter", "trade.finance.request", {**request, "offers_until": offers_until})
    run(
        "bank-a",
        "trade.finance.offer",
        {"offer_id": "a-2", "request_id": "fin-2", "rate_bp": 900, "valid_until": offers_until},
    )
    run("exporter", "trade.finance.accept", {"request_id": "fin-2", "offer_id": "a-2"})
    until(lambda: trade.get_json("/loans/fin-2")["status"] == "defaulted", 60, "the default")
    until(lambda: holder(bill_3) == "bank-a", 30, "the title to move to the lender")
    # the same document cannot be financed twice: the lender now holds it, the exporter cannot ask
    again = {**request, "request_id": "fin-3", "offers_until": offers_until}
    assert code(cast, client, "exporter", "trade.finance.request", again) == "NOT_HOLDER"

    # -- cash against documents: the title (held for the buyer, decided by trade) against TRC
    h = height()
    dvp = {"dvp_id": "cad-1", "seller": "exporter", "buyer": "importer", "doc_id": bill_1, "token": "TRC"}
    run("exporter", "trade.dvp.open", {**dvp, "amount": 900_000, "allocate_by": h + 200, "settle_by": h + 300})
    title = {"hold_id": "cad-title", "doc_id": bill_1, "beneficiary": cast.pub("importer"), "notary": "service:trade"}
    run("exporter", "doc.hold", {**title, "expires_height": h + 400})
    run("importer", "trade.dvp.fund", {"dvp_id": "cad-1"})
    run("exporter", "trade.dvp.allocate", {"dvp_id": "cad-1", "title_hold_id": "cad-title"})
    exporter_before = total("exporter")
    run("importer", "trade.dvp.settle", {"dvp_id": "cad-1"})
    until(lambda: trade.get_json("/dvp/cad-1")["status"] == "settled", 30, "the DvP to settle")
    assert holder(bill_1) == "importer" and total("exporter") == exporter_before + 900_000

    # -- the exchange: ECC and Coco against TRC, matched and settled inside the block
    ecc = {"token": "ECC", "name": "ECC", "security": "HKEX:0001", "ratio_tokens": 3, "ratio_shares": 2}
    ecc |= {
        "circulation": "members",
        "exercise": {"centre": "HK", "settlement_agent": "custodian", "custodian": "custodian"},
    }
    run("custodian", "trade.equity.define", ecc)
    run("custodian", "trade.equity.issue", {"token": "ECC", "to": "bank-b", "amount": 300, "shares": 200})
    run(
        "bank-b",
        "trade.order.place",
        {"order_id": "s-ecc", "pair": "ECC/TRC", "side": "sell", "price": 1_000, "qty": 100},
    )
    bought = run(
        "bank-a",
        "trade.order.place",
        {"order_id": "b-ecc", "pair": "ECC/TRC", "side": "buy", "price": 1_100, "qty": 60},
    )
    assert bought  # filled at the maker's price, inside the block
    assert total("bank-a", "ECC") == 60
    coco_before = total("importer", "COCO")
    run(
        "bank-b",
        "trade.order.place",
        {"order_id": "s-coco", "pair": "COCO/TRC", "side": "sell", "price": 25, "qty": 500_000},
    )
    run(
        "importer",
        "trade.order.place",
        {"order_id": "b-coco", "pair": "COCO/TRC", "side": "buy", "price": 25, "qty": 200_000},
    )
    assert total("importer", "COCO") == coco_before + 200_000
    market = trade.get_json("/markets/COCO-TRC")
    assert market["asks"][0]["qty"] == 300_000 and market["last_price"] == 25

    # -- securitisation: invoices bank-a holds pooled into tranches; collections by the waterfall
    invoices = [
        register(
            "invoice", "exporter", "bank-a", metadata={"amount": amount, "debtor": "importer", "due_date": "2099-12-31"}
        )
        for amount in (600_000, 400_000)
    ]
    pool = {
        "pool_id": "HX1",
        "assets": [{"receivable": d} for d in invoices],
        "tranches": [
            {"name": "A", "size": 700_000, "coupon_bp": 500},
            {"name": "B", "size": 200_000, "coupon_bp": 900},
        ],
        "reserve_target": 10_000,
        "loss_trigger_bp": 2_000,
    }
    run("bank-a", "trade.abs.pool", pool)
    run("bank-a", "trade.transfer", {"token": "HX1A", "to": "bank-b", "amount": 350_000})
    run("bank-a", "trade.abs.collect", {"pool_id": "HX1", "amount": 300_000})
    shown = trade.get_json("/abs/HX1")
    assert shown["status"] == "performing"
    # a pooled invoice cannot back a loan too
    pooled = {"request_id": "fin-4", "doc_id": invoices[0], "token": "TRC", "amount": 1, "tenor_ms": 5_000}
    refused = code(cast, client, "bank-a", "trade.finance.request", {**pooled, "offers_until": offers_until})
    assert refused == "DOCUMENT_POOLED"

    # -- the end: TRC conserved, the exposure figures, every node agreeing
    assert trade.get_json("/invariants")["problems"] == []
    risk = trade.get_json("/risk/bank-a")
    assert (risk["loans"]["defaulted_lent"], risk["loans"]["lent"]) == (700_000, 0)
    # the importer paid 1,200,000 into escrow, 900,000 against documents, 500 for 20 lots of Coco
    assert total("importer") == MINTED["importer"] - 1_200_000 - 900_000 - 500
    top = height()
    for service in ("trade", "doc"):
        replicas = {node: digests(mesh, node, service, top) for node in ("n0", "n1", "n2", "n3")}
        assert len({tuple(d) for d in replicas.values()}) == 1, (service, replicas)

    # restart every node; then rebuild n3's trade and doc from the blocks: the same digests
    reference = {service: digests(mesh, "n0", service, top) for service in ("trade", "doc")}
    for node in ("n0", "n1", "n2", "n3"):
        mesh.stop(f"node-{node}")
        mesh.start_node(node)
        if node == "n0":
            mesh.wait_for_api("node-n0")
    mesh.stop("node-n3")
    for service in ("trade", "doc"):
        shutil.rmtree(mesh.data_dir / f"n3-{service}")
    mesh.start_node("n3")
    for service in ("trade", "doc"):
        assert digests(mesh, "n3", service, top) == reference[service], service
    assert trade_digests(mesh, "n0", top) == reference["trade"]
    trade.close()
    doc_api.close()
