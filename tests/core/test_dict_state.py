"""``DictState`` (the block overlay every rule reads through) against a naive model: a scan is
the sorted, prefix-filtered view of the base with the overlay's writes laid over it (``None``
deletes), whatever the order of writes and scans, and a stack of overlays composes; a scan from
a key is that scan without the keys before it, over a seeking base (``DictState``) or one that
cannot seek (``PrefixView``). Seek hints follow the block's overlay, not the state under it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import given
from hypothesis import strategies as st

from traco.core.domain import Accepted, DictState, Event, Outcome, StateView, TxContext, execute_one, scan_from
from traco.core.service_runtime import PrefixView

KEYS = st.text(alphabet="ab/", min_size=0, max_size=4)
VALUES = st.one_of(st.none(), st.binary(min_size=1, max_size=2))
WRITES = st.dictionaries(KEYS, VALUES, max_size=30)


def naive(layers: Sequence[Mapping[str, bytes | None]], prefix: str) -> list[tuple[str, bytes]]:
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


@given(
    base=st.dictionaries(KEYS, st.binary(min_size=1, max_size=2), max_size=30),
    steps=st.lists(st.tuples(WRITES, KEYS, KEYS), max_size=8),
)
def test_a_scan_from_a_key_is_the_scan_without_the_keys_before_it(
    base: dict[str, bytes], steps: list[tuple[dict[str, bytes | None], str, str]]
) -> None:
    seeking = DictState(base)
    plain = PrefixView(DictState({f"p/{k}": v for k, v in base.items()}), "p/")  # has no scan_from
    tops = [DictState(base=DictState(base=seeking)), DictState(base=DictState(base=plain))]
    written: dict[str, bytes | None] = {}
    for writes, prefix, start in steps:
        for top in tops:
            top.apply(writes)
        written.update(writes)
        expected = [(k, v) for k, v in naive([base, written], prefix) if k >= start]
        for top in tops:
            assert list(top.scan_from(prefix, start)) == expected
            assert list(scan_from(top, prefix, start)) == expected
        assert list(scan_from(plain, prefix, start)) == [(k, v) for k, v in naive([base], prefix) if k >= start]


class Hinting:
    """A toy domain whose rule leaves a hint and then fails or not, as the payload says."""

    service = "toy"
    kinds = frozenset({"toy.hint"})

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
        assert isinstance(state, DictState)
        state.hints[str(tx.payload["prefix"])] = str(tx.payload["key"])
        if tx.payload.get("fail"):
            raise RuntimeError("a bug in the rules")
        return Accepted((Event("Noted", "toy", {"key": tx.payload["key"]}),))

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        return {str(event.data["key"]): b"1"}


def toy_tx(n: int, **payload: object) -> TxContext:
    return TxContext("c", 1, n, 0, f"tx{n}", "someone", "toy.hint", payload)


def test_hints_follow_the_block_overlay_all_or_nothing_and_never_reach_the_state_under_it() -> None:
    state = DictState({"a": b"1"})
    overlay = DictState(base=state)
    assert isinstance(execute_one(Hinting(), overlay, {}, toy_tx(0, prefix="x/", key="x/5")), Accepted)
    assert overlay.hints == {"x/": "x/5"} and state.hints == {}
    refused = execute_one(Hinting(), overlay, {}, toy_tx(1, prefix="y/", key="y/1", fail=True))
    assert not isinstance(refused, Accepted) and refused.code == "EXECUTION_FAILED"
    assert overlay.hints == {"x/": "x/5"}, "a failed transaction's hints go with its writes"
    child = DictState(base=DictState(base=overlay))
    child.hints["z/"] = "z/9"
    assert (child.hint("x/"), child.hint("z/"), child.hint("y/")) == ("x/5", "z/9", None), "a view finds its bases'"
    assert overlay.hint("z/") is None and overlay.hints == {"x/": "x/5"}, "and its own are its own"


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
