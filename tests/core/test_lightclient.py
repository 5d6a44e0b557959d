"""Light-client proofs bind what they claim (architecture: Kafka is not trusted): the chain, the transaction and its
outcome. A perfectly valid proof of something else never verifies, and says why."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.consensus.chainkit import Kit
from tests.tampering import replace_at, scalar_paths
from traco.core import crypto
from traco.core.adapters.memory_store import MemoryBlockStore, MemoryStateStore
from traco.core.lightclient import quorum, verify_commit, verify_tx_proof
from traco.schemas.genesis import validator_set
from traco.schemas.proof import TxProof
from traco.schemas.receipt import ReceiptStatus
from traco.schemas.tx import sign_tx
from traco.services.consensus.api import build_proof
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.rules import genesis_tip


def sealed_ledger(kit: Kit, labels: list[list[str]]) -> Ledger:
    """A chain with one block per list of anchor labels, and one empty block that seals the
    last block's receipts."""
    ledger = Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())
    for block_labels in [*labels, []]:
        block = kit.seal(ledger.tip, [kit.anchor(label=label) for label in block_labels])
        assert ledger.check_sealed(block) is None
        ledger.apply(block)
    return ledger


def proof(ledger: Ledger, tx_id: str) -> TxProof:
    found = build_proof(SimpleNamespace(ledger=ledger), tx_id)  # type: ignore[arg-type]
    assert found is not None
    return found


@pytest.fixture
def kit() -> Kit:
    return Kit()


@pytest.fixture
def ledger(kit: Kit) -> Ledger:
    return sealed_ledger(kit, [["first", "second"], ["first"]])  # the second "first" is a duplicate


def tx_ids(ledger: Ledger, height: int) -> list[str]:
    block = ledger.blocks.block(height)
    assert block is not None
    return [tx.tx_id for tx in block.txs]


def test_a_proof_verifies_for_its_own_transaction_chain_and_outcome(kit: Kit, ledger: Ledger) -> None:
    first, _second = tx_ids(ledger, 1)
    found = proof(ledger, first)
    assert found.result is not None
    expected = {"code": "OK", "status": "accepted", "service": "chain", "result": found.result.receipt.result}
    assert verify_tx_proof(found, kit.genesis.validators, kit.chain_id, tx_id=first, receipt=expected) is None


def test_a_valid_proof_of_another_transaction_is_refused(kit: Kit, ledger: Ledger) -> None:
    first, second = tx_ids(ledger, 1)
    other = proof(ledger, second)
    assert verify_tx_proof(other, kit.genesis.validators, kit.chain_id) is None  # valid in itself
    problem = verify_tx_proof(other, kit.genesis.validators, kit.chain_id, tx_id=first)
    assert problem == f"the proof is for transaction {second[:16]}…, not {first[:16]}…"


def test_a_proof_from_another_chain_sealed_by_the_same_keys_is_refused(kit: Kit) -> None:
    # a test chain run by the same validators: its proofs are perfectly sealed by the trusted keys
    twin = Kit(validator_keys=kit.validator_keys, member_keys=kit.member_keys, chain_id="twin")
    other_chain = sealed_ledger(twin, [["first"]])
    (tx_id,) = tx_ids(other_chain, 1)
    foreign = proof(other_chain, tx_id)
    assert verify_tx_proof(foreign, twin.genesis.validators, "twin") is None
    assert kit.genesis.validators == twin.genesis.validators

    problem = verify_tx_proof(foreign, kit.genesis.validators, kit.chain_id, tx_id=tx_id)
    assert problem == "the proof is for chain 'twin', not 'unit'"
    relabelled = foreign.model_copy(update={"chain_id": kit.chain_id})
    problem = verify_tx_proof(relabelled, kit.genesis.validators, kit.chain_id, tx_id=tx_id)
    assert problem == "header 1 in the proof is of chain 'twin', not 'unit'"


def test_a_proof_whose_results_header_is_from_another_chain_is_refused(kit: Kit, ledger: Ledger) -> None:
    twin = Kit(validator_keys=kit.validator_keys, member_keys=kit.member_keys, chain_id="twin")
    other_chain = sealed_ledger(twin, [["first", "second"]])
    own = proof(ledger, tx_ids(ledger, 1)[0])
    foreign = proof(other_chain, tx_ids(other_chain, 1)[0])
    assert own.result is not None and foreign.result is not None
    mixed = own.model_copy(update={"result": own.result.model_copy(update={"header": foreign.result.header})})
    assert "header 2 in the proof is of chain 'twin'" in (
        verify_tx_proof(mixed, kit.genesis.validators, kit.chain_id) or ""
    )


