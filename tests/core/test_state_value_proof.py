"""A light client's proof that a service's key held a value (``lightclient.verify_state_value_proof``),
built here from a real state tree, a checkpoint and a header sealed by the genesis validators.

What must hold: the proof verifies for exactly its chain, service, key, height and value (and an
absent key's proof for no value); any other claim, a checkpoint outside the header's results
root, a header sealed by others, and any one field changed to anything that still parses are
answered with a reason, never an exception. A header sealed by a later validator set is proven
through the change the proof carries, and not without it.
"""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from tests.consensus.chainkit import Kit
from tests.tampering import replace_at, scalar_paths
from traco.core import crypto, merkle
from traco.core.lightclient import verify_state_value_proof
from traco.core.smt import EMPTY_ROOT
from traco.core.smt_tree import StateTree
from traco.schemas.block import SealedBlock
from traco.schemas.events import BlockProcessed
from traco.schemas.proof import ValidatorChange
from traco.schemas.receipt import Receipt, ReceiptStatus
from traco.schemas.state_proof import StateValueProof
from traco.services.consensus import rules

STATE = {"doc/a": b'{"doc_id":"a"}', "doc/b": b'{"doc_id":"b"}', "bal/TRC/x": b"7"}


def state_tree() -> tuple[StateTree, bytes]:
    """The tree of ``STATE`` (its nodes in memory) and its root."""
    nodes: dict[bytes, bytes] = {}
    tree = StateTree(nodes)
    update = tree.apply(EMPTY_ROOT, STATE)
    nodes.update(update.new_nodes)
    return tree, update.root


TREE, ROOT = state_tree()


def value_proof(
    kit: Kit,
    key: str,
    checkpoint: BlockProcessed,
    leaves: list[bytes],
    sealed: SealedBlock,
    changes: tuple[ValidatorChange, ...] = (),
) -> StateValueProof:
    """The proof of ``key`` in the tree of ``STATE`` under ``checkpoint`` (the last of
    ``leaves``, the results that ``sealed``'s header commits to), for the height before
    ``sealed``."""
    index = len(leaves) - 1
    value = STATE.get(key)
    return StateValueProof(
        chain_id=kit.chain_id,
        service="doc",
        key=key,
        value=None if value is None else value.hex(),
        height=sealed.height - 1,
        checkpoint=checkpoint,
        state=TREE.prove(ROOT, key),
        index=index,
        size=len(leaves),
        path=tuple(h.hex() for h in merkle.inclusion_proof_from_leaf_hashes(leaves, index)),
        header=sealed.header,
        commit=sealed.commit,
        validator_changes=changes,
    )


def prove(kit: Kit, key: str, signers: int = 3, service: str = "doc", checkpoint_height: int = 1) -> StateValueProof:
    """The proof of ``key`` after block 1: its path to the state root of ``service``'s
    checkpoint, that checkpoint's path among block 1's results (a receipt and two checkpoints)
    to header 2's ``last_results_root``, and header 2 sealed by ``signers`` genesis validators."""
    checkpoints = [
        BlockProcessed(service="party", height=1, state_digest="33" * 32, state_root="44" * 32),
        BlockProcessed(service=service, height=checkpoint_height, state_digest="11" * 32, state_root=ROOT.hex()),
    ]
    receipt = Receipt(tx_id="55" * 32, kind="doc.register", status=ReceiptStatus.ACCEPTED, code="OK", service="doc")
    leaves = rules.results_leaf_hashes([receipt], checkpoints)
    first = kit.seal(rules.genesis_tip(kit.genesis), [])
    tip = rules.ChainTip(
        height=1,
        block_hash=first.header.block_hash(),
        time=first.header.time,
        results_root=merkle.root_from_leaf_hashes(leaves).hex(),
        validators=rules.genesis_tip(kit.genesis).validators,
    )
    return value_proof(kit, key, checkpoints[1], leaves, kit.seal(tip, [], signers=signers))


@pytest.fixture
def kit() -> Kit:
    return Kit()


def verify(kit: Kit, proof: StateValueProof, service: str = "doc", key: str = "doc/a") -> str | None:
    return verify_state_value_proof(proof, kit.genesis.validators, kit.chain_id, service, key)


def test_a_value_and_an_absence_are_proven_from_the_genesis_alone(kit: Kit) -> None:
    assert verify(kit, prove(kit, "doc/a")) is None
    absent = prove(kit, "doc/none")
    assert absent.value is None and verify(kit, absent, key="doc/none") is None


