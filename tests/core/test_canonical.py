"""RFC 8785 (JCS) canonical JSON (traco.core.canonical).

The RFC's own examples pin the output; Hypothesis checks round trips, idempotence and that
the orjson fast path never differs from the pure-Python encoder that spells out the RFC.
"""

from __future__ import annotations

import datetime
import enum
import json
import struct
import sys
import uuid
from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traco.core import canonical
from traco.core.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    canonical_hash,
    canonicalize,
    sha256,
    sha256_hex,
)

slow = canonical._canonicalize_slow

# --- RFC 8785 examples -----------------------------------------------------------------

# Appendix B: IEEE 754 bit patterns and their ES6 serialisation.
APPENDIX_B = [
    (0x0000000000000000, "0"),
    (0x8000000000000000, "0"),
    (0x0000000000000001, "5e-324"),
    (0x8000000000000001, "-5e-324"),
    (0x7FEFFFFFFFFFFFFF, "1.7976931348623157e+308"),
    (0xFFEFFFFFFFFFFFFF, "-1.7976931348623157e+308"),
    (0x4340000000000000, "9007199254740992"),
    (0xC340000000000000, "-9007199254740992"),
    (0x4430000000000000, "295147905179352830000"),
    (0x44B52D02C7E14AF5, "9.999999999999997e+22"),
    (0x44B52D02C7E14AF6, "1e+23"),
    (0x44B52D02C7E14AF7, "1.0000000000000001e+23"),
    (0x444B1AE4D6E2EF4E, "999999999999999700000"),
    (0x444B1AE4D6E2EF4F, "999999999999999900000"),
    (0x444B1AE4D6E2EF50, "1e+21"),
    (0x3EB0C6F7A0B5ED8C, "9.999999999999997e-7"),
    (0x3EB0C6F7A0B5ED8D, "0.000001"),
    (0x41B3DE4355555553, "333333333.3333332"),
    (0x41B3DE4355555554, "333333333.33333325"),
    (0x41B3DE4355555555, "333333333.3333333"),
    (0x41B3DE4355555556, "333333333.3333334"),
    (0x41B3DE4355555557, "333333333.33333343"),
    (0xBECBF647612F3696, "-0.0000033333333333333333"),
    (0x43143FF3C1CB0959, "1424953923781206.2"),
]
APPENDIX_B_ERRORS = [0x7FFFFFFFFFFFFFFF, 0x7FF0000000000000, 0xFFF0000000000000]


def from_bits(bits: int) -> float:
    value: float = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
    return value


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B, ids=[e for _, e in APPENDIX_B])
def test_appendix_b_numbers(bits: int, expected: str) -> None:
    value = from_bits(bits)
    assert canonicalize(value) == expected.encode()
    assert canonicalize([value]) == f"[{expected}]".encode()
    assert canonicalize({"n": value}) == f'{{"n":{expected}}}'.encode()


@pytest.mark.parametrize("bits", APPENDIX_B_ERRORS, ids=["NaN", "Infinity", "-Infinity"])
def test_appendix_b_nan_and_infinity_are_errors(bits: int) -> None:
    with pytest.raises(ValueError):
        canonicalize(from_bits(bits))
    with pytest.raises(ValueError):
        canonicalize({"a": [1, {"b": from_bits(bits)}]})


def test_rfc_sorting_example_3_2_3() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = [
        "\r",
        "1",
        "\u0080",
        "\u00f6",
        "\u20ac",
        "\U0001f600",  # surrogates D83D DE00 sort before U+FB33 in UTF-16
        "\ufb33",
    ]
    assert list(json.loads(canonicalize(value))) == expected
    # Code-point (UTF-8) order would put the emoji last: exactly where orjson differs.
    assert list(orjson.loads(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)))[-1] == ("\U0001f600")


def test_rfc_main_example_3_2_2() -> None:
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],'
        '"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonicalize(json.loads(text)) == expected


def test_string_escaping_is_exactly_jcs() -> None:
    text = "".join(map(chr, range(0x30))) + "\x7f/\u2028\u2029\ue000\U0001f600"
    expected = (
        '"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r'
        "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
        "\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f !\\\"#$%&'()*+,-./"
        '\x7f/\u2028\u2029\ue000\U0001f600"'
    ).encode()
    assert canonicalize(text) == expected
    assert slow(text) == expected


