"""RFC 6962 / RFC 9162 Merkle trees over SHA-256: roots, inclusion and consistency proofs.

Why: a block header commits to its transactions (``tx_root``) and to the previous block's
results (``last_results_root``) with one 32-byte hash each. These proofs let a light client
or an auditor check "this transaction is in that block" (inclusion) and "this log only grew"
(consistency) from a handful of hashes, without the rest of the chain. Following RFC 9162
exactly means any Certificate Transparency tooling can check our proofs.

How:

* ``leaf_hash(data) = SHA-256(0x00 || data)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``;
  the two prefixes keep a leaf from ever being passed off as an inner node.
* ``root(leaves)`` hashes raw entries; ``root_from_leaf_hashes`` takes leaf hashes. The root
  of no leaves is ``SHA-256(b"")``.
* ``inclusion_proof(leaves, index)`` / ``verify_inclusion(...)`` (RFC 9162 §2.1.3) and
  ``consistency_proof(leaves, size1)`` / ``verify_consistency(...)`` (RFC 9162 §2.1.4).
  The ``*_from_leaf_hashes`` variants serve callers that keep leaf hashes.

Caveats: builders raise ``ValueError`` for out-of-range sizes or indexes and for leaf hashes
that are not 32 bytes. Verifiers take untrusted input and never raise: anything malformed
(wrong types, negative or out-of-range numbers, hashes of the wrong length) is simply
``False``. Every function is iterative and hashes each inner node once, so a root or a proof
over ``n`` leaves costs ``n - 1`` node hashes at most.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "consistency_proof_from_leaf_hashes",
    "inclusion_proof",
    "inclusion_proof_from_leaf_hashes",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""Root of the tree with no leaves (RFC 9162 §2.1.1)."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one entry."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an inner node."""
    return _sha256(b"\x01" + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash of raw entries (``EMPTY_ROOT`` for none)."""
    return _root([leaf_hash(leaf) for leaf in leaves])


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash of entries given by their leaf hashes."""
    _check_leaf_hashes(hashes)
    return _root(hashes)


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for ``leaves[index]`` (RFC 9162 §2.1.3.1), ordered from the leaf up."""
    return inclusion_proof_from_leaf_hashes([leaf_hash(leaf) for leaf in leaves], index)


def inclusion_proof_from_leaf_hashes(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for entry ``index`` of a tree given by its leaf hashes."""
    _check_leaf_hashes(hashes)
    _check_int(index, "index")
    if not 0 <= index < len(hashes):
        raise ValueError(f"index {index} is outside a tree of {len(hashes)} leaves")
    path: list[bytes] = []  # built from the root down, returned from the leaf up
    lo, hi = 0, len(hashes)
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            path.append(_root(hashes[mid:hi]))
            hi = mid
        else:
            path.append(_root(hashes[lo:mid]))
            lo = mid
    path.reverse()
    return path


def consistency_proof(leaves: Sequence[bytes], size1: int) -> list[bytes]:
    """Proof that the first ``size1`` leaves are a prefix of ``leaves`` (RFC 9162 §2.1.4.1)."""
    return consistency_proof_from_leaf_hashes([leaf_hash(leaf) for leaf in leaves], size1)


def consistency_proof_from_leaf_hashes(hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """Consistency proof between the first ``size1`` leaf hashes and all of ``hashes``.

    Empty when ``size1`` is 0 or the whole tree: there is nothing to prove.
    """
    _check_leaf_hashes(hashes)
    _check_int(size1, "size1")
    if not 0 <= size1 <= len(hashes):
        raise ValueError(f"size1 {size1} is outside 0..{len(hashes)}")
    if size1 in (0, len(hashes)):
        return []
    proof: list[bytes] = []  # built from the root down, returned bottom-up
    lo, hi = 0, len(hashes)
    whole_old_tree = True  # SUBPROOF's flag b: is [lo, lo + size1) the old tree's root?
    while size1 != hi - lo:
        mid = lo + _split(hi - lo)
        if size1 <= mid - lo:
            proof.append(_root(hashes[mid:hi]))
            hi = mid
        else:
            proof.append(_root(hashes[lo:mid]))
            size1 -= mid - lo
            lo = mid
            whole_old_tree = False
    if not whole_old_tree:
        proof.append(_root(hashes[lo:hi]))
    proof.reverse()
    return proof


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True if ``proof`` shows ``leaf_hash`` at ``index`` in the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2, step by step. Never raises.
    """
    if not (_is_int(index) and _is_int(size) and 0 <= index < size):
        return False
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_path(proof, size.bit_length())):
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> bool:
    """True if ``proof`` shows tree (``size1``, ``root1``) is a prefix of (``size2``, ``root2``).

    RFC 9162 §2.1.4.2, plus the trivial cases it leaves out: equal sizes need an empty proof
    and equal roots; an empty old tree needs an empty proof and ``root1 == EMPTY_ROOT``.
    Never raises.
    """
    if not (_is_int(size1) and _is_int(size2) and 0 <= size1 <= size2):
        return False
    if not (_is_hash(root1) and _is_hash(root2) and _is_path(proof, size2.bit_length() + 1)):
        return False
    if size1 == 0:
        return not proof and root1 == EMPTY_ROOT and (size2 > 0 or root2 == EMPTY_ROOT)
    if size1 == size2:
        return not proof and root1 == root2
    if not proof:
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # the old tree is a complete subtree: its root is implied
        path.insert(0, root1)
    return _fold_consistency(size1, size2, path, root1, root2)


# --- internals -------------------------------------------------------------------------


def _fold_consistency(size1: int, size2: int, path: list[bytes], root1: bytes, root2: bytes) -> bool:
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


def _root(hashes: Sequence[bytes]) -> bytes:
    """Root over leaf hashes, level by level; an odd last node moves up unchanged.

    Promoting the odd node gives exactly RFC 9162's split at the largest power of two
    below ``n``, without recursion.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        pairs = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            pairs.append(level[-1])
        level = pairs
    return level[0]


def _split(n: int) -> int:
    """Largest power of two strictly below ``n`` (``n >= 2``): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_leaf_hashes(hashes: Sequence[bytes]) -> None:
    for h in hashes:
        if not _is_hash(h):
            raise ValueError(f"leaf hashes must be {HASH_SIZE}-byte bytes, got {h!r:.80}")


def _check_int(value: object, name: str) -> None:
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_path(proof: object, max_length: int) -> bool:
    if not isinstance(proof, (list, tuple)) or len(proof) > max_length:
        return False
    return all(_is_hash(p) for p in proof)
