"""``KeyFilter``: which keys a state store certainly does not hold (a Bloom filter).

Why: a rule asks for keys that do not exist yet far more often than one would think: a new
order's id (``ids are never reused``), its hold, its trade record, a document's hash and
business key. Every such question reached SQLite to learn "absent", at about 9 µs a query in
a busy store (decision 0008, ninth round): four of them per matched order. A Bloom filter
over the stored keys answers "certainly absent" for almost all of them from memory, in about
half a microsecond, and "maybe" for every stored key, which then reads SQLite as before.

The one rule that carries safety: **a key that may be stored is never reported absent**. The
filter is only ever told more than is true, never less:

* keys are added before the batch that writes them is committed (a batch that rolls back
  leaves keys that only cost a query each);
* deletes are never removed (a deleted key costs a query until the next rebuild);
* the owner drops the whole filter whenever it cannot vouch for it (another connection
  committed to its file) and builds it again from the stored keys.

A wrong "maybe" costs one query; a wrong "absent" would be a silent divergence, so the tests
drive a store with its filter beside a plain dict (``tests/core/test_key_filter.py``).

Sizing: 16 bits of the filter per key of its capacity, and four bits set per key, give about
0.24% false "maybe" when full. Added keys past the capacity call for a rebuild (``full``),
which the owner does by reading its keys again at twice the count: amortised, a fraction of a
microsecond per key.

Not persisted and not shared: Python's ``hash`` of a ``str`` differs between processes, which
is harmless for a filter that lives and dies with its store object.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["KeyFilter"]

BITS_PER_KEY: Final = 16
MIN_CAPACITY: Final = 1 << 16
_LOW32: Final = 0xFFFFFFFF


class KeyFilter:
    """A Bloom filter over strings: ``might_hold`` is ``True`` for every key ever ``add``-ed."""

    __slots__ = ("_bits", "_count", "_mask", "capacity")

    def __init__(self, keys: Iterable[str] = (), expected: int = 0) -> None:
        """A filter sized for ``expected`` keys (at least ``MIN_CAPACITY``), holding ``keys``."""
        self.capacity = max(MIN_CAPACITY, expected)
        size = 1 << (self.capacity * BITS_PER_KEY - 1).bit_length()  # bits, a power of two
        self._bits = bytearray(size >> 3)
        self._mask = size - 1
        self._count = 0
        self.add_all(keys)

    @property
    def full(self) -> bool:
        """More new keys were added than it was sized for: rebuild it larger (false hits grow)."""
        return self._count > self.capacity

    def _positions(self, key: str) -> tuple[int, int, int, int]:
        """The four bits of ``key`` (double hashing over Python's hash of the string). One
        function for ``add`` and ``might_hold``: were they ever to differ, a stored key would
        be denied. Written out rather than looped: it is on every read the writer does not
        remember."""
        h = hash(key)
        step = ((h >> 32) & _LOW32) | 1
        at, mask = h & _LOW32, self._mask
        return at & mask, (at + step) & mask, (at + 2 * step) & mask, (at + 3 * step) & mask

    def add(self, key: str) -> None:
        """Set ``key``'s bits. Counted towards ``full`` only if a bit was unset: a key written
        again (a balance updated at every block) does not fill the filter."""
        bits = self._bits
        fresh = False
        for j in self._positions(key):
            byte, bit = j >> 3, 1 << (j & 7)
            if not bits[byte] & bit:
                bits[byte] |= bit
                fresh = True
        if fresh:
            self._count += 1

    def add_all(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def might_hold(self, key: str) -> bool:
        """``False`` only for a key never added; ``True`` for every added key (and a few others)."""
        bits = self._bits
        for j in self._positions(key):
            if not bits[j >> 3] & (1 << (j & 7)):
                return False
        return True
