"""Light-client checks: is this header sealed, and is this transaction (and its receipt) in it?

These functions need only a trusted validator set, never the rest of the chain, which is what
an auditor, a bridge relayer or a counterparty holding a ``TxProof`` has. Every check returns
a reason string on failure (``None`` when it passes) instead of raising, so a command-line
verifier can print exactly what is wrong with a forged or damaged proof.
"""

from __future__ import annotations

from collections.abc import Mapping

from traco.core import crypto, merkle
from traco.schemas.block import BlockHeader, Commit, vote_sign_bytes
from traco.schemas.genesis import GenesisValidator, validator_set_hash
from traco.schemas.proof import TxProof


def quorum(total_power: int) -> int:
    """The smallest power strictly greater than 2/3 of ``total_power``."""
    return total_power * 2 // 3 + 1


def verify_commit(header: BlockHeader, commit: Commit, validators: tuple[GenesisValidator, ...]) -> str | None:
    """Whether ``commit`` seals ``header`` with > 2/3 of the power of ``validators``.

    Unknown signers, duplicate signers and bad signatures are not counted; they make the
    commit fail only if what remains falls short of the quorum.
    """
    if header.validator_set_hash != validator_set_hash(validators):
        return (
            f"header {header.height} was sealed by another validator set "
            "than the trusted one (validator_set_hash differs)"
        )
    block_hash = header.block_hash()
    if commit.height != header.height or commit.block_hash != block_hash:
        return f"the commit is for {commit.height}/{commit.block_hash[:16]}…, not this header"
    return verify_signatures(header.chain_id, commit, {v.public_key: v.power for v in validators})


def verify_signatures(chain_id: str, commit: Commit, powers: Mapping[str, int]) -> str | None:
    """Count the power of valid, distinct precommit signatures in ``commit``."""
    message = vote_sign_bytes(chain_id, "precommit", commit.height, commit.round, commit.block_hash)
    total = sum(powers.values())
    counted: set[str] = set()
    power = 0
    for sig in commit.signatures:
        if sig.validator in counted or sig.validator not in powers:
            continue
        if crypto.verify(bytes.fromhex(sig.validator), message, bytes.fromhex(sig.signature)):
            counted.add(sig.validator)
            power += powers[sig.validator]
    if power < quorum(total):
        return (
            f"commit of height {commit.height} has valid signatures for {power} of {total} "
            f"voting power; more than 2/3 ({quorum(total)}) is needed"
        )
    return None


def verify_tx_proof(proof: TxProof, validators: tuple[GenesisValidator, ...]) -> str | None:
    """The full light-client check of a ``TxProof`` against a trusted validator set."""
    if proof.header.chain_id != proof.chain_id or proof.tx.chain_id != proof.chain_id:
        return "the proof mixes chain ids"
    if proof.header.height != proof.height:
        return "the header is not at the proof's height"
    problem = verify_commit(proof.header, proof.commit, validators)
    if problem:
        return problem
    leaf = merkle.leaf_hash(proof.tx.canonical_bytes())
    path = [bytes.fromhex(h) for h in proof.path]
    if not merkle.verify_inclusion(leaf, proof.index, proof.header.tx_count, path, bytes.fromhex(proof.header.tx_root)):
        return "the Merkle path does not lead from the transaction to the header's tx_root"
    if not proof.tx.signature_valid():
        return "the transaction's own signature does not verify"
    if proof.result is not None:
        return _verify_result(proof, validators)
    return None


def _verify_result(proof: TxProof, validators: tuple[GenesisValidator, ...]) -> str | None:
    result = proof.result
    assert result is not None
    if result.receipt.tx_id != proof.tx.tx_id:
        return "the receipt is for another transaction"
    if result.header.height != proof.height + 1:
        return "the results header is not the next block"
    if result.header.prev_hash != proof.header.block_hash():
        return "the results header does not link to the transaction's block"
    problem = verify_commit(result.header, result.commit, validators)
    if problem:
        return f"results block: {problem}"
    leaf = merkle.leaf_hash(result.receipt.canonical_bytes())
    path = [bytes.fromhex(h) for h in result.path]
    if not merkle.verify_inclusion(
        leaf, result.index, result.size, path, bytes.fromhex(result.header.last_results_root)
    ):
        return "the receipt is not in the next header's last_results_root"
    return None
