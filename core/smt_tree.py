"""The state tree's computation: applying changes, proving keys, and where its nodes are kept.

The hashing rules, the proof format and the verifier are in ``core/smt.py``; this module
computes roots and proofs by those rules over stored nodes, and says where each node goes.

**Where nodes are kept: by position.** A node's position is the path prefix of the subtree it
is the top of: ``(depth, the path's first depth bits)`` (``Position``; ``position_key`` names it
with ``'0'``/``'1'`` characters, ``''`` for the root). Inner nodes never move (a subtree's prefix is
fixed); a leaf sits where its subtree begins (the leaf shortcut), so it moves up when its
sibling goes and down when a key joins it. An ``apply`` returns the records to store
(``placed``), the positions to clear (``vacated``) and what every touched position held
before (``previous``): the caller overwrites in place and keeps ``previous`` as the undo of
the height, so the tree of the height before stays provable for one more height.

Why positions and not hashes, and how a store groups them (four levels to a record): see
``core/tree_store.py`` and decision 0008. The hashes, roots and proofs do not depend on it: a
position is only where a node is kept, and every node read is still checked against the hash
its parent names (``CorruptNode``, ``MissingNode``).

Readers: ``PlacedNodes`` (``at(position)``) is how a store holds the tree; a ``NodeReader``
(``get(hash)``, a ``dict`` of hash to node is one) serves tests and tools that keep nodes by
hash, with ``Update.new_nodes`` and ``Update.stale``. ``VerifiedNodes`` keeps nodes checked
once in memory between heights.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol, runtime_checkable

from traco.core import native
from traco.core.bounded import trim_oldest
from traco.core.smt import (
    DEPTH,
    EMPTY_ROOT,
    NODE_SIZE,
    CorruptNode,
    MissingNode,
    check_hash,
    key_hash,
)
from traco.schemas.state_proof import StateLeaf, StateProof

__all__ = [
    "NodeReader",
    "PlacedNodes",
    "Position",
    "StateTree",
    "Update",
    "VerifiedNodes",
    "position_key",
    "position_of",
]

_LEAF, _INNER = 0x00, 0x01
_sha256 = hashlib.sha256


NATIVE: ModuleType | None = native.load("traco.core._smt_native")
"""The compiled apply in use by default, or None (``StateTree(..., native=False)`` picks this
module's ``_Run`` for one tree)."""


class NodeReader(Protocol):
    """Nodes by hash (``dict.get`` fits)."""

    def get(self, node_hash: bytes, /) -> bytes | None: ...


Position = tuple[int, int]
"""Where a node is kept: ``(depth, prefix)``, the first ``depth`` bits of the path of the
subtree it tops, as an int (the root is ``(0, 0)``)."""


@runtime_checkable
class PlacedNodes(Protocol):
    """Nodes by position: what a store holds at a position, or None."""

    def at(self, position: Position, /) -> bytes | None: ...


def position_of(depth: int, path: int) -> Position:
    """The position of the subtree at ``depth`` on ``path`` (a 256-bit key hash as an int)."""
    return depth, path >> (DEPTH - depth)


def position_key(position: Position) -> str:
    """A position's name: its prefix as ``'0'``/``'1'`` characters (the root's is ``''``)."""
    depth, prefix = position
    return bin(prefix)[2:].zfill(depth) if depth else ""


@dataclass(frozen=True)
class Update:
    """What ``apply`` produced.

    - ``root``: the new root.
    - ``placed``: position (``Position``) to node, to store (overwriting what is there).
    - ``vacated``: positions to clear (none of them is in ``placed``).
    - ``previous``: what each position of ``placed`` and ``vacated`` held before (None: empty),
      the undo that turns the new tree's records back into the old tree's.
    - ``new_nodes`` and ``stale``: the same change for a store keyed by hash — the nodes
      created, and each node of the old tree the new one no longer reaches, once (a leaf that
      only moved is neither).
    """

    root: bytes
    placed: dict[Position, bytes]
    vacated: list[Position]
    previous: dict[Position, bytes | None]
    new_nodes: dict[bytes, bytes]
    stale: list[bytes]


class VerifiedNodes:
    """Nodes known to match their hashes, kept in memory: read from the store and checked, or
    computed by ``apply`` itself.

    Why: every ``apply`` descends from the root and read, and re-hashed to check, each node on
    the changed paths — the top of the tree in every block again. A node is its hash's
    preimage, so a node checked once stays right for as long as anyone keeps it (content
    addressing): what is remembered is never stale, only unused, and the oldest entries make
    room for new ones past ``limit`` (an eighth at a time: ``bounded.trim_oldest``). A node
    computed by an ``apply`` whose result was never stored does no harm either: only a root
    the store holds is ever descended from. The store stays the truth: a node not remembered
    is read from it and checked as before.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._nodes: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def nodes(self) -> dict[bytes, bytes]:
        """The nodes remembered, by hash: the dict itself. The compiled tree adds the nodes it
        reads from the store and checks; ``add`` and ``add_one`` (and its caller's ``add`` of
        the nodes it made) keep the bound."""
        return self._nodes

    def __contains__(self, node_hash: object) -> bool:
        return node_hash in self._nodes

    def get(self, node_hash: bytes) -> bytes | None:
        return self._nodes.get(node_hash)

    def add_one(self, node_hash: bytes, node: bytes) -> None:
        """Remember one node the caller has checked."""
        self._nodes[node_hash] = node
        trim_oldest(self._nodes, self.limit)

    def add(self, nodes: Mapping[bytes, bytes]) -> None:
        """Remember ``nodes`` (hash to encoding), which the caller vouches for."""
        self._nodes.update(nodes)
        trim_oldest(self._nodes, self.limit)


class StateTree:
    """Reads a tree's nodes from ``nodes`` (by position or by hash); computes updates and
    proofs, stores nothing.

    With ``verified``, nodes are looked up there first (and not hashed again), nodes read from
    ``nodes`` and checked are added to it, and so are the nodes each ``apply`` creates."""

    def __init__(
        self, nodes: PlacedNodes | NodeReader, verified: VerifiedNodes | None = None, native: bool = True
    ) -> None:
        self._placed = nodes if isinstance(nodes, PlacedNodes) else None
        self._by_hash: NodeReader | None = None if isinstance(nodes, PlacedNodes) else nodes
        self._verified = verified
        self._native = NATIVE if native else None

    def apply(self, root: bytes, changes: Mapping[str, bytes | None]) -> Update:
        """The tree after setting each key of ``changes`` to its value (None deletes it).

        All changes descend together, so keys that share a path prefix share its reads and
        hashes: k changes in a tree of n keys cost O(k log n). Deleting an absent key or
        setting a key to its current value changes nothing.
        """
        check_hash(root, "root")
        if self._native is not None:
            new_root, new, stale, placed, was = self._native.apply(root, *self._native_arguments(changes))
        else:
            entries = sorted(_entries(changes), key=_first)
            leaves: list[_Leaf] = [
                (int.from_bytes(path, "big"), digest, encoding, True)
                for path, digest, encoding in entries
                if digest is not None and encoding is not None
            ]
            run = _Run(self, [int.from_bytes(path, "big") for path, _, _ in entries], leaves)
            new_root, _, climbing = run.update(root, 0, 0, len(entries))
            new, stale, placed, was = run.new, run.stale, run.placed, run.previous
            if climbing is not None and new_root != root:  # the whole tree is one leaf now: at the root
                placed[(0, 0)] = climbing
        if self._verified is not None:
            self._verified.add(new)
        previous: dict[Position, bytes | None] = {position: was.get(position) for position in placed}
        vacated = [position for position in was if position not in placed]
        previous.update((position, was[position]) for position in vacated)
        return Update(new_root, placed, vacated, previous, new, stale)

    def apply_paged(
        self,
        root: bytes,
        changes: Mapping[str, bytes | None],
        get: Callable[[str], bytes | None],
        key_prefix: str,
        damaged: Callable[[str, bytes], object],
    ) -> tuple[bytes, dict[str, bytes | None], dict[str, bytes | None]] | None:
        """With the compiled tree: ``apply``, and the pages it changes as
        ``tree_store.paged`` gives them from the ``Update`` — the new root, the page records
        to store and what they were (``get(key_prefix + name)``: a page's stored record;
        ``damaged(name, record)`` raises for a record whose bitmap and length disagree).
        Without it, None: the caller pages an ``Update`` itself. Why both: the positions of a
        busy block's nodes, made as Python tuples only to be grouped into pages, cost as much
        as the tree's computation (decision 0008)."""
        if self._native is None:
            return None
        check_hash(root, "root")
        new_root, new, records, previous = self._native.apply_paged(
            root, *self._native_arguments(changes), get, key_prefix, damaged, MissingNode
        )
        if self._verified is not None:
            self._verified.add(new)
        return new_root, records, previous

    def _native_arguments(
        self, changes: Mapping[str, bytes | None]
    ) -> tuple[list[bytes], list[tuple[bytes, bytes, bytes]], dict[bytes, bytes], object, type[CorruptNode]]:
        assert self._native is not None
        paths, leaves = self._native.entries(changes if isinstance(changes, dict) else dict(changes))
        # the remembered nodes themselves (apply_paged adds those it reads), or a dict of its own
        known = self._verified.nodes if self._verified is not None else {}
        return paths, leaves, known, self.read, CorruptNode

    def prove(self, root: bytes, key: str) -> StateProof:
        """The path from ``root`` to where ``key``'s path ends: its leaf, another's, or EMPTY."""
        check_hash(root, "root")
        kh = key_hash(key)
        path = int.from_bytes(kh, "big")
        siblings: list[str] = []
        node = root
        while node != EMPTY_ROOT:
            depth = len(siblings)
            raw = self.read(node, (depth, path >> (DEPTH - depth)))
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

    def known_nodes(self) -> Mapping[bytes, bytes]:
        """The nodes already checked (``VerifiedNodes``), to look up before ``read``; empty
        without them."""
        return self._verified.nodes if self._verified is not None else _NONE_KNOWN

    def read(self, node_hash: bytes, position: Position) -> bytes:
        """The node ``node_hash``, kept at ``position``, checked against its hash (once, with
        ``verified``)."""
        verified = self._verified
        if verified is not None:
            known = verified.get(node_hash)
            if known is not None:
                return known
        if self._placed is not None:
            raw = self._placed.at(position)
        else:
            assert self._by_hash is not None
            raw = self._by_hash.get(node_hash)
        if raw is None:
            raise MissingNode(node_hash)
        if len(raw) != NODE_SIZE or raw[0] > _INNER:
            raise CorruptNode(node_hash, f"{len(raw)} bytes starting {raw[:1].hex()}, not a 65-byte node")
        if _sha256(raw).digest() != node_hash:
            raise CorruptNode(node_hash, "its bytes hash to another value")
        if verified is not None:
            verified.add_one(node_hash, raw)
        return raw


_NONE_KNOWN: Mapping[bytes, bytes] = {}


def _entries(changes: Mapping[str, bytes | None]) -> list[tuple[bytes, bytes | None, bytes | None]]:
    """Each change as ``(path, leaf hash, leaf encoding)``, both None for a delete."""
    entries: list[tuple[bytes, bytes | None, bytes | None]] = []
    for key, value in changes.items():
        if not isinstance(key, str):
            raise TypeError(f"state keys are str, not {type(key).__name__}")
        kh = key_hash(key)
        if value is None:
            entries.append((kh, None, None))
        elif isinstance(value, bytes):
            encoding = b"\x00" + kh + _sha256(value).digest()
            entries.append((kh, _sha256(encoding).digest(), encoding))
        else:
            raise TypeError(f"state values are bytes or None, not {type(value).__name__}")
    return entries


# A leaf on its way into the tree: (path as an int, hash, encoding, whether it is new).
_Leaf = tuple[int, bytes, bytes, bool]

# What a subtree became: its hash; whether it is a leaf (None: unknown, it was not touched);
# and, for a leaf that must be placed where its parent puts it (new, moved or climbing), its
# encoding.
_Subtree = tuple[bytes, bool | None, bytes | None]


class _Run:
    """One ``apply``: the sorted changes, and the nodes it creates, places and leaves behind.

    ``paths`` holds every changed key's path in order; ``leaves`` the new leaves (changes
    that set a value), in the same order. The descent works on index ranges of ``paths``
    (each range shares the path prefix of the subtree it is applied to) and copies leaves only
    where it reaches an empty subtree or a stored leaf and rebuilds below it.

    Placement: an inner node is placed where it is made; a leaf is placed by the inner node
    made above it (or at the root), since until then it may still climb. A position whose old
    node is stale, or whose leaf moved away, is vacated unless something is placed there.
    """

    def __init__(self, tree: StateTree, paths: list[int], leaves: list[_Leaf]) -> None:
        self.tree = tree
        self.known = tree.known_nodes()
        self.paths = paths
        self.leaves = leaves
        self.leaf_paths = [leaf[0] for leaf in leaves]
        self.new: dict[bytes, bytes] = {}
        self.stale: list[bytes] = []
        self.placed: dict[Position, bytes] = {}
        self.previous: dict[Position, bytes] = {}
        """What each vacated position held: every position this run places that held a node
        before is vacated first (its node went stale or moved), so this is the whole undo."""

    def vacate(self, position: Position, raw: bytes) -> None:
        self.previous[position] = raw

    def update(self, node: bytes, depth: int, lo: int, hi: int) -> _Subtree:
        """What the subtree ``node`` at ``depth`` becomes after changes ``lo:hi``."""
        if lo == hi:
            return node, None, None
        if node == EMPTY_ROOT:
            return self.build(self._new_leaves(lo, hi), depth)
        paths = self.paths
        position = (depth, paths[lo] >> (DEPTH - depth))
        raw = self.known.get(node) or self.tree.read(node, position)
        if raw[0] == _INNER:
            if depth == DEPTH:
                raise CorruptNode(node, "an inner node below depth 256")
            left, right = raw[1:33], raw[33:]
            shift = DEPTH - 1 - depth  # the first change whose bit ``depth`` is 1 goes right
            mid = bisect_left(paths, (paths[lo] >> shift | 1) << shift, lo, hi)
            # a side no change reaches is left as it is, without a call (most are: a block's
            # changes share the top of the tree and part below it)
            new_left = self.update(left, depth + 1, lo, mid) if lo < mid else (left, None, None)
            new_right = self.update(right, depth + 1, mid, hi) if mid < hi else (right, None, None)
            if new_left[0] == left and new_right[0] == right:
                return node, False, None
            self.stale.append(node)
            self.vacate(position, raw)
            # a child whose hash did not change did not move: nothing to place for it
            if new_left[0] == left:
                new_left = (left, new_left[1], None)
            if new_right[0] == right:
                new_right = (right, new_right[1], None)
            return self.join(new_left, new_right, position)
        return self._merge_leaf(node, raw, depth, lo, hi, position)

    def _merge_leaf(self, node: bytes, raw: bytes, depth: int, lo: int, hi: int, position: Position) -> _Subtree:
        """Changes ``lo:hi`` arrive at a stored leaf: rebuild the subtree from both."""
        path = int.from_bytes(raw[1:33], "big")
        leaves = self._new_leaves(lo, hi)
        at = bisect_left(self.paths, path, lo, hi)
        if at < hi and self.paths[at] == path:  # the leaf's own key changes
            spot = bisect_left(leaves, path, key=_path_of)
            if spot < len(leaves) and leaves[spot][0] == path and leaves[spot][1] == node:
                leaves[spot] = (path, node, raw, False)  # set to the value it had
            else:
                self.stale.append(node)
        else:
            leaves.insert(bisect_left(leaves, path, key=_path_of), (path, node, raw, False))
        built = self.build(leaves, depth)
        if built[0] != node:  # the leaf went (stale) or moves down (placed anew below)
            self.vacate(position, raw)
        return built

    def _new_leaves(self, lo: int, hi: int) -> list[_Leaf]:
        """The leaves among changes ``lo:hi`` (those that set a value, not delete)."""
        first = bisect_left(self.leaf_paths, self.paths[lo])
        last = bisect_left(self.leaf_paths, self.paths[hi - 1] + 1, first)
        return self.leaves[first:last]

    def build(self, leaves: list[_Leaf], depth: int, lo: int = 0, hi: int | None = None) -> _Subtree:
        """The subtree at ``depth`` that holds exactly ``leaves[lo:hi]`` (sorted, sharing the
        path's first ``depth`` bits). Only an empty subtree or a single leaf was there before."""
        hi = len(leaves) if hi is None else hi
        if lo == hi:
            return EMPTY_ROOT, False, None
        if hi - lo == 1:
            _, digest, encoding, new = leaves[lo]
            if new:
                self.new[digest] = encoding
            return digest, True, encoding
        if depth == DEPTH:
            raise ValueError("two distinct keys with one SHA-256 path")
        shift = DEPTH - 1 - depth
        mid = bisect_left(leaves, (leaves[lo][0] >> shift | 1) << shift, lo, hi, key=_path_of)
        left = self.build(leaves, depth + 1, lo, mid)
        right = self.build(leaves, depth + 1, mid, hi)
        return self.inner(left, right, (depth, leaves[lo][0] >> (DEPTH - depth))), False, None

    def join(self, left: _Subtree, right: _Subtree, position: Position) -> _Subtree:
        """The parent of two new children, collapsed as the rules say: a subtree that now holds
        one leaf (or none) is that leaf (or EMPTY), so a leaf climbs after its sibling's delete."""
        if left[0] == EMPTY_ROOT:
            if right[0] == EMPTY_ROOT:
                return EMPTY_ROOT, False, None
            climbing = self._leaf(right, (position[0] + 1, 2 * position[1] + 1))
            if climbing is not None:
                return right[0], True, climbing
        elif right[0] == EMPTY_ROOT:
            climbing = self._leaf(left, (position[0] + 1, 2 * position[1]))
            if climbing is not None:
                return left[0], True, climbing
        return self.inner(left, right, position), False, None

    def _leaf(self, child: _Subtree, position: Position) -> bytes | None:
        """The encoding of ``child`` if it is a leaf, else None. A leaf that was not to be
        placed anew sits at ``position`` now; it is about to climb, so that is vacated."""
        node, is_leaf, encoding = child
        if encoding is not None or is_leaf is False:
            return encoding
        raw = self.tree.read(node, position)
        if raw[0] != _LEAF:
            return None
        self.vacate(position, raw)
        return raw

    def inner(self, left: _Subtree, right: _Subtree, position: Position) -> bytes:
        """Make and place the inner node over ``left`` and ``right``, and place the children
        that are leaves to be placed anew."""
        encoding = b"\x01" + left[0] + right[0]
        digest = _sha256(encoding).digest()
        self.new[digest] = encoding
        placed = self.placed
        placed[position] = encoding
        if left[2] is not None:
            placed[(position[0] + 1, 2 * position[1])] = left[2]
        if right[2] is not None:
            placed[(position[0] + 1, 2 * position[1] + 1)] = right[2]
        return digest


def _path_of(leaf: _Leaf) -> int:
    return leaf[0]


def _first(entry: tuple[bytes, bytes | None, bytes | None]) -> bytes:
    return entry[0]
