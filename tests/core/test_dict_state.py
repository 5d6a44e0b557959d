"""``DictState`` (the block overlay every rule reads through) against a naive model: a scan is
the sorted, prefix-filtered view of the base with the overlay's writes laid over it (``None``
deletes), whatever the order of writes and scans, and a stack of overlays composes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from traco.core.domain import DictState

KEYS = st.text(alphabet="ab/", min_size=0, max_size=4)
VALUES = st.one_of(st.none(), st.binary(min_size=1, max_size=2))
WRITES = st.dictionaries(KEYS, VALUES, max_size=30)


def naive(layers: list[dict[str, bytes | None]], prefix: str) -> list[tuple[str, bytes]]:
    merged: dict[str, bytes | None] = {}
    for layer in layers:
        merged.update(layer)
    return sorted((k, v) for k, v in merged.items() if k.startswith(prefix) and v is not None)


@given(
    base=st.dictionaries(KEYS, st.binary(min_size=1, max_size=2), max_size=30),
    steps=st.lists(st.tuples(WRITES, KEYS), max_size=8),
)
def test_a_scan_is_the_base_with_the_writes_laid_over_it(
    base: dict[str, bytes], steps: list[tuple[dict[str, bytes | None], str]]
) -> None:
    bottom = DictState(base)
    middle = DictState(base=bottom)
    top = DictState(base=middle)
    written_middle: dict[str, bytes | None] = {}
    written_top: dict[str, bytes | None] = {}
    for n, (writes, prefix) in enumerate(steps):
        target, record = (middle, written_middle) if n % 2 else (top, written_top)
        target.apply(writes)
        record.update(writes)
        assert list(middle.scan(prefix)) == naive([base, written_middle], prefix)
        assert list(top.scan(prefix)) == naive([base, written_middle, written_top], prefix)
        for key in writes:
            assert top.get(key) == ({**base, **written_middle, **written_top}).get(key)


def test_a_scan_stops_reading_the_base_when_the_caller_stops() -> None:
    reads: list[str] = []

    class Counting(DictState):
        def scan(self, prefix: str):  # type: ignore[no-untyped-def]
            for key, value in super().scan(prefix):
                reads.append(key)
                yield key, value

    base = Counting({f"due/{n:06d}": b"x" for n in range(10_000)})
    overlay = DictState(base=base)
    overlay.apply({"due/000000": None, "due/000001": b"y"})
    first = next(iter(overlay.scan("due/")))
    assert first == ("due/000001", b"y")
    assert len(reads) <= 2, "a lazy merge reads the base only as far as the caller goes"
