"""``core/bounded.trim_oldest``: a bounded memory forgets its oldest entries, an eighth at once."""

from __future__ import annotations

from traco.core.bounded import trim_oldest


def test_nothing_goes_until_an_eighth_over_then_the_oldest_go_down_to_the_limit() -> None:
    entries = {i: str(i) for i in range(80)}
    trim_oldest(entries, 80)
    assert len(entries) == 80
    entries.update({i: str(i) for i in range(80, 90)})  # 10 over: exactly an eighth
    trim_oldest(entries, 80)
    assert len(entries) == 90
    entries[90] = "90"
    trim_oldest(entries, 80)
    assert list(entries) == list(range(11, 91))  # the oldest eleven went, order kept
    entries[11] = "again"  # updating keeps the entry's place (it is not newer)
    entries.update({i: str(i) for i in range(91, 102)})
    trim_oldest(entries, 80)
    assert 11 not in entries and min(entries) == 22


def test_a_full_memory_drops_in_bulk_not_one_by_one() -> None:
    """What the bulk saves: one by one from the front of a dict of 100,000, each eviction walked
    the slots of every entry evicted before it (7 µs per insert). Here each trim that drops
    anything drops more than an eighth of the limit, so trims are few and each walk is paid
    for by the entries it drops."""
    entries: dict[int, int] = {i: i for i in range(100_000)}
    drops: list[int] = []
    for i in range(100_000, 300_000):
        entries[i] = i
        before = len(entries)
        trim_oldest(entries, 100_000)
        if len(entries) < before:
            drops.append(before - len(entries))
    assert len(entries) <= 100_000 + 100_000 // 8
    assert drops and all(dropped > 100_000 // 8 for dropped in drops)
    assert len(drops) <= 200_000 // (100_000 // 8)
