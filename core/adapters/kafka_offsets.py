"""Where a Kafka topic's partitions begin and end, with Tansu's end offsets corrected.

Tansu 0.6 answers ListOffsets(latest) with the *base offset of the last record batch plus
one*, so after a batch of 1,000 records at offsets 0-999 it says 1. The true end is found by
fetching from ``reported - 1`` (inside the last batch) and taking the last offset returned
plus one. On a correct broker that fetch returns the record at ``end - 1`` and changes
nothing; if it returns nothing in time (the record was deleted meanwhile), the reported value
is kept.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.errors import ConsumerStoppedError, KafkaError

from ..errors import BusError

log = logging.getLogger(__name__)


async def offset_range(consumer: Any, tps: list[Any], fetch_wait_ms: int) -> tuple[dict[int, int], dict[int, int]]:
    """``(beginning, end)`` offsets per partition of ``tps``, asked with ``consumer`` (one used
    for nothing else: it is assigned the partitions it probes, then unsubscribed)."""
    topic = tps[0].topic if tps else "?"
    try:
        begins = {tp: int(o) for tp, o in (await consumer.beginning_offsets(tps)).items()}
        reported = {tp: int(o) for tp, o in (await consumer.end_offsets(tps)).items()}
        probe = [tp for tp in tps if reported[tp] > begins[tp]]
        last_seen: dict[Any, int] = {}
        if probe:
            consumer.assign(probe)
            for tp in probe:
                consumer.seek(tp, reported[tp] - 1)
            try:
                last_seen = await _last_offsets(consumer, probe, fetch_wait_ms)
            finally:
                consumer.unsubscribe()  # stop background prefetching
    except ConsumerStoppedError as err:
        raise BusError("KafkaEventBus stopped while reading offsets") from err
    except KafkaError as err:
        raise BusError(f"offsets of {topic!r} failed: {err!r}") from err
    ends = {tp.partition: max(reported[tp], last_seen.get(tp, -1) + 1) for tp in tps}
    return {tp.partition: begins[tp] for tp in tps}, ends


async def _last_offsets(consumer: Any, probe: list[Any], fetch_wait_ms: int) -> dict[Any, int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(2.0, 4 * fetch_wait_ms / 1000)
    last_seen: dict[Any, int] = {}
    while len(last_seen) < len(probe):
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning(
                "no record at the reported end of %s; using the reported end offsets",
                [f"{tp.topic}[{tp.partition}]" for tp in probe if tp not in last_seen],
            )
            break
        waiting = [tp for tp in probe if tp not in last_seen]
        fetched = await consumer.getmany(*waiting, timeout_ms=int(remaining * 1000))
        for tp, records in fetched.items():
            if records:
                last_seen[tp] = int(records[-1].offset)
    return last_seen


__all__ = ["offset_range"]