def test_a_different_payload_does_not_verify(kit: Kit, ledger: Ledger) -> None:
    first, _ = tx_ids(ledger, 1)
    found = proof(ledger, first)
    edited = found.tx.model_copy(update={"payload": {**found.tx.payload, "label": "edited"}})
    problem = verify_tx_proof(found.model_copy(update={"tx": edited}), kit.genesis.validators, kit.chain_id)
    assert problem == "the Merkle path does not lead from the transaction to the header's tx_root"
    # the sender re-signs another payload under the same nonce: a valid envelope, not the sealed one
    resigned = sign_tx(kit.member_keys[0], kit.chain_id, "chain.anchor", found.tx.nonce, {**edited.payload})
    assert resigned.signature_valid()
    problem = verify_tx_proof(
        found.model_copy(update={"tx": resigned}), kit.genesis.validators, kit.chain_id, tx_id=resigned.tx_id
    )
    assert problem == "the Merkle path does not lead from the transaction to the header's tx_root"


def test_the_proven_receipt_must_be_the_expected_outcome(kit: Kit, ledger: Ledger) -> None:
    (duplicate,) = tx_ids(ledger, 2)
    found = proof(ledger, duplicate)
    assert found.result is not None and found.result.receipt.code == "DUPLICATE_ANCHOR"
    problem = verify_tx_proof(found, kit.genesis.validators, kit.chain_id, tx_id=duplicate, receipt={"code": "OK"})
    assert problem == "the proven receipt has code 'DUPLICATE_ANCHOR', not the expected 'OK'"
    problem = verify_tx_proof(found, kit.genesis.validators, kit.chain_id, receipt={"service": "doc"})
    assert problem == "the proven receipt has service 'chain', not the expected 'doc'"
    # a receipt edited to say OK is no longer the one the next header commits to
    edited = found.result.receipt.model_copy(update={"code": "OK", "status": ReceiptStatus.ACCEPTED})
    forged = found.model_copy(update={"result": found.result.model_copy(update={"receipt": edited})})
    problem = verify_tx_proof(forged, kit.genesis.validators, kit.chain_id, receipt={"code": "OK"})
    assert problem == "the receipt is not in the next header's last_results_root"


def test_a_receipt_of_another_transaction_or_position_is_refused(kit: Kit, ledger: Ledger) -> None:
    first, second = tx_ids(ledger, 1)
    own, other = proof(ledger, first), proof(ledger, second)
    assert own.result is not None and other.result is not None
    swapped = own.model_copy(update={"result": other.result})
    assert verify_tx_proof(swapped, kit.genesis.validators, kit.chain_id) == "the receipt is for another transaction"
    moved = own.result.receipt.model_copy(update={"index": 1})
    misplaced = own.model_copy(update={"result": own.result.model_copy(update={"receipt": moved})})
    assert verify_tx_proof(misplaced, kit.genesis.validators, kit.chain_id) == (
        "the receipt places the transaction at 1/1, the proof at 1/0"
    )


def test_an_expected_outcome_needs_a_proven_receipt(kit: Kit, ledger: Ledger) -> None:
    first, _ = tx_ids(ledger, 1)
    found = proof(ledger, first)
    unproven = found.model_copy(update={"result": None})
    assert verify_tx_proof(unproven, kit.genesis.validators, kit.chain_id) is None  # ordered, no more
    problem = verify_tx_proof(unproven, kit.genesis.validators, kit.chain_id, receipt={"code": "OK"})
    assert problem is not None and problem.startswith("the proof carries no receipt (block 2 is not sealed yet)")


def test_expecting_an_uncommitted_receipt_field_is_a_bug(kit: Kit, ledger: Ledger) -> None:
    found = proof(ledger, tx_ids(ledger, 1)[0])
    with pytest.raises(ValueError, match="message"):
        verify_tx_proof(found, kit.genesis.validators, kit.chain_id, receipt={"message": "anchored"})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    new=st.one_of(
        st.text(max_size=70),
        st.text(alphabet="0123456789abcdef", min_size=63, max_size=65),
        st.integers(-(2**40), 2**70),
        st.none(),
        st.booleans(),
    ),
)
def test_a_tampered_proof_is_answered_never_raised(kit: Kit, ledger: Ledger, data: st.DataObject, new: object) -> None:
    """Any one field of a real proof changed to anything that still parses: the verifier gives a
    verdict (a reason, or None where the change does not matter), never an exception."""
    first, _ = tx_ids(ledger, 1)
    body = proof(ledger, first).model_dump(mode="json")
    where = data.draw(st.sampled_from(scalar_paths(body)))
    try:
        tampered = TxProof.model_validate(replace_at(body, where, new))
    except ValidationError:
        return  # refused where it is read
    verdict = verify_tx_proof(tampered, kit.genesis.validators, kit.chain_id, tx_id=first)
    assert verdict is None or isinstance(verdict, str)


