"""How an event's mutator writes: reads through its own writes, and the two balance moves every
amount-moving event is made of (``credit``, ``supply``).

Why shared: the core mutators (``mutations``) and every flow's (``<flow>/state.py``) change
balances the same way, so the invariants (no negative total or held, held within total, supply
never negative) are checked in one place whichever flow moved the money.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from traco.core.domain import StateView, encode
from traco.services.trade import queries as q

Writes = dict[str, bytes | None]
Data = Mapping[str, Any]


class Writer:
    """Reads through the writes made so far, so one event may touch a key twice."""

    def __init__(self, state: StateView) -> None:
        self.state = state
        self.writes: Writes = {}

    def get(self, key: str) -> dict[str, Any] | None:
        if key not in self.writes:
            return q.read(self.state, key)
        raw = self.writes[key]
        value = None if raw is None else orjson.loads(raw)
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: Any) -> None:
        self.writes[key] = encode(value)

    def delete(self, key: str) -> None:
        self.writes[key] = None

    def must(self, key: str) -> dict[str, Any]:
        value = self.get(key)
        if value is None:
            raise LookupError(f"trade event refers to missing {key}: the event stream is inconsistent")
        return value


def credit(w: Writer, token: str, account: str, total: int = 0, held: int = 0) -> None:
    """Add ``total`` and ``held`` (either may be negative) to ``account``'s balance of ``token``;
    a balance that would go negative, or hold more than it has, means the stream is inconsistent."""
    key = q.balance_key(token, account)
    bal = w.get(key) or {"total": 0, "held": 0}
    bal = {"total": bal["total"] + total, "held": bal["held"] + held}
    if bal["total"] < 0 or bal["held"] < 0 or bal["held"] > bal["total"]:
        raise ValueError(f"trade event would make {key} {bal}: the event stream is inconsistent")
    if bal == {"total": 0, "held": 0}:
        w.delete(key)
    else:
        w.put(key, bal)


def supply(w: Writer, token: str, delta: int) -> None:
    record = w.must(q.token_key(token))
    record["supply"] += delta
    if record["supply"] < 0:
        raise ValueError(f"token {token} supply would go negative")
    w.put(q.token_key(token), record)
