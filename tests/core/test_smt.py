"""The state tree (traco.core.smt): roots, updates, pruning and state proofs.

The real tree is driven by Hypothesis beside a slow, obviously right reference that builds the
root from a plain dict from scratch, written from the module docstring's rules with bit
strings; the node store is pruned of every stale node after each batch, so a node wrongly
called stale shows up as a missing node and a forgotten one as a leftover.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from pydantic import ValidationError

from traco.core import smt_tree
from traco.core.errors import StorageError
from traco.core.smt import (
    EMPTY_ROOT,
    CorruptNode,
    MissingNode,
    StateTreeError,
    verify_state_proof,
)
from traco.core.smt_tree import Position, StateTree, position_key, position_of
from traco.schemas.state_proof import StateLeaf, StateProof

# --- the slow, obviously right reference ---------------------------------------------------


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def bits(digest: bytes) -> str:
    return "".join(f"{byte:08b}" for byte in digest)


def ref_root(contents: dict[str, bytes]) -> bytes:
    """Root of ``contents`` straight from the rules: split by path bit until one entry is left."""
    entries = []
    for key, value in contents.items():
        kh = sha(key.encode())
        entries.append((bits(kh), sha(b"\x00" + kh + sha(value))))
    return ref_tree(entries, 0)


def ref_tree(entries: list[tuple[str, bytes]], depth: int) -> bytes:
    if not entries:
        return bytes(32)
    if len(entries) == 1:
        return entries[0][1]
    left = [e for e in entries if e[0][depth] == "0"]
    right = [e for e in entries if e[0][depth] == "1"]
    return sha(b"\x01" + ref_tree(left, depth + 1) + ref_tree(right, depth + 1))


def reachable(nodes: dict[bytes, bytes], root: bytes) -> set[bytes]:
    """Every stored node the root reaches (read without the module)."""
    seen: set[bytes] = set()
    todo = [root]
    while todo:
        h = todo.pop()
        if h == bytes(32):
            continue
        seen.add(h)
        raw = nodes[h]
        if raw[0] == 1:
            todo += [raw[1:33], raw[33:65]]
    return seen


class Store:
    """A plain dict of nodes, applied to and pruned as a service would in one transaction."""

    def __init__(self, verified: smt_tree.VerifiedNodes | None = None) -> None:
        self.nodes: dict[bytes, bytes] = {}
        self.tree = StateTree(self.nodes, verified)
        self.root = EMPTY_ROOT

    def apply(self, changes: dict[str, bytes | None]) -> smt_tree.Update:
        update = self.tree.apply(self.root, changes)
        assert not set(update.stale) & set(update.new_nodes)
        self.nodes.update(update.new_nodes)
        for stale in update.stale:
            del self.nodes[stale]  # a KeyError here: called stale something that was not stored
        self.root = update.root
        return update


class Placed:
    """Nodes kept by position, written as a service's store writes them: each apply overwrites
    what it places, clears what it vacates, and keeps its undo (``previous``)."""

    def __init__(self, verified: smt_tree.VerifiedNodes | None = None) -> None:
        self.records: dict[Position, bytes] = {}
        self.undo: dict[Position, bytes | None] = {}
        self.root = self.previous_root = EMPTY_ROOT
        self.verified = verified

    def at(self, position: Position) -> bytes | None:
        return self.records.get(position)

    def apply(self, changes: dict[str, bytes | None]) -> smt_tree.Update:
        update = StateTree(self, self.verified).apply(self.root, changes)
        assert not set(update.vacated) & set(update.placed)
        assert set(update.previous) == set(update.placed) | set(update.vacated)
        assert all(self.records.get(p) == old for p, old in update.previous.items())  # the true undo
        for position in update.vacated:
            del self.records[position]  # a KeyError: vacated a position that held nothing
        self.records.update(update.placed)
        self.undo, self.previous_root, self.root = update.previous, self.root, update.root
        return update


class PreviousTree:
    """``placed``'s records with its last undo applied: the tree before its last apply."""

    def __init__(self, placed: Placed) -> None:
        self.placed = placed

    def at(self, position: Position) -> bytes | None:
        if position in self.placed.undo:
            return self.placed.undo[position]
        return self.placed.records.get(position)


