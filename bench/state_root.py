"""State-root benchmark: what ``state_root`` (traco.core.smt) costs a service per block.

One run, in one process, with the tree's nodes in a plain dict (no storage engine):

1. update: µs per changed key for batches of 1, 100 and 1,000 changed keys (80% updates of
   existing keys, 10% new keys, 10% deletes, so the tree keeps its size) in trees of 10,000
   and 100,000 keys; each batch's new nodes are written and its stale nodes deleted, as a
   pruning service would (that dict work is not timed), so every batch sees the tree the
   previous one left;
2. proofs: size (siblings, bytes in binary and as JSON) and µs to prove and to verify, for
   keys that are present and keys that are absent (best of three passes; a proof is built
   as the pydantic ``StateProof`` and verified from it, hex decoding included);
3. the same run's Ed25519 verification (``traco.core.crypto``) as the yardstick: a block's
   transactions each cost at least one such verification, so a state update well below it
   per changed key does not bound throughput.

Run: ``.venv/bin/python bench/state_root.py`` (about 20 s; ``--sizes``, ``--seconds`` and
``--proofs`` change the load). Figures are printed as tables; nothing here asserts, it
measures. The machine is shared: the update table gives the median and the best batch, and
Ed25519 is measured again at the end to show how much the machine's speed moved.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from traco.core import crypto
from traco.core.smt import EMPTY_ROOT, verify_state_proof
from traco.core.smt_tree import StateTree

BATCHES = (1, 100, 1000)


def ed25519_verify_us(seconds: float = 1.0) -> float:
    key = crypto.generate_private_key()
    pub = crypto.public_key(key)
    message = b"x" * 200
    sig = crypto.sign(key, message)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            crypto.verify(pub, message, sig)
        count += 200
    return (time.perf_counter() - start) / count * 1e6


def value(i: int, version: int) -> bytes:
    return b'{"available":%d,"held":0,"version":%d}' % (i * 7919 % 1_000_003, version)


class Tree:
    """A state of ``size`` keys ``acct/<i>`` and its tree, nodes in a dict, applied and pruned."""

    def __init__(self, size: int) -> None:
        self.contents = {f"acct/{i}": value(i, 0) for i in range(size)}
        self.keys = list(self.contents)
        self.index = {key: i for i, key in enumerate(self.keys)}
        self.next_key = size
        self.version = 0
        self.nodes: dict[bytes, bytes] = {}
        self.tree = StateTree(self.nodes)
        start = time.perf_counter()
        update = self.tree.apply(EMPTY_ROOT, self.contents)
        self.build_s = time.perf_counter() - start
        self.nodes.update(update.new_nodes)
        self.root = update.root

    def batch(self, rng: random.Random, size: int) -> dict[str, bytes | None]:
        """``size`` changes: 80% updates, 10% inserts, 10% deletes (a single change updates)."""
        self.version += 1
        changes: dict[str, bytes | None] = {}
        picked = rng.sample(self.keys, size)
        for n, key in enumerate(picked):
            if n < size // 10:
                changes[key] = None
            elif n < 2 * (size // 10):
                changes[f"acct/{self.next_key}"] = value(self.next_key, self.version)
                self.next_key += 1
            else:
                changes[key] = value(n, self.version)
        return changes

    def commit(self, changes: dict[str, bytes | None]) -> tuple[float, int, int]:
        """Apply ``changes``: seconds ``apply`` took (storing is not timed), nodes new, stale."""
        start = time.perf_counter()
        update = self.tree.apply(self.root, changes)
        took = time.perf_counter() - start
        self.nodes.update(update.new_nodes)
        for stale in update.stale:
            del self.nodes[stale]
        self.root = update.root
        for key, new in changes.items():
            if new is None:
                self._forget(key)
            else:
                if key not in self.contents:
                    self.index[key] = len(self.keys)
                    self.keys.append(key)
                self.contents[key] = new
        return took, len(update.new_nodes), len(update.stale)

    def _forget(self, key: str) -> None:
        del self.contents[key]
        at = self.index.pop(key)
        last = self.keys.pop()
        if last != key:
            self.keys[at] = last
            self.index[last] = at


def update_rows(tree: Tree, rng: random.Random, seconds: float) -> list[tuple[int, float, float, float, float]]:
    """(batch size, median and best µs per changed key, new and stale nodes per key) per batch
    size; each batch size runs for ``seconds`` (at least 3 batches)."""
    rows = []
    for size in BATCHES:
        taken: list[float] = []
        new = stale = 0
        budget = time.perf_counter() + seconds
        while len(taken) < 3 or time.perf_counter() < budget:
            took, created, dropped = tree.commit(tree.batch(rng, size))
            taken.append(took)
            new += created
            stale += dropped
        per_key = len(taken) * size
        median, best = statistics.median(taken) / size * 1e6, min(taken) / size * 1e6
        rows.append((size, median, best, new / per_key, stale / per_key))
    return rows


def proof_rows(tree: Tree, rng: random.Random, count: int) -> list[tuple[str, float, int, float, float, float, float]]:
    """(kind, mean siblings, max siblings, binary bytes, JSON bytes, prove µs, verify µs)."""
    present = rng.sample(tree.keys, count)
    absent = [f"none/{i}" for i in range(count)]
    rows = []
    for kind, keys in (("present", present), ("absent", absent)):
        claims = [tree.contents.get(key) for key in keys]
        prove_us = verify_us = float("inf")
        for _ in range(3):  # best of three passes: the machine is shared
            start = time.perf_counter()
            proofs = [tree.tree.prove(tree.root, key) for key in keys]
            prove_us = min(prove_us, (time.perf_counter() - start) / count * 1e6)
            start = time.perf_counter()
            for key, claim, proof in zip(keys, claims, proofs, strict=True):
                if verify_state_proof(tree.root, key, claim, proof) is not None:
                    raise SystemExit(f"the proof for {key} does not verify")
            verify_us = min(verify_us, (time.perf_counter() - start) / count * 1e6)
        depths = [len(p.siblings) for p in proofs]
        binary = statistics.mean(32 + 32 * len(p.siblings) + (64 if p.leaf else 0) for p in proofs)
        json_bytes = statistics.mean(len(p.model_dump_json()) for p in proofs)
        rows.append((kind, statistics.mean(depths), max(depths), binary, json_bytes, prove_us, verify_us))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each batch size per tree")
    parser.add_argument("--proofs", type=int, default=2000, help="proofs of each kind per tree")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    ed_us = ed25519_verify_us()
    print(f"Ed25519 verify (traco.core.crypto, this run): {ed_us:.1f} µs ({1e6 / ed_us:,.0f}/s on one core)")
    print("(÷ Ed25519: the figure divided by that; below 1 is cheaper than one signature check)")
    print()
    print(
        f"{'keys':>8}  {'batch':>5}  {'µs/changed key':>14}  {'(best)':>6}  {'÷ Ed25519':>9}  "
        f"{'new nodes/key':>13}  {'stale nodes/key':>15}"
    )
    proofs: list[tuple[int, tuple[str, float, int, float, float, float, float]]] = []
    for size in args.sizes:
        tree = Tree(size)
        build_us = tree.build_s / size * 1e6
        print(
            f"{size:>8}  {'all':>5}  {build_us:>14.1f}  {'':>6}  {build_us / ed_us:>9.2f}  "
            f"{len(tree.nodes) / size:>13.2f}  {'':>15}   (the whole tree from scratch)"
        )
        for batch, us, best, new, stale in update_rows(tree, rng, args.seconds):
            print(f"{size:>8}  {batch:>5}  {us:>14.1f}  {best:>6.1f}  {us / ed_us:>9.2f}  {new:>13.2f}  {stale:>15.2f}")
        proofs += [(size, row) for row in proof_rows(tree, rng, args.proofs)]
        del tree
    print()
    print(
        f"{'keys':>8}  {'proof':>7}  {'siblings':>8}  {'max':>3}  {'binary B':>8}  {'JSON B':>6}  "
        f"{'prove µs':>8}  {'verify µs':>9}  {'verify ÷ Ed25519':>16}"
    )
    for size, (kind, mean, most, binary, json_bytes, prove_us, verify_us) in proofs:
        print(
            f"{size:>8}  {kind:>7}  {mean:>8.1f}  {most:>3}  {binary:>8.0f}  {json_bytes:>6.0f}  "
            f"{prove_us:>8.1f}  {verify_us:>9.1f}  {verify_us / ed_us:>16.2f}"
        )
    print()
    print(f"Ed25519 verify again at the end of the run: {ed25519_verify_us():.1f} µs (machine noise)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
