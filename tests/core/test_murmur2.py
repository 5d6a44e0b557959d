"""Kafka's murmur2 (``core/adapters/murmur2.py``) and its compiled twin: the same hash on
every key. (That the Python one is Kafka's own is checked against aiokafka's partitioner in
``test_event_bus.py``.)"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traco.core.adapters import murmur2 as partitioner

KNOWN = {  # Kafka's own Utils.murmur2 test vectors (as unsigned)
    b"21": -973932308 & 0xFFFFFFFF,
    b"foobar": -790332482 & 0xFFFFFFFF,
    b"a-little-bit-long-string": -985981536 & 0xFFFFFFFF,
    b"a-little-bit-longer-string": -1486304829 & 0xFFFFFFFF,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971 & 0xFFFFFFFF,
    b"abc": 479470107,
}


def test_kafkas_own_vectors() -> None:
    for key, expected in KNOWN.items():
        assert partitioner.murmur2(key) == expected, key
        if partitioner.NATIVE_MURMUR2 is not None:
            assert partitioner.NATIVE_MURMUR2(key) == expected, key


@pytest.mark.skipif(partitioner.NATIVE_MURMUR2 is None, reason="the compiled murmur2 was not built here")
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=100))
def test_the_compiled_hash_is_the_python_hash(key: bytes) -> None:
    compiled = partitioner.NATIVE_MURMUR2
    assert compiled is not None
    assert compiled(key) == partitioner.murmur2(key)
    # any buffer, as the producer's keys may be: typed as bytes, taken as the buffer protocol
    assert compiled(bytearray(key)) == partitioner.murmur2(key)  # type: ignore[arg-type]


def test_partitions_spread_and_stay_in_range() -> None:
    seen = {partitioner.kafka_partition(b"tx-%d" % i, 7) for i in range(200)}
    assert seen == set(range(7))
