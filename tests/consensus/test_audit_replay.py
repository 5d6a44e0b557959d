"""``traco audit verify --replay`` re-executes the chain and every executing service from the
blocks alone (architecture: Execution) and trusts no node's record: an honest chain audits OK; a node whose
record of a doc receipt differs is named as diverging; a block sealed over results the rules do
not give fails at that block, naming the service and the transaction."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from tests.consensus.servicechain import ServiceChain, registry_chain
from traco.core.adapters.factory import StorageConfig, open_state_store
from traco.schemas.events import BlockProcessed
from traco.schemas.receipt import Receipt, ReceiptStatus
from traco.services.consensus.audit import AuditReport, audit_chain, print_report
from traco.services.consensus.audit_replay import ChainReplay, Difference, ServiceReplay
from traco.services.consensus.results import decode_results, encode_results


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceChain, dict[str, str]]]:
    chain, ids = registry_chain(tmp_path_factory.mktemp("honest"))
    yield chain, ids
    chain.close()


def audit(data_dir: Path, genesis_of: ServiceChain) -> AuditReport:
    return audit_chain(StorageConfig(backend="sqlite", data_dir=data_dir), "node", genesis_of.genesis, workers=1)


def printed(report: AuditReport) -> tuple[int, str]:
    console = Console(record=True, width=400)
    code = print_report(report, console, "node")
    return code, console.export_text()


def test_an_honest_chain_with_party_and_doc_audits_ok(honest: tuple[ServiceChain, dict[str, str]]) -> None:
    chain, _ids = honest
    report = audit(chain.data_dir, chain)
    assert report.ok, (report.problem, report.divergences)
    assert report.replayed == ("chain", "party", "doc", "trade")
    assert (report.height, report.txs) == (6, 12)
    assert report.records_compared == 6
    code, text = printed(report)
    assert code == 0 and "OK: 6 blocks, 12 transactions verified; results replayed (chain, party, doc, trade)" in text


def test_the_replay_gives_what_the_service_runtimes_gave(honest: tuple[ServiceChain, dict[str, str]]) -> None:
    chain, _ids = honest
    replay = ChainReplay(chain.genesis)
    for block in chain.blocks:
        replayed = replay.execute(block)
        for name, runtime in chain.runtimes.items():
            result = replayed.services[name]
            assert list(result.receipts) == runtime.store.receipts(block.height)
            assert result.checkpoint.state_digest == runtime.store.state_digest(block.height)
            assert result.checkpoint == runtime.checkpoint(block.height)  # state and receipts roots too
    for name, runtime in chain.runtimes.items():  # the runtime also keeps bookkeeping and projections
        own = {k: v for k, v in runtime.store.scan("") if not k.startswith(("runtime/", "up/"))}
        rebuilt = {k: v for k, v in replay.services.state(name).scan("") if not k.startswith("runtime/")}
        assert rebuilt == own


def test_a_service_whose_upstream_is_not_replayed_is_refused(honest: tuple[ServiceChain, dict[str, str]]) -> None:
    from traco.services import registry

    chain, _ids = honest
    with pytest.raises(ValueError, match="doc reads party"):
        ServiceReplay([registry.domain("doc")], registry.UPSTREAM, registry.genesis_events(chain.genesis))


def copy_chain(chain: ServiceChain, to: Path, with_record: bool = True) -> Path:
    """The node's files (blocks, and its state with the record unless told otherwise)."""
    (to / "node").mkdir(parents=True)
    shutil.copy(chain.data_dir / "genesis.json", to / "genesis.json")
    for name in ("blocks.sqlite", *(("state.sqlite",) if with_record else ())):
        source = chain.data_dir / "node" / name
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{source}{suffix}").exists():
                shutil.copy(f"{source}{suffix}", to / "node" / f"{name}{suffix}")
    return to


def test_a_node_record_with_a_tampered_doc_receipt_is_that_nodes_divergence(
    honest: tuple[ServiceChain, dict[str, str]], tmp_path: Path
) -> None:
    chain, ids = honest
    copy = copy_chain(chain, tmp_path / "node-copy")
    state = open_state_store(StorageConfig(backend="sqlite", data_dir=copy), "node")
    try:
        receipts, checkpoints = decode_results(state.get_meta("results/2") or b"")
        forged = [
            r.model_copy(update={"code": "ALREADY_PLEDGED", "status": ReceiptStatus.REJECTED, "result": {}})
            if r.tx_id == ids["pledge"]
            else r
            for r in receipts
        ]
        state.set_meta("results/2", encode_results(forged, checkpoints))
    finally:
        state.close()

    report = audit(copy, chain)
    assert report.chain_ok  # the chain itself is sound: its headers commit to what the rules give
    assert not report.ok
    assert report.divergences == [Difference(2, "doc", ids["pledge"], "code ALREADY_PLEDGED", "code OK")]
    code, text = printed(report)
    assert code == 1
    assert "DIVERGED: node's record differs from the replay at 1 height(s) (2)" in text
    assert f"block 2, doc receipt of tx {ids['pledge']}: code ALREADY_PLEDGED recorded, code OK replayed" in text


