"""A chain whose validator set changes: block H announces the set of H+1 in ``next_validators``;
nodes, restarted nodes, light clients and auditors all follow it from the genesis file alone,
and nothing signed by the wrong set, or announcing a set it does not commit to, is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.consensus.chainkit import Kit
from traco.core import crypto, merkle
from traco.core.adapters.factory import StorageConfig, open_block_store, open_state_store
from traco.core.adapters.memory_store import MemoryBlockStore, MemoryStateStore
from traco.core.lightclient import follow_changes, verify_tx_proof
from traco.schemas.block import SealedBlock
from traco.schemas.genesis import validator_set, validator_set_hash
from traco.schemas.proof import TxProof, ValidatorChange
from traco.schemas.tx import tx_leaf_hashes
from traco.services.consensus import rules
from traco.services.consensus.audit import audit_chain
from traco.services.consensus.ledger import Ledger


@pytest.fixture
def kit() -> Kit:
    return Kit()


def new_keys(n: int = 4) -> list[bytes]:
    return [crypto.generate_private_key() for _ in range(n)]


def apply(ledger: Ledger, block: SealedBlock) -> None:
    problem = ledger.check_sealed(block)
    assert problem is None, problem
    ledger.apply(block)


def changed_chain(kit: Kit, ledger: Ledger, successors: list[bytes]) -> list[SealedBlock]:
    """Block 1 (genesis set) announces ``successors``; blocks 2 and 3 are sealed by them."""
    announcing = kit.seal(ledger.tip, [kit.anchor(label="one")], next_validators=kit.power_set(successors))
    apply(ledger, announcing)
    second = kit.seal(ledger.tip, [kit.anchor(label="two")], keys=successors)
    apply(ledger, second)
    third = kit.seal(ledger.tip, [kit.anchor(label="three")], keys=successors[:3])
    apply(ledger, third)
    return [announcing, second, third]


def test_after_an_announced_change_only_the_new_set_can_seal(kit: Kit) -> None:
    ledger = Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())
    successors = new_keys()
    announcing = kit.seal(ledger.tip, [kit.anchor(label="one")], next_validators=kit.power_set(successors))
    assert announcing.next_validators == kit.power_set(successors)
    apply(ledger, announcing)
    assert ledger.tip.validators == kit.power_set(successors)

    second = [kit.anchor(label="two")]
    by_old_set = kit.seal(ledger.tip, second, signers=4)
    assert "valid signatures for 0 of 4" in (ledger.check_sealed(by_old_set) or "")
    apply(ledger, kit.seal(ledger.tip, second, keys=successors[:3]))
    assert ledger.height == 2
    assert ledger.validators_at(1) == validator_set(kit.genesis.validators)
    assert ledger.validators_at(2) == kit.power_set(successors)
    assert ledger.validator_change_heights() == [1]


def test_a_block_must_carry_exactly_the_set_its_header_commits_to(kit: Kit) -> None:
    ledger = Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())
    successors = kit.power_set(new_keys())
    announcing = kit.seal(ledger.tip, [], next_validators=successors)

    silent = announcing.model_copy(update={"next_validators": None})
    assert "does not carry the new one" in (ledger.check_sealed(silent) or "")
    other = kit.power_set(new_keys())
    assert "does not hash to" in (ledger.check_sealed(announcing.model_copy(update={"next_validators": other})) or "")
    unchanged = kit.seal(ledger.tip, [])
    padded = unchanged.model_copy(update={"next_validators": validator_set(kit.genesis.validators)})
    assert "although the set does not change" in (ledger.check_sealed(padded) or "")
    assert ledger.check_sealed(announcing) is None


def test_a_header_for_the_wrong_set_is_refused_when_proposed(kit: Kit) -> None:
    ledger = Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())
    scheduled = kit.power_set(new_keys())
    header = rules.build_header(kit.genesis, ledger.tip, 0, ledger.tip.time + 1000, "a" * 64, [])
    problem = rules.check_header(kit.genesis, ledger.tip, header, [], None, next_validators=scheduled)
    assert problem is not None and "next_validator_set_hash" in problem
    header = rules.build_header(kit.genesis, ledger.tip, 0, ledger.tip.time + 1000, "a" * 64, [], scheduled)
    assert rules.check_header(kit.genesis, ledger.tip, header, [], None, next_validators=scheduled) is None
    assert header.next_validator_set_hash == validator_set_hash(scheduled) != header.validator_set_hash


def test_a_restarted_node_knows_the_current_set_from_its_files(kit: Kit, tmp_path: Path) -> None:
    config = StorageConfig(backend="sqlite", data_dir=tmp_path)
    ledger = Ledger(kit.genesis, open_block_store(config, "node"), open_state_store(config, "node"))
    successors = new_keys()
    changed_chain(kit, ledger, successors)
    ledger.close()

    reopened = Ledger(kit.genesis, open_block_store(config, "node"), open_state_store(config, "node"))
    try:
        assert reopened.tip.validators == kit.power_set(successors)
        apply(reopened, kit.seal(reopened.tip, [kit.anchor(label="four")], keys=successors[1:]))
    finally:
        reopened.close()


def test_the_chain_digest_records_the_change(kit: Kit) -> None:
    ledger = Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())
    blocks = changed_chain(kit, ledger, new_keys())
    events = ledger.state.events(1)
    assert [e.type for e in events][-1] == "ValidatorSetChanged"
    assert events[-1].data["from_height"] == 2
    replayed = rules.execute_block(blocks[0], lambda _key: None, rules.GENESIS_DIGEST)
    assert replayed.state_digest == ledger.state.state_digest(1)


def proof_of(ledger: Ledger, height: int) -> TxProof:
    block = ledger.blocks.block(height)
    assert block is not None
    changes = []
    for h in ledger.validator_change_heights():
        if h < height:
            changer = ledger.blocks.block(h)
            assert changer is not None and changer.next_validators is not None
            changes.append(
                ValidatorChange(header=changer.header, commit=changer.commit, next_validators=changer.next_validators)
            )
    return TxProof(
        chain_id=block.header.chain_id,
        tx=block.txs[0],
        height=height,
        index=0,
        header=block.header,
        commit=block.commit,
        path=tuple(h.hex() for h in merkle.inclusion_proof_from_leaf_hashes(tx_leaf_hashes(block.txs), 0)),
        validator_changes=tuple(changes),
    )


def test_a_light_client_follows_the_change_from_the_genesis_set(kit: Kit) -> None:
    ledger = Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())
    successors = new_keys()
    changed_chain(kit, ledger, successors)
    proof = proof_of(ledger, 3)
    assert verify_tx_proof(proof, kit.genesis.validators, kit.chain_id) is None

    missing = proof.model_copy(update={"validator_changes": ()})
    assert "another validator set" in (verify_tx_proof(missing, kit.genesis.validators, kit.chain_id) or "")
    change = proof.validator_changes[0]
    forged_set = kit.power_set(new_keys())
    forged = change.model_copy(update={"next_validators": forged_set})
    assert "does not hash to" in (
        verify_tx_proof(proof.model_copy(update={"validator_changes": (forged,)}), kit.genesis.validators, kit.chain_id)
        or ""
    )
    # a change "sealed" by keys that were never validators does not count
    impostors = new_keys()
    fake_ledger = Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())
    fake = kit.seal(fake_ledger.tip, [kit.anchor(label="fake")], keys=impostors, next_validators=forged_set)
    assert fake.next_validators is not None
    fake_change = ValidatorChange(header=fake.header, commit=fake.commit, next_validators=fake.next_validators)
    assert "validator-set change at height 1" in str(follow_changes(kit.genesis.validators, [fake_change], 2))
    assert (
        follow_changes(kit.genesis.validators, [change, change], 3) == "validator-set changes are not in height order"
    )


def write_chain(config: StorageConfig, kit: Kit, tamper: bool) -> None:
    ledger = Ledger(kit.genesis, open_block_store(config, "node"), open_state_store(config, "node"))
    successors = new_keys()
    changed_chain(kit, ledger, successors)
    if tamper:  # a block the old set seals after it handed over: a node must never store it
        block = kit.seal(ledger.tip, [kit.anchor(label="late")], signers=4)
        ledger.blocks.put_block(block)
    ledger.close()


def test_the_audit_follows_the_change_and_names_a_block_sealed_by_the_old_set(kit: Kit, tmp_path: Path) -> None:
    good = StorageConfig(backend="sqlite", data_dir=tmp_path / "good")
    write_chain(good, kit, tamper=False)
    report = audit_chain(good, "node", kit.genesis, workers=1)
    assert report.ok, report.problem
    assert report.height == 3

    other = Kit()
    bad = StorageConfig(backend="sqlite", data_dir=tmp_path / "bad")
    write_chain(bad, other, tamper=True)
    report = audit_chain(bad, "node", other.genesis, workers=1)
    assert report.first_bad_height == 4
    assert report.problem is not None and "valid signatures for 0 of 4" in report.problem


def test_the_party_state_starts_from_the_genesis_validators(tmp_path: Path) -> None:
    from traco.services import registry
    from traco.services.consensus.genesis import init_chain

    genesis = init_chain(tmp_path, "vs", 4)
    party = genesis.extensions["party"]
    added = [e for e in registry.genesis_events(genesis)("party") if e.type == "ValidatorAdded"]
    assert {e.data["public_key"] for e in added} == {v.public_key for v in genesis.validators}

    unnamed = genesis.model_copy(update={"extensions": {**genesis.extensions, "party": {**party, "validators": []}}})
    seeded = [e for e in registry.genesis_events(unnamed)("party") if e.type == "ValidatorAdded"]
    assert {e.data["public_key"] for e in seeded} == {v.public_key for v in genesis.validators}

    stranger = {"public_key": crypto.public_key(crypto.generate_private_key()).hex(), "power": 1}
    wrong = genesis.model_copy(
        update={"extensions": {**genesis.extensions, "party": {**party, "validators": [stranger]}}}
    )
    with pytest.raises(ValueError, match="differ from the genesis validators"):
        registry.genesis_events(wrong)("party")


def test_a_receipt_proof_crosses_a_change_announced_by_its_own_block(kit: Kit) -> None:
    from types import SimpleNamespace

    from traco.services.consensus.api import build_proof

    ledger = Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())
    blocks = changed_chain(kit, ledger, new_keys())
    proof = build_proof(SimpleNamespace(ledger=ledger), blocks[0].txs[0].tx_id)  # type: ignore[arg-type]
    assert proof is not None and proof.result is not None
    assert [c.header.height for c in proof.validator_changes] == [1]  # the tx's own block
    assert verify_tx_proof(proof, kit.genesis.validators, kit.chain_id) is None
    hidden = proof.model_copy(update={"validator_changes": ()})
    assert "results block" in (verify_tx_proof(hidden, kit.genesis.validators, kit.chain_id) or "")