def test_orjson_escapes_every_code_point_like_jcs() -> None:
    # The fast path relies on this: one string holding every non-surrogate code point.
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert orjson.dumps(every) == slow(every)
    assert orjson.dumps({every: 1}) == slow({every: 1})


# --- numbers and the safe-integer rule -------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, 17, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 10**15, -(10**15)],
)
def test_safe_integers_are_plain_digits(value: int) -> None:
    assert canonicalize(value) == str(value).encode()
    assert canonicalize({"amount": value}) == f'{{"amount":{value}}}'.encode()


@pytest.mark.parametrize(
    "value",
    [
        MAX_SAFE_INTEGER + 1,
        -(MAX_SAFE_INTEGER + 1),
        2**53 + 1,
        2**63,
        -(2**63),
        2**64,
        10**30,
    ],
)
def test_unsafe_integers_are_rejected_not_rounded(value: int) -> None:
    for wrapped in (value, [value], {"amount": value}, {"a": {"b": [1, value]}}):
        with pytest.raises(ValueError, match="decimal string"):
            canonicalize(wrapped)


def test_huge_integers_get_a_short_message() -> None:
    with pytest.raises(ValueError, match="of 16610 bits"):
        canonicalize({"amount": -(10**5000)})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (123.456, "123.456"),
        (2.0**60, "1152921504606847000"),
        (-1.5e300, "-1.5e+300"),
        (sys.float_info.min, "2.2250738585072014e-308"),
    ],
)
def test_floats_use_ecmascript_form(value: float, expected: str) -> None:
    assert canonicalize(value) == expected.encode()


def test_booleans_and_null() -> None:
    assert canonicalize([True, False, None]) == b"[true,false,null]"
    assert canonicalize({"t": True, "f": False, "n": None}) == b'{"f":false,"n":null,"t":true}'


# --- rejections ------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    A = 1


@pytest.mark.parametrize(
    "value",
    [
        {1: "a"},
        {None: "a"},
        {(1, 2): "a"},
        {"ok": {b"k": 1}},
        (1, 2),
        {1, 2},
        b"bytes",
        Decimal("1.5"),
        uuid.UUID(int=0),
        Colour.RED,
        object(),
        {"a": [1, (2,)]},
        {"when": datetime.date(2024, 1, 1)},
    ],
    ids=repr,
)
def test_unsupported_types_and_keys_are_type_errors(value: object) -> None:
    with pytest.raises(TypeError):
        canonicalize(value)


@pytest.mark.parametrize("value", ["\ud800", ["ok", "x\udfffy"], {"\udc00": 1}, {"k": {"\ud83d": "lone high"}}])
def test_lone_surrogates_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="surrogate"):
        canonicalize(value)


def nested(depth: int) -> object:
    value: object = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def test_nesting_is_limited() -> None:
    assert canonicalize(nested(MAX_DEPTH)) == slow(nested(MAX_DEPTH))
    for deep in (nested(MAX_DEPTH + 1), nested(10_000)):
        with pytest.raises(ValueError, match="nesting"):
            canonicalize(deep)


def test_cycles_are_rejected() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="nesting"):
        canonicalize(cycle)


def test_subclasses_encode_as_their_base_values() -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    class Kind(str, enum.Enum):  # noqa: UP042 - str() of this is "Kind.DOC", not the value
        DOC = "doc.register"

    assert canonicalize({"level": Level.HIGH, Kind.DOC: Kind.DOC}) == (b'{"doc.register":"doc.register","level":3}')


# --- hashes ----------------------------------------------------------------------------


def test_hash_helpers() -> None:
    abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2
    assert sha256_hex(b"abc") == abc
    assert sha256(b"abc") == bytes.fromhex(abc)
    assert canonical_hash({"b": 1, "a": [True]}) == sha256(b'{"a":[true],"b":1}')


# --- properties ------------------------------------------------------------------------

# Keys mixing ASCII, the U+E000..U+FFFF range and supplementary characters: the cases where
# UTF-8 and UTF-16 orders part ways.
KEYS = st.text(
    st.one_of(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.sampled_from(["\x00", "\x1f", "\x7f", "\u00e9", "\ud7ff", "\ue000", "\uffff"]),
        st.sampled_from(["\U00010000", "\U0001f600", "\U0010ffff", "\u20ac", "\ufb33"]),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=4,
)
SAFE_INTS = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.one_of(st.none(), st.booleans(), SAFE_INTS, st.text(max_size=8))


def json_values(scalars: st.SearchStrategy[object], keys: st.SearchStrategy[str] = KEYS) -> st.SearchStrategy[object]:
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=20,
    )