def refuse(tx_id: str) -> object:
    def tamper(receipt: Receipt) -> Receipt:
        if receipt.tx_id != tx_id:
            return receipt
        return receipt.model_copy(update={"code": "ALREADY_PLEDGED", "status": ReceiptStatus.REJECTED, "result": {}})

    return tamper


def test_a_block_sealed_over_a_wrong_doc_receipt_fails_naming_height_service_and_tx(tmp_path: Path) -> None:
    chain = ServiceChain(tmp_path / "sealed", "forged")
    try:
        bl = chain.register("bl")
        chain.seal([bl, chain.tx("exporter", "chain.anchor", {"digest": "cd" * 32, "label": "x"})])
        pledge = chain.pledge(bl.tx_id)
        chain.seal([pledge], tamper=refuse(pledge.tx_id))  # type: ignore[arg-type]
        chain.seal([chain.tx("bank-a", "doc.release", {"doc_id": bl.tx_id})])  # header 3 commits to the lie
        chain.seal([])
    finally:
        chain.close()

    report = audit(chain.data_dir, chain)
    assert report.first_bad_height == 3
    assert (report.service, report.tx_id) == ("doc", pledge.tx_id)
    assert report.problem == (
        "last_results_root commits to results that differ from the replay: "
        f"block 2, doc receipt of tx {pledge.tx_id}: code ALREADY_PLEDGED sealed, code OK replayed"
    )
    # without the node's record the replay still refuses header 3, but cannot say which leaf
    blocks_only = audit(copy_chain(chain, tmp_path / "blocks-only", with_record=False), chain)
    assert blocks_only.first_bad_height == 3
    assert blocks_only.problem is not None
    assert blocks_only.problem.startswith(
        "last_results_root does not match the replayed results of block 2 (this node has no record of them)"
    )


def test_a_block_sealed_over_a_wrong_checkpoint_fails_naming_the_service(tmp_path: Path) -> None:
    chain = ServiceChain(tmp_path / "checkpoint", "forgedcp")

    def shift(checkpoint: BlockProcessed) -> BlockProcessed:
        if checkpoint.service != "party":
            return checkpoint
        return checkpoint.model_copy(update={"state_digest": "00" * 32})

    try:
        chain.seal([chain.register("bl")])
        chain.seal([chain.register("bl-2")], tamper_checkpoint=shift)
        chain.seal([])
    finally:
        chain.close()
    report = audit(chain.data_dir, chain)
    assert (report.first_bad_height, report.service, report.tx_id) == (3, "party", None)
    assert report.problem is not None and "block 2, party checkpoint: height 2 digest 0000000000000000… sealed" in (
        report.problem
    )


def test_an_audit_without_replay_does_not_look_at_results(tmp_path: Path) -> None:
    chain = ServiceChain(tmp_path / "noreplay", "noreplay")
    try:
        bl = chain.register("bl")
        chain.seal([bl])
        chain.seal([chain.pledge(bl.tx_id)], tamper=refuse("00" * 32))  # type: ignore[arg-type]
        chain.seal([])
    finally:
        chain.close()
    report = audit_chain(
        StorageConfig(backend="sqlite", data_dir=chain.data_dir), "node", chain.genesis, workers=1, replay=False
    )
    assert report.ok and report.replayed == ()


def test_every_transaction_passes_the_one_validity_rule(tmp_path: Path) -> None:
    """A block sealed with a transaction no validator should have taken (here: a kind the chain
    does not run, then a bad signature) fails the audit at that block, whatever its commit."""
    from tests.consensus.chainkit import Kit
    from traco.core.adapters.factory import open_block_store
    from traco.schemas.tx import TxEnvelope, sign_tx
    from traco.services.consensus.ledger import Ledger

    def unknown_kind(kit: Kit) -> TxEnvelope:
        return sign_tx(kit.member_keys[0], kit.chain_id, "trade.buy", 2, {})

    def bad_signature(kit: Kit) -> TxEnvelope:
        return kit.anchor(label="b").model_copy(update={"signature": "00" * 64})

    for bad, reason in [(unknown_kind, "UNKNOWN_KIND"), (bad_signature, "INVALID_SIGNATURE")]:
        kit = Kit()
        config = StorageConfig(backend="sqlite", data_dir=tmp_path / reason)
        ledger = Ledger(kit.genesis, open_block_store(config, "node"), open_state_store(config, "node"))
        try:
            ledger.apply(kit.seal(ledger.tip, [kit.anchor(label="a")]))
            ledger.apply(kit.seal(ledger.tip, [bad(kit)]))  # stored without the validators' checks
        finally:
            ledger.close()
        report = audit_chain(config, "node", kit.genesis, workers=1)
        assert report.first_bad_height == 2, reason
        assert report.problem is not None and report.problem.startswith("tx 0 (") and reason in report.problem
