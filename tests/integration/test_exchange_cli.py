"""The exchange from the command line, on a real node and the real Tansu broker: custodians attest
and mint TRC, bank-a offers COCO, the importer buys across it; refusals (lot size, another
member's order, a self-match) print their receipt codes and exit 1; ``traco market`` shows the
book, the trade and the volume the node's trade replica executed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.integration.mesh import MeshProcesses, running_nodes
from traco.services.consensus.genesis import DataDir, init_chain

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("exchange")
    genesis = init_chain(data_dir, f"ex{int(time.time() * 1000) % 10**8}", 1)
    with running_nodes(data_dir, tansu_broker, genesis) as processes:
        yield processes


def test_orders_from_the_command_line(node: MeshProcesses) -> None:
    keys = DataDir(node.data_dir).keys

    def cli(who: str | None, *args: str) -> subprocess.CompletedProcess[str]:
        signer = [] if who is None else ["--key", str(keys / f"{who}.key")]
        command = [sys.executable, "-m", "traco.cli.main", *args, *signer, "--data-dir", str(node.data_dir)]
        env = {**os.environ, "COLUMNS": "200"}
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)

    def accepted(who: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = cli(who, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def refused(who: str, code: str, *args: str) -> None:
        done = cli(who, *args)
        assert done.returncode == 1 and code in done.stderr, done.stdout + done.stderr

    for custodian in ("custodian", "custodian-2"):
        accepted(custodian, "trc", "attest", "--reserve", "100000000", "--seq", "1")
    accepted("custodian", "trc", "mint", "importer", "1000000")
    accepted("bank-a", "order", "place", "COCO/TRC", "sell", "150", "30000", "--id", "a1")
    bought = accepted("importer", "order", "place", "COCO-TRC", "buy", "160", "20000", "--id", "b1")
    assert '"filled"' in bought.stdout, bought.stdout
    refused("importer", "LOT_SIZE", "order", "place", "COCO/TRC", "buy", "160", "15000")
    refused("importer", "NOT_ORDER_OWNER", "order", "cancel", "a1")
    refused("bank-a", "SELF_MATCH", "order", "place", "COCO/TRC", "buy", "150", "10000")
    shown = cli(None, "market", "COCO/TRC", "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    market = json.loads(shown.stdout)
    assert market["asks"] == [{"price": 150, "qty": 10_000, "orders": 1}] and market["bids"] == []
    assert market["volume"] == {"trades": 1, "base": 20_000, "quote": 300}
    (trade,) = market["trades"]
    assert (trade["seller"], trade["buyer"], trade["price"]) == ("bank-a", "importer", 150)
    accepted("bank-a", "order", "cancel", "a1")
    balance = cli(None, "balance", "importer", "--token", "COCO")
    assert "COCO     total 20000  held 0" in balance.stdout, balance.stdout
    after = json.loads(cli(None, "market", "COCO/TRC", "--json").stdout)
    assert after["asks"] == [] and after["last_price"] == 150
