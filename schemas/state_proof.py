"""A self-contained proof that a key of a service's state has a value, or has none (architecture: Consensus, Nodes).

A service's checkpoint commits to its whole state with ``state_root``, the root of the sparse
Merkle tree in ``traco.core.smt`` (whose docstring gives the hashing rules). A ``StateProof``
is the path from that root to where the key's 256-bit path ends: the key's own leaf
(inclusion: the key holds the value whose hash is ``leaf.value_hash``), an empty subtree, or
the leaf of another key that shares the path so far (both non-inclusion). It carries hashes
only, never the value itself: the verifier is given the claimed value and hashes it.

``traco.core.smt.verify_state_proof(root, key, value, proof)`` checks one against a root it
trusts (from a sealed, signed checkpoint); it needs nothing else.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from traco.schemas.base import Hex32, Model
from traco.schemas.block import BlockHeader, Commit
from traco.schemas.events import BlockProcessed
from traco.schemas.proof import ValidatorChange


class StateLeaf(Model):
    """The one leaf a path ends in: which key it holds and the hash of that key's value."""

    key_hash: Hex32 = Field(description="SHA-256 of the leaf's key (UTF-8)")
    value_hash: Hex32 = Field(description="SHA-256 of the leaf's value")


class StateProof(Model):
    key_hash: Hex32 = Field(description="SHA-256 of the key (UTF-8) this proof is about; it binds the proof to it")
    siblings: tuple[Hex32, ...] = Field(
        max_length=256,
        description="the sibling of each node on the key's path, from the root's children down; "
        "bit i of key_hash (most significant first) says whether the path goes left (0) or right (1) "
        "at depth i",
    )
    leaf: StateLeaf | None = Field(
        description="the leaf the path ends in after len(siblings) steps (the key's own leaf for an "
        "inclusion proof, another key's for a non-inclusion proof), or null for an empty subtree"
    )


class StateValueProof(Model):
    """That key ``key`` of service ``service`` held ``value`` (hex; null: no value) after block
    ``height``, provable from a trusted validator set alone: the key's path to the checkpoint's
    ``state_root`` (``state``), the checkpoint's leaf in header ``height + 1``'s
    ``last_results_root`` (``index``/``size``/``path``), that header's commit, and every
    validator-set change before it. Verified by ``traco.core.lightclient.verify_state_value_proof``."""

    chain_id: str
    service: str
    key: str
    value: Annotated[str, StringConstraints(pattern=r"^(?:[0-9a-f]{2})*$")] | None = Field(
        description="the value's bytes as lowercase hex, or null where the key has no value"
    )
    height: int = Field(ge=1)
    checkpoint: BlockProcessed
    state: StateProof
    index: int = Field(ge=0)
    size: int = Field(ge=1)
    path: tuple[Hex32, ...]
    header: BlockHeader = Field(description="header height + 1, whose last_results_root covers the checkpoint")
    commit: Commit
    validator_changes: tuple[ValidatorChange, ...] = ()
