"""The compiled state tree (``core/_smt_native.c``) against the Python one (``core/smt_tree.py``).

The Python ``_Run`` is the reference the mutation tools work on; the compiled one is what
nodes run. Every comparison here is of everything an apply produces — the root, the nodes
made, stale, placed and vacated, the undo — and, through ``tree_store``, of the page records
and the undo a store writes, byte for byte and in order. The other tree tests
(``test_smt.py``, ``test_tree_store.py``) run with whichever tree is in use, so with the
compiled one where it was built.

Where the extension was not built (no C compiler), these tests skip, unless
``TRACO_REQUIRE_NATIVE=1`` (CI sets it) makes that a failure — for the other compiled parts
too, the canonical guard and murmur2, compared in ``test_canonical.py`` and ``test_murmur2.py``.
"""

from __future__ import annotations

import hashlib
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traco.core import smt_tree
from traco.core.adapters.murmur2 import NATIVE_MURMUR2
from traco.core.canonical import NATIVE_GUARD
from traco.core.domain import DictState
from traco.core.service_state import commit_state
from traco.core.smt import EMPTY_ROOT, CorruptNode, MissingNode, StateTreeError
from traco.core.smt_tree import StateTree, Update, VerifiedNodes, position_of
from traco.core.tree_store import TREE_PREFIX, TREE_UNDO_KEY, StoredNodes, decode_page

NATIVE = smt_tree.NATIVE
if os.environ.get("TRACO_REQUIRE_NATIVE") == "1":  # so that CI cannot skip the comparisons
    parts = (("_smt_native", NATIVE), ("_canonical_native", NATIVE_GUARD), ("adapters._murmur2_native", NATIVE_MURMUR2))
    missing = [name for name, part in parts if part is None]
    if missing:
        raise RuntimeError(f"TRACO_REQUIRE_NATIVE=1 but traco.core.{' and '.join(missing)} was not built")
if NATIVE is None:
    pytest.skip("the compiled state tree was not built here", allow_module_level=True)


def both(nodes: object, verified: bool = False) -> tuple[StateTree, StateTree]:
    """The Python tree and the compiled one over the same store (each with its own memory)."""
    python = StateTree(nodes, VerifiedNodes() if verified else None, native=False)  # type: ignore[arg-type]
    compiled = StateTree(nodes, VerifiedNodes() if verified else None, native=True)  # type: ignore[arg-type]
    return python, compiled


def same_update(python: Update, compiled: Update) -> None:
    assert compiled.root == python.root
    assert compiled.placed == python.placed
    assert sorted(compiled.vacated) == sorted(python.vacated)
    assert compiled.previous == python.previous
    assert compiled.new_nodes == python.new_nodes
    assert compiled.stale == python.stale  # the same nodes, in the same order


keys = st.one_of(st.integers(0, 60).map(lambda i: f"k{i}"), st.text(max_size=4))
changes = st.dictionaries(keys, st.one_of(st.none(), st.binary(max_size=4)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(changes, min_size=1, max_size=12), verified=st.booleans())
def test_by_hash_every_apply_is_the_same(batches: list[dict[str, bytes | None]], verified: bool) -> None:
    """Inserts, updates, deletes (of absent keys too), values set to what they were, leaves
    that climb and leaves pushed down: the same Update from both, batch after batch."""
    nodes: dict[bytes, bytes] = {}
    python, compiled = both(nodes, verified)
    root = EMPTY_ROOT
    for batch in batches:
        expected = python.apply(root, batch)
        same_update(expected, compiled.apply(root, batch))
        nodes.update(expected.new_nodes)
        root = expected.root


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(changes, min_size=1, max_size=10), verified=st.booleans())
def test_a_store_writes_the_same_pages_and_undo(batches: list[dict[str, bytes | None]], verified: bool) -> None:
    """Through ``commit_state``: the page records, the undo (its order too) and the root."""
    python_view, compiled_view = DictState(), DictState()
    python_nodes, compiled_nodes = VerifiedNodes(), VerifiedNodes()
    for batch in batches:
        native, smt_tree.NATIVE = smt_tree.NATIVE, None
        try:
            python_root, python_writes = commit_state(python_view, batch, python_nodes if verified else None)
        finally:
            smt_tree.NATIVE = native
        compiled_root, compiled_writes = commit_state(compiled_view, batch, compiled_nodes if verified else None)
        assert compiled_root == python_root
        assert list(compiled_writes.items()) == list(python_writes.items())
        python_view.apply({**batch, **python_writes})
        compiled_view.apply({**batch, **compiled_writes})


