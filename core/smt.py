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

Node encoding (what the caller stores under the node's hash): the hash's own preimage, 65
bytes, ``0x00 ‖ key_hash ‖ value_hash`` for a leaf and ``0x01 ‖ left ‖ right`` for an inner
node; ``EMPTY`` is never stored. So every stored node is checked by hashing it, and is.

How: ``StateTree(nodes).apply(root, changes)`` takes any ``NodeReader`` (a ``dict`` is one),
writes nothing, and returns the new root, the nodes to write and the nodes no longer
reachable (``Update``), for the caller to store in the same transaction as the state and to
prune if it keeps no old roots. ``prove(root, key)`` returns a ``StateProof``;
``verify_state_proof(root, key, value, proof)`` needs only the proof.

Caveats: a missing or damaged node raises ``MissingNode`` or ``CorruptNode`` rather than
giving a wrong root. Stale nodes assume one version is kept: a caller that keeps several roots
must not prune nodes another kept root still reaches. Keys chosen to share a long hash prefix
(each shared bit costs the chooser 2x the work) only make their own paths and proofs longer.
"""

from __future__ import annotations

import hashlib
import itertools
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from traco.core.errors import StorageError
from traco.schemas.state_proof import StateLeaf, StateProof

__all__ = [
    "EMPTY_ROOT",
    "CorruptNode",
    "MissingNode",
    "NodeReader",
    "StateTree",
    "StateTreeError",
    "Update",
    "VerifiedNodes",
    "inner_hash",
    "key_hash",
    "leaf_hash",
    "verify_state_proof",
]

HASH_SIZE = 32
DEPTH = 256
EMPTY_ROOT = bytes(HASH_SIZE)
"""The hash of an empty subtree, and so the root of an empty state."""

_LEAF, _INNER = 0x00, 0x01
_NODE_SIZE = 1 + 2 * HASH_SIZE
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


class NodeReader(Protocol):
    """Where the tree reads nodes: their encoding by hash, or None (``dict.get`` fits)."""

    def get(self, node_hash: bytes, /) -> bytes | None: ...


@dataclass(frozen=True)
class Update:
    """What ``apply`` produced: store ``new_nodes`` with the state; ``stale`` may be deleted.

    ``stale`` lists each node of the old tree that the new tree no longer reaches, once; a
    leaf that only moved (up after a sibling's delete, down after an insert) is neither new
    nor stale, since a leaf's hash does not depend on its depth.
    """

    root: bytes
    new_nodes: dict[bytes, bytes]
    stale: list[bytes]


def key_hash(key: str) -> bytes:
    """``SHA-256(UTF-8(key))``: the key's path through the tree."""
    return _sha256(key.encode("utf-8")).digest()


def leaf_hash(key_hash: bytes, value_hash: bytes) -> bytes:
    """``SHA-256(0x00 ‖ key_hash ‖ value_hash)``."""
    return _sha256(b"\x00" + key_hash + value_hash).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``."""
    return _sha256(b"\x01" + left + right).digest()


class VerifiedNodes:
    """Nodes known to match their hashes, kept in memory: read from the store and checked, or
    computed by ``apply`` itself.

    Why: every ``apply`` descends from the root and read, and re-hashed to check, each node on
    the changed paths — the top of the tree in every block again, a third of the state tree's
    cost in a busy block. A node is its hash's preimage, so a node checked once stays right
    for as long as anyone keeps it (content addressing): what is remembered is never stale,
    only unused, and the oldest entries make room for new ones past ``limit``. A node computed
    by an ``apply`` whose result was never stored does no harm either: only a root the store
    holds is ever descended from. The store stays the truth: a node not remembered is read
    from it and checked as before (``MissingNode``, ``CorruptNode``).
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._nodes: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, node_hash: bytes) -> bytes | None:
        return self._nodes.get(node_hash)

    def add_one(self, node_hash: bytes, node: bytes) -> None:
        """Remember one node the caller has checked."""
        known = self._nodes
        known[node_hash] = node
        if len(known) > self.limit:
            del known[next(iter(known))]

    def add(self, nodes: Mapping[bytes, bytes]) -> None:
        """Remember ``nodes`` (hash to encoding), which the caller vouches for."""
        known = self._nodes
        known.update(nodes)
        excess = len(known) - self.limit
        if excess > 0:
            for node_hash in list(itertools.islice(known, excess)):
                del known[node_hash]


# A leaf on its way into the tree: (path as an int, hash, encoding to write or None if stored).
_Leaf = tuple[int, bytes, bytes | None]


class StateTree:
    """Reads a tree's nodes from ``nodes``; computes updates and proofs, stores nothing.

    With ``verified``, nodes are looked up there first (and not hashed again), nodes read from
    ``nodes`` and checked are added to it, and so are the nodes each ``apply`` creates."""

    def __init__(self, nodes: NodeReader, verified: VerifiedNodes | None = None) -> None:
        self._nodes = nodes
        self._verified = verified

    def apply(self, root: bytes, changes: Mapping[str, bytes | None]) -> Update:
        """The tree after setting each key of ``changes`` to its value (None deletes it).

        All changes descend together, so keys that share a path prefix share its reads and
        hashes: k changes in a tree of n keys cost O(k log n). Deleting an absent key or
        setting a key to its current value changes nothing.
        """
        _check_hash(root, "root")
        entries: list[tuple[int, bytes | None, bytes | None]] = []
        for key, value in changes.items():
            if not isinstance(key, str):
                raise TypeError(f"state keys are str, not {type(key).__name__}")
            kh = key_hash(key)
            if value is None:
                entries.append((int.from_bytes(kh, "big"), None, None))
            elif isinstance(value, bytes):
                encoding = b"\x00" + kh + _sha256(value).digest()
                entries.append((int.from_bytes(kh, "big"), _sha256(encoding).digest(), encoding))
            else:
                raise TypeError(f"state values are bytes or None, not {type(value).__name__}")
        entries.sort(key=lambda e: e[0])
        run = _Run(self, [e[0] for e in entries], [(p, h, enc) for p, h, enc in entries if h is not None])
        new_root, _ = run.update(root, 0, 0, len(entries))
        if self._verified is not None:
            self._verified.add(run.new)
        return Update(root=new_root, new_nodes=run.new, stale=run.stale)

    def prove(self, root: bytes, key: str) -> StateProof:
        """The path from ``root`` to where ``key``'s path ends: its leaf, another's, or EMPTY."""
        _check_hash(root, "root")
        kh = key_hash(key)
        path = int.from_bytes(kh, "big")
        siblings: list[str] = []
        node = root
        while node != EMPTY_ROOT:
            raw = self.read(node)
            if raw[0] == _LEAF:
                leaf = StateLeaf(key_hash=raw[1:33].hex(), value_hash=raw[33:].hex())
                return StateProof(key_hash=kh.hex(), siblings=tuple(siblings), leaf=leaf)
            if len(siblings) == DEPTH:
                raise CorruptNode(node, "an inner node below depth 256")
            left, right = raw[1:33], raw[33:]
            if path >> (DEPTH - 1 - len(siblings)) & 1:
                siblings.append(left.hex())
                node = right
            else:
                siblings.append(right.hex())
                node = left
        return StateProof(key_hash=kh.hex(), siblings=tuple(siblings), leaf=None)

    def read(self, node_hash: bytes) -> bytes:
        """The stored encoding of a node, checked against its hash (once, with ``verified``)."""
        verified = self._verified
        if verified is not None:
            known = verified.get(node_hash)
            if known is not None:
                return known
        raw = self._nodes.get(node_hash)
        if raw is None:
            raise MissingNode(node_hash)
        if len(raw) != _NODE_SIZE or raw[0] > _INNER:
            raise CorruptNode(node_hash, f"{len(raw)} bytes starting {raw[:1].hex()}, not a 65-byte node")
        if _sha256(raw).digest() != node_hash:
            raise CorruptNode(node_hash, "its bytes hash to another value")
        if verified is not None:
            verified.add_one(node_hash, raw)
        return raw


class _Run:
    """One ``apply``: the sorted changes, and the nodes it creates and leaves behind.

    ``paths`` holds every changed key's path in order; ``leaves`` the new leaves (changes
    that set a value), in the same order. The descent works on index ranges of ``paths``
    (each range shares the path prefix of the subtree it is applied to) and copies leaves only
    where it reaches an empty subtree or a stored leaf and rebuilds below it.
    """

    def __init__(self, tree: StateTree, paths: list[int], leaves: list[_Leaf]) -> None:
        self.tree = tree
        self.paths = paths
        self.leaves = leaves
        self.leaf_paths = [leaf[0] for leaf in leaves]
        self.new: dict[bytes, bytes] = {}
        self.stale: list[bytes] = []

    def update(self, node: bytes, depth: int, lo: int, hi: int) -> tuple[bytes, bool | None]:
        """New hash of the subtree ``node`` at ``depth`` after changes ``lo:hi``, and whether it
        is a leaf (None: unknown, the subtree was not touched)."""
        if lo == hi:
            return node, None
        if node == EMPTY_ROOT:
            return self.build(self._new_leaves(lo, hi), depth)
        raw = self.tree.read(node)
        if raw[0] == _INNER:
            if depth == DEPTH:
                raise CorruptNode(node, "an inner node below depth 256")
            left, right = raw[1:33], raw[33:]
            mid = _split(self.paths, lo, hi, depth)
            new_left, left_is_leaf = self.update(left, depth + 1, lo, mid)
            new_right, right_is_leaf = self.update(right, depth + 1, mid, hi)
            if new_left == left and new_right == right:
                return node, False
            self.stale.append(node)
            return self.join(new_left, left_is_leaf, new_right, right_is_leaf)
        return self._merge_leaf(node, raw, depth, lo, hi)

    def _merge_leaf(self, node: bytes, raw: bytes, depth: int, lo: int, hi: int) -> tuple[bytes, bool]:
        """Changes ``lo:hi`` arrive at a stored leaf: rebuild the subtree from both."""
        path = int.from_bytes(raw[1:33], "big")
        leaves = self._new_leaves(lo, hi)
        at = bisect_left(self.paths, path, lo, hi)
        if at < hi and self.paths[at] == path:  # the leaf's own key changes
            spot = bisect_left(leaves, path, key=_path_of)
            if spot < len(leaves) and leaves[spot][0] == path and leaves[spot][1] == node:
                leaves[spot] = (path, node, None)  # set to the value it had
            else:
                self.stale.append(node)
        else:
            leaves.insert(bisect_left(leaves, path, key=_path_of), (path, node, None))
        return self.build(leaves, depth)

    def _new_leaves(self, lo: int, hi: int) -> list[_Leaf]:
        """The leaves among changes ``lo:hi`` (those that set a value, not delete)."""
        first = bisect_left(self.leaf_paths, self.paths[lo])
        last = bisect_left(self.leaf_paths, self.paths[hi - 1] + 1, first)
        return self.leaves[first:last]

    def build(self, leaves: list[_Leaf], depth: int, lo: int = 0, hi: int | None = None) -> tuple[bytes, bool]:
        """The subtree at ``depth`` that holds exactly ``leaves[lo:hi]`` (sorted, sharing the
        path's first ``depth`` bits)."""
        hi = len(leaves) if hi is None else hi
        if lo == hi:
            return EMPTY_ROOT, False
        if hi - lo == 1:
            _, digest, encoding = leaves[lo]
            if encoding is not None:
                self.new[digest] = encoding
            return digest, True
        if depth == DEPTH:
            raise ValueError("two distinct keys with one SHA-256 path")
        shift = DEPTH - 1 - depth
        mid = bisect_left(leaves, (leaves[lo][0] >> shift | 1) << shift, lo, hi, key=_path_of)
        left, _ = self.build(leaves, depth + 1, lo, mid)
        right, _ = self.build(leaves, depth + 1, mid, hi)
        return self.inner(left, right), False

    def join(
        self, left: bytes, left_is_leaf: bool | None, right: bytes, right_is_leaf: bool | None
    ) -> tuple[bytes, bool]:
        """The parent of two new children, collapsed as the rules say: a subtree that now holds
        one leaf (or none) is that leaf (or EMPTY), so a leaf climbs after its sibling's delete."""
        if left == EMPTY_ROOT and (right == EMPTY_ROOT or self._is_leaf(right, right_is_leaf)):
            return right, right != EMPTY_ROOT
        if right == EMPTY_ROOT and self._is_leaf(left, left_is_leaf):
            return left, True
        return self.inner(left, right), False

    def inner(self, left: bytes, right: bytes) -> bytes:
        encoding = b"\x01" + left + right
        digest = _sha256(encoding).digest()
        self.new[digest] = encoding
        return digest

    def _is_leaf(self, node: bytes, known: bool | None) -> bool:
        if known is not None:
            return known
        return self.tree.read(node)[0] == _LEAF


def _path_of(leaf: _Leaf) -> int:
    return leaf[0]


def _split(paths: list[int], lo: int, hi: int, depth: int) -> int:
    """First index in ``paths[lo:hi]`` (sorted, sharing ``depth`` leading bits) whose bit
    ``depth`` is 1."""
    shift = DEPTH - 1 - depth
    first_right = (paths[lo] >> shift | 1) << shift
    return bisect_left(paths, first_right, lo, hi)


def _check_hash(value: object, name: str) -> None:
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
