"""Kafka's default partitioner: which partition a key goes to (``kafka_partition``).

Why it matters: enterprises produce to ``tx`` with their own Kafka clients, and readers find a
transaction's receipt by its key, so a key must land where every Kafka client puts it — the
Java client's ``murmur2`` rule, bit for bit (``test_event_bus`` checks it against aiokafka's).

Why twice: a node hashes the key of every receipt it publishes (the receipts topic has several
partitions and receipts' keys never repeat, so no cache helps), and the pure-Python hash cost
a few percent of a replica's time. ``_murmur2_native.c`` is the same function compiled; this
module's ``murmur2`` stays the reference (``TRACO_NATIVE=0`` uses it), and a property test
checks that both agree.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable

from traco.core import native

__all__ = ["NATIVE_MURMUR2", "kafka_partition", "murmur2"]

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_LITTLE_ENDIAN = sys.byteorder == "little"


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (``org.apache.kafka.common.utils.Utils.murmur2``), unsigned.

    Reads 32-bit little-endian words instead of single bytes.
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length & ~3
    words = (
        memoryview(data[:whole]).cast("I")
        if _LITTLE_ENDIAN
        else (word for (word,) in struct.iter_unpack("<I", data[:whole]))
    )
    for k in words:
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) ^ k) & _MASK
    rest = length & 3
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h = ((h ^ data[whole]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


_compiled = native.load("traco.core.adapters._murmur2_native")
NATIVE_MURMUR2: Callable[[bytes], int] | None = _compiled.murmur2 if _compiled else None
"""The compiled hash in use, or None (this module's ``murmur2``)."""

_hash: Callable[[bytes], int] = NATIVE_MURMUR2 or murmur2


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition index Kafka's default partitioner gives ``key`` among ``partitions``."""
    return (_hash(key) & 0x7FFFFFFF) % partitions
