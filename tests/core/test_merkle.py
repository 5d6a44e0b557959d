"""RFC 6962 / RFC 9162 Merkle trees (traco.core.merkle).

Pinned by the certificate-transparency reference vectors (the 8-leaf tree used by the CT
implementations, e.g. transparency-dev/merkle's testonly/constants.go), then compared with
Hypothesis against a slow reference written straight from the RFC's recursive definitions.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traco.core.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    consistency_proof_from_leaf_hashes,
    inclusion_proof,
    inclusion_proof_from_leaf_hashes,
    leaf_hash,
    node_hash,
    root,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# --- the slow, obviously right reference (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1) ----------


def ref_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(entries: list[bytes]) -> bytes:
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = ref_split(len(entries))
    return hashlib.sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:])).digest()


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    if len(entries) == 1:
        return []
    k = ref_split(len(entries))
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_subproof(m: int, entries: list[bytes], whole: bool) -> list[bytes]:
    if m == len(entries):
        return [] if whole else [ref_mth(entries)]
    k = ref_split(len(entries))
    if m <= k:
        return [*ref_subproof(m, entries[:k], whole), ref_mth(entries[k:])]
    return [*ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def ref_proof(m: int, entries: list[bytes]) -> list[bytes]:
    return ref_subproof(m, entries, True) if 0 < m < len(entries) else []


# --- reference vectors -----------------------------------------------------------------

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
H = {
    "6e34": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a2": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "bc1a": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "fac5": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "5f08": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "0ebc": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca85": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37e": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "6b47": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
}
# (index, tree size, audit path), index counted from 0.
INCLUSION = [
    (0, 1, []),
    (0, 2, ["96a2"]),
    (1, 2, ["6e34"]),
    (2, 3, ["fac5"]),
    (1, 5, ["6e34", "5f08", "bc1a"]),
    (0, 8, ["96a2", "5f08", "6b47"]),
    (5, 8, ["bc1a", "ca85", "d37e"]),
]
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a2", "5f08", "6b47"]),
    (6, 8, ["0ebc", "ca85", "d37e"]),
    (2, 5, ["5f08", "bc1a"]),
]


def hashes(names: list[str]) -> list[bytes]:
    return [bytes.fromhex(H[name]) for name in names]


def test_hasher_vectors() -> None:
    assert EMPTY_ROOT == ROOTS[0] == root([]) == root_from_leaf_hashes([])
    assert leaf_hash(b"") == ROOTS[1]
    assert leaf_hash(b"L123456").hex() == ("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456").hex() == ("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    assert root(LEAVES[:size]) == ROOTS[size]
    assert root_from_leaf_hashes([leaf_hash(x) for x in LEAVES[:size]]) == ROOTS[size]
    assert ref_mth(LEAVES[:size]) == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_reference_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    proof = inclusion_proof(LEAVES[:size], index)
    assert proof == hashes(path)
    assert verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("size1", "size2", "path"), CONSISTENCY)
def test_reference_consistency_proofs(size1: int, size2: int, path: list[str]) -> None:
    proof = consistency_proof(LEAVES[:size2], size1)
    assert proof == hashes(path)
    assert verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


def test_every_proof_of_the_reference_tree_verifies() -> None:
    for size2 in range(9):
        for index in range(size2):
            proof = inclusion_proof(LEAVES[:size2], index)
            assert proof == ref_path(index, LEAVES[:size2])
            assert verify_inclusion(leaf_hash(LEAVES[index]), index, size2, proof, ROOTS[size2])
        for size1 in range(size2 + 1):
            proof = consistency_proof(LEAVES[:size2], size1)
            assert proof == ref_proof(size1, LEAVES[:size2])
            assert verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


# --- properties against the reference --------------------------------------------------

UNIQUE_LEAVES = st.lists(st.binary(max_size=12), min_size=1, max_size=40, unique=True)


def flip(data: bytes, bit: int = 0) -> bytes:
    changed = bytearray(data)
    changed[bit // 8 % len(changed)] ^= 1 << (bit % 8)
    return bytes(changed)


@settings(max_examples=60, deadline=None)
@given(leaves=UNIQUE_LEAVES, data=st.data())
def test_inclusion_matches_reference_and_tampering_fails(leaves: list[bytes], data: st.DataObject) -> None:
    size = len(leaves)
    tree_root = root(leaves)
    assert tree_root == ref_mth(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(leaves, index)
    assert proof == ref_path(index, leaves)
    leaf = leaf_hash(leaves[index])
    assert verify_inclusion(leaf, index, size, proof, tree_root)
    assert verify_inclusion(leaf, index, size, tuple(proof), tree_root)

    assert not verify_inclusion(leaf, index, size, proof, flip(tree_root))
    assert not verify_inclusion(flip(leaf), index, size, proof, tree_root)
    # The wrong-position probes of transparency-dev/merkle's verify tests. (Not every other
    # size fails: [h1, h2] proves leaf 0 of a 3-leaf tree *and* of a 4-leaf tree whose root
    # would be that same hash, a tree no leaves can produce. So sizes and roots must come
    # together from a signed header, never from the prover.)
    for other in {index - 1, index + 1, index ^ 2} - {index}:
        assert not verify_inclusion(leaf, other, size, proof, tree_root)
    for other_size in {size * 2, size // 2} - {size}:
        assert not verify_inclusion(leaf, index, other_size, proof, tree_root)
    for i in range(len(proof)):
        bit = data.draw(st.integers(0, 255), label="bit")
        broken = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
        assert not verify_inclusion(leaf, index, size, broken, tree_root)
    if proof:
        assert not verify_inclusion(leaf, index, size, proof[:-1], tree_root)
    if len(proof) > 1:
        assert not verify_inclusion(leaf, index, size, proof[::-1], tree_root)
    assert not verify_inclusion(leaf, index, size, [*proof, tree_root], tree_root)
    assert not verify_inclusion(leaf, index, size, [tree_root, *proof], tree_root)


@settings(max_examples=60, deadline=None)
@given(leaves=UNIQUE_LEAVES, data=st.data())
def test_consistency_matches_reference_and_tampering_fails(leaves: list[bytes], data: st.DataObject) -> None:
    size2 = len(leaves)
    size1 = data.draw(st.integers(0, size2), label="size1")
    root1, root2 = root(leaves[:size1]), root(leaves)
    proof = consistency_proof(leaves, size1)
    assert proof == ref_proof(size1, leaves)
    assert verify_consistency(size1, size2, proof, root1, root2)

    if not proof:  # nothing to prove: size1 is 0 or size2
        assert size1 in (0, size2)
        assert verify_consistency(size1, size2, [], root1, root2)
        return
    assert not verify_consistency(size1, size2, proof, flip(root1), root2)
    assert not verify_consistency(size1, size2, proof, root1, flip(root2))
    assert not verify_consistency(size1, size2, proof, root2, root1)
    for i in range(len(proof)):
        bit = data.draw(st.integers(0, 255), label="bit")
        broken = [*proof[:i], flip(proof[i], bit), *proof[i + 1 :]]
        assert not verify_consistency(size1, size2, broken, root1, root2)
    assert not verify_consistency(size1, size2, [], root1, root2)
    assert not verify_consistency(size1, size2, proof[:-1], root1, root2)
    assert not verify_consistency(size1, size2, [*proof, root2], root1, root2)
    assert not verify_consistency(size1, size2, [root1, *proof], root1, root2)
    # Wrong sizes, as transparency-dev/merkle probes them (see the inclusion test's caveat).
    for other1 in {size1 - 1, size1 + 1, size1 ^ 2} - {size1}:
        assert not verify_consistency(other1, size2, proof, root1, root2)
    for other2 in {size2 * 2, size2 // 2} - {size2}:
        assert not verify_consistency(size1, other2, proof, root1, root2)
    # A history that was rewritten is not consistent with the new tree.
    rewritten = [leaves[0] + b"!", *leaves[1:size1]]
    assert not verify_consistency(size1, size2, proof, root(rewritten), root2)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=70))
def test_every_proof_verifies_for_any_leaves(leaves: list[bytes]) -> None:
    # Duplicate leaves allowed here: proofs still verify.
    leaf_hashes = [leaf_hash(x) for x in leaves]
    tree_root = root_from_leaf_hashes(leaf_hashes)
    assert tree_root == ref_mth(leaves)
    for index, leaf in enumerate(leaf_hashes):
        proof = inclusion_proof_from_leaf_hashes(leaf_hashes, index)
        assert verify_inclusion(leaf, index, len(leaves), proof, tree_root)
    for size1 in range(len(leaves) + 1):
        proof = consistency_proof_from_leaf_hashes(leaf_hashes, size1)
        old_root = root_from_leaf_hashes(leaf_hashes[:size1])
        assert verify_consistency(size1, len(leaves), proof, old_root, tree_root)


def test_blocks_of_thousands_of_leaves() -> None:
    leaves = [b"tx %d" % i for i in range(5000)]
    leaf_hashes = [leaf_hash(x) for x in leaves]
    tree_root = root(leaves)
    assert tree_root == root_from_leaf_hashes(leaf_hashes)
    for index in (0, 1, 2047, 4095, 4096, 4999):
        proof = inclusion_proof_from_leaf_hashes(leaf_hashes, index)
        assert len(proof) <= 13
        assert verify_inclusion(leaf_hashes[index], index, 5000, proof, tree_root)
    for size1 in (1, 3, 4096, 4097, 4999):
        proof = consistency_proof_from_leaf_hashes(leaf_hashes, size1)
        old = root_from_leaf_hashes(leaf_hashes[:size1])
        assert verify_consistency(size1, 5000, proof, old, tree_root)


# --- edge cases and junk ---------------------------------------------------------------


def test_trivial_consistency_cases() -> None:
    r3 = ROOTS[3]
    assert verify_consistency(3, 3, [], r3, r3)
    assert not verify_consistency(3, 3, [], r3, ROOTS[4])
    assert not verify_consistency(3, 3, [r3], r3, r3)
    assert verify_consistency(0, 5, [], EMPTY_ROOT, ROOTS[5])
    assert verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    assert not verify_consistency(0, 0, [], r3, r3)
    assert not verify_consistency(0, 5, [], r3, ROOTS[5])
    assert not verify_consistency(0, 5, [r3], EMPTY_ROOT, ROOTS[5])
    assert not verify_consistency(5, 3, [], ROOTS[5], r3)
    assert not verify_consistency(2, 5, [], ROOTS[2], ROOTS[5])


@pytest.mark.parametrize(
    ("leaves", "index"),
    [([], 0), ([b"a"], 1), ([b"a"], -1), ([b"a", b"b"], 2), ([b"a"], 10**30)],
)
def test_inclusion_proof_out_of_range(leaves: list[bytes], index: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(leaves, index)


@pytest.mark.parametrize(("leaves", "size1"), [([], 1), ([b"a"], 2), ([b"a"], -1)])
def test_consistency_proof_out_of_range(leaves: list[bytes], size1: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        consistency_proof(leaves, size1)


def test_builders_refuse_bad_arguments() -> None:
    with pytest.raises(TypeError):
        inclusion_proof([b"a"], True)
    with pytest.raises(TypeError):
        consistency_proof([b"a"], 0.0)  # type: ignore[arg-type]
    for bad in ([b"short"], [ROOTS[1] + b"x"], ["not bytes"]):
        with pytest.raises(ValueError, match="32-byte"):
            root_from_leaf_hashes(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="32-byte"):
            inclusion_proof_from_leaf_hashes(bad, 0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="32-byte"):
            consistency_proof_from_leaf_hashes(bad, 0)  # type: ignore[arg-type]


GOOD_LEAF, GOOD_PROOF = leaf_hash(LEAVES[5]), hashes(["bc1a", "ca85", "d37e"])
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.lists(st.binary(max_size=40), max_size=5),
    st.lists(st.integers(), max_size=3),
    st.just(GOOD_PROOF),
    st.just(ROOTS[8]),
    st.just(GOOD_LEAF),
)


@settings(max_examples=200, deadline=None)
@given(leaf=JUNK, index=JUNK, size=JUNK, proof=JUNK, tree_root=JUNK)
def test_verify_inclusion_never_raises(
    leaf: object, index: object, size: object, proof: object, tree_root: object
) -> None:
    exact_ints = type(index) is int and type(size) is int
    valid = exact_ints and (leaf, index, size, proof, tree_root) == (
        GOOD_LEAF,
        5,
        8,
        GOOD_PROOF,
        ROOTS[8],
    )
    assert verify_inclusion(leaf, index, size, proof, tree_root) is valid  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(size1=JUNK, size2=JUNK, proof=JUNK, root1=JUNK, root2=JUNK)
def test_verify_consistency_never_raises(
    size1: object, size2: object, proof: object, root1: object, root2: object
) -> None:
    result = verify_consistency(size1, size2, proof, root1, root2)  # type: ignore[arg-type]
    assert result is False or (size1 == size2 and proof == [] and root1 == root2)


@pytest.mark.parametrize(
    ("index", "size"),
    [(-1, 8), (8, 8), (0, 0), (5, -8), (True, 8), (5, 8.0), (5.0, 8), (2**64 + 5, 2**65)],
)
def test_verify_inclusion_bad_numbers(index: object, size: object) -> None:
    assert not verify_inclusion(GOOD_LEAF, index, size, GOOD_PROOF, ROOTS[8])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "proof",
    [
        [],
        [b""],
        [*GOOD_PROOF[:2], GOOD_PROOF[2][:31]],
        [*GOOD_PROOF[:2], bytearray(GOOD_PROOF[2])],
        [*GOOD_PROOF, GOOD_PROOF[0]],
        b"".join(GOOD_PROOF),
        "".join(h.hex() for h in GOOD_PROOF),
        {h: 1 for h in GOOD_PROOF},
        [GOOD_LEAF] * 1000,
    ],
    ids=lambda p: type(p).__name__ + str(len(p)),
)
def test_verify_inclusion_bad_proofs(proof: object) -> None:
    assert not verify_inclusion(GOOD_LEAF, 5, 8, proof, ROOTS[8])  # type: ignore[arg-type]


def test_huge_sizes_are_cheap_and_false() -> None:
    big = 2**4000
    assert not verify_inclusion(GOOD_LEAF, big - 1, big, [GOOD_LEAF] * 4000, ROOTS[8])
    assert not verify_consistency(big - 1, big, [GOOD_LEAF] * 4000, ROOTS[8], ROOTS[8])
