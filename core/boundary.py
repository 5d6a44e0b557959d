"""The one place where bytes read from Kafka become values (architecture: Kafka is not trusted).

Why: anyone who can produce to the broker can write anything to any topic. A reader that lets
an exception escape its decoder dies, and a reader that restarts on the same message dies
again: one poison message would stop a validator for good. So every topic has one decoder,
``decode(raw) -> Checked | Rejected``, built on ``decode_model`` below, and nothing past it
ever sees raw bytes.

What "checked" means here: the bytes are at most ``max_bytes``; they parse as the model (every
validation problem is named at once, not only the first); and the value has a canonical form
(RFC 8785) — integers in the safe range, no NaN, no lone surrogates, bounded nesting — so no
later hash, signature check or storage write can fail on it. Whatever else goes wrong inside
the decoder (a parser's own recursion limit, a bug) is caught too and becomes a ``Rejected``
that names the exception: a decoder never raises.

Usage::

    decoded = decode_model(SealedBlock, message.value, max_bytes=8 << 20)
    if isinstance(decoded, Rejected):
        await bus.dead_letter(message, decoded.reason, dlq)
        return
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError

from traco.schemas.base import Model

M = TypeVar("M", bound=Model)

MAX_ERRORS_NAMED = 12
"""A reason names at most this many problems, then says how many more there were."""


@dataclass(frozen=True)
class Rejected:
    """Why a message could not become a checked value (goes to the dead-letter topic)."""

    reason: str


def describe(exc: ValidationError, what: str) -> str:
    """Every problem pydantic found, with where it is: ``what: loc: msg; loc: msg``."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error.get("loc", ())) or what
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    more = len(problems) - MAX_ERRORS_NAMED
    named = "; ".join(problems[:MAX_ERRORS_NAMED])
    return f"invalid {what}: {named}" + (f"; and {more} more" if more > 0 else "")


def canonical_problem(value: Model) -> str | None:
    """Why ``value`` has no canonical encoding (None if it has one; then it is cached)."""
    try:
        value.canonical_bytes()
    except (ValueError, TypeError, RecursionError) as exc:
        return f"no canonical JSON form: {exc}"
    return None


def decode_model(model: type[M], raw: bytes, max_bytes: int | None = None, what: str | None = None) -> M | Rejected:
    """``raw`` as a checked ``model``, or why not. Never raises (see the module docstring)."""
    name = what or model.__name__
    if not isinstance(raw, bytes | bytearray):
        return Rejected(f"{name}: not bytes")
    if max_bytes is not None and len(raw) > max_bytes:
        return Rejected(f"{name} is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        value = model.model_validate_json(raw)
    except ValidationError as exc:
        return Rejected(describe(exc, name))
    except Exception as exc:  # the parser's own limits (recursion, memory): still a refusal
        return Rejected(f"{name}: {type(exc).__name__}: {exc}"[:500])
    problem = canonical_problem(value)
    if problem is not None:
        return Rejected(f"{name}: {problem}"[:500])
    return value


__all__ = ["MAX_ERRORS_NAMED", "Rejected", "canonical_problem", "decode_model", "describe"]
