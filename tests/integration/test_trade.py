"""Money on the real broker with four nodes (trade part 1): a custodian quorum attests the
reserve and mints TRC, a transfer, a hold executed, a hold left to expire and returned by the
clause on an idle chain, a document title held for trade that no member can take alone, an ECC
issue beyond the ratio refused, an exercise settled; every node's trade replica agrees to the
digest, and one rebuilt from its blocks arrives at the same digests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.mesh import MeshProcesses, running_nodes
from tests.integration.test_registry import Cast, send
from traco.cli.client import Client
from traco.core.adapters.factory import StorageConfig, open_state_store
from traco.services.consensus.genesis import DataDir, init_chain

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("trade")
    genesis = init_chain(data_dir, f"td{int(time.time() * 1000) % 10**8}", 4)
    assert "trade" in genesis.params.services
    with running_nodes(data_dir, tansu_broker, genesis) as processes:
        yield processes


def until(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def ok(cast: Cast, client: Client, who: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    receipt = send(client, cast.key(who), kind, payload)
    assert receipt.accepted, (kind, receipt.code, receipt.message)
    return dict(receipt.result)


def code(cast: Cast, client: Client, who: str, kind: str, payload: dict[str, Any]) -> str:
    receipt = send(client, cast.key(who), kind, payload)
    assert not receipt.accepted, (kind, receipt)
    return receipt.code


def test_the_readme_money_tour_works_from_the_command_line(mesh: MeshProcesses) -> None:
    """The README's commands, as a person runs them: two custodians attest today's statement
    (the default as-of, so they agree without passing it), a mint, a refused mint, a transfer,
    a hold executed in part, balances, the reserve and Coco's schedule."""
    keys = DataDir(mesh.data_dir).keys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "traco.cli.main", *args, "--data-dir", str(mesh.data_dir)]
        env = {**os.environ, "COLUMNS": "200"}
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)

    def key(name: str) -> list[str]:
        return ["--key", str(keys / f"{name}.key")]

    for custodian in ("custodian", "custodian-2"):
        attested = cli("trc", "attest", "--reserve", "100000000", "--seq", "1", *key(custodian))
        assert attested.returncode == 0, attested.stdout + attested.stderr
    assert cli("trc", "mint", "exporter", "5000000", *key("custodian")).returncode == 0
    refused = cli("trc", "mint", "exporter", "99000001", *key("custodian"))
    assert refused.returncode == 1 and "RESERVE_EXCEEDED" in refused.stderr, refused.stdout + refused.stderr
    assert cli("transfer", "bank-b", "250000", "--token", "TRC", *key("exporter")).returncode == 0
    hold = ["hold", "create", "deal-1", "--for", "bank-b", "--amount", "1000000", "--token", "TRC", "--minutes", "1"]
    assert cli(*hold, *key("exporter")).returncode == 0
    shown = cli("balance", "exporter")
    assert "TRC      total 4750000  held 1000000  locked 0  available 3750000" in shown.stdout, shown.stdout
    assert cli("hold", "execute", "deal-1", "--amount", "600000", *key("bank-b")).returncode == 0
    assert "TRC      total 4150000  held 0" in cli("balance", "exporter").stdout
    reserve = json.loads(cli("trc", "reserve", "--json").stdout)
    assert (reserve["supply"], reserve["stale"], reserve["under_reserved"]) == (5_000_000, False, False)
    schedule = cli("coco", "schedule", "--epochs", "2")
    assert schedule.returncode == 0 and "epoch    1" in schedule.stdout, schedule.stdout


