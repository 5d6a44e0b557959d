"""party and doc end to end: four validators, the party and doc services and the API on the
real Tansu broker; documents cannot be financed twice; the council admits a member on the
chain; a killed service resumes and equals a fresh rebuild, digest for digest."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from tests.integration.mesh import MeshProcesses, running_nodes
from tests.tampering import replace_at, scalar_paths
from traco.cli.client import Client
from traco.core import crypto
from traco.core.adapters.factory import StorageConfig, open_state_store
from traco.core.lightclient import verify_state_value_proof
from traco.core.service_runtime import checkpoint_key
from traco.schemas.receipt import Receipt
from traco.schemas.state_proof import StateValueProof
from traco.services import registry
from traco.services.consensus.genesis import DataDir, init_chain, load_genesis
from traco.services.party.proofs import register_message

pytestmark = pytest.mark.integration


class Cast:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def key(self, name: str) -> bytes:
        return crypto.read_key_file(DataDir(self.data_dir).keys / f"{name}.key")

    def pub(self, name: str) -> str:
        return crypto.public_key(self.key(name)).hex()


def send(client: Client, key: bytes, kind: str, payload: dict[str, Any]) -> Receipt:
    tx = client.send(key, kind, payload)
    receipt = client.wait_receipt(tx.tx_id, 60)
    assert receipt is not None, f"no receipt for {kind}"
    return receipt


@pytest.fixture(scope="module")
def mesh(tansu_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshProcesses]:
    data_dir = tmp_path_factory.mktemp("registry")
    chain_id = f"rg{int(time.time() * 1000) % 10**8}"
    genesis = init_chain(data_dir, chain_id, 4)
    assert genesis.params.services == registry.ORDER
    with running_nodes(data_dir, tansu_broker, genesis) as processes:
        yield processes


def member_id(party: Any) -> str:
    """Parties appear as ``{"member_id", "key"}``: title follows the member, not one key."""
    return str(party["member_id"])


def bill_of_lading(cast: Cast, client: Client, label: str) -> tuple[str, str]:
    file_hash = hashlib.sha256(f"B/L {label} {time.time_ns()}".encode()).hexdigest()
    payload = {
        "file_hash": file_hash,
        "type": "bill_of_lading",
        "business_key": {"namespace": "MAEU", "reference": f"BL-{label}-{time.time_ns()}"},
        "holder": cast.pub("exporter"),
    }
    receipt = send(client, cast.key("carrier"), "doc.register", payload)
    assert receipt.accepted and receipt.service == "doc", receipt
    return receipt.result["doc_id"], file_hash


def test_a_document_cannot_be_financed_twice(mesh: MeshProcesses) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    doc_id, file_hash = bill_of_lading(cast, client, "finance")
    expires = int(time.time() * 1000) + 86_400_000

    def pledge(to: str) -> Receipt:
        payload = {
            "doc_id": doc_id,
            "financier": cast.pub(to),
            "amount": 1_000_000,
            "currency": "USD",
            "expires_at": expires,
        }
        return send(client, cast.key("exporter"), "doc.pledge", payload)

    def accept(by: str) -> Receipt:
        return send(client, cast.key(by), "doc.pledge.accept", {"doc_id": doc_id})

    assert pledge("bank-a").accepted  # an offer: it binds no one yet
    assert pledge("bank-b").accepted  # another offer, as long as none is accepted
    assert accept("bank-a").accepted
    assert accept("bank-b").code == "ALREADY_PLEDGED"  # the duplicate-financing check
    assert pledge("bank-b").code == "ALREADY_PLEDGED"
    transfer = send(client, cast.key("exporter"), "doc.transfer", {"doc_id": doc_id, "to": cast.pub("importer")})
    assert not transfer.accepted
    assert send(client, cast.key("bank-b"), "doc.release", {"doc_id": doc_id}).code != "OK"  # not its pledge
    assert send(client, cast.key("bank-a"), "doc.release", {"doc_id": doc_id}).accepted
    assert pledge("bank-b").accepted and accept("bank-b").accepted

    again = send(
        client,
        cast.key("carrier"),
        "doc.register",
        {
            "file_hash": file_hash,
            "type": "bill_of_lading",
            "business_key": {"namespace": "MAEU", "reference": "OTHER-1"},
        },
    )
    assert again.code == "DUPLICATE_DOCUMENT"

    doc_api = f"http://127.0.0.1:{mesh.api_port + 2}"
    deadline = time.monotonic() + 30
    while True:  # the doc API answers from its own state, a moment after the receipt
        verified = httpx.get(f"{doc_api}/documents/by-hash/{file_hash}", timeout=10).json()
        if (verified.get("pledged") and verified["pledge"]["financier"] == "bank-b") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert verified["registered"] is True
    assert member_id(verified["holder"]) == "exporter" and member_id(verified["issuer"]) == "carrier"
    assert verified["pledged"] is True and member_id(verified["pledge"]["financier"]) == "bank-b"
    types = [h["type"] for h in verified["history"]]
    assert types[0] == "DocumentRegistered" and types.count("DocumentPledged") == 2
    assert "PledgeReleased" in types
    assert all(isinstance(h["height"], int) and h["tx_id"] for h in verified["history"])
    upload = httpx.post(f"{doc_api}/documents/verify", content=b"never registered", timeout=10).json()
    assert upload == {"file_hash": hashlib.sha256(b"never registered").hexdigest(), "registered": False}


def test_the_council_admits_a_member_who_can_then_transact(mesh: MeshProcesses) -> None:
    cast, client = Cast(mesh.data_dir), mesh.client()
    chain_id = client.get_json("/status")["chain_id"]
    applicant = crypto.generate_private_key()
    applicant_pub = crypto.public_key(applicant).hex()
    proof = crypto.sign(applicant, register_message(chain_id, "Acme Trading", applicant_pub)).hex()

    before = httpx.post(
        f"{mesh.url}/tx",
        content=_signed(applicant, chain_id, "chain.anchor", 1, {"digest": "ab" * 32, "label": "too early"}),
        timeout=10,
    )
    assert before.status_code == 403 and before.json()["detail"]["code"] == "NOT_ADMITTED"

    registered = send(
        client,
        cast.key("exporter"),
        "party.register",
        {
            "member_id": "acme",
            "organisation": "Acme Trading",
            "jurisdiction": "SG",
            "roles": ["importer"],
            "keys": [{"public_key": applicant_pub, "proof": proof}],
        },
    )
    assert registered.accepted, registered
    proposed = send(
        client, cast.key("council-1"), "party.propose", {"action": {"type": "admit_member", "member_id": "acme"}}
    )
    assert proposed.accepted, proposed
    proposal_id = proposed.result["proposal_id"]
    assert send(client, cast.key("exporter"), "party.vote", {"proposal_id": proposal_id, "choice": "yes"}).code in (
        "NOT_PERMITTED",
        "NOT_A_MEMBER",
    )
    assert send(client, cast.key("council-1"), "party.vote", {"proposal_id": proposal_id, "choice": "yes"}).accepted
    assert (
        send(client, cast.key("council-1"), "party.vote", {"proposal_id": proposal_id, "choice": "yes"}).code
        == "ALREADY_VOTED"
    )
    assert send(client, cast.key("council-2"), "party.vote", {"proposal_id": proposal_id, "choice": "yes"}).accepted

    party_api = f"http://127.0.0.1:{mesh.api_port + 1}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        member = httpx.get(f"{party_api}/members/acme", timeout=10).json()
        if member.get("status") == "admitted":
            break
        time.sleep(0.2)
    assert member["status"] == "admitted"
    # The validators' admission list follows the party service: the new key may now submit.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = httpx.post(
            f"{mesh.url}/tx",
            content=_signed(applicant, chain_id, "chain.anchor", 1, {"digest": "cd" * 32, "label": "admitted"}),
            timeout=10,
        )
        if answer.status_code == 202:
            break
        time.sleep(0.3)
    assert answer.status_code == 202, answer.text
    receipt = client.wait_receipt(answer.json()["tx_id"], 60)
    assert receipt is not None and receipt.accepted


def _signed(key: bytes, chain_id: str, kind: str, nonce: int, payload: dict[str, Any]) -> bytes:
    from traco.schemas.tx import sign_tx

    return sign_tx(key, chain_id, kind, nonce, payload).model_dump_json().encode()


def test_a_killed_node_resumes_and_equals_the_others_and_a_replay(mesh: MeshProcesses) -> None:
    """A node killed mid-stream (SIGKILL) misses blocks; restarted, it syncs them, its services
    execute them, and every digest and root equals the other nodes' and an auditor's replay."""
    cast, client = Cast(mesh.data_dir), mesh.client()
    bill_of_lading(cast, client, "before-kill")
    mesh.kill("node-n3")
    pending = [
        client.send(
            cast.key("carrier"),
            "doc.register",
            {
                "file_hash": hashlib.sha256(f"while down {i} {time.time_ns()}".encode()).hexdigest(),
                "type": "bill_of_lading",
                "business_key": {"namespace": "MAEU", "reference": f"DOWN-{i}-{time.time_ns()}"},
            },
        )
        for i in range(3)
    ]
    receipts = [client.wait_receipt(tx.tx_id, 60) for tx in pending]  # three nodes of four seal
    assert all(r is not None and r.accepted for r in receipts), receipts
    height = max(r.height or 0 for r in receipts if r is not None)
    mesh.start_node("n3")

    config = StorageConfig(backend="sqlite", data_dir=mesh.data_dir)
    deadline = time.monotonic() + 60
    while True:
        resumed = open_state_store(config, "n3-doc", readonly=True)
        try:
            caught_up = resumed.height() >= height
            if caught_up or time.monotonic() > deadline:
                digests = [resumed.state_digest(h) for h in range(1, height + 1)]
                checkpoints = [resumed.get(checkpoint_key(h)) for h in range(1, height + 1)]
                break
        finally:
            resumed.close()
        time.sleep(0.5)
    assert caught_up, "node n3 did not catch up"
    reference = open_state_store(config, "n0-doc", readonly=True)
    try:
        assert digests == [reference.state_digest(h) for h in range(1, height + 1)]
        assert checkpoints == [reference.get(checkpoint_key(h)) for h in range(1, height + 1)]  # roots too
    finally:
        reference.close()
    audit = [
        sys.executable,
        "-m",
        "traco.cli.main",
        "--node",
        "n3",
        "audit",
        "verify",
        "--data-dir",
        str(mesh.data_dir),
    ]
    done = subprocess.run(audit, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_audit_replays_a_chain_with_services(mesh: MeshProcesses) -> None:
    client = mesh.client()
    cast = Cast(mesh.data_dir)
    bill_of_lading(cast, client, "audited")
    audit = [sys.executable, "-m", "traco.cli.main", "audit", "verify", "--data-dir", str(mesh.data_dir)]
    done = subprocess.run(audit, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout


def test_the_readme_document_and_council_tour_works_from_the_command_line(mesh: MeshProcesses, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "traco.cli.main", *args, "--data-dir", str(mesh.data_dir)]
        env = {**os.environ, "COLUMNS": "200"}  # rich wraps long ids at the terminal width
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)

    keys = DataDir(mesh.data_dir).keys
    bl = tmp_path / "bl.pdf"
    bl.write_bytes(f"bill of lading {time.time_ns()}".encode())
    reference = f"MAEU/BL{time.time_ns()}"
    registered = cli(
        "doc", "register", str(bl), "--type", "bill_of_lading", "--business-key", reference,
        "--holder", "exporter", "--key", str(keys / "carrier.key"),
    )  # fmt: skip
    assert registered.returncode == 0, registered.stdout + registered.stderr
    doc_id = registered.stdout.split("document ")[-1].split()[0]

    first = cli("doc", "pledge", doc_id, "--to", "bank-a", "--amount", "1000000", "--key", str(keys / "exporter.key"))
    assert first.returncode == 0, first.stdout + first.stderr
    accepted = cli("doc", "accept", doc_id, "--key", str(keys / "bank-a.key"))
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    second = cli("doc", "pledge", doc_id, "--to", "bank-b", "--amount", "1000000", "--key", str(keys / "exporter.key"))
    assert second.returncode == 1 and "ALREADY_PLEDGED" in second.stdout + second.stderr
    again = cli(
        "doc", "register", str(bl), "--type", "bill_of_lading", "--business-key", f"{reference}-2",
        "--key", str(keys / "carrier.key"),
    )  # fmt: skip
    assert again.returncode == 1 and "DUPLICATE_DOCUMENT" in again.stdout + again.stderr
    assert cli("doc", "release", doc_id, "--key", str(keys / "bank-a.key")).returncode == 0

    verified = cli("doc", "verify", str(bl))
    assert verified.returncode == 0 and "every history entry proven" in verified.stdout, verified.stdout
    shown = cli("doc", "show", doc_id, "--json")
    document = json.loads(shown.stdout)
    assert document["document"]["holder"]["member_id"] == "exporter" and document["pledge_in_force"] is None
    assert cli("doc", "show", "0" * 64).returncode == 1

    listed = cli("party", "list")
    assert listed.returncode == 0 and "council-1" in listed.stdout
    action = json.dumps({"type": "grant_role", "member_id": "bank-b", "role": "factor"})
    proposed = cli("party", "propose", "--action", action, "--key", str(keys / "council-1.key"))
    assert proposed.returncode == 0, proposed.stdout + proposed.stderr
    receipt = json.loads(proposed.stdout[proposed.stdout.index("{") :])  # after the tx id line
    proposal_id = str(receipt["result"]["proposal_id"])
    for member in ("council-1", "council-2"):
        voted = cli("party", "vote", proposal_id, "--choice", "yes", "--key", str(keys / f"{member}.key"))
        assert voted.returncode == 0, voted.stdout + voted.stderr
    passed = json.loads(cli("party", "proposals", "--status", "passed", "--json").stdout)
    assert int(proposal_id) in [p["proposal_id"] for p in passed]
    member = json.loads(cli("party", "show", "bank-b", "--json").stdout)
    assert "factor" in member["roles"]
    assert cli("party", "show", "nobody").returncode == 1


def test_a_document_record_is_proven_to_a_light_client_from_the_genesis_alone(mesh: MeshProcesses) -> None:
    """The doc record of a registered document, proven against the signed-over state root of
    a sealed checkpoint: state proof → checkpoint in the next header's results root → commit."""
    cast, client = Cast(mesh.data_dir), mesh.client()
    doc_id, _ = bill_of_lading(cast, client, "proven")
    bill_of_lading(cast, client, "one more block")  # the record's height is now provable
    genesis = load_genesis(DataDir(mesh.data_dir).genesis)
    key = f"doc/{doc_id}"
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(f"{mesh.url}/state/doc/proof", params={"key": key}, timeout=10)
        proof = StateValueProof.model_validate(answer.json()) if answer.status_code == 200 else None
        if (proof is not None and proof.value is not None) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert proof is not None and proof.value is not None, answer.text
    assert verify_state_value_proof(proof, genesis.validators, genesis.chain_id, "doc", key) is None
    assert json.loads(bytes.fromhex(proof.value))["doc_id"] == doc_id
    # a proof binds exactly its claim
    other_value = proof.model_copy(update={"value": b"{}".hex()})
    assert "state" in (verify_state_value_proof(other_value, genesis.validators, genesis.chain_id, "doc", key) or "")
    assert verify_state_value_proof(proof, genesis.validators, genesis.chain_id, "doc", "doc/other") is not None
    assert verify_state_value_proof(proof, genesis.validators, genesis.chain_id, "party", key) is not None
    assert verify_state_value_proof(proof, genesis.validators, "elsewhere", "doc", key) is not None
    # a value that is not bytes as hex is refused where the proof is read, and by the verifier
    with pytest.raises(ValidationError, match="value"):
        StateValueProof.model_validate({**answer.json(), "value": proof.value + "x"})
    not_hex = proof.model_copy(update={"value": proof.value + "x"})
    assert verify_state_value_proof(not_hex, genesis.validators, genesis.chain_id, "doc", key) == (
        "the proof's value is not hex"
    )
    # any one field changed to anything that still parses: a verdict, never an exception
    rng = random.Random(7)
    body = answer.json()
    fields = scalar_paths(body)
    replacements: list[object] = ["", "x", "00", "ab" * 32, "ff" * 64, 0, -1, 2**63, None, True, "doc/other"]
    for _ in range(400):
        tampered = replace_at(body, rng.choice(fields), rng.choice(replacements))
        try:
            candidate = StateValueProof.model_validate(tampered)
        except ValidationError:
            continue
        verdict = verify_state_value_proof(candidate, genesis.validators, genesis.chain_id, "doc", key)
        assert verdict is None or isinstance(verdict, str)
    absent = httpx.get(f"{mesh.url}/state/doc/proof", params={"key": "doc/" + "0" * 64}, timeout=10).json()
    absent_proof = StateValueProof.model_validate(absent)
    assert absent_proof.value is None
    assert (
        verify_state_value_proof(absent_proof, genesis.validators, genesis.chain_id, "doc", "doc/" + "0" * 64) is None
    )


def test_the_nodes_are_registered_on_the_chain_bound_to_their_member(mesh: MeshProcesses) -> None:
    with Client(f"http://127.0.0.1:{mesh.api_port + 1}") as party:
        nodes = party.get_json("/nodes")
        n0 = party.get_json("/nodes/n0")
    genesis = load_genesis(DataDir(mesh.data_dir).genesis)
    assert [n["node_id"] for n in nodes] == ["n0", "n1", "n2", "n3"]
    assert n0["member_id"] == "member" and n0["key"] == genesis.validators[0].public_key