def positions(nodes: dict[bytes, bytes], root: bytes) -> dict[Position, bytes]:
    """Where each node of the tree of ``root`` belongs: the path prefix of the subtree it tops,
    found by walking the tree with bit strings (as the rules say), then written as a position."""
    out: dict[Position, bytes] = {}
    todo = [(root, "")]
    while todo:
        node, where = todo.pop()
        if node == EMPTY_ROOT:
            continue
        raw = nodes[node]
        out[(len(where), int(where, 2) if where else 0)] = raw
        if raw[0] == 1:
            todo += [(raw[1:33], where + "0"), (raw[33:65], where + "1")]
    return out


def store_of(contents: dict[str, bytes]) -> Store:
    store = Store()
    store.apply(dict(contents))
    return store


keys = st.one_of(
    st.sampled_from([f"k{i}" for i in range(40)]), st.integers(0, 199).map(lambda i: f"bulk{i}"), st.text(max_size=6)
)
values = st.binary(max_size=6)
batches = st.dictionaries(keys, st.one_of(st.none(), values), max_size=25)
contents_st = st.dictionaries(keys, values, max_size=60)


# --- roots ---------------------------------------------------------------------------------


class TreeAgainstReference(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = Store()
        self.remembering = Store(smt_tree.VerifiedNodes(limit=50))  # small: entries come and go
        self.placed = Placed()
        self.placed_remembering = Placed(smt_tree.VerifiedNodes(limit=50))
        self.model: dict[str, bytes] = {}
        self.previous_model: dict[str, bytes] = {}

    @rule(batch=batches)
    def apply_batch(self, batch: dict[str, bytes | None]) -> None:
        self.store.apply(batch)
        self.remembering.apply(batch)
        self.placed.apply(batch)
        self.placed_remembering.apply(batch)
        self.previous_model = dict(self.model)
        for key, value in batch.items():
            if value is None:
                self.model.pop(key, None)
            else:
                self.model[key] = value

    @rule(count=st.integers(1, 200), value=values)
    def fill(self, count: int, value: bytes) -> None:
        self.apply_batch({f"bulk{i}": value for i in range(count)})

    @rule()
    def delete_everything(self) -> None:
        self.apply_batch({key: None for key in self.model})
        self.model.clear()
        assert self.store.root == EMPTY_ROOT
        assert self.store.nodes == {}

    @rule(key=keys)
    def prove_one_key(self, key: str) -> None:
        proof = self.store.tree.prove(self.store.root, key)
        assert verify_state_proof(self.store.root, key, self.model.get(key), proof) is None
        wrong = None if key in self.model else b"x"
        assert verify_state_proof(self.store.root, key, wrong, proof) is not None

    @invariant()
    def root_is_the_reference_root(self) -> None:
        assert self.store.root == ref_root(self.model)
        assert self.remembering.root == self.store.root  # nodes kept in memory change nothing
        assert self.remembering.nodes == self.store.nodes

    @invariant()
    def store_holds_exactly_the_reachable_nodes(self) -> None:
        assert set(self.store.nodes) == reachable(self.store.nodes, self.store.root)

    @invariant()
    def positions_hold_exactly_the_tree(self) -> None:
        expected = positions(self.store.nodes, self.store.root)
        assert self.placed.root == self.placed_remembering.root == self.store.root
        assert self.placed.records == expected
        assert self.placed_remembering.records == expected
        for where, raw in expected.items():  # a leaf sits at its own path's prefix
            if raw[0] == 0:
                assert position_of(where[0], int.from_bytes(raw[1:33], "big")) == where
                assert position_key(where) == bits(raw[1:33])[: where[0]]

    @rule(key=keys)
    def prove_one_key_of_the_tree_before(self, key: str) -> None:
        """The records with the last undo are the tree before the last batch: it proves."""
        root = self.placed.previous_root
        proof = StateTree(PreviousTree(self.placed)).prove(root, key)
        assert verify_state_proof(root, key, self.previous_model.get(key), proof) is None
        now = StateTree(self.placed).prove(self.placed.root, key)
        assert verify_state_proof(self.placed.root, key, self.model.get(key), now) is None


TreeAgainstReference.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_tree_against_reference = TreeAgainstReference.TestCase


@settings(max_examples=80, deadline=None)
@given(final=contents_st, junk=st.dictionaries(keys, values, max_size=15), data=st.data())
def test_same_contents_give_the_same_root_and_nodes_whatever_the_order_and_batches(
    final: dict[str, bytes], junk: dict[str, bytes], data: st.DataObject
) -> None:
    # each key's history: temporary values (and deletes), then its final value (None: absent)
    histories: dict[str, list[bytes | None]] = {}
    for key in set(final) | set(junk):
        steps = data.draw(st.lists(st.one_of(st.none(), values), max_size=2))
        histories[key] = [*steps, junk.get(key), final.get(key)]
    slots = [key for key, steps in histories.items() for _ in steps]
    order = data.draw(st.permutations(slots))
    position = dict.fromkeys(histories, 0)
    ops: list[tuple[str, bytes | None]] = []
    for key in order:  # interleave keys freely, each key's own steps in order
        ops.append((key, histories[key][position[key]]))
        position[key] += 1
    cuts = sorted(data.draw(st.sets(st.integers(0, len(ops)), max_size=6)))
    store = Store()
    for lo, hi in zip([0, *cuts], [*cuts, len(ops)], strict=True):
        store.apply(dict(ops[lo:hi]))  # a later step of a key in one batch wins, as in order
    fresh = store_of(final)
    assert store.root == fresh.root == ref_root(final)
    assert store.nodes == fresh.nodes


def test_known_answer_for_auditors() -> None:
    """A vector for reimplementations: three keys, one of them with an empty value."""
    contents = {"alice": b"100", "bob": b"250", "carol": b""}
    assert store_of(contents).root.hex() == "e8a6c798217bafb584056bf02602126774bf64b7ea6234d226fc182ac6125412"
    assert store_of({}).root == EMPTY_ROOT == bytes(32)
    assert store_of({"alice": b"100"}).root == sha(b"\x00" + sha(b"alice") + sha(b"100"))


def test_deleting_one_key_at_a_time_lifts_the_survivors() -> None:
    """Each delete may leave a lone leaf beside an empty subtree: it must climb to its parent."""
    contents = {f"k{i}": b"%d" % i for i in range(64)}
    store = store_of(contents)
    for key in random.Random(3).sample(sorted(contents), len(contents)):
        store.apply({key: None})
        del contents[key]
        assert store.root == ref_root(contents)
        assert set(store.nodes) == reachable(store.nodes, store.root)
    assert store.root == EMPTY_ROOT and store.nodes == {}


def test_no_op_changes_write_nothing() -> None:
    store = store_of({f"k{i}": b"v" for i in range(100)})
    update = store.tree.apply(store.root, {"k3": b"v", "k77": b"v", "absent": None, "other": None})
    assert (update.root, update.new_nodes, update.stale) == (store.root, {}, [])


def test_a_batch_shares_the_hashing_of_common_path_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    store = store_of({f"k{i}": b"%d" % i for i in range(4096)})
    changed = rng.sample(range(4096), 256)
    calls = 0
    real = smt_tree._sha256

    def counting(data: bytes = b"") -> hashlib._Hash:
        nonlocal calls
        calls += 1
        return real(data)

    monkeypatch.setattr(smt_tree, "_sha256", counting)
    store.tree.apply(store.root, {f"k{i}": b"new" for i in changed})
    batch = calls
    calls = 0
    for i in changed:
        store.tree.apply(store.root, {f"k{i}": b"new"})
    one_by_one = calls
    assert one_by_one / 256 < 70  # O(log n) per key: ~2 per level (read check, new node)
    assert batch < 0.75 * one_by_one


# --- proofs --------------------------------------------------------------------------------


def flip(hex_hash: str) -> str:
    return (bytes.fromhex(hex_hash)[:-1] + bytes([bytes.fromhex(hex_hash)[-1] ^ 1])).hex()


def forgeries(root: bytes, key: str, value: bytes | None, proof: StateProof) -> Iterator[tuple[str, str | None]]:
    """Every way of changing the claim or the proof that must make verification fail, with
    what the verifier says of it."""

    def tamper(**update: object) -> str | None:
        return verify_state_proof(root, key, value, proof.model_copy(update=update))

    yield "other key", verify_state_proof(root, key + "x", value, proof)
    yield "other value", verify_state_proof(root, key, (value or b"") + b"x", proof)
    yield "value vs none", verify_state_proof(root, key, None if value is not None else b"", proof)
    if root != EMPTY_ROOT:
        yield "empty root", verify_state_proof(EMPTY_ROOT, key, value, proof)
    yield "flipped root", verify_state_proof(bytes.fromhex(flip(root.hex())), key, value, proof)
    yield "key hash", tamper(key_hash=flip(proof.key_hash))
    for i in range(len(proof.siblings)):
        siblings = list(proof.siblings)
        siblings[i] = flip(siblings[i])
        yield f"flipped sibling {i}", tamper(siblings=tuple(siblings))
    if proof.siblings:
        yield "truncated", tamper(siblings=proof.siblings[:-1])
        yield "top cut", tamper(siblings=proof.siblings[1:])
    for extra in ("00" * 32, "ab" * 32):
        yield f"extended {extra[:2]}", tamper(siblings=(*proof.siblings, extra))
    if proof.leaf is None:
        own = StateLeaf(key_hash=proof.key_hash, value_hash=sha(value or b"").hex())
        yield "empty to own leaf", tamper(leaf=own)
        neighbour = StateLeaf(key_hash=flip(proof.key_hash), value_hash=sha(b"").hex())
        yield "empty to a neighbour's leaf", tamper(leaf=neighbour)
    else:
        yield "leaf to empty", tamper(leaf=None)
        yield "leaf value hash", tamper(leaf=proof.leaf.model_copy(update={"value_hash": flip(proof.leaf.value_hash)}))
        yield "leaf key hash", tamper(leaf=proof.leaf.model_copy(update={"key_hash": flip(proof.leaf.key_hash)}))


@settings(max_examples=60, deadline=None)
@given(contents=contents_st, absent=st.lists(keys, max_size=8), changed=st.binary(max_size=3))
def test_every_key_proves_and_every_forgery_fails(
    contents: dict[str, bytes], absent: list[str], changed: bytes
) -> None:
    store = store_of(contents)
    claims = [(key, contents.get(key)) for key in [*contents, *absent]]
    for key, value in claims:
        proof = store.tree.prove(store.root, key)
        assert (proof.leaf is not None and proof.leaf.key_hash == proof.key_hash) == (value is not None)
        assert verify_state_proof(store.root, key, value, proof) is None
        for name, verdict in forgeries(store.root, key, value, proof):
            assert verdict is not None, f"{name} verified for {key!r}"
    if claims:  # a proof against the root of another state
        key, value = claims[0]
        proof = store.tree.prove(store.root, key)
        other = store.tree.apply(store.root, {key + "-neighbour": changed}).root
        assert verify_state_proof(other, key, value, proof) is not None


def test_both_kinds_of_non_inclusion_occur_and_verify() -> None:
    store = store_of({f"doc/{i}": b"pledged" for i in range(64)})
    kinds = set()
    for i in range(200):
        key = f"absent/{i}"
        proof = store.tree.prove(store.root, key)
        kinds.add("empty" if proof.leaf is None else "other leaf")
        assert verify_state_proof(store.root, key, None, proof) is None
        assert verify_state_proof(store.root, key, b"pledged", proof) is not None
    assert kinds == {"empty", "other leaf"}


def test_an_inclusion_proof_never_proves_a_neighbour_absent() -> None:
    """Keys sharing a path prefix with a leaf are absent, but the leaf's proof names its key."""
    store = store_of({"a": b"1", "b": b"2"})
    proof = store.tree.prove(store.root, "a")
    prefix = bits(sha(b"a"))[: len(proof.siblings)]
    shared = [k for k in (f"n{i}" for i in range(2000)) if bits(sha(k.encode())).startswith(prefix)]
    assert shared
    for key in shared:
        assert verify_state_proof(store.root, key, None, proof) == "the proof is for another key"


def test_the_verifier_checks_the_shape_itself_not_only_the_root() -> None:
    """Against a root built off the rules, shapes no canonical tree has are refused."""
    kh = sha(b"k")
    leaf = sha(b"\x00" + kh + sha(b"v"))
    goes_right = bits(kh)[0] == "1"
    deeper = sha(b"\x01" + bytes(32) + leaf) if goes_right else sha(b"\x01" + leaf + bytes(32))
    proof = StateProof(
        key_hash=kh.hex(), siblings=("00" * 32,), leaf=StateLeaf(key_hash=kh.hex(), value_hash=sha(b"v").hex())
    )
    assert verify_state_proof(deeper, "k", b"v", proof) is not None
    # an "absent" proof ending in a leaf that is not on the key's path
    other = next(f"o{i}" for i in range(100) if bits(sha(f"o{i}".encode()))[0] != bits(kh)[0])
    okh = sha(other.encode())
    other_leaf = sha(b"\x00" + okh + sha(b"w"))
    sibling = b"\x42" * 32
    forged = sha(b"\x01" + sibling + other_leaf) if goes_right else sha(b"\x01" + other_leaf + sibling)
    absent = StateProof(
        key_hash=kh.hex(), siblings=(sibling.hex(),), leaf=StateLeaf(key_hash=okh.hex(), value_hash=sha(b"w").hex())
    )
    assert verify_state_proof(forged, "k", None, absent) == "the proof's leaf is not on the key's path"


def test_proofs_travel_as_json() -> None:
    store = store_of({f"balance/m{i}/TRC": b"%d" % (i * 100) for i in range(300)})
    for key, value in (("balance/m7/TRC", b"700"), ("balance/m7/ECC", None)):
        proof = store.tree.prove(store.root, key)
        again = StateProof.model_validate_json(proof.model_dump_json())
        assert again == proof and again.canonical_bytes() == proof.canonical_bytes()
        assert verify_state_proof(store.root, key, value, again) is None
    data = proof.model_dump(mode="json")
    with pytest.raises(ValidationError):
        StateProof.model_validate(data | {"extra": 1})
    with pytest.raises(ValidationError):
        StateProof.model_validate(data | {"siblings": ["ab" * 32] * 257})
    with pytest.raises(ValidationError):
        StateProof.model_validate(data | {"key_hash": "AB" * 32})


def test_malformed_claims_are_reasons_not_exceptions() -> None:
    store = store_of({"a": b"1"})
    proof = store.tree.prove(store.root, "a")
    assert verify_state_proof(store.root[:31], "a", b"1", proof) is not None
    assert verify_state_proof(store.root, "a", "1", proof) is not None  # type: ignore[arg-type]
    assert verify_state_proof(store.root, "a", b"1", proof.model_dump()) is not None  # type: ignore[arg-type]
    endless = StateProof.model_construct(key_hash=proof.key_hash, siblings=("ab" * 32,) * 257, leaf=proof.leaf)
    assert "longer than 256" in (verify_state_proof(store.root, "a", b"1", endless) or "")
    broken = StateProof.model_construct(key_hash=proof.key_hash, siblings=("zz",), leaf=proof.leaf)
    assert verify_state_proof(store.root, "a", b"1", broken) is not None


# --- the node store ------------------------------------------------------------------------


def test_a_missing_node_is_an_error_not_a_wrong_root() -> None:
    store = store_of({f"k{i}": b"v" for i in range(50)})
    inner = store.nodes[store.root]
    lost = inner[1:33] if inner[1:33] != EMPTY_ROOT else inner[33:]
    del store.nodes[lost]
    touching = [f"k{i}" for i in range(50) if lost in reachable_path(store, f"k{i}")]
    with pytest.raises(MissingNode) as caught:
        store.tree.apply(store.root, {touching[0]: b"changed"})
    assert caught.value.node_hash == lost and lost.hex() in str(caught.value)
    assert isinstance(caught.value, StateTreeError) and isinstance(caught.value, StorageError)
    with pytest.raises(MissingNode):
        store.tree.prove(store.root, touching[0])
    with pytest.raises(MissingNode):
        StateTree({}).apply(b"\x01" * 32, {"a": b"1"})


def reachable_path(store: Store, key: str) -> list[bytes]:
    path, node, depth = [], store.root, 0
    while node != EMPTY_ROOT and node in store.nodes and store.nodes[node][0] == 1:
        raw = store.nodes[node]
        node = raw[33:] if bits(sha(key.encode()))[depth] == "1" else raw[1:33]
        path.append(node)
        depth += 1
    return path


def test_a_damaged_node_is_an_error_not_a_wrong_root() -> None:
    store = store_of({f"k{i}": b"v" for i in range(50)})
    raw = store.nodes[store.root]
    store.nodes[store.root] = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(CorruptNode):
        store.tree.apply(store.root, {"k1": b"w"})
    store.nodes[store.root] = raw[:40]
    with pytest.raises(CorruptNode):
        store.tree.prove(store.root, "k1")


class CountingNodes(dict[bytes, bytes]):
    def __init__(self, nodes: dict[bytes, bytes]) -> None:
        super().__init__(nodes)
        self.reads = 0

    def get(self, key: bytes, default: bytes | None = None, /) -> bytes | None:  # type: ignore[override]
        self.reads += 1
        return super().get(key, default)


def test_remembered_nodes_are_read_and_checked_once_and_the_rest_still_are() -> None:
    plain = store_of({f"k{i}": b"v" for i in range(50)})
    nodes = CountingNodes(plain.nodes)
    verified = smt_tree.VerifiedNodes()
    tree = StateTree(nodes, verified)
    first = tree.apply(plain.root, {"k1": b"w"})
    reads = nodes.reads
    assert reads > 0 and len(verified) >= reads
    again = tree.apply(plain.root, {"k1": b"w"})
    assert nodes.reads == reads and again.root == first.root  # all from memory, same root
    # a node never read (another path) still comes from the store, checked: damage is caught
    other = next(f"k{i}" for i in range(50) if not set(reachable_path(plain, f"k{i}")) <= set(verified._nodes))
    damaged = next(h for h in reachable_path(plain, other) if h not in verified._nodes)
    raw = nodes[damaged]
    nodes[damaged] = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(CorruptNode):
        tree.apply(plain.root, {other: b"x"})


def test_remembered_nodes_stay_within_their_limit_oldest_out_first() -> None:
    verified = smt_tree.VerifiedNodes(limit=3)
    verified.add({bytes([i]) * 32: b"n%d" % i for i in range(2)})
    verified.add_one(b"\x02" * 32, b"n2")
    verified.add({b"\x03" * 32: b"n3", b"\x04" * 32: b"n4"})
    assert len(verified) == 3
    assert verified.get(b"\x00" * 32) is None and verified.get(b"\x01" * 32) is None
    assert verified.get(b"\x04" * 32) == b"n4"
    verified.add_one(b"\x05" * 32, b"n5")
    assert len(verified) == 3 and verified.get(b"\x02" * 32) is None


def test_a_foreign_value_or_an_endless_path_in_the_store_is_an_error() -> None:
    """The store may hold other things than nodes, and a chain of nodes deeper than 256."""
    for blob in (b"\x02" + bytes(64), b"not a node"):
        nodes = {sha(blob): blob}
        with pytest.raises(CorruptNode):
            StateTree(nodes).prove(sha(blob), "k")
        with pytest.raises(CorruptNode):
            StateTree(nodes).apply(sha(blob), {"k": b"v"})
    path = bits(sha(b"any"))
    node, nodes = sha(b"\x00" + sha(b"k") + sha(b"v")), {}
    for depth in reversed(range(300)):  # a chain that follows the key's path, then goes on
        encoding = b"\x01" + (bytes(32) + node if depth < 256 and path[depth] == "1" else node + bytes(32))
        node = sha(encoding)
        nodes[node] = encoding
    with pytest.raises(CorruptNode):
        StateTree(nodes).prove(node, "any")
    with pytest.raises(CorruptNode):
        StateTree(nodes).apply(node, {"any": b"v"})


def test_bad_arguments_are_refused() -> None:
    tree = StateTree({})
    with pytest.raises(TypeError):
        tree.apply(EMPTY_ROOT, {"a": "text"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        tree.apply(EMPTY_ROOT, {1: b"x"})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        tree.apply(b"short", {})