def test_money_moves_only_as_the_rules_allow_and_every_node_agrees(mesh: MeshProcesses) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    trade = Client(f"http://127.0.0.1:{mesh.api_port + 3}")

    def account(who: str, token: str) -> dict[str, Any]:
        return dict(trade.get_json(f"/accounts/{who}")["balances"].get(token, {}))

    # TRC: one custodian's attestation is not enough, two are; minting stays within the reserve
    as_of = int(time.time() * 1000) - 10_000
    attest = {"reserve": 1_000_000_000, "as_of": as_of, "seq": 2}

    def counted() -> int | None:
        last = trade.get_json("/trc/reserve")["attestation"]
        return None if last is None else int(last["seq"])

    ok(cast, client, "custodian", "trade.trc.attest", attest)
    assert counted() != 2  # one custodian of the 2-of-3 is not enough
    ok(cast, client, "custodian-2", "trade.trc.attest", attest)
    assert counted() == 2
    ok(cast, client, "custodian", "trade.trc.mint", {"to": "importer", "amount": 600_000})
    supply = trade.get_json("/trc/reserve")["supply"]  # with the tour's, if it ran first
    over = {"to": "importer", "amount": 1_000_000_000 - supply + 1}
    assert code(cast, client, "custodian", "trade.trc.mint", over) == "RESERVE_EXCEEDED"
    reserve = trade.get_json("/trc/reserve")
    assert (reserve["supply"], reserve["attestation"]["reserve"]) == (supply, 1_000_000_000)

    # a transfer, and one beyond the balance
    ok(cast, client, "importer", "trade.transfer", {"token": "TRC", "to": "exporter", "amount": 1_000})
    too_much = {"token": "TRC", "to": "exporter", "amount": 10**9}
    assert code(cast, client, "importer", "trade.transfer", too_much) == "INSUFFICIENT_FUNDS"

    # a hold executed by its beneficiary; the held amount could not move meanwhile
    height = client.get_json("/status")["height"]
    exporter_before = account("exporter", "TRC")["total"]  # the tour may have paid it first
    hold = {"hold_id": "h-exec", "token": "TRC", "beneficiary": "exporter", "amount": 599_000}
    ok(cast, client, "importer", "trade.hold.create", {**hold, "expires_height": height + 500})
    assert account("importer", "TRC")["available"] == 0
    all_of_it = {"token": "TRC", "to": "bank-a", "amount": 1}
    assert code(cast, client, "importer", "trade.transfer", all_of_it) == "HELD"  # held, not spendable
    ok(cast, client, "exporter", "trade.hold.execute", {"hold_id": "h-exec", "amount": 500_000})
    assert account("exporter", "TRC")["total"] == exporter_before + 500_000
    assert account("importer", "TRC")["total"] == 99_000

    # a hold left to expire: the clause returns it on an idle chain (empty blocks pass time)
    expires = int(time.time() * 1000) + 3_000
    idle = {"hold_id": "h-idle", "token": "TRC", "beneficiary": "exporter", "amount": 9_000, "expires_time": expires}
    ok(cast, client, "importer", "trade.hold.create", idle)
    closed = until(lambda: trade.get_json("/holds/h-idle")["status"] == "expired", 60, "the hold's expiry")
    assert closed and account("importer", "TRC") == {**account("importer", "TRC"), "held": 0, "total": 99_000}
    assert code(cast, client, "exporter", "trade.hold.execute", {"hold_id": "h-idle"}) == "HOLD_CLOSED"

    # a document title held with trade as notary: no member takes it with trade.title.execute
    # (rules v2; only the DvP that decides it may, see test_trade_story.py); doc refuses a direct
    # execute by the beneficiary too, since only trade decides it
    file_hash = hashlib.sha256(f"trade B/L {time.time_ns()}".encode()).hexdigest()
    register = {
        "file_hash": file_hash,
        "type": "bill_of_lading",
        "business_key": {"namespace": "MAEU", "reference": f"BL-TRADE-{time.time_ns()}"},
        "holder": cast.pub("exporter"),
    }
    doc_id = ok(cast, client, "carrier", "doc.register", register)["doc_id"]
    title = {"hold_id": "title-1", "doc_id": doc_id, "beneficiary": cast.pub("importer"), "notary": "service:trade"}
    height = client.get_json("/status")["height"]
    ok(cast, client, "exporter", "doc.hold", {**title, "expires_height": height + 500})
    assert code(cast, client, "importer", "doc.hold.execute", {"hold_id": "title-1"}) == "NOT_BENEFICIARY"
    assert code(cast, client, "importer", "trade.title.execute", {"hold_id": "title-1"}) == "NOT_PERMITTED"
    doc_api = Client(f"http://127.0.0.1:{mesh.api_port + 2}")
    assert doc_api.get_json(f"/documents/{doc_id}")["document"]["holder"]["member_id"] == "exporter"

    # ECC: issued within 3 tokens per 2 custodied shares only, to qualified investors only
    terms = {
        "token": "ECC",
        "name": "ECC",
        "security": "HKEX:0001",
        "ratio_tokens": 3,
        "ratio_shares": 2,
        "circulation": "members",
        "exercise": {"centre": "HK", "settlement_agent": "custodian", "custodian": "custodian"},
    }
    ok(cast, client, "custodian", "trade.equity.define", terms)
    ok(cast, client, "custodian", "trade.equity.issue", {"token": "ECC", "to": "bank-b", "amount": 30, "shares": 20})
    beyond = {"token": "ECC", "to": "bank-b", "amount": 1, "shares": 0}
    assert code(cast, client, "custodian", "trade.equity.issue", beyond) == "RATIO_EXCEEDED"
    unqualified = {"token": "ECC", "to": "importer", "amount": 3, "shares": 2}
    assert code(cast, client, "custodian", "trade.equity.issue", unqualified) == "NOT_QUALIFIED"
    exercise = ok(cast, client, "bank-b", "trade.equity.exercise", {"token": "ECC", "amount": 3})
    ok(cast, client, "custodian", "trade.equity.settled", {"exercise_id": exercise["exercise_id"], "accepted": True})
    ecc = trade.get_json("/equity/ECC")
    assert (ecc["supply"], ecc["custodied_shares"], ecc["within_ratio"]) == (27, 18, True)
    assert trade.get_json("/invariants")["problems"] == []

    # custody statements: anchored with chain.anchor, listed on the token, proven by `equity show`
    statement = hashlib.sha256(b"custody statement: 18 shares of HKEX:0001").hexdigest()
    anchored = send(client, cast.key("custodian"), "chain.anchor", {"digest": statement, "label": "ECC custody"})
    assert anchored.accepted, anchored
    anchor_id = anchored.tx_id
    listed = {"token": "ECC", "digest": statement, "shares": 18}
    ok(cast, client, "custodian", "trade.equity.statement", {**listed, "anchor_tx_id": anchor_id})
    show = [sys.executable, "-m", "traco.cli.main", "equity", "show", "ECC", "--data-dir", str(mesh.data_dir)]

    shown = until(
        lambda: (
            (r := subprocess.run(show, capture_output=True, text=True, timeout=120, check=False)).returncode == 0 and r
        ),
        30,
        "the statement's anchor to be provable (its receipt is proven by the next header)",
    )
    assert f"statement {anchor_id}  18 shares (matches custody)  → proven" in shown.stdout, shown.stdout
    forged = {**listed, "digest": "00" * 32, "anchor_tx_id": hashlib.sha256(b"never anchored").hexdigest()}
    ok(cast, client, "custodian", "trade.equity.statement", forged)
    refused = subprocess.run(show, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 1 and "not on the chain" in refused.stdout, refused.stdout

    # every node's trade replica agrees; one rebuilt from its blocks arrives at the same digests
    height = client.get_json("/status")["height"]
    digests = {node: trade_digests(mesh, node, height) for node in ("n0", "n1", "n2", "n3")}
    assert len({tuple(d) for d in digests.values()}) == 1, digests
    mesh.stop("node-n3")
    shutil.rmtree(mesh.data_dir / "n3-trade")
    mesh.start_node("n3")
    assert trade_digests(mesh, "n3", height) == digests["n0"]

    # a rolling restart of every node: each resumes from its stores, and all still agree
    for node in ("n0", "n1", "n2", "n3"):
        mesh.stop(f"node-{node}")
        mesh.start_node(node)
        if node == "n0":
            mesh.wait_for_api("node-n0")
    ok(cast, client, "exporter", "trade.transfer", {"token": "TRC", "to": "importer", "amount": 1})
    height = client.get_json("/status")["height"]
    after = [trade_digests(mesh, node, height) for node in ("n0", "n1", "n2", "n3")]
    assert all(d == after[0] for d in after) and after[0][: len(digests["n0"])] == digests["n0"]
    trade.close()
    doc_api.close()


def trade_digests(mesh: MeshProcesses, node: str, height: int) -> list[str | None]:
    config = StorageConfig(backend="sqlite", data_dir=mesh.data_dir)

    def read() -> list[str | None] | None:
        try:
            store = open_state_store(config, f"{node}-trade", readonly=True)
        except Exception:  # the rebuilt store may not exist yet
            return None
        try:
            if store.height() < height:
                return None
            return [store.state_digest(h) for h in range(1, height + 1)]
        finally:
            store.close()

    found: list[str | None] = until(read, 120, f"{node}'s trade replica to reach {height}")
    return found
