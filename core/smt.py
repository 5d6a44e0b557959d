"""A sparse Merkle tree over a service's key/value state: ``state_root`` and state proofs.

Why: a service's checkpoint signs ``state_root`` (architecture: Consensus, Nodes), one 32-byte commitment to its
whole state, so that one balance, hold or pledge can be proven to a light client (a bridge on
another chain) with a few hundred bytes, and so that a block's state changes cost O(k log n)
hashes rather than a pass over the whole state.

Hashing rules (what an auditor reimplements; SHA-256 throughout, ``‖`` concatenation):

* ``key_hash = SHA-256(UTF-8(key))``: the key's 256-bit path. Bit ``i`` of the path is bit
  ``7 - i % 8`` of byte ``i // 8`` (most significant first); 0 goes left, 1 goes right.
* ``leaf = SHA-256(0x00 ‖ key_hash ‖ SHA-256(value))``.
* ``inner = SHA-256(0x01 ‖ left ‖ right)``; the prefixes keep a leaf from posing as an inner
  node. ``EMPTY = 32 zero bytes`` is the hash of an empty subtree (it has no preimage).
* The tree of a set of entries at depth ``d`` (all sharing the path's first ``d`` bits) is
  ``EMPTY`` if there are none, the entry's ``leaf`` if there is exactly one (the leaf sits
  where its subtree begins, not at depth 256: Diem's "leaf shortcut"), else
  ``inner(tree(entries with bit d = 0, d + 1), tree(entries with bit d = 1, d + 1))``.
  ``state_root`` is the tree at depth 0. The shape is a function of the contents alone, so
  the root does not depend on insertion order or batch boundaries. Consequences a verifier
  may check: an inner node never has two empty children, nor one empty child and one leaf.

Node encoding (what is stored for a node): the hash's own preimage, 65 bytes,
``0x00 ‖ key_hash ‖ value_hash`` for a leaf and ``0x01 ‖ left ‖ right`` for an inner node;
``EMPTY`` is never stored. So every stored node is checked by hashing it, and is.

How: ``core/smt_tree.py`` computes by these rules — ``StateTree(nodes).apply(root, changes)``
returns the new root and where its nodes go, ``prove(root, key)`` a ``StateProof`` — and
``verify_state_proof(root, key, value, proof)`` here needs only the proof.

Caveats: a missing or damaged node raises ``MissingNode`` or ``CorruptNode`` rather than
giving a wrong root. Keys chosen to share a long hash prefix (each shared bit costs the
chooser 2x the work) only make their own paths and proofs longer.
"""

from __future__ import annotations

import hashlib

from traco.core.errors import StorageError
from traco.schemas.state_proof import StateProof

__all__ = [
    "DEPTH",
    "EMPTY_ROOT",
    "NODE_SIZE",
    "CorruptNode",
    "MissingNode",
    "StateTreeError",
    "check_hash",
    "inner_hash",
    "key_hash",
    "leaf_hash",
    "verify_state_proof",
]

HASH_SIZE = 32
DEPTH = 256
EMPTY_ROOT = bytes(HASH_SIZE)
"""The hash of an empty subtree, and so the root of an empty state."""

NODE_SIZE = 1 + 2 * HASH_SIZE
_sha256 = hashlib.sha256


class StateTreeError(StorageError):
    """The node store cannot give the tree what it needs: the state root cannot be trusted."""


class MissingNode(StateTreeError):
    """A node reachable from the given root is not in the store (pruned too early, or lost)."""

    def __init__(self, node_hash: bytes) -> None:
        super().__init__(f"state tree node {node_hash.hex()} is missing from the node store")
        self.node_hash = node_hash


class CorruptNode(StateTreeError):
    """A stored node is not the 65-byte preimage of its hash, or the tree is deeper than 256."""

    def __init__(self, node_hash: bytes, reason: str) -> None:
        super().__init__(f"state tree node {node_hash.hex()} is corrupt: {reason}")
        self.node_hash = node_hash


def key_hash(key: str) -> bytes:
    """``SHA-256(UTF-8(key))``: the key's path through the tree."""
    return _sha256(key.encode("utf-8")).digest()


def leaf_hash(key_hash: bytes, value_hash: bytes) -> bytes:
    """``SHA-256(0x00 ‖ key_hash ‖ value_hash)``."""
    return _sha256(b"\x00" + key_hash + value_hash).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``."""
    return _sha256(b"\x01" + left + right).digest()


def check_hash(value: object, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"{name} must be {HASH_SIZE} bytes, got {value!r:.80}")


def verify_state_proof(root: bytes, key: str, value: bytes | None, proof: StateProof) -> str | None:
    """Why ``proof`` does not show that ``key`` holds ``value`` (None: absent) under ``root``;
    None when it does. Takes untrusted input and never raises."""
    try:
        return _verify(root, key, value, proof)
    except (TypeError, ValueError, AttributeError, UnicodeError) as exc:
        return f"malformed proof or claim: {exc}"


def _verify(root: bytes, key: str, value: bytes | None, proof: StateProof) -> str | None:
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        return "the root is not 32 bytes"
    if not isinstance(key, str) or not (value is None or isinstance(value, bytes)):
        return "the key must be str and the value bytes or None"
    if not isinstance(proof, StateProof):
        return f"not a StateProof but {type(proof).__name__}"
    kh = key_hash(key)
    if bytes.fromhex(proof.key_hash) != kh:
        return "the proof is for another key"
    siblings = [bytes.fromhex(s) for s in proof.siblings]
    if len(siblings) > DEPTH or any(len(s) != HASH_SIZE for s in siblings):
        return "the path is longer than 256 or has a sibling that is not 32 bytes"
    if siblings and siblings[-1] == EMPTY_ROOT:
        return "the deepest sibling is empty: no canonical tree has that shape"
    leaf = proof.leaf
    leaf_kh = bytes.fromhex(leaf.key_hash) if leaf is not None else None
    if value is not None:
        if leaf_kh != kh or leaf is None:
            return "the proof shows the key absent, not holding a value"
        if bytes.fromhex(leaf.value_hash) != _sha256(value).digest():
            return "the proof is for another value"
    elif leaf_kh == kh:
        return "the proof shows the key present, not absent"
    path = int.from_bytes(kh, "big")
    depth = len(siblings)
    if leaf is None or leaf_kh is None:
        node = EMPTY_ROOT
    else:
        if int.from_bytes(leaf_kh, "big") >> (DEPTH - depth) != path >> (DEPTH - depth):
            return "the proof's leaf is not on the key's path"
        node = leaf_hash(leaf_kh, bytes.fromhex(leaf.value_hash))
    for i in range(depth - 1, -1, -1):
        sibling = siblings[i]
        node = inner_hash(sibling, node) if path >> (DEPTH - 1 - i) & 1 else inner_hash(node, sibling)
    if node != root:
        return "the proof leads to another root"
    return None
