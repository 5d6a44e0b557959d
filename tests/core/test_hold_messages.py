"""Hold refusals name times in ISO 8601 UTC (they become doc's and trade's receipt messages,
which people read; decision 0011: messages are not hashed)."""

from __future__ import annotations

from traco.core import holds
from traco.core.domain import Rejected
from traco.core.timefmt import iso_utc

T = 1_800_000_000_000


def new(**overrides: object) -> holds.Hold | Rejected:
    terms: dict[str, object] = {
        "hold_id": "h1", "owner": "a", "beneficiary": "b", "notary": None, "asset": "USD", "amount": 5,
        "expires_height": None, "expires_time": T + 60_000, "height": 10, "time": T, "available": 10,
        "id_used": False,
    }  # fmt: skip
    return holds.create(**{**terms, **overrides})  # type: ignore[arg-type]


def test_an_expiry_in_the_past_is_named_in_iso() -> None:
    refused = new(expires_time=T - 1)
    assert isinstance(refused, Rejected)
    assert refused.message == f"expiry time {iso_utc(T - 1)} must be after the block time {iso_utc(T)}"


def test_acting_on_a_due_hold_names_its_expiry_in_iso() -> None:
    hold = new()
    assert isinstance(hold, holds.Hold)
    refused = holds.release(hold, "b", 11, T + 60_000)
    assert isinstance(refused, Rejected) and refused.code == "HOLD_EXPIRED"
    assert f"time {iso_utc(T + 60_000)})" in refused.message
