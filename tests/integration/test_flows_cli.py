"""The flows from the command line on the real broker with four nodes: ``traco finance``
(request, offer, accept; a refusal exits 1 with its code), ``traco loan repay|show``, ``traco
escrow open|confirm|show`` (confirming twice is refused), ``traco dvp open|fund|show`` and
``traco risk``, each command signed, submitted and waited for as a person runs it, and read
back from a node's trade API."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.mesh import MeshProcesses, running_nodes
from tests.integration.test_registry import Cast
from tests.integration.test_trade import ok, until
from traco.core.timefmt import iso_utc
from traco.services.consensus.genesis import DataDir, init_chain

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("flows")
    genesis = init_chain(data_dir, f"fl{int(time.time() * 1000) % 10**8}", 4)
    with running_nodes(data_dir, tansu_broker, genesis) as processes:
        yield processes


def test_the_flows_from_the_command_line(mesh: MeshProcesses) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    keys = DataDir(mesh.data_dir).keys

    def cli(who: str | None, *args: str) -> subprocess.CompletedProcess[str]:
        signer = ["--key", str(keys / f"{who}.key")] if who else []
        command = [sys.executable, "-m", "traco.cli.main", *args, *signer, "--data-dir", str(mesh.data_dir)]
        env = {**os.environ, "COLUMNS": "200"}
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)

    def done(result: subprocess.CompletedProcess[str]) -> str:
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def shown(*args: str) -> dict[str, Any]:
        return dict(json.loads(done(cli(None, *args, "--json"))))

    attest = {"reserve": 10**10, "as_of": int(time.time() * 1000) - 10_000, "seq": 1}
    for custodian in ("custodian", "custodian-2"):
        ok(cast, client, custodian, "trade.trc.attest", attest)
    for member in ("bank-a", "importer"):
        ok(cast, client, "custodian", "trade.trc.mint", {"to": member, "amount": 2_000_000})
    register = {
        "file_hash": hashlib.sha256(f"flows B/L {time.time_ns()}".encode()).hexdigest(),
        "type": "bill_of_lading",
        "business_key": {"namespace": "MAEU", "reference": f"BL-FLOWS-{time.time_ns()}"},
        "holder": cast.pub("exporter"),
    }
    doc_id = ok(cast, client, "carrier", "doc.register", register)["doc_id"]
    in_an_hour = iso_utc(int(time.time() * 1000) + 3_600_000)

    # financing: request, offer, a refusal by receipt (exit 1, its code), accept, disbursed
    done(cli("exporter", "finance", "request", "r1", "--doc", doc_id, "--amount", "500000",
             "--tenor-ms", "600000", "--offers-until", in_an_hour))  # fmt: skip
    done(cli("bank-a", "finance", "offer", "o1", "--request", "r1", "--rate-bp", "900", "--valid-until", in_an_hour))
    refused = cli("bank-b", "finance", "withdraw", "o1")
    assert refused.returncode == 1 and "NOT_LENDER" in refused.stderr, refused.stdout + refused.stderr
    done(cli("exporter", "finance", "accept", "r1"))
    until(lambda: shown("loan", "show", "r1")["status"] == "active", 60, "the loan's disbursement")
    done(cli("exporter", "loan", "repay", "r1", "--amount", "100000"))
    loan = shown("loan", "show", "r1")
    assert len(loan["payments"]) == 1 and loan["total_due"] == loan["outstanding"] + loan["interest_owed"]
    assert "payment #1" in done(cli(None, "loan", "show", "r1"))

    # escrow: open, confirm, confirm again refused
    done(cli("importer", "escrow", "open", "e1", "--seller", "exporter", "--amount", "200000",
             "--expires-at", in_an_hour))  # fmt: skip
    assert shown("escrow", "show", "e1")["hold"]["status"] == "ordered"
    done(cli("importer", "escrow", "confirm", "e1"))
    again = cli("importer", "escrow", "confirm", "e1")
    assert again.returncode == 1 and "ESCROW_CLOSED" in again.stderr, again.stdout + again.stderr
    assert shown("escrow", "show", "e1")["status"] == "confirmed"

    # DvP: terms by the seller, the buyer's leg funded
    height = int(client.get_json("/status")["height"])
    second = ok(cast, client, "carrier", "doc.register", {**register, "file_hash": "ab" * 32,
                "business_key": {"namespace": "MAEU", "reference": f"BL-DVP-{time.time_ns()}"}})  # fmt: skip
    done(cli("exporter", "dvp", "open", "d1", "--seller", "exporter", "--buyer", "importer", "--doc",
             second["doc_id"], "--amount", "300000", "--allocate-by", str(height + 200),
             "--settle-by", str(height + 400)))  # fmt: skip
    done(cli("importer", "dvp", "fund", "d1"))
    assert shown("dvp", "show", "d1")["funded"] is True

    # exposure
    risk = shown("risk", "exporter")
    assert risk["loans"]["count_borrowed"] == 1 and risk["pledged"]["documents_out"] == 1
    assert risk["concentration"]["counterparty_hhi_bp"] == 10_000
    assert "counterparty exporter" in done(cli(None, "risk", "bank-a"))
