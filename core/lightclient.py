"""Light-client checks: is this header sealed, and is this transaction (and its receipt) in it?

These functions need only a trusted validator set, never the rest of the chain, which is what
an auditor, a bridge relayer or a counterparty holding a ``TxProof`` has. Every check returns
a reason string on failure (``None`` when it passes) instead of raising, so a command-line
verifier can print exactly what is wrong with a forged or damaged proof.

A proof is only worth what it is checked against (architecture: Kafka is not trusted): ``verify_tx_proof`` always takes
the trusted chain id and, where the caller knows them, the transaction id and receipt fields it
expects, so that a perfectly valid proof of *another* transaction, chain or outcome never
verifies. What the transaction's payload must say is the caller's business (``traco doc verify``
compares it with the history entry it proves); the proof makes the payload authentic.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

from traco.core import crypto, merkle
from traco.core.boundary import canonical_problem
from traco.core.bounded import trim_oldest
from traco.core.smt import verify_state_proof
from traco.schemas.block import BlockHeader, Commit, vote_sign_bytes
from traco.schemas.genesis import HasPower, ValidatorPower, validator_set, validator_set_hash
from traco.schemas.proof import TxProof, ValidatorChange
from traco.schemas.state_proof import StateValueProof

Validators = Sequence[HasPower]


def quorum(total_power: int) -> int:
    """The smallest power strictly greater than 2/3 of ``total_power``."""
    return total_power * 2 // 3 + 1


def verify_commit(header: BlockHeader, commit: Commit, validators: Validators) -> str | None:
    """Whether ``commit`` seals ``header`` with > 2/3 of the power of ``validators``.

    Unknown signers, duplicate signers and bad signatures are not counted; they make the
    commit fail only if what remains falls short of the quorum.
    """
    if header.validator_set_hash != validator_set_hash(validators):
        return (
            f"header {header.height} was sealed by another validator set "
            "than the trusted one (validator_set_hash differs)"
        )
    problem = commit_mismatch(header, commit)
    if problem:
        return problem
    return verify_signatures(header.chain_id, commit, {v.public_key: v.power for v in validators})


def commit_mismatch(header: BlockHeader, commit: Commit) -> str | None:
    """Why ``commit`` is not a commit of ``header`` at all (None if it is)."""
    if commit.height != header.height or commit.block_hash != header.block_hash():
        return f"the commit is for {commit.height}/{commit.block_hash[:16]}…, not this header"
    return None


def valid_signers(chain_id: str, commit: Commit, known: Container[str] | None = None) -> frozenset[str]:
    """The distinct keys whose precommit signature in ``commit`` verifies (only ``known`` ones,
    if given: a signature from outside the set is not worth verifying)."""
    message = vote_sign_bytes(chain_id, "precommit", commit.height, commit.round, commit.block_hash)
    counted: set[str] = set()
    for sig in commit.signatures:
        if sig.validator in counted or (known is not None and sig.validator not in known):
            continue
        if _precommit_verifies(sig.validator, message, sig.signature):
            counted.add(sig.validator)
    return frozenset(counted)


_VERIFIED_PRECOMMITS: dict[tuple[str, bytes, str], None] = {}
_VERIFIED_PRECOMMITS_KEPT = 4096


def _precommit_verifies(validator: str, message: bytes, signature: str) -> bool:
    """``crypto.verify``, remembering the signatures that verified, by the exact key, message and
    signature: in a node, the validator and every service replica check each sealed block's
    commit, the same three or more signatures each time. Only a success is remembered, and
    only for exactly the bytes that were verified, so no verdict is ever reused for anything
    else (the oldest are forgotten first past ``_VERIFIED_PRECOMMITS_KEPT``)."""
    key = (validator, message, signature)
    if key in _VERIFIED_PRECOMMITS:
        return True
    if not crypto.verify(bytes.fromhex(validator), message, bytes.fromhex(signature)):
        return False
    _VERIFIED_PRECOMMITS[key] = None
    trim_oldest(_VERIFIED_PRECOMMITS, _VERIFIED_PRECOMMITS_KEPT)
    return True


def quorum_shortfall(height: int, signers: Iterable[str], powers: Mapping[str, int]) -> str | None:
    """Why the power of ``signers`` in ``powers`` is not more than 2/3 (None if it is)."""
    total = sum(powers.values())
    power = sum(powers.get(key, 0) for key in set(signers))
    if power < quorum(total):
        return (
            f"commit of height {height} has valid signatures for {power} of {total} "
            f"voting power; more than 2/3 ({quorum(total)}) is needed"
        )
    return None


def verify_signatures(chain_id: str, commit: Commit, powers: Mapping[str, int]) -> str | None:
    """Count the power of valid, distinct precommit signatures in ``commit``."""
    return quorum_shortfall(commit.height, valid_signers(chain_id, commit, powers), powers)


def next_validators(
    header: BlockHeader, carried: Iterable[HasPower] | None, current: Validators
) -> tuple[ValidatorPower, ...] | str:
    """The validator set from ``header.height + 1`` on, given the set ``current`` that sealed
    ``header`` and what the block carries (``SealedBlock.next_validators``), or why they do not fit.

    A block carries the next set only when it changes, so a reader that has checked every
    block from genesis knows every height's set from the chain alone.
    """
    if carried is None:
        if header.next_validator_set_hash != header.validator_set_hash:
            return f"block {header.height} changes the validator set but does not carry the new one"
        return validator_set(current)
    new = validator_set(carried)
    if not new:
        return f"block {header.height} carries an empty validator set"
    if len({v.public_key for v in new}) != len(new):
        return f"block {header.height} carries a validator set with a key twice"
    if validator_set_hash(new) != header.next_validator_set_hash:
        return f"the validator set block {header.height} carries does not hash to its next_validator_set_hash"
    if header.next_validator_set_hash == header.validator_set_hash:
        return f"block {header.height} carries a validator set although the set does not change"
    return new


def follow_changes(
    trusted: Validators, changes: Sequence[ValidatorChange], height: int
) -> tuple[ValidatorPower, ...] | str:
    """The validator set at ``height``, from a trusted earlier set and the sealed headers that
    changed it since (each checked against the set before it), or why the chain of changes fails.

    Between two changes the set stays the same, so these headers are all a light client needs:
    a prover that leaves one out only makes the check fail, never pass.
    """
    current = validator_set(trusted)
    last = 0
    for change in changes:
        if change.header.height <= last:
            return "validator-set changes are not in height order"
        last = change.header.height
        if change.header.height >= height:
            break
        problem = verify_commit(change.header, change.commit, current)
        if problem:
            return f"validator-set change at height {change.header.height}: {problem}"
        found = next_validators(change.header, change.next_validators, current)
        if isinstance(found, str):
            return found
        current = found
    return current


RECEIPT_FIELDS = frozenset({"tx_id", "kind", "status", "code", "height", "index", "service", "result"})
"""The receipt fields a verifier may expect: those ``last_results_root`` commits to. ``message``
is not committed (decision 0011), so expecting it would prove nothing."""


def verify_tx_proof(
    proof: TxProof,
    validators: Validators,
    chain_id: str,
    *,
    tx_id: str | None = None,
    receipt: Mapping[str, Any] | None = None,
) -> str | None:
    """The full light-client check of a ``TxProof`` against a trusted validator set (the genesis
    set, followed through the proof's validator-set changes), bound to what the caller expects.

    ``chain_id`` is the trusted chain's id (the genesis file's): a proof from any other chain
    fails, even one sealed by the same keys. ``tx_id``, when given, is the transaction the caller
    wants proven: a valid proof of any other transaction fails. ``receipt``, when given, maps
    receipt fields (``RECEIPT_FIELDS``) to the values the caller expects, e.g. ``{"code": "OK",
    "service": "doc"}``; the proof must then carry the receipt, proven by the next header.
    Whatever the caller passes, a proven receipt must be the transaction's own: same id, kind,
    height and index in its block. Expecting a field outside ``RECEIPT_FIELDS`` is a bug in the
    caller and raises ``ValueError``.
    """
    problem = canonical_problem(proof) or _expected(proof, chain_id, tx_id, receipt)
    if problem:
        return problem
    if proof.header.height != proof.height:
        return "the header is not at the proof's height"
    at_height = follow_changes(validators, proof.validator_changes, proof.height)
    if isinstance(at_height, str):
        return at_height
    problem = verify_commit(proof.header, proof.commit, at_height)
    if problem:
        return problem
    leaf = merkle.leaf_hash(proof.tx.canonical_bytes())
    path = [bytes.fromhex(h) for h in proof.path]
    if not merkle.verify_inclusion(leaf, proof.index, proof.header.tx_count, path, bytes.fromhex(proof.header.tx_root)):
        return "the Merkle path does not lead from the transaction to the header's tx_root"
    if not proof.tx.signature_valid():
        return "the transaction's id or signature does not verify"
    if proof.result is None:
        return None
    # only a change announced by the transaction's own block can differ at the next height
    own = [c for c in proof.validator_changes if c.header.height == proof.height]
    at_next = follow_changes(at_height, own, proof.height + 1)
    if isinstance(at_next, str):
        return at_next
    problem = _verify_result(proof, at_next)
    if problem or receipt is None:
        return problem
    proven = proof.result.receipt.json_value()
    for name, value in receipt.items():
        if proven[name] != value:
            return f"the proven receipt has {name} {proven[name]!r}, not the expected {value!r}"
    return None


def _expected(proof: TxProof, chain_id: str, tx_id: str | None, receipt: Mapping[str, Any] | None) -> str | None:
    """Why the proof is not about what the caller expects (checked before any signature)."""
    if receipt is not None and not receipt.keys() <= RECEIPT_FIELDS:
        unknown = ", ".join(sorted(set(receipt) - RECEIPT_FIELDS))
        raise ValueError(f"cannot expect receipt field(s) {unknown}: only {', '.join(sorted(RECEIPT_FIELDS))}")
    if proof.chain_id != chain_id:
        return f"the proof is for chain {proof.chain_id!r}, not {chain_id!r}"
    headers = [proof.header, *(c.header for c in proof.validator_changes)]
    if proof.result is not None:
        headers.append(proof.result.header)
    for header in headers:
        if header.chain_id != chain_id:
            return f"header {header.height} in the proof is of chain {header.chain_id!r}, not {chain_id!r}"
    if proof.tx.chain_id != chain_id:
        return f"the transaction is for chain {proof.tx.chain_id!r}, not {chain_id!r}"
    if tx_id is not None and proof.tx.tx_id != tx_id:
        return f"the proof is for transaction {proof.tx.tx_id[:16]}…, not {tx_id[:16]}…"
    if receipt is not None and proof.result is None:
        return (
            f"the proof carries no receipt (block {proof.height + 1} is not sealed yet), "
            "so the transaction's outcome is not proven"
        )
    return None


def _verify_result(proof: TxProof, validators: Validators) -> str | None:
    result = proof.result
    assert result is not None
    receipt = result.receipt
    if receipt.tx_id != proof.tx.tx_id:
        return "the receipt is for another transaction"
    if receipt.kind != proof.tx.kind:
        return f"the receipt is for kind {receipt.kind!r}, the transaction is {proof.tx.kind!r}"
    if (receipt.height, receipt.index) != (proof.height, proof.index):
        return (
            f"the receipt places the transaction at {receipt.height}/{receipt.index}, "
            f"the proof at {proof.height}/{proof.index}"
        )
    if result.header.height != proof.height + 1:
        return "the results header is not the next block"
    if result.header.prev_hash != proof.header.block_hash():
        return "the results header does not link to the transaction's block"
    problem = verify_commit(result.header, result.commit, validators)
    if problem:
        return f"results block: {problem}"
    leaf = merkle.leaf_hash(result.receipt.leaf_bytes())
    path = [bytes.fromhex(h) for h in result.path]
    if not merkle.verify_inclusion(
        leaf, result.index, result.size, path, bytes.fromhex(result.header.last_results_root)
    ):
        return "the receipt is not in the next header's last_results_root"
    return None


def verify_state_value_proof(
    proof: StateValueProof, validators: Validators, chain_id: str, service: str, key: str
) -> str | None:
    """Whether ``proof`` shows, from the trusted validator set alone, that ``service``'s key
    ``key`` held ``proof.value`` after block ``proof.height`` on chain ``chain_id`` (None if it
    does, else why not). A proof of another chain, service, key, height or value never passes."""
    problem = canonical_problem(proof)
    if problem:
        return problem
    if proof.chain_id != chain_id or proof.header.chain_id != chain_id:
        return f"the proof is for chain {proof.chain_id!r}, not {chain_id!r}"
    if proof.service != service or proof.checkpoint.service != service:
        return f"the proof is about service {proof.checkpoint.service!r}, not {service!r}"
    if proof.key != key:
        return "the proof is about another key"
    if proof.checkpoint.height != proof.height or proof.header.height != proof.height + 1:
        return "the checkpoint, the header and the proof's height do not line up"
    if proof.checkpoint.state_root is None:
        return "the checkpoint commits to no state root"
    at_height = follow_changes(validators, proof.validator_changes, proof.header.height)
    if isinstance(at_height, str):
        return at_height
    problem = verify_commit(proof.header, proof.commit, at_height)
    if problem:
        return problem
    leaf = merkle.leaf_hash(proof.checkpoint.canonical_bytes())
    path = [bytes.fromhex(h) for h in proof.path]
    if not merkle.verify_inclusion(leaf, proof.index, proof.size, path, bytes.fromhex(proof.header.last_results_root)):
        return "the checkpoint is not in the next header's last_results_root"
    try:
        value = None if proof.value is None else bytes.fromhex(proof.value)
    except ValueError:  # a model built without validation: still an answer, never an exception
        return "the proof's value is not hex"
    problem = verify_state_proof(bytes.fromhex(proof.checkpoint.state_root), key, value, proof.state)
    return None if problem is None else f"state: {problem}"
