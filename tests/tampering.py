"""Changing one field of a real message or proof, for tests that a reader answers whatever it is
given: every scalar's path in a JSON value, and the value with one of them replaced."""

from __future__ import annotations

from typing import Any


def scalar_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path (keys and indexes) to every scalar in a JSON value."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in scalar_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in scalar_paths(v, (*path, i))]
    return [path]


def replace_at(value: Any, path: tuple[Any, ...], new: object) -> Any:
    """A copy of ``value`` with the scalar at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replace_at(value[head], rest, new)}
    out = list(value)
    out[head] = replace_at(out[head], rest, new)
    return out
