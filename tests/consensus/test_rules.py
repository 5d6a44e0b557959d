"""The chain's own rules: headers, execution, results, the light client (validity: test_validity.py)."""

from __future__ import annotations

import hashlib

import pytest

from tests.consensus.chainkit import Kit
from traco.core.adapters.memory_store import MemoryBlockStore, MemoryStateStore
from traco.core.lightclient import verify_commit
from traco.schemas.block import Commit, CommitSig
from traco.services.consensus import rules
from traco.services.consensus.ledger import Ledger


@pytest.fixture
def kit() -> Kit:
    return Kit()


def ledger_for(kit: Kit) -> Ledger:
    return Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())


def test_a_valid_chain_applies_and_executes_anchors(kit: Kit) -> None:
    ledger = ledger_for(kit)
    txs = [kit.anchor(0, "a"), kit.anchor(0, "b"), kit.anchor(1, "a")]
    block = kit.seal(ledger.tip, txs)
    assert ledger.check_sealed(block) is None
    ledger.apply(block)
    receipts = ledger.state.receipts(1)
    assert [r.code for r in receipts] == ["OK", "OK", "DUPLICATE_ANCHOR"]
    assert receipts[2].height == 1 and receipts[2].index == 2
    assert ledger.chain_nonce(txs[0].sender) == 2
    # the next header commits to exactly these results
    nxt = kit.seal(ledger.tip, [])
    results = ledger.results(1)
    assert results is not None
    assert nxt.header.last_results_root == rules.results_root(*results)
    assert ledger.check_sealed(nxt) is None


def test_replay_is_deterministic_digest_for_digest(kit: Kit) -> None:
    first = ledger_for(kit)
    blocks = []
    for i in range(5):
        block = kit.seal(first.tip, [kit.anchor(i % 2, f"doc-{i}")])
        first.apply(block)
        blocks.append(block)
    second = ledger_for(kit)
    for block in blocks:
        assert second.check_sealed(block) is None
        second.apply(block)
    assert [first.state.state_digest(h) for h in range(1, 6)] == [second.state.state_digest(h) for h in range(1, 6)]
    assert first.tip == second.tip


def test_commit_below_two_thirds_is_refused(kit: Kit) -> None:
    ledger = ledger_for(kit)
    block = kit.seal(ledger.tip, [kit.anchor()], signers=2)
    assert "2/3" in (ledger.check_sealed(block) or "")


def test_forged_and_duplicate_commit_signatures_do_not_count(kit: Kit) -> None:
    ledger = ledger_for(kit)
    block = kit.seal(ledger.tip, [kit.anchor()], signers=2)
    sigs = block.commit.signatures
    stranger = "ab" * 32
    padded = Commit(
        height=1,
        round=0,
        block_hash=block.block_hash(),
        signatures=(
            *sigs,
            sigs[0],
            CommitSig(validator=block.header.proposer, signature="00" * 64),
            CommitSig(validator=stranger, signature=sigs[0].signature),
        ),
    )
    assert verify_commit(block.header, padded, kit.genesis.validators) is not None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"prev_hash": "00" * 32}, "prev_hash"),
        ({"height": 2}, "height"),
        ({"last_results_root": "11" * 32}, "last_results_root"),
        ({"tx_count": 5}, "tx_count"),
        ({"time": 0}, "time"),
    ],
)
def test_headers_that_do_not_follow_the_tip_are_refused(kit: Kit, change: dict[str, object], reason: str) -> None:
    ledger = ledger_for(kit)
    txs = [kit.anchor()]
    header = kit.seal(ledger.tip, txs).header.model_copy(update=change)
    problem = rules.check_header(kit.genesis, ledger.tip, header, txs, now_ms=None)
    assert problem is not None and reason.split("_")[0] in problem


def test_anchor_payload_is_validated(kit: Kit) -> None:
    ledger = ledger_for(kit)
    bad = kit.anchor()
    from traco.schemas.tx import sign_tx

    bad = sign_tx(kit.member_keys[0], kit.chain_id, "chain.anchor", 2, {"digest": "nothex", "label": "x"})
    ok = kit.anchor(0, "fine")  # nonce 2 in the kit's counter
    block = kit.seal(ledger.tip, [kit.anchor(1, "first"), bad])
    ledger.apply(block)
    codes = [r.code for r in ledger.state.receipts(1)]
    assert codes == ["OK", "INVALID_PAYLOAD"]
    assert ok.nonce == 2


def test_genesis_hash_links_block_one(kit: Kit) -> None:
    ledger = ledger_for(kit)
    block = kit.seal(ledger.tip, [])
    assert block.header.prev_hash == kit.genesis.genesis_hash()
    assert block.header.last_results_root == hashlib.sha256(b"").hexdigest()


def test_with_executing_services_the_next_header_waits_for_and_commits_their_results() -> None:
    from traco.schemas.events import BlockProcessed
    from traco.schemas.receipt import Receipt, ReceiptStatus
    from traco.schemas.tx import sign_tx

    kit = Kit()
    params = kit.genesis.params.model_copy(update={"services": ("svc",), "kinds": ("chain.anchor", "svc.do")})
    kit.genesis = kit.genesis.model_copy(update={"params": params})
    ledger = ledger_for(kit)
    own = sign_tx(kit.member_keys[1], kit.chain_id, "svc.do", 1, {"x": 1})
    block = kit.seal(ledger.tip, [kit.anchor(0, "a"), own])
    svc_receipt = Receipt(
        tx_id=own.tx_id, kind="svc.do", status=ReceiptStatus.ACCEPTED, code="OK", height=1, index=1, service="svc"
    )
    checkpoint = BlockProcessed(service="svc", height=1, state_digest="ab" * 32)
    assert not ledger.offer_checkpoint(checkpoint)  # early: stashed until block 1 is applied
    ledger.apply(block)
    assert ledger.tip.results_root is None
    assert "1 receipts" in (ledger.waiting_for() or "")
    forged = svc_receipt.model_copy(update={"index": 0})
    assert not ledger.offer_receipt(forged)  # wrong position: not the receipt block 1 waits for
    assert ledger.offer_receipt(svc_receipt)
    results = ledger.results(1)
    assert results is not None
    receipts, checkpoints = results
    assert [r.service for r in receipts] == ["chain", "svc"]
    assert [c.service for c in checkpoints] == ["chain", "svc"]
    assert ledger.tip.results_root == rules.results_root(receipts, checkpoints)
    nxt = kit.seal(ledger.tip, [])
    assert nxt.header.last_results_root == ledger.tip.results_root


def test_the_results_root_commits_to_codes_and_results_but_not_to_wording() -> None:
    from traco.schemas.events import BlockProcessed
    from traco.schemas.receipt import Receipt, ReceiptStatus

    checkpoint = BlockProcessed(service="chain", height=1, state_digest="0" * 64)
    receipt = Receipt(
        tx_id="a" * 64,
        kind="doc.pledge",
        status=ReceiptStatus.REJECTED,
        code="ALREADY_PLEDGED",
        message="document is pledged until height 9",
        height=1,
        index=0,
        service="doc",
        result={"until": 9},
    )
    root = rules.results_root([receipt], [checkpoint])
    reworded = receipt.model_copy(update={"message": "this document is already pledged"})
    assert rules.results_root([reworded], [checkpoint]) == root
    for change in ({"code": "NOT_HOLDER"}, {"result": {"until": 10}}, {"status": ReceiptStatus.ACCEPTED}):
        assert rules.results_root([receipt.model_copy(update=change)], [checkpoint]) != root
