"""RFC 8785 (JCS) canonical JSON: the one encoding TRACO signs and hashes.

Why: a signature or a ``tx_id`` is only meaningful if every node turns the same value into
the same bytes. JCS fixes key order (UTF-16 code units), string escaping (only ``"``, ``\\``
and controls) and numbers (ECMAScript ``Number.prototype.toString``), so any JCS
implementation in any language reproduces our bytes.

How: ``canonicalize(value)`` takes a *parsed JSON value* (``dict`` with ``str`` keys,
``list``, ``str``, ``int``, ``float``, ``bool``, ``None``) and returns UTF-8 bytes;
``canonical_hash(value)`` is SHA-256 of those bytes.

Speed: this runs for every transaction, so values that orjson provably encodes exactly as
JCS go through ``orjson.dumps(OPT_SORT_KEYS | OPT_STRICT_INTEGER)``; everything else goes
through a small pure-Python encoder. orjson is identical to JCS when

* there are no floats (orjson writes ``1.0`` and ``1e21`` where ES6 writes ``1`` and
  ``1e+21``);
* every integer is a safe integer (``OPT_STRICT_INTEGER`` makes orjson raise otherwise);
* within each object, keys sort the same in UTF-8 (orjson) and UTF-16 (JCS) order. The two
  orders differ only between characters U+E000..U+FFFF and characters above U+FFFF, so keys
  made only of characters below U+E000 are safe;
* every node has an exact builtin type (orjson would also encode tuples, enums, UUIDs...).

orjson's string escaping is exactly JCS's (checked by the tests over every code point).

Caveats, chosen deliberately:

* Integers outside the I-JSON safe range ``-(2**53 - 1) .. 2**53 - 1`` (RFC 7493 §2.2) raise
  ``ValueError`` instead of being rounded to the nearest double as a JavaScript encoder
  would: amounts of money must never silently change between signer and verifier. (``2**53``
  itself is rejected too: a JavaScript verifier cannot tell it from ``2**53 + 1``.) Send
  larger numbers as decimal strings.
* NaN and infinities raise ``ValueError`` (JSON cannot express them); lone surrogates raise
  ``ValueError`` (they have no UTF-8 form); non-``str`` keys and other types raise
  ``TypeError``; nesting deeper than ``MAX_DEPTH`` raises ``ValueError``.
* Subclasses of the builtin types (``IntEnum``, ``StrEnum``...) are encoded as their base
  value by the slow path.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from traco.core import native

__all__ = [
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "canonical_hash",
    "canonicalize",
    "sha256",
    "sha256_hex",
]

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer magnitude accepted (JavaScript's ``Number.MAX_SAFE_INTEGER``)."""

MAX_DEPTH = 128
"""Deepest nesting of objects and arrays accepted; orjson itself stops at 255."""

_FAST_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_FAST_SCALARS = frozenset({str, int, bool, type(None)})
_CONTAINERS = frozenset({dict, list})
_FIRST_UNSAFE_KEY_CHAR = "\ue000"  # UTF-8 and UTF-16 orders agree below U+E000

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n"}
_SHORT_ESCAPES |= {"\f": "\\f", "\r": "\\r"}
_ESCAPE_TABLE = {c: _SHORT_ESCAPES.get(chr(c), f"\\u{c:04x}") for c in range(0x20)}
_ESCAPE_TABLE |= {ord(k): v for k, v in _SHORT_ESCAPES.items()}


_guard_module = native.load("traco.core._canonical_native")
NATIVE_GUARD: Callable[[object, int], bool] | None = _guard_module.fast_types if _guard_module else None
"""The compiled type guard in use, or None (this module's ``_fast_types``)."""


