"""Which partitions a consumer reads and from which offsets: one set of rules for every bus
adapter, so the memory bus used in unit tests refuses exactly what the Kafka bus refuses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import BusError, OffsetOutOfRange
from ..ports import StartAt


def choose_partitions(topic: str, count: int, partitions: Sequence[int] | None) -> list[int]:
    """The partitions to read (all of ``count`` unless named), sorted; unknown ones are an error."""
    if partitions is None:
        return list(range(count))
    chosen = sorted(set(partitions))
    if not chosen:
        raise ValueError("partitions must not be empty (use None for all partitions)")
    missing = [p for p in chosen if not 0 <= p < count]
    if missing:
        raise BusError(f"{topic!r} has {count} partitions; no partition {missing}")
    return chosen


def start_positions(
    topic: str,
    partitions: list[int],
    start: StartAt,
    begins: Mapping[int, int],
    ends: Mapping[int, int],
) -> dict[int, int]:
    """Concrete start offsets; partitions a mapping does not name start at the beginning."""
    if start == "earliest":
        return {p: begins[p] for p in partitions}
    if start == "latest":
        return {p: ends[p] for p in partitions}
    if isinstance(start, str):
        raise ValueError(f"start must be 'earliest', 'latest' or a mapping, got {start!r}")
    extra = sorted(set(start) - set(partitions))
    if extra:
        raise ValueError(f"start names partitions {extra} that are not being consumed")
    positions = {p: begins[p] for p in partitions}
    for partition, offset in start.items():
        if offset < 0:
            raise ValueError(f"negative start offset {offset} for partition {partition}")
        if not begins[partition] <= offset <= ends[partition]:
            raise OffsetOutOfRange(
                f"start offset {offset} is outside [{begins[partition]}, {ends[partition]}] "
                f"of {topic!r} partition {partition}"
            )
        positions[partition] = offset
    return positions
