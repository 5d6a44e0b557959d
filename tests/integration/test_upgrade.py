"""A chain made before trade existed gains it by a council upgrade, without a new chain: trade's
kinds are refused until the activation height, then trade seeds from the upgrade's section
and executes, on every node alike (decision 0020)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration.mesh import MeshProcesses, running_nodes
from tests.integration.test_registry import Cast, send
from tests.integration.test_trade import trade_digests, until
from traco.cli.client import ApiError, Client
from traco.core.adapters.factory import StorageConfig, open_state_store
from traco.services.consensus.genesis import DEVELOPMENT_COCO_ACCOUNTS, DEVELOPMENT_CUSTODIANS, init_chain
from traco.services.trade.genesis import development_section

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("upgrade")
    genesis = init_chain(data_dir, f"up{int(time.time() * 1000) % 10**8}", 4, services=("party", "doc"))
    assert "trade" not in genesis.params.services and not any(k.startswith("trade.") for k in genesis.params.kinds)
    with running_nodes(data_dir, tansu_broker, genesis) as processes:
        yield processes


def test_a_council_upgrade_turns_trade_on_at_its_height_on_every_node(mesh: MeshProcesses) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    coco = {"token": "COCO", "to": "importer", "amount": 5}
    with pytest.raises(ApiError, match="UNKNOWN_KIND"):  # the API refuses it before ordering
        client.send(cast.key("bank-a"), "trade.transfer", coco)

    section = development_section(custodians=DEVELOPMENT_CUSTODIANS, coco_accounts=DEVELOPMENT_COCO_ACCOUNTS)
    activation = client.get_json("/status")["height"] + 8
    action = {"type": "upgrade", "name": "trade-1", "height": activation, "activate": ["trade"]}
    proposed = send(
        client, cast.key("council-1"), "party.propose", {"action": {**action, "sections": {"trade": section}}}
    )
    assert proposed.accepted, proposed
    proposal = proposed.result["proposal_id"]
    for seat in ("council-1", "council-2"):
        assert send(client, cast.key(seat), "party.vote", {"proposal_id": proposal, "choice": "yes"}).accepted
    until(lambda: client.get_json("/status")["height"] >= activation, 90, "the activation height")

    moved = send(client, cast.key("bank-a"), "trade.transfer", coco)
    assert moved.accepted and moved.service == "trade" and (moved.height or 0) >= activation, moved
    with Client(f"http://127.0.0.1:{mesh.api_port + 3}") as trade:
        assert trade.get_json("/accounts/importer")["balances"]["COCO"]["total"] == 5
        assert trade.get_json("/invariants")["problems"] == []
    height = client.get_json("/status")["height"]
    digests = [trade_digests(mesh, node, height) for node in ("n0", "n1", "n2", "n3")]
    assert all(d == digests[0] for d in digests)
    store = open_state_store(StorageConfig(backend="sqlite", data_dir=mesh.data_dir), "n0-trade", readonly=True)
    try:
        assert store.events(activation - 1) == []  # dormant until its height
        seeded = store.events(activation)
        assert seeded and all(e.tx_index is None for e in seeded)  # the section, as events, first
    finally:
        store.close()
