"""Domain events common to every executing service."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from traco.schemas.base import Hex32, Model


class BlockProcessed(Model):
    """A service's checkpoint after executing block ``height`` (DESIGN §7).

    ``state_digest_H = SHA-256(state_digest_{H-1} ‖ canonical events of H)``: an auditor who
    replays the service's events must arrive at the same digest.
    """

    type: Literal["BlockProcessed"] = "BlockProcessed"
    version: Literal[1] = 1
    service: str
    height: int = Field(ge=0)
    state_digest: Hex32


class DomainEvent(Model):
    """One event a service emitted while executing a block."""

    type: str
    version: int = 1
    service: str
    height: int = Field(ge=1)
    tx_id: Hex32 | None = None
    tx_index: int | None = Field(
        default=None,
        ge=0,
        description="the transaction's index in its block; None for "
        "an event no transaction caused (a clause, a validator-set change)",
    )
    event_index: int = Field(default=0, ge=0, description="the event's number among its transaction's events")
    aggregate_id: str
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def position(self) -> tuple[int, int, int]:
        """``(height, tx index, event index)``: a reader drops a duplicate by position, never by
        equality (two equal payments are two events). Events no transaction caused sort first."""
        return (self.height, -1 if self.tx_index is None else self.tx_index, self.event_index)