def test_a_large_block_on_a_large_tree_is_the_same() -> None:
    """Thousands of keys: deep shared prefixes, every kind of change in one block."""
    rng = random.Random(5)
    state: dict[str, bytes | None] = {f"doc/{i}": b"%d" % i for i in range(5_000)}
    view = DictState()
    root, writes = commit_state(view, state)
    view.apply({**state, **writes})
    block: dict[str, bytes | None] = {}
    for _ in range(2_000):
        i = rng.randrange(7_000)
        block[f"doc/{i}"] = None if rng.random() < 0.3 else b"v%d" % rng.randrange(3)
    python, compiled = both(StoredNodes(view))
    same_update(python.apply(root, block), compiled.apply(root, block))
    paged = compiled.apply_paged(root, block, *StoredNodes(view).records(), decode_page)
    assert paged is not None
    native, smt_tree.NATIVE = smt_tree.NATIVE, None
    try:
        _, expected = commit_state(view, block)
    finally:
        smt_tree.NATIVE = native
    new_root, records, _ = paged
    assert new_root.hex().encode() == expected["runtime/state_root"]
    assert {TREE_PREFIX + name: page for name, page in records.items()} == {
        k: v for k, v in expected.items() if k.startswith(TREE_PREFIX) and k != TREE_UNDO_KEY
    }


@settings(max_examples=300, deadline=None)
@given(depth=st.integers(0, 256), path=st.binary(min_size=32, max_size=32), last=st.sampled_from([-1, 0, 1]))
def test_positions_are_the_python_positions(depth: int, path: bytes, last: int) -> None:
    """Beyond 64 bits too (two keys whose paths share that much never meet in practice)."""
    assert NATIVE is not None  # skipped at import where it was not built
    depth_, prefix = position_of(depth, int.from_bytes(path, "big"))
    if depth and last >= 0:
        prefix = prefix & ~1 | last
    assert NATIVE.position(depth, path, last) == (depth_, prefix)


def test_a_missing_or_damaged_node_is_the_same_error() -> None:
    state = {f"k{i}": b"%d" % i for i in range(50)}
    full = StateTree({}, native=False).apply(EMPTY_ROOT, dict(state))
    victim = next(h for h, node in full.new_nodes.items() if node[0] == 1 and h != full.root)
    for store in (
        {h: n for h, n in full.new_nodes.items() if h != victim},
        {**full.new_nodes, victim: b"\x01" + bytes(64)},
    ):
        messages = []
        for tree in both(store):
            with pytest.raises((MissingNode, CorruptNode)) as caught:
                tree.apply(full.root, {k: b"changed" for k in state})
            messages.append((type(caught.value), str(caught.value)))
        assert messages[0] == messages[1]


def test_a_damaged_page_is_the_same_error() -> None:
    view = DictState()
    state: dict[str, bytes | None] = {f"k{i}": b"%d" % i for i in range(60)}
    _, writes = commit_state(view, state)
    view.apply({**state, **writes})
    page = max((k for k, _ in view.scan(TREE_PREFIX)), key=len)
    good = view.get(page)
    assert good is not None
    for damaged in (good[:2] + bytes(len(good) - 2), b"\x80\x01" + good[2:], b"\x00\x00"):
        view.apply({page: damaged})
        errors = []
        for native in (None, NATIVE):
            saved, smt_tree.NATIVE = smt_tree.NATIVE, native
            try:
                with pytest.raises(StateTreeError) as caught:
                    commit_state(view, {k: b"changed" for k in state})
            finally:
                smt_tree.NATIVE = saved
            errors.append(str(caught.value))
        assert errors[0] == errors[1], damaged


def test_bad_arguments_are_refused_not_crashed_on() -> None:
    assert NATIVE is not None  # skipped at import where it was not built
    kh = hashlib.sha256(b"k").digest()
    leaf = (kh, hashlib.sha256(b"x").digest(), b"\x00" + bytes(64))
    read = StateTree({}).read
    for paths, leaves in (
        ([kh, kh], []),  # not distinct
        ([b"short"], []),
        ([kh], [(kh, b"short", b"")]),
        ([kh], [leaf, leaf]),
        ([kh], ["not a tuple"]),
    ):
        with pytest.raises((TypeError, ValueError)):
            NATIVE.apply(EMPTY_ROOT, paths, leaves, {}, read, CorruptNode)
    with pytest.raises(ValueError):
        NATIVE.apply(b"short", [], [], {}, read, CorruptNode)


@settings(max_examples=200, deadline=None)
@given(changes=st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=40)), max_size=40))
def test_changes_enter_as_the_python_entries(changes: dict[str, bytes | None]) -> None:
    """Paths (SHA-256 of the key's UTF-8), leaf encodings and hashes, sorted by path."""
    assert NATIVE is not None  # skipped at import where it was not built
    entries = sorted(smt_tree._entries(changes), key=lambda entry: entry[0])
    paths, leaves = NATIVE.entries(changes)
    assert paths == [path for path, _, _ in entries]
    assert leaves == [(path, digest, encoding) for path, digest, encoding in entries if encoding is not None]


def test_changes_of_the_wrong_type_are_refused_alike() -> None:
    assert NATIVE is not None  # skipped at import where it was not built
    for changes in ({1: b"x"}, {"k": "text"}, {"k": 3}, {"\ud800": b"x"}):
        errors = []
        for enter in (smt_tree._entries, NATIVE.entries):
            with pytest.raises((TypeError, UnicodeEncodeError)) as caught:
                enter(changes)  # type: ignore[arg-type]
            errors.append((type(caught.value), str(caught.value).split(":")[0]))
        assert errors[0][0] is errors[1][0], changes