def canonicalize(value: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a parsed JSON value."""
    guard = NATIVE_GUARD
    if guard(value, MAX_DEPTH) if guard is not None else _fast_types((value,), 0):
        try:
            out = orjson.dumps(value, option=_FAST_OPTIONS)
        except orjson.JSONEncodeError:
            pass  # an unsafe integer or a lone surrogate: the slow path names the problem
        else:
            # ASCII output means ASCII keys; otherwise look at the keys themselves.
            if out.isascii() or _keys_sort_alike(value):
                return out
    return _canonicalize_slow(value)


def canonical_hash(value: object) -> bytes:
    """SHA-256 of ``canonicalize(value)`` (32 bytes)."""
    return hashlib.sha256(canonicalize(value)).digest()


def sha256(data: bytes) -> bytes:
    """SHA-256 digest of ``data`` (32 bytes)."""
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


# --- fast-path guard -------------------------------------------------------------------


def _fast_types(items: Iterable[object], depth: int) -> bool:
    """True if every node has an exact type that orjson encodes like JCS (floats do not).

    Deliberately cheap (the hot path runs it per transaction): one type lookup per node.
    Integer range and lone surrogates are left to orjson, which raises on them.
    """
    for item in items:
        kind = type(item)
        if kind in _FAST_SCALARS:
            continue
        if depth >= MAX_DEPTH:
            return False
        if kind is dict:
            if not _fast_types(item.values(), depth + 1):  # type: ignore[attr-defined]
                return False
        elif kind is list:
            if not _fast_types(item, depth + 1):  # type: ignore[arg-type]
                return False
        else:
            return False
    return True


def _keys_sort_alike(value: object) -> bool:
    """True if every object's keys sort the same by UTF-8 bytes and by UTF-16 code units."""
    if type(value) is list:
        children: Iterable[object] = value
    elif type(value) is dict:
        keys = "".join(value)
        if not keys.isascii() and max(keys) >= _FIRST_UNSAFE_KEY_CHAR:
            return False
        children = value.values()
    else:
        return True
    for child in children:
        if type(child) in _CONTAINERS and not _keys_sort_alike(child):
            return False
    return True


# --- slow path: the specification, written out -----------------------------------------


def _canonicalize_slow(value: object) -> bytes:
    parts: list[str] = []
    _encode(value, parts, 0)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("canonical JSON cannot encode a lone surrogate") from exc


def _encode(value: object, out: list[str], depth: int) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, int):
        out.append(_encode_int(value))
    elif isinstance(value, float):
        out.append(_encode_float(value))
    elif isinstance(value, dict):
        _encode_object(value, out, _deeper(depth))
    elif isinstance(value, list):
        _encode_array(value, out, _deeper(depth))
    else:
        raise TypeError(f"canonical JSON cannot encode {type(value).__name__}")


def _deeper(depth: int) -> int:
    if depth >= MAX_DEPTH:
        raise ValueError(f"canonical JSON nesting is limited to {MAX_DEPTH} levels")
    return depth + 1


def _encode_object(obj: dict[Any, object], out: list[str], depth: int) -> None:
    keys: list[str] = []
    for key in obj:
        if not isinstance(key, str):
            raise TypeError(f"canonical JSON object keys must be str, not {type(key).__name__}")
        keys.append(key)
    keys.sort(key=_utf16_sort_key)
    out.append("{")
    for i, key in enumerate(keys):
        if i:
            out.append(",")
        out.append(_encode_string(key))
        out.append(":")
        _encode(obj[key], out, depth)
    out.append("}")


def _utf16_sort_key(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like sequences of UTF-16 code units.
    try:
        return str.encode(key, "utf-16-be")
    except UnicodeEncodeError as exc:
        raise ValueError("canonical JSON cannot encode a lone surrogate") from exc


def _encode_array(items: list[object], out: list[str], depth: int) -> None:
    out.append("[")
    for i, item in enumerate(items):
        if i:
            out.append(",")
        _encode(item, out, depth)
    out.append("]")


def _encode_string(text: str) -> str:
    return '"' + str.translate(text, _ESCAPE_TABLE) + '"'


def _encode_int(number: int) -> str:
    if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        return int.__repr__(number)
    shown = str(number) if number.bit_length() <= 128 else f"of {number.bit_length()} bits"
    raise ValueError(
        f"integer {shown} is outside ±(2**53 - 1) and would not survive as an IEEE double;"
        " encode it as a decimal string"
    )


def _encode_float(number: float) -> str:
    """ECMAScript ``Number.prototype.toString`` (ECMA-262 §7.1.12.1) for a finite double."""
    if not math.isfinite(number):
        raise ValueError(f"canonical JSON cannot encode {number!r}")
    if number == 0:
        return "0"  # also -0.0
    if number < 0:
        return "-" + _encode_float(-number)
    digits, n = _shortest_digits(float(number))
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    exponent = f"e{'+' if n >= 1 else '-'}{abs(n - 1)}"
    if k == 1:
        return digits + exponent
    return digits[0] + "." + digits[1:] + exponent


def _shortest_digits(number: float) -> tuple[str, int]:
    """Digits ``s`` and exponent ``n`` with ``number == 0.s * 10**n``, ``s`` shortest.

    Python's ``repr`` already yields the shortest round-tripping digits, closest to the
    exact value on ties, which is what ECMA-262 requires; only the layout differs.
    """
    mantissa, _, exp = float.__repr__(number).partition("e")
    whole, _, fraction = mantissa.partition(".")
    raw = (whole + fraction).lstrip("0")
    digits = raw.rstrip("0")
    scale = int(exp or "0") - len(fraction) + (len(raw) - len(digits))
    return digits, scale + len(digits)
