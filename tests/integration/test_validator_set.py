"""Validator-set changes voted by the council reach consensus (architecture: Consensus, Nodes),
end to end.

Four validator nodes on the real Tansu broker, plus a fifth node whose key is in no genesis
validator set: it follows as an observer. The council adds its key and removes validator 0;
once both changes are in effect, nodes 0 and 1 are killed and the chain still seals: only
possible if the former observer really votes. Light-client proofs and the audit follow the set
from the genesis file alone.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.mesh import MeshProcesses, running_nodes
from tests.integration.test_registry import Cast, bill_of_lading, send
from traco.cli.client import Client
from traco.core import crypto
from traco.core.lightclient import verify_tx_proof
from traco.schemas.genesis import ValidatorPower, validator_set, validator_set_hash
from traco.schemas.proof import TxProof
from traco.services.consensus.genesis import DataDir, init_chain, load_genesis

pytestmark = pytest.mark.integration

NEW = 4  # the observer node (n4) whose key the council adds to the validator set


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("validator-set")
    chain_id = f"vs{int(time.time() * 1000) % 10**8}"
    genesis = init_chain(data_dir, chain_id, 4, observers=1)
    with running_nodes(data_dir, tansu_broker, genesis) as processes:
        yield processes


def validator_pub(mesh: MeshProcesses, index: int) -> str:
    """The key of node ``n<index>`` (a validator key for 0..3, the observer's for 4)."""
    paths = DataDir(mesh.data_dir)
    path = paths.validator_key(index) if index < NEW else paths.keys / f"n{index}.key"
    return crypto.public_key(crypto.read_key_file(path)).hex()


def council_passes(client: Client, cast: Cast, action: dict[str, Any]) -> int:
    """Propose ``action`` and vote it through (two of three council members); the height at
    which it passed."""
    proposed = send(client, cast.key("council-1"), "party.propose", {"action": action})
    assert proposed.accepted, proposed
    proposal_id = proposed.result["proposal_id"]
    assert send(client, cast.key("council-1"), "party.vote", {"proposal_id": proposal_id, "choice": "yes"}).accepted
    deciding = send(client, cast.key("council-2"), "party.vote", {"proposal_id": proposal_id, "choice": "yes"})
    assert deciding.accepted and deciding.result.get("status") == "passed", deciding
    assert deciding.height is not None
    return deciding.height


def wait_for_height(client: Client, cast: Cast, height: int) -> None:
    """Seal blocks (each a document registration) until the chain reaches ``height``."""
    deadline = time.monotonic() + 120
    while client.get_json("/status")["height"] < height:
        assert time.monotonic() < deadline, f"the chain did not reach height {height}"
        bill_of_lading(cast, client, f"filler-{time.monotonic_ns()}")


def test_the_council_changes_the_validator_set_and_consensus_follows(mesh: MeshProcesses) -> None:
    client = mesh.client()
    cast = Cast(mesh.data_dir)
    genesis = load_genesis(DataDir(mesh.data_dir).genesis)
    original = validator_set(genesis.validators)
    new_key = validator_pub(mesh, NEW)
    removed_key = validator_pub(mesh, 0)

    passed = council_passes(client, cast, {"type": "add_validator", "public_key": new_key, "power": 1})
    wait_for_height(client, cast, passed + 3)
    with_new = validator_set([*original, ValidatorPower(public_key=new_key, power=1)])
    announcing = client.get_json(f"/blocks/{passed + 1}")
    assert [v["public_key"] for v in announcing["next_validators"]] == [v.public_key for v in with_new]
    assert announcing["header"]["validator_set_hash"] == validator_set_hash(original)
    assert client.get_json(f"/blocks/{passed + 2}")["header"]["validator_set_hash"] == validator_set_hash(with_new)
    assert {v["public_key"] for v in client.get_json("/validators")["validators"]} == {v.public_key for v in with_new}
    # the party service answers with the same schedule
    party_url = f"http://127.0.0.1:{mesh.api_port + 1}"
    with Client(party_url) as party:
        scheduled = party.get_json(f"/validators?height={passed + 2}")
        assert party.get_json("/namespaces/maeu") == {"namespace": "MAEU", "member_id": "carrier"}
    assert {v["public_key"] for v in scheduled} == {v.public_key for v in with_new}

    passed = council_passes(client, cast, {"type": "remove_validator", "public_key": removed_key})
    wait_for_height(client, cast, passed + 3)
    without_0 = validator_set(v for v in with_new if v.public_key != removed_key)
    assert client.get_json(f"/blocks/{passed + 2}")["header"]["validator_set_hash"] == validator_set_hash(without_0)

    # validator 0 is out of the set and node 1 crashes: three of the four left are up, and one
    # of those three is the former observer, so the chain seals only if it votes; from here on
    # the test reads node n2's API (node n0's process is gone)
    mesh.kill("node-n0")
    mesh.kill("node-n1")
    with Client(f"http://127.0.0.1:{mesh.api_port + 20}") as client:
        doc_id, _ = bill_of_lading(cast, client, "after-the-change")
        status = client.get_json("/status")
        last = client.get_json(f"/blocks/{status['height']}")
        assert new_key in {s["validator"] for s in last["commit"]["signatures"]}
        assert removed_key not in {s["validator"] for s in last["commit"]["signatures"]}
        assert doc_id

        # a light client that trusts only the genesis file follows both changes
        tx_id = last["txs"][0]["tx_id"] if last["txs"] else None
        height = status["height"]
        while tx_id is None:
            height -= 1
            block = client.get_json(f"/blocks/{height}")
            tx_id = block["txs"][0]["tx_id"] if block["txs"] else None
        proof = TxProof.model_validate(client.get_json(f"/proofs/{tx_id}"))
        assert len(proof.validator_changes) == 2
        assert verify_tx_proof(proof, genesis.validators, genesis.chain_id) is None
        stripped = proof.model_copy(update={"validator_changes": proof.validator_changes[:1]})
        assert "another validator set" in (verify_tx_proof(stripped, genesis.validators, genesis.chain_id) or "")

        # the auditor walks the same changes from the genesis file
        audit = [
            sys.executable,
            "-m",
            "traco.cli.main",
            "--node",
            "n2",
            "audit",
            "verify",
            "--data-dir",
            str(mesh.data_dir),
        ]
        done = subprocess.run(audit, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "OK" in done.stdout