def test_a_proof_binds_its_chain_service_key_height_and_value(kit: Kit) -> None:
    proof = prove(kit, "doc/a")
    assert "chain" in (verify_state_value_proof(proof, kit.genesis.validators, "elsewhere", "doc", "doc/a") or "")
    assert "service" in (verify(kit, proof, service="trade") or "")
    assert "another key" in (verify(kit, proof, key="doc/b") or "")
    assert "state" in (verify(kit, proof.model_copy(update={"value": STATE["doc/b"].hex()})) or "")
    assert "state" in (verify(kit, proof.model_copy(update={"value": None})) or "")
    assert "line up" in (verify(kit, proof.model_copy(update={"height": 2})) or "")
    other_checkpoint = proof.checkpoint.model_copy(update={"state_digest": "22" * 32})
    assert "last_results_root" in (verify(kit, proof.model_copy(update={"checkpoint": other_checkpoint})) or "")
    assert "no state root" in (
        verify(kit, proof.model_copy(update={"checkpoint": proof.checkpoint.model_copy(update={"state_root": None})}))
        or ""
    )


def test_a_header_sealed_by_too_few_validators_proves_nothing(kit: Kit) -> None:
    assert "more than 2/3" in (verify(kit, prove(kit, "doc/a", signers=2)) or "")


def test_an_absent_keys_proof_does_not_prove_a_value(kit: Kit) -> None:
    absent = prove(kit, "doc/none")
    assert "state" in (verify(kit, absent.model_copy(update={"value": b"x".hex()}), key="doc/none") or "")


def test_any_field_changed_to_anything_that_parses_is_answered_never_raised(kit: Kit) -> None:
    rng = random.Random(3)
    body = prove(kit, "doc/a").model_dump(mode="json")
    fields = scalar_paths(body)
    replacements: list[object] = ["", "x", "00", "ab" * 32, "ff" * 64, 0, -1, 1, 2**53, 2**63, None, True, "doc/b"]
    answered = 0
    for _ in range(600):
        try:
            tampered = StateValueProof.model_validate(replace_at(body, rng.choice(fields), rng.choice(replacements)))
        except ValidationError:
            continue
        verdict = verify(kit, tampered)
        assert verdict is None or isinstance(verdict, str)
        answered += 1
    assert answered > 100


def test_a_proof_whose_parts_disagree_proves_nothing(kit: Kit) -> None:
    """The proof's claim and what is sealed must agree in every part: a checkpoint of another
    service, or of another height, sealed in a real results root; a header of another chain run
    by the same keys, under a proof that names this chain."""
    trade = prove(kit, "doc/a", service="trade")
    assert "service" in (verify(kit, trade) or "")
    later = prove(kit, "doc/a", checkpoint_height=2)
    assert "line up" in (verify(kit, later) or "")
    twin = Kit(validator_keys=kit.validator_keys, member_keys=kit.member_keys, chain_id="twin")
    foreign = prove(twin, "doc/a")
    assert verify_state_value_proof(foreign, twin.genesis.validators, "twin", "doc", "doc/a") is None
    renamed = foreign.model_copy(update={"chain_id": kit.chain_id})
    assert "chain" in (verify(kit, renamed) or "")


def prove_across_a_change(kit: Kit, key: str) -> StateValueProof:
    """The proof of ``key`` after block 2, where block 1 handed the set to validators 1-3 and a
    newcomer: header 3 is sealed by the new set only, and the proof carries block 1 as the
    change that a light client starting from the genesis set must follow."""
    new_keys = [*kit.validator_keys[1:], crypto.generate_private_key()]
    new_set = kit.power_set(new_keys)
    first = kit.seal(rules.genesis_tip(kit.genesis), [], next_validators=new_set)
    assert first.next_validators is not None
    tip = rules.ChainTip(1, first.header.block_hash(), first.header.time, merkle.root([]).hex(), new_set)
    second = kit.seal(tip, [], keys=new_keys[:3])
    checkpoint = BlockProcessed(service="doc", height=2, state_digest="11" * 32, state_root=ROOT.hex())
    leaves = rules.results_leaf_hashes([], [checkpoint])
    results_root = merkle.root_from_leaf_hashes(leaves).hex()
    tip = rules.ChainTip(2, second.header.block_hash(), second.header.time, results_root, new_set)
    change = ValidatorChange(header=first.header, commit=first.commit, next_validators=first.next_validators)
    return value_proof(kit, key, checkpoint, leaves, kit.seal(tip, [], keys=new_keys[:3]), (change,))


def test_a_proof_sealed_by_a_later_validator_set_carries_the_change_from_the_genesis_set(kit: Kit) -> None:
    proof = prove_across_a_change(kit, "doc/a")
    assert verify(kit, proof) is None
    without = proof.model_copy(update={"validator_changes": ()})
    assert "validator" in (verify(kit, without) or "")
