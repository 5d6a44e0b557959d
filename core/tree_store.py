"""How a service's store keeps its state tree: each node at its position, and the undo of the
last height (architecture: Nodes; the computation is ``core/smt_tree.py``).

Keys, in the service's own store beside its state (none of them part of the state the tree
commits to, ``service_state.NOT_STATE``)::

    tree/<position>       the node at that position (``smt_tree.position_key``: the path
                          prefix as '0'/'1'; ``tree/`` is the root), 65 bytes
    runtime/tree_undo     what the positions the last height changed held before it
    runtime/state_root    the root (hex)

Why the undo: a node serves a state proof for the last height a sealed header commits to,
the height before the one its replica last executed (``services/node/state_proofs.py``), and
the records were overwritten since. ``PreviousNodes`` reads the store through the undo, so the
tree of that height is whole again; one height back is all that is ever needed.

Undo encoding (empty: nothing changed): the changed positions in ASCII joined by ``,``, a
newline, one byte per position (``0``: it was empty, ``1``: it held a node), then the 65-byte
nodes of those that held one, in order.

Migration: a store written before positions (nodes under ``smt/<hash hex>``, stale ones in
``runtime/stale_nodes``) is moved at its next height. The tree of the stored state is rebuilt
from the state itself and must hash to the stored root, or ``StateTreeError`` stops the
service (a store whose state does not match its own root is not used to sign anything); the
old keys are deleted in the same storage transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from traco.core.domain import StateView
from traco.core.smt import EMPTY_ROOT, NODE_SIZE, StateTreeError
from traco.core.smt_tree import StateTree, Update, VerifiedNodes

TREE_PREFIX = "tree/"
TREE_UNDO_KEY = "runtime/tree_undo"
LEGACY_PREFIX = "smt/"
"""Where nodes were kept by hash before positions (read only to migrate)."""
LEGACY_STALE_KEY = "runtime/stale_nodes"
NOT_STATE = ("runtime/", "up/", TREE_PREFIX, LEGACY_PREFIX)
"""Key prefixes that are not part of a service's own state, so not in its tree: the runtime's
bookkeeping, its projections of upstream services (committed by the upstreams' own roots)
and the tree's own records."""


class StoredNodes:
    """The tree's nodes as a store (any ``StateView``) holds them now."""

    def __init__(self, view: StateView) -> None:
        self.view = view

    def at(self, position: str, /) -> bytes | None:
        return self.view.get(TREE_PREFIX + position)


class PreviousNodes:
    """The tree of the height before the last one stored: the records with the last height's
    undo applied (``TREE_UNDO_KEY``)."""

    def __init__(self, view: StateView) -> None:
        self.view = view
        self.undo = decode_undo(view.get(TREE_UNDO_KEY))

    def at(self, position: str, /) -> bytes | None:
        if position in self.undo:
            return self.undo[position]
        return self.view.get(TREE_PREFIX + position)


class _Placed:
    """Positions held in a dict (a tree being migrated)."""

    def __init__(self, records: Mapping[str, bytes]) -> None:
        self.records = records

    def at(self, position: str, /) -> bytes | None:
        return self.records.get(position)


def encode_undo(previous: Mapping[str, bytes | None]) -> bytes:
    if not previous:
        return b""
    names = ",".join(previous).encode("ascii")
    flags = bytes(0 if node is None else 1 for node in previous.values())
    return names + b"\n" + flags + b"".join(node for node in previous.values() if node is not None)


def decode_undo(raw: bytes | None) -> dict[str, bytes | None]:
    """The undo as stored; a damaged record is a ``StateTreeError``, never a wrong tree."""
    if not raw:
        return {}
    try:
        head, _, body = raw.partition(b"\n")
        names = head.decode("ascii").split(",")
        flags, nodes = body[: len(names)], body[len(names) :]
        if any(name.strip("01") for name in names):
            raise ValueError("a position that is not a path prefix")
        if len(flags) != len(names) or flags.strip(b"\x00\x01"):
            raise ValueError("the flags do not match the positions")
        if len(nodes) != NODE_SIZE * flags.count(1):
            raise ValueError(f"{len(nodes)} bytes of nodes for {flags.count(1)} nodes")
    except (UnicodeDecodeError, ValueError) as exc:
        raise StateTreeError(f"{TREE_UNDO_KEY} is damaged: {exc}") from exc
    out: dict[str, bytes | None] = {}
    at = 0
    for name, flag in zip(names, flags, strict=True):
        if flag:
            out[name] = nodes[at : at + NODE_SIZE]
            at += NODE_SIZE
        else:
            out[name] = None
    return out


def tree_writes(
    view: StateView, root: bytes, changes: Mapping[str, bytes | None], verified: VerifiedNodes | None = None
) -> tuple[Update, dict[str, bytes | None]]:
    """Apply ``changes`` to the tree of ``root`` kept in ``view``; the update, and the writes
    that store it (records placed and cleared, and the undo) — with a migration from the
    hash-keyed layout first if ``view`` still has one."""
    out: dict[str, bytes | None] = {}
    nodes: StoredNodes | _Placed = StoredNodes(view)
    if root != EMPTY_ROOT and view.get(TREE_PREFIX) is None:
        migrated = _migrate(view, root)
        out.update({TREE_PREFIX + position: node for position, node in migrated.items()})
        out.update({key: None for key, _ in view.scan(LEGACY_PREFIX)})
        out[LEGACY_STALE_KEY] = None
        nodes = _Placed(migrated)
        verified = None  # the migrated records are checked as they are read, like any store's
    update = StateTree(nodes, verified).apply(root, changes)
    out.update({TREE_PREFIX + position: None for position in update.vacated})
    out.update({TREE_PREFIX + position: node for position, node in update.placed.items()})
    out[TREE_UNDO_KEY] = encode_undo(update.previous)
    return update, out


def _migrate(view: StateView, root: bytes) -> dict[str, bytes]:
    """The records of the tree of ``view``'s own state, checked against ``root``."""
    state = {key: value for key, value in view.scan("") if not key.startswith(NOT_STATE)}
    rebuilt = StateTree(_Placed({})).apply(EMPTY_ROOT, state)
    if rebuilt.root != root:
        raise StateTreeError(
            f"the stored state hashes to {rebuilt.root.hex()}, not to its stored root {root.hex()}: "
            "the store is damaged; rebuild this service from the blocks"
        )
    return rebuilt.placed


__all__ = [
    "LEGACY_PREFIX",
    "NOT_STATE",
    "TREE_PREFIX",
    "TREE_UNDO_KEY",
    "PreviousNodes",
    "StoredNodes",
    "decode_undo",
    "encode_undo",
    "tree_writes",
]
