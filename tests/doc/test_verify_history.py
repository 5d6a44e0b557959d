"""``traco doc verify`` proves each history entry the doc service shows (architecture: Kafka is not trusted): the proof
must be for that entry's transaction, on the trusted chain, accepted by doc, and the proven
transaction must say what the entry says. The doc service's answer is never trusted."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.consensus.servicechain import ServiceChain
from traco.schemas.proof import TxProof
from traco.services.consensus.api import build_proof
from traco.services.doc import client as doc_client
from traco.services.doc.client import verify_history


def pledged_chain(data_dir: Path, chain_id: str = "svc") -> tuple[ServiceChain, dict[str, str]]:
    """A development chain (doc rules version 2): two B/Ls; bl-1 offered to bank-a, which
    accepts (bank-b's offer in the same block as the acceptance is refused ALREADY_PLEDGED),
    released, a milestone, a transfer; bl-2 offered to bank-b."""
    chain = ServiceChain(data_dir, chain_id)
    bl1, bl2 = chain.register("bl-1"), chain.register("bl-2")
    chain.seal([bl1, bl2])
    pledge = chain.pledge(bl1.tx_id)
    chain.seal([pledge, chain.pledge(bl2.tx_id, financier="bank-b", amount=5_000)])
    accept = chain.tx("bank-a", "doc.pledge.accept", {"doc_id": bl1.tx_id})
    twice = chain.pledge(bl1.tx_id, financier="bank-b")
    chain.seal([accept, twice])
    release = chain.tx("bank-a", "doc.release", {"doc_id": bl1.tx_id})
    milestone = chain.tx("carrier", "doc.event", {"doc_id": bl1.tx_id, "milestone": "loaded", "location": "CNSHA"})
    chain.seal([release, milestone])
    chain.seal([chain.tx("exporter", "doc.transfer", {"doc_id": bl1.tx_id, "to": chain.pub("importer")})])
    chain.seal([])  # seals the results of the transfer's block
    assert chain.receipt(twice.tx_id).code == "ALREADY_PLEDGED"
    ids = {"bl1": bl1.tx_id, "bl2": bl2.tx_id, "pledge": pledge.tx_id, "accept": accept.tx_id, "twice": twice.tx_id}
    return chain, {**ids, "release": release.tx_id, "milestone": milestone.tx_id}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceChain, dict[str, str]]]:
    chain, ids = pledged_chain(tmp_path_factory.mktemp("verify"))
    yield chain, ids
    chain.close()


@pytest.fixture
def chain(built: tuple[ServiceChain, dict[str, str]]) -> ServiceChain:
    return built[0]


@pytest.fixture
def ids(built: tuple[ServiceChain, dict[str, str]]) -> dict[str, str]:
    return built[1]


def proofs(chain: ServiceChain, swap: dict[str, str] | None = None) -> Any:
    """The consensus API's ``/proofs/{tx_id}``; ``swap`` serves another transaction's proof."""

    def proof_of(tx_id: str) -> TxProof | None:
        return build_proof(SimpleNamespace(ledger=chain.ledger), (swap or {}).get(tx_id, tx_id))  # type: ignore[arg-type]

    return proof_of


def report(chain: ServiceChain) -> dict[str, Any]:
    found = chain.doc_report("bl-1")
    assert found is not None
    return copy.deepcopy(found)


def verify(chain: ServiceChain, found: dict[str, Any], proof_of: Any = None) -> tuple[list[Any], str | None]:
    return verify_history(found, proof_of or proofs(chain), chain.genesis.validators, chain.genesis.chain_id)


def entry_of(found: dict[str, Any], tx_id: str) -> dict[str, Any]:
    return next(e for e in found["history"] if e["tx_id"] == tx_id)


def test_an_honest_history_is_proven_entry_by_entry(chain: ServiceChain, ids: dict[str, str]) -> None:
    found = report(chain)
    verdicts, problem = verify(chain, found)
    assert problem is None
    assert [(v.type, v.status) for v in verdicts] == [
        ("DocumentRegistered", "proven"),
        ("PledgeOffered", "proven"),
        ("DocumentPledged", "proven"),  # the financier's acceptance
        ("PledgeReleased", "proven"),
        ("MilestoneRecorded", "proven"),
        ("TitleTransferred", "proven"),
    ]
    assert ids["twice"] not in {v.tx_id for v in verdicts}  # refused: no history entry


def test_a_valid_proof_of_another_transaction_is_refused(chain: ServiceChain, ids: dict[str, str]) -> None:
    found = report(chain)
    # the API answers the registration's proof with the (valid) proof of another registration
    verdicts, problem = verify(chain, found, proofs(chain, swap={ids["bl1"]: ids["bl2"]}))
    assert verdicts[0].status == "failed"
    assert verdicts[0].reason == f"the proof is for transaction {ids['bl2'][:16]}…, not {ids['bl1'][:16]}…"
    assert problem is not None and "no proven history entry registers" in problem


def test_an_entry_pointing_at_another_real_transaction_is_refused(chain: ServiceChain, ids: dict[str, str]) -> None:
    found = report(chain)
    # the service claims bl-1's pledge was the other document's (real, accepted) offer to bank-b
    other_pledge = chain.blocks[1].txs[1].tx_id
    entry_of(found, ids["pledge"])["tx_id"] = other_pledge
    verdicts, _ = verify(chain, found)
    (pledged,) = [v for v in verdicts if v.type == "PledgeOffered"]
    assert pledged.status == "failed"
    assert pledged.reason.startswith("the entry says doc_id")


def test_a_payload_that_differs_from_the_entry_is_refused(chain: ServiceChain, ids: dict[str, str]) -> None:
    found = report(chain)
    entry_of(found, ids["pledge"])["details"]["amount"] = 2_000_000
    verdicts, _ = verify(chain, found)
    (pledged,) = [v for v in verdicts if v.type == "PledgeOffered"]
    assert pledged.reason == "the entry says amount 2000000, the proven transaction 1000000"

    found = report(chain)
    entry_of(found, ids["pledge"])["details"]["financier"]["key"] = chain.pub("bank-b")
    verdicts, _ = verify(chain, found)
    assert [v.reason for v in verdicts if v.status == "failed"] == [
        f"the entry says financier key {chain.pub('bank-b')!r}, the proven transaction {chain.pub('bank-a')!r}"
    ]

    found = report(chain)
    found["history"][0]["details"]["file_hash"] = "00" * 32  # the registration of another file
    verdicts, problem = verify(chain, found)
    assert verdicts[0].reason.startswith("the entry says file_hash '0000")
    assert problem is not None


def test_a_refused_transaction_shown_as_an_entry_is_refused(chain: ServiceChain, ids: dict[str, str]) -> None:
    found = report(chain)
    claimed = entry_of(found, ids["pledge"])
    claimed["tx_id"] = ids["twice"]  # bank-b's offer, which doc refused as ALREADY_PLEDGED
    claimed["details"]["financier"]["key"] = chain.pub("bank-b")
    verdicts, _ = verify(chain, found)
    (pledged,) = [v for v in verdicts if v.type == "PledgeOffered"]
    assert pledged.reason == "the proven receipt has status 'rejected', not the expected 'accepted'"


def test_an_acceptance_is_proven_as_the_financiers_own(chain: ServiceChain, ids: dict[str, str]) -> None:
    found = report(chain)
    accepted = entry_of(found, ids["accept"])
    accepted["by"]["key"] = chain.pub("bank-b")  # the service claims bank-b accepted
    verdicts, _ = verify(chain, found)
    (pledged,) = [v for v in verdicts if v.type == "DocumentPledged"]
    assert pledged.reason.startswith("the entry says sender key")
    found = report(chain)
    entry_of(found, ids["accept"])["tx_id"] = ids["release"]  # a release shown as the acceptance
    verdicts, _ = verify(chain, found)
    (pledged,) = [v for v in verdicts if v.type == "DocumentPledged"]
    assert pledged.status == "failed"


def test_a_proof_from_another_chain_is_refused(chain: ServiceChain, ids: dict[str, str], tmp_path: Path) -> None:
    other, other_ids = pledged_chain(tmp_path, chain_id="elsewhere")
    try:
        found = report(chain)
        verdicts, _ = verify(chain, found, proofs(other, swap={ids["bl1"]: other_ids["bl1"]}))
        assert verdicts[0].reason == "the proof is for chain 'elsewhere', not 'svc'"
    finally:
        other.close()


def test_hidden_or_foreign_entries_are_reported(chain: ServiceChain, ids: dict[str, str]) -> None:
    found = report(chain)
    del found["history"][3]  # the release: the document looks still pledged
    verdicts, problem = verify(chain, found)
    assert all(v.status == "proven" for v in verdicts)
    assert problem == "the history's entries are not numbered 0 to 4 in order: some may be hidden"

    found = report(chain)
    entry_of(found, ids["milestone"])["doc_id"] = ids["bl2"]
    verdicts, _ = verify(chain, found)
    assert [v.reason for v in verdicts if v.status == "failed"] == [
        f"the entry is about {ids['bl2'][:16]}…, not this document"
    ]


def test_an_entry_whose_outcome_is_not_sealed_yet_is_pending(chain: ServiceChain) -> None:
    found = report(chain)

    def ordered_only(tx_id: str) -> TxProof | None:
        proof = proofs(chain)(tx_id)
        return None if proof is None else proof.model_copy(update={"result": None})

    verdicts, _ = verify(chain, found, ordered_only)
    assert {v.status for v in verdicts} == {"pending"}
    assert verdicts[0].reason == "ordered in block 1; its outcome is proven once block 2 is sealed"


class FakeApi:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def get_json(self, path: str, allow_404: bool = False) -> Any:
        return self.answer(path)

    def __enter__(self) -> FakeApi:  # the command closes its clients
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_the_cli_prints_a_verdict_per_entry(
    chain: ServiceChain, ids: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from traco.cli import doc as doc_cli
    from traco.cli.main import app
    from traco.services.consensus.api import build_proof

    bl = tmp_path / "bl.pdf"
    bl.write_bytes(b"file bl-1")
    found = report(chain)

    def chain_api(path: str) -> Any:
        proof = build_proof(SimpleNamespace(ledger=chain.ledger), path.rsplit("/", 1)[1])  # type: ignore[arg-type]
        return None if proof is None else proof.model_dump(mode="json")

    monkeypatch.setattr(doc_cli, "client_for", lambda *_: FakeApi(chain_api))
    monkeypatch.setattr(doc_cli, "service_client", lambda *_: FakeApi(lambda _path: copy.deepcopy(found)))
    monkeypatch.setattr(doc_client, "file_sha256", lambda _file: found["file_hash"])
    runner = CliRunner()
    result = runner.invoke(app, ["doc", "verify", str(bl), "--data-dir", str(chain.data_dir)])
    assert result.exit_code == 0, result.output
    assert "every history entry proven" in result.output
    assert result.output.count(" proven") >= 5

    entry_of(found, ids["pledge"])["details"]["amount"] = 7
    result = runner.invoke(app, ["doc", "verify", str(bl), "--data-dir", str(chain.data_dir)])
    assert result.exit_code == 1
    assert "failed: the entry says amount 7, the proven transaction 1000000" in result.output
