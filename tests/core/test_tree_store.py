"""How a service's store keeps its state tree (``core/tree_store.py``): nodes at their
positions, the undo that keeps the height before provable, and the move from the old layout
(nodes by hash) — checked against the root computed from the state alone."""

from __future__ import annotations

import random

import pytest

from tests.core.test_smt import positions
from traco.core.domain import DictState
from traco.core.service_state import STATE_ROOT_KEY, commit_state, stored_root
from traco.core.smt import EMPTY_ROOT, StateTreeError, verify_state_proof
from traco.core.smt_tree import StateTree, position_key
from traco.core.tree_store import (
    LEGACY_PREFIX,
    TREE_PREFIX,
    TREE_UNDO_KEY,
    PreviousNodes,
    StoredNodes,
    decode_page,
    decode_undo,
    encode_page,
    encode_undo,
    page_of,
)


def root_of(state: dict[str, bytes]) -> bytes:
    """The root computed from scratch from the state alone (no store involved)."""
    return StateTree({}).apply(EMPTY_ROOT, dict(state)).root


def pages_of(state: dict[str, bytes]) -> dict[str, bytes]:
    """The pages a store must hold for ``state``: every node of the tree built from scratch, at
    its position, grouped four levels to a page."""
    update = StateTree({}).apply(EMPTY_ROOT, dict(state))
    grouped: dict[str, dict[int, bytes]] = {}
    for where, node in positions(update.new_nodes, update.root).items():
        page, slot = page_of(where)
        grouped.setdefault(position_key(page), {})[slot] = node
    return {TREE_PREFIX + name: encode_page(slots) or b"" for name, slots in grouped.items()}


def commit(view: DictState, writes: dict[str, bytes | None]) -> bytes:
    root, tree = commit_state(view, writes)
    view.apply({**writes, **tree})
    return root


NODE = b"\x01" + bytes(range(64))


def test_pages_hold_four_levels_in_heap_order() -> None:
    def at(bits: str) -> tuple[str, int]:
        page, slot = page_of((len(bits), int(bits, 2) if bits else 0))
        return position_key(page), slot

    assert at("") == ("", 0)
    assert at("0") == ("", 1) and at("1") == ("", 2)
    assert at("011") == ("", 7 + 3)
    assert at("0110") == ("0110", 0) and at("01101") == ("0110", 2)
    assert at("0110" + "111") == ("0110", 14)
    assert at("0000" + "0") == ("0000", 1)  # leading zeros are part of a page's name
    slots = {0: NODE, 5: b"\x00" + bytes(64), 14: NODE}
    assert decode_page("x", encode_page(slots) or b"") == slots
    assert encode_page({}) is None
    for damaged in (b"", b"\x00", b"\x00\x00", b"\x80\x00" + NODE, b"\x00\x01" + NODE[:-1], b"\x00\x03" + NODE):
        with pytest.raises(StateTreeError, match="page 'x' is damaged"):
            decode_page("x", damaged)


def test_the_undo_survives_its_encoding_and_a_damaged_one_is_refused() -> None:
    undo: dict[str, bytes | None] = {"": b"\x00\x01" + NODE, "0110": None, "1111": b"\x00\x05" + NODE + NODE}
    assert decode_undo(encode_undo(undo)) == undo
    assert decode_undo(None) == {} and decode_undo(b"") == {}
    raw = encode_undo(undo)
    damages = (raw[:-1], raw + b"\x00", b"0\n\xff\xff", b"0110", b"01x0\n\xff\xff", b"0000\n\x00\x09ab")
    for damaged in damages:
        with pytest.raises(StateTreeError, match=TREE_UNDO_KEY):
            decode_undo(damaged)


