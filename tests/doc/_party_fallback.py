"""A minimal stand-in for ``traco.services.party.queries``, used by these tests only when the
party package does not provide it (the two services were written at the same time).

Same contract and key layout: ``member/<key>`` -> member record, ``role_kinds/<role>`` ->
``{"kinds": [...]}`` with ``svc.*`` patterns. Never used in production code.
"""

from __future__ import annotations

from typing import Any

import orjson

from traco.core.domain import StateView


def member(view: StateView, key: str, time: int) -> dict[str, Any] | None:
    raw = view.get(f"member/{key}")
    if raw is None:
        return None
    record: dict[str, Any] = orjson.loads(raw)
    valid_until = record.get("valid_until")
    return None if valid_until is not None and time >= valid_until else record


def is_admitted(view: StateView, key: str, time: int) -> bool:
    record = member(view, key, time)
    return record is not None and record["status"] == "admitted"


def roles_of(view: StateView, key: str, time: int) -> frozenset[str]:
    record = member(view, key, time)
    return frozenset(record["roles"]) if record is not None and record["status"] == "admitted" else frozenset()


def may_submit(view: StateView, key: str, kind: str, time: int) -> bool:
    for role in roles_of(view, key, time):
        raw = view.get(f"role_kinds/{role}")
        patterns = [] if raw is None else orjson.loads(raw)["kinds"]
        if any(p == kind or (p.endswith(".*") and kind.startswith(p[:-1])) for p in patterns):
            return True
    return False
