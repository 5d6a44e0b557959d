"""How a service's store keeps its state tree: by position, four levels to a record, with the
undo of the last height (architecture: Nodes; the computation is ``core/smt_tree.py``).

Keys, in the service's own store beside its state (none of them part of the state the tree
commits to, ``NOT_STATE``)::

    tree/<page>           the nodes of one page (below); ``tree/`` holds the root's page
    runtime/tree_undo     the pages the last height changed, as they were before it
    runtime/state_root    the root (hex)

A node's position is the path prefix of the subtree it tops (``smt_tree.Position``; its name,
``position_key``, is the prefix in '0'/'1' characters). A **page** holds the nodes of four
levels: those at depths ``4k .. 4k+3`` under one prefix of depth ``4k`` (the page's name), at
most 15, in heap order (slot 0 the page's top, slots 1-2 its children, 3-6, 7-14). A page is
two bytes of bitmap (bit ``i``: slot ``i`` holds a node) and the 65-byte nodes of the set
slots, in slot order; an empty page is no key.

Why pages (decision 0008): keyed by hash, every changed key wrote about four new nodes at
random places in the store and deleted four old ones a height later; a busy block dirtied
nearly every page of the state table, and rows, not bytes, are what SQLite charges for. By
position, a changed path overwrites its nodes where they are and leaves nothing stale; four
levels to a record writes a changed path in a quarter of the rows, next to each other. Hashes,
roots and proofs do not change: a position is only where a node is kept, and every node read
is still checked against the hash its parent names.

Why the undo: a node serves a state proof for the last height a sealed header commits to, the
height before the one its replica last executed (``services/node/state_proofs.py``), and its
pages were overwritten since. ``PreviousNodes`` reads through the undo, so the tree of that
height is whole again; one height back is all that is ever needed. Undo encoding (empty:
nothing changed): the page names in ASCII joined by ``,``, a newline, then for each page a
``u16`` length (``0xFFFF``: there was no page) and the page as it was.

Migration: a store written before positions (nodes under ``smt/<hash hex>``, stale ones in
``runtime/stale_nodes``) is moved at its next height. The tree of the stored state is rebuilt
from the state itself and must hash to the stored root, or ``StateTreeError`` stops the
service (a store whose state does not match its own root is not used to sign anything); the
old keys are deleted in the same storage transaction.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Mapping

from traco.core.domain import StateView
from traco.core.smt import EMPTY_ROOT, NODE_SIZE, StateTreeError
from traco.core.smt_tree import Position, StateTree, Update, VerifiedNodes, position_key

TREE_PREFIX = "tree/"
TREE_UNDO_KEY = "runtime/tree_undo"
LEGACY_PREFIX = "smt/"
"""Where nodes were kept by hash before positions (read only to migrate)."""
LEGACY_STALE_KEY = "runtime/stale_nodes"
NOT_STATE = ("runtime/", "up/", TREE_PREFIX, LEGACY_PREFIX)
"""Key prefixes that are not part of a service's own state, so not in its tree: the runtime's
bookkeeping, its projections of upstream services (committed by the upstreams' own roots)
and the tree's own records."""

PAGE_LEVELS = 4
_BITMAP = struct.Struct(">H")
_LENGTH = struct.Struct(">H")
_NO_PAGE = 0xFFFF

Slots = dict[int, bytes]
"""A page's nodes by slot."""


def page_of(position: Position) -> tuple[Position, int]:
    """The page that keeps the node at ``position`` (the position of its top), and its slot."""
    depth, prefix = position
    below = depth % PAGE_LEVELS
    return (depth - below, prefix >> below), (1 << below) - 1 + (prefix & ((1 << below) - 1))


def encode_page(slots: Mapping[int, bytes]) -> bytes | None:
    """A page's record, or None for an empty page (no key)."""
    if not slots:
        return None
    order = sorted(slots)
    bitmap = 0
    for slot in order:
        bitmap |= 1 << slot
    return _BITMAP.pack(bitmap) + b"".join([slots[slot] for slot in order])


def decode_page(name: str, raw: bytes) -> Slots:
    """A stored page; a damaged one is a ``StateTreeError``, never a wrong node."""
    if len(raw) < _BITMAP.size:
        raise StateTreeError(f"state tree page {name!r} is damaged: {len(raw)} bytes")
    (bitmap,) = _BITMAP.unpack_from(raw)
    order = [slot for slot in range(2**PAGE_LEVELS - 1) if bitmap >> slot & 1]
    if bitmap >> (2**PAGE_LEVELS - 1) or not order or len(raw) != _BITMAP.size + NODE_SIZE * len(order):
        raise StateTreeError(f"state tree page {name!r} is damaged: bitmap {bitmap:#06x}, {len(raw)} bytes")
    at = _BITMAP.size
    slots: Slots = {}
    for slot in order:
        slots[slot] = raw[at : at + NODE_SIZE]
        at += NODE_SIZE
    return slots


class _Pages:
    """Nodes read by position from pages, each page's record read once; a node is sliced out
    of its page's record where the bitmap says it is, a page is decoded whole only to change."""

    def __init__(self) -> None:
        self._records: dict[Position, bytes | None] = {}

    def raw_page(self, name: str) -> bytes | None:
        raise NotImplementedError

    def records(self) -> tuple[Callable[[str], bytes | None], str]:
        """Where the page records are: ``get(prefix + name)`` is a page's record, unchecked (the
        compiled tree checks it, and reads each page once)."""
        raise NotImplementedError

    def record(self, page: Position) -> bytes | None:
        """The page's record as read (None: no page); its length is checked against its bitmap."""
        if page in self._records:
            return self._records[page]
        raw = self._records[page] = self.raw_page(position_key(page))
        if raw is not None and (len(raw) < 2 or len(raw) != 2 + NODE_SIZE * _BITMAP.unpack_from(raw)[0].bit_count()):
            decode_page(position_key(page), raw)  # raises, naming what is wrong
        return raw

    def page(self, page: Position) -> Slots:
        raw = self.record(page)
        return {} if raw is None else decode_page(position_key(page), raw)

    def at(self, position: Position, /) -> bytes | None:
        page, slot = page_of(position)
        raw = self.record(page)
        if raw is None:
            return None
        bitmap = raw[0] << 8 | raw[1]
        if not bitmap >> slot & 1:
            return None
        at = 2 + NODE_SIZE * (bitmap & ((1 << slot) - 1)).bit_count()
        return raw[at : at + NODE_SIZE]


class StoredNodes(_Pages):
    """The tree's nodes as a store (any ``StateView``) holds them now."""

    def __init__(self, view: StateView) -> None:
        super().__init__()
        self.view = view

    def raw_page(self, name: str) -> bytes | None:
        return self.view.get(TREE_PREFIX + name)

    def records(self) -> tuple[Callable[[str], bytes | None], str]:
        return self.view.get, TREE_PREFIX


class PreviousNodes(_Pages):
    """The tree of the height before the last one stored: the pages with the last height's
    undo applied (``TREE_UNDO_KEY``)."""

    def __init__(self, view: StateView) -> None:
        super().__init__()
        self.view = view
        self.undo = decode_undo(view.get(TREE_UNDO_KEY))

    def raw_page(self, name: str) -> bytes | None:
        if name in self.undo:
            return self.undo[name]
        return self.view.get(TREE_PREFIX + name)


class _Migrated(_Pages):
    """The pages of a tree being moved from the hash-keyed layout, held in memory."""

    def __init__(self, pages: Mapping[str, bytes]) -> None:
        super().__init__()
        self.pages = pages

    def raw_page(self, name: str) -> bytes | None:
        return self.pages.get(name)

    def records(self) -> tuple[Callable[[str], bytes | None], str]:
        return self.pages.get, ""


def paged(update: Update, before: _Pages) -> tuple[dict[str, bytes | None], dict[str, bytes | None]]:
    """The pages ``update`` changes, by name, as records to store (None: the page is now
    empty), and as they were in ``before`` (the undo).

    A page held something before exactly when the old tree had a node at the page's top (every
    node's ancestors are nodes), and if a page is changed, that node went stale or moved: it is
    in ``update.previous``. So a page whose top is not there is known empty without a read —
    a growing tree makes new pages at every height, and each read of a missing key costs a
    query."""
    touched: dict[Position, Slots] = {}
    was = update.previous
    levels = PAGE_LEVELS
    # page_of, written out: this loop runs for every node a busy block places or clears
    for position, node in itertools.chain(update.placed.items(), ((p, None) for p in update.vacated)):
        depth, prefix = position
        below = depth % levels
        page = (depth - below, prefix >> below)
        slots = touched.get(page)
        if slots is None:
            slots = touched[page] = before.page(page) if was.get(page) is not None else {}
        slot = (1 << below) - 1 + (prefix & ((1 << below) - 1))
        if node is None:
            slots.pop(slot, None)
        else:
            slots[slot] = node
    records: dict[str, bytes | None] = {}
    previous: dict[str, bytes | None] = {}
    for page in sorted(touched):  # in position order, as the compiled tree gives them
        name = position_key(page)
        records[name] = encode_page(touched[page])
        previous[name] = before.record(page) if was.get(page) is not None else None
    return records, previous


def encode_undo(previous: Mapping[str, bytes | None]) -> bytes:
    if not previous:
        return b""
    parts = [",".join(previous).encode("ascii"), b"\n"]
    for page in previous.values():
        parts.append(_LENGTH.pack(_NO_PAGE) if page is None else _LENGTH.pack(len(page)) + page)
    return b"".join(parts)


def decode_undo(raw: bytes | None) -> dict[str, bytes | None]:
    """The undo as stored; a damaged record is a ``StateTreeError``, never a wrong tree."""
    if not raw:
        return {}
    out: dict[str, bytes | None] = {}
    try:
        head, newline, body = raw.partition(b"\n")
        names = head.decode("ascii").split(",")
        if not newline or any(name.strip("01") or len(name) % PAGE_LEVELS for name in names):
            raise ValueError("a name that is not a page's")
        at = 0
        for name in names:
            (length,) = _LENGTH.unpack_from(body, at)
            at += _LENGTH.size
            if length == _NO_PAGE:
                out[name] = None
                continue
            if at + length > len(body):
                raise ValueError(f"page {name!r} is cut short")
            out[name] = body[at : at + length]
            at += length
        if at != len(body):
            raise ValueError(f"{len(body) - at} bytes after the last page")
    except (UnicodeDecodeError, ValueError, struct.error) as exc:
        raise StateTreeError(f"{TREE_UNDO_KEY} is damaged: {exc}") from exc
    return out


def tree_writes(
    view: StateView, root: bytes, changes: Mapping[str, bytes | None], verified: VerifiedNodes | None = None
) -> tuple[bytes, dict[str, bytes | None]]:
    """Apply ``changes`` to the tree of ``root`` kept in ``view``; the new root, and the writes
    that store it (pages and the undo) — with a migration from the hash-keyed layout first if
    ``view`` still has one."""
    out: dict[str, bytes | None] = {}
    nodes: _Pages = StoredNodes(view)
    if root != EMPTY_ROOT and nodes.record((0, 0)) is None:  # no root page: the old layout
        migrated = _migrate(view, root)
        out.update({TREE_PREFIX + name: page for name, page in migrated.items()})
        out.update({key: None for key, _ in view.scan(LEGACY_PREFIX)})
        out[LEGACY_STALE_KEY] = None
        nodes = _Migrated(migrated)
        verified = None  # the migrated nodes are checked as they are read, like any store's
    tree = StateTree(nodes, verified)
    compiled = tree.apply_paged(root, changes, *nodes.records(), decode_page)
    if compiled is not None:
        new_root, records, previous = compiled
    else:
        update = tree.apply(root, changes)
        new_root = update.root
        records, previous = paged(update, nodes)
    out.update({TREE_PREFIX + name: page for name, page in records.items()})
    out[TREE_UNDO_KEY] = encode_undo(previous)
    return new_root, out


def _migrate(view: StateView, root: bytes) -> dict[str, bytes]:
    """The pages of the tree of ``view``'s own state, checked against ``root``."""
    state = {key: value for key, value in view.scan("") if not key.startswith(NOT_STATE)}
    rebuilt = StateTree(_Migrated({})).apply(EMPTY_ROOT, state)
    if rebuilt.root != root:
        raise StateTreeError(
            f"the stored state hashes to {rebuilt.root.hex()}, not to its stored root {root.hex()}: "
            "the store is damaged; rebuild this service from the blocks"
        )
    records, _ = paged(rebuilt, _Migrated({}))
    return {name: page for name, page in records.items() if page is not None}


__all__ = [
    "LEGACY_PREFIX",
    "NOT_STATE",
    "PAGE_LEVELS",
    "TREE_PREFIX",
    "TREE_UNDO_KEY",
    "PreviousNodes",
    "StoredNodes",
    "decode_page",
    "decode_undo",
    "encode_page",
    "encode_undo",
    "page_of",
    "tree_writes",
]