def test_every_height_keeps_its_tree_by_position_and_the_one_before_still_proves() -> None:
    rng = random.Random(11)
    view = DictState()
    model: dict[str, bytes] = {}
    for height in range(1, 30):
        before, before_root = dict(model), stored_root(view)
        writes: dict[str, bytes | None] = {}
        for _ in range(rng.randint(1, 40)):
            key = f"k{rng.randint(0, 120)}"
            writes[key] = None if rng.random() < 0.3 else b"%d" % rng.randint(0, 9)
        for key, value in writes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        root = commit(view, writes)
        assert root == root_of(model) == stored_root(view), height
        assert dict(view.scan(TREE_PREFIX)) == pages_of(model), height  # exactly the tree's pages
        assert not any(k.startswith(LEGACY_PREFIX) for k, _ in view.scan(""))
        for key in [f"k{i}" for i in range(0, 121, 7)]:
            now = StateTree(StoredNodes(view)).prove(root, key)
            assert verify_state_proof(root, key, model.get(key), now) is None
            then = StateTree(PreviousNodes(view)).prove(before_root, key)
            assert verify_state_proof(before_root, key, before.get(key), then) is None


def legacy_store(state: dict[str, bytes]) -> DictState:
    """A store as it was written before positions: nodes under ``smt/<hash hex>``."""
    update = StateTree({}).apply(EMPTY_ROOT, dict(state))
    data: dict[str, bytes | None] = dict(state)
    data.update({LEGACY_PREFIX + h.hex(): node for h, node in update.new_nodes.items()})
    data["runtime/stale_nodes"] = b""
    data[STATE_ROOT_KEY] = update.root.hex().encode()
    return DictState(data)


def test_a_store_with_nodes_by_hash_moves_to_positions_at_its_next_height() -> None:
    state = {f"doc/{i}": b"%d" % i for i in range(300)}
    view = legacy_store(state)
    old_root = stored_root(view)
    root = commit(view, {"doc/7": b"changed", "doc/8": None, "doc/new": b"n"})
    state.update({"doc/7": b"changed", "doc/new": b"n"})
    del state["doc/8"]
    assert root == root_of(state)
    keys = [k for k, _ in view.scan("")]
    assert not any(k.startswith(LEGACY_PREFIX) for k in keys) and "runtime/stale_nodes" not in keys
    assert any(k.startswith(TREE_PREFIX) for k in keys)
    # the tree of the height before the move still proves, through the move's undo
    proof = StateTree(PreviousNodes(view)).prove(old_root, "doc/8")
    assert verify_state_proof(old_root, "doc/8", b"8", proof) is None
    # and the next height goes on from positions: it writes its own pages, not the tree again
    pages = sum(1 for _ in view.scan(TREE_PREFIX))
    root, writes = commit_state(view, {"doc/9": None})
    assert root == root_of({k: v for k, v in state.items() if k != "doc/9"})
    assert 0 < sum(1 for k in writes if k.startswith(TREE_PREFIX)) < pages / 4


def test_a_store_whose_state_does_not_hash_to_its_root_is_not_moved() -> None:
    view = legacy_store({f"doc/{i}": b"%d" % i for i in range(50)})
    view.apply({"doc/3": b"tampered"})  # the state no longer matches the stored root
    with pytest.raises(StateTreeError, match="rebuild this service from the blocks"):
        commit_state(view, {"doc/4": b"x"})


def test_a_damaged_page_in_the_store_is_an_error_not_a_wrong_tree() -> None:
    view = DictState()
    state = {f"k{i}": b"%d" % i for i in range(60)}
    root = commit(view, dict(state))
    page = max((k for k, _ in view.scan(TREE_PREFIX)), key=len)  # a page below the root's
    good = view.get(page)
    assert good is not None
    for damaged in (good[:-1], good + b"\x00", b"\x00", good[:2] + bytes(len(good) - 2)):
        view.apply({page: damaged})
        with pytest.raises(StateTreeError):
            for k in state:  # some key's path runs through the damaged page
                StateTree(StoredNodes(view)).prove(root, k)
        with pytest.raises(StateTreeError):
            commit_state(view, {k: b"changed" for k in state})
    view.apply({page: good})
    assert commit(view, {"k1": b"again"}) == root_of({**state, "k1": b"again"})