def test_a_proof_with_no_canonical_form_is_refused_not_raised(kit: Kit, ledger: Ledger) -> None:
    """A proof parses with any integer, but one beyond 2**53 has no canonical form, so no hash:
    the verifier says so instead of raising while it hashes the header."""
    first, _ = tx_ids(ledger, 1)
    body = proof(ledger, first).model_dump(mode="json")
    body["header"]["time"] = 2**63
    verdict = verify_tx_proof(TxProof.model_validate(body), kit.genesis.validators, kit.chain_id, tx_id=first)
    assert verdict is not None and "canonical" in verdict


@pytest.mark.parametrize("total", range(1, 31))
def test_the_quorum_is_the_least_power_above_two_thirds(total: int) -> None:
    q = quorum(total)
    assert 3 * q > 2 * total >= 3 * (q - 1)


def test_a_commit_of_another_block_does_not_seal_a_header(kit: Kit, ledger: Ledger) -> None:
    """Every signature in a commit is valid for the block it names; a header is sealed only by a
    commit that names that header — of another height, or of another block at the same height
    (a header changed in one field), it proves nothing."""
    validators = validator_set(kit.genesis.validators)
    first, second = ledger.blocks.block(1), ledger.blocks.block(2)
    assert first is not None and second is not None
    assert verify_commit(first.header, first.commit, validators) is None
    assert "the commit is for" in (verify_commit(first.header, second.commit, validators) or "")
    changed = first.header.model_copy(update={"time": first.header.time + 1})
    assert "the commit is for" in (verify_commit(changed, first.commit, validators) or "")


def test_a_signature_from_outside_the_set_or_repeated_is_passed_over(kit: Kit) -> None:
    """An outsider's valid signature, or a validator's signature twice, is not counted — and
    does not stop the signatures after it from counting."""
    validators = validator_set(kit.genesis.validators)
    tip = genesis_tip(kit.genesis)
    outsider = crypto.generate_private_key()
    keys = kit.validator_keys
    padded = kit.seal(tip, [], keys=[outsider, keys[0], keys[0], keys[1], keys[2]])
    assert verify_commit(padded.header, padded.commit, validators) is None
    two = kit.seal(tip, [], keys=[outsider, keys[0], keys[0], keys[1], keys[1]])
    assert "valid signatures for 2 of 4" in (verify_commit(two.header, two.commit, validators) or "")


def test_a_remembered_signature_counts_only_for_the_bytes_it_was_verified_on(
    kit: Kit, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node checks each sealed block's commit several times (its validator, each replica): the
    signatures that verified are not verified again — and a remembered one counts for nothing
    else: not under another block hash, not as another validator's."""
    validators = validator_set(kit.genesis.validators)
    block = ledger.blocks.block(1)
    assert block is not None
    assert verify_commit(block.header, block.commit, validators) is None
    calls: list[bytes] = []
    real = crypto.verify

    def counted(key: bytes, message: bytes, signature: bytes) -> bool:
        calls.append(message)
        return real(key, message, signature)

    monkeypatch.setattr(crypto, "verify", counted)
    assert verify_commit(block.header, block.commit, validators) is None
    assert calls == []  # all remembered
    sigs = block.commit.signatures
    # the same signatures claimed for another header (its hash): verified again, none counts
    header = block.header.model_copy(update={"time": block.header.time + 1})
    moved = block.commit.model_copy(update={"block_hash": header.block_hash()})
    assert "valid signatures for 0 of" in (verify_commit(header, moved, validators) or "")
    assert len(calls) == len(sigs)
    # each signature claimed by another validator of the set: verified again, none counts
    swapped = tuple(s.model_copy(update={"validator": sigs[(i + 1) % len(sigs)].validator}) for i, s in enumerate(sigs))
    forged = block.commit.model_copy(update={"signatures": swapped})
    assert "valid signatures for 0 of" in (verify_commit(block.header, forged, validators) or "")
    assert len(calls) == 2 * len(sigs)