JSON_NO_FLOATS = json_values(SCALARS)
JSON = json_values(st.one_of(SCALARS, FLOATS))


def parse_like_ecmascript(data: bytes) -> object:
    # A JCS consumer reads every number as a double; Python reads integers as ints. Doing
    # the same for integers beyond the safe range keeps round trips exact.
    def parse_int(text: str) -> int | float:
        number = int(text)
        return number if abs(number) <= MAX_SAFE_INTEGER else float(text)

    return json.loads(data, parse_int=parse_int)


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_round_trip_and_idempotence(value: object) -> None:
    data = canonicalize(value)
    parsed = parse_like_ecmascript(data)
    assert parsed == value
    assert canonicalize(parsed) == data


@settings(max_examples=100, deadline=None)
@given(JSON_NO_FLOATS)
def test_strings_and_integers_agree_with_the_stdlib_encoder(value: object) -> None:
    # Python's json module escapes exactly like JCS when told not to escape non-ASCII.
    data = canonicalize(value)
    assert data.decode() == json.dumps(json.loads(data), ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=150, deadline=None)
@given(st.one_of(JSON_NO_FLOATS, JSON))
def test_fast_path_equals_slow_path(value: object) -> None:
    assert canonicalize(value) == slow(value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(KEYS, SAFE_INTS, min_size=2, max_size=6))
def test_keys_sort_by_utf16_code_units(value: dict[str, int]) -> None:
    keys = list(json.loads(canonicalize(value)))
    assert keys == sorted(value, key=lambda k: k.encode("utf-16-be"))
    assert keys == list(json.loads(slow(value)))


@settings(max_examples=50, deadline=None)
@given(st.one_of(JSON_NO_FLOATS, JSON), st.sampled_from([2**53, -(2**53), 2**70]))
def test_an_unsafe_integer_anywhere_is_rejected(value: object, bad: int) -> None:
    with pytest.raises(ValueError):
        canonicalize([value, {"x": bad}])


@settings(max_examples=100, deadline=None)
@given(FLOATS)
def test_float_output_parses_back_to_the_same_double(value: float) -> None:
    data = canonicalize(value)
    assert float(data) == value
    assert data == slow(value)


# Keys below U+E000, where UTF-8 (orjson) and UTF-16 (JCS) orders agree.
LOW_KEYS = st.text(st.characters(max_codepoint=0xDFFF, exclude_categories=["Cs"]), max_size=4)


@settings(max_examples=100, deadline=None)
@given(json_values(SCALARS, LOW_KEYS))
def test_orjson_is_jcs_whenever_the_guard_lets_it_through(value: object) -> None:
    fast = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
    assert fast == slow(value)


def test_typical_envelopes_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(value: object) -> bytes:
        raise AssertionError("slow path taken")

    monkeypatch.setattr(canonical, "_canonicalize_slow", refuse)
    envelope = {
        "chain_id": "main",
        "kind": "doc.register",
        "sender": "ab" * 32,
        "nonce": 7,
        "payload": {"doc_hash": "cd" * 32, "holder": "Müller GmbH — 第一", "tags": ["bl", None]},
    }
    assert canonicalize(envelope) == orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)


# --- the compiled guard (core/_canonical_native.c) ---------------------------------------


class Text(str):
    pass


class Number(int):
    pass


class Listing(list):  # type: ignore[type-arg]
    pass


ODD = st.sampled_from([(1,), Text("t"), Number(3), Listing([1]), 1.5, b"x", Colour.RED, Level.A])
GUARDED = json_values(st.one_of(SCALARS, FLOATS, ODD))


@pytest.mark.skipif(canonical.NATIVE_GUARD is None, reason="the compiled guard was not built here")
@settings(max_examples=300, deadline=None)
@given(GUARDED)
def test_the_compiled_guard_gives_the_python_verdict(value: object) -> None:
    """Exact types only (a subclass, a tuple, a float or another type anywhere says no)."""
    guard = canonical.NATIVE_GUARD
    assert guard is not None
    assert guard(value, MAX_DEPTH) is canonical._fast_types((value,), 0)
    for depth in (MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1):  # the depth limit at its edge
        assert guard(nested(depth), MAX_DEPTH) is canonical._fast_types((nested(depth),), 0), depth
