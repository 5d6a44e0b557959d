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
    aggregate_id: str
    data: dict[str, Any] = Field(default_factory=dict)
