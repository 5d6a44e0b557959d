"""``core.timefmt``: the one way a time or a duration is shown to a person (receipt messages,
the ``traco`` command). Rules call it while executing a block, so it must never raise."""

from __future__ import annotations

import pytest

from traco.core.timefmt import duration, iso_utc


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (1_803_736_964_633, "2027-02-27T14:02:44.633Z"),
        (1_700_000_000_000, "2023-11-14T22:13:20Z"),
        (0, "1970-01-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_iso_utc(ms: int, text: str) -> None:
    assert iso_utc(ms) == text


@pytest.mark.parametrize("value", [10**20, -(10**20), 253_402_300_800_000, True, None, 1.5, "soon"])
def test_iso_utc_never_raises_and_shows_what_it_cannot_convert(value: object) -> None:
    assert str(value) in iso_utc(value)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (5 * 366 * 86_400_000, "1830 days"),
        (86_400_000, "1 day"),
        (36 * 3_600_000, "36 hours"),
        (120_000, "2 minutes"),
        (90_000, "90 s"),
        (250, "250 ms"),
        (0, "0 ms"),
    ],
)
def test_duration(ms: int, text: str) -> None:
    assert duration(ms) == text


def test_duration_never_raises() -> None:
    assert duration(None) == "None"
    assert duration(False) == "False"
