"""Domain events common to every executing service."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from traco.core.canonical import canonicalize
from traco.schemas.base import Hex32, Hex64, Model, once
from traco.schemas.receipt import Receipt


class BlockProcessed(Model):
    """A service's checkpoint after executing block ``height`` (architecture: Execution).

    ``state_digest_H = SHA-256(state_digest_{H-1} ‖ canonical events of H)``: an auditor who
    replays the service's events must arrive at the same digest.
    """

    type: Literal["BlockProcessed"] = "BlockProcessed"
    version: Literal[1] = 1
    service: str
    height: int = Field(ge=0)
    state_digest: Hex32
    receipts_root: Hex32 | None = Field(
        default=None, description="RFC 6962 root over the service's receipts of the height, in block order"
    )
    state_root: Hex32 | None = Field(
        default=None, description="sparse Merkle root over the service's whole state after the height (core/smt.py)"
    )


CHECKPOINT_PURPOSE = "traco/checkpoint/v1"


def checkpoint_sign_bytes(chain_id: str, node: str, checkpoint: BlockProcessed, event_hashes: tuple[str, ...]) -> bytes:
    """What a node key signs for a checkpoint: tagged with its purpose, so the signature can
    never be taken for a vote, a transaction or anything else the key signs. The receipts are
    bound through ``receipts_root``, the events through their hashes."""
    body = {
        "purpose": CHECKPOINT_PURPOSE,
        "chain_id": chain_id,
        "node": node,
        "checkpoint": checkpoint.json_value(),
        "event_hashes": list(event_hashes),
    }
    return canonicalize(body)


class SignedCheckpoint(Model):
    """A node's checkpoint of one service at one height, signed by the node key, with the
    receipts its ``receipts_root`` covers (so a reader needs this one message to trust them)."""

    type: Literal["SignedCheckpoint"] = "SignedCheckpoint"
    node: str
    checkpoint: BlockProcessed
    receipts: tuple[Receipt, ...] = ()
    event_hashes: tuple[Hex32, ...] = Field(
        default=(),
        description="SHA-256 of each event's canonical JSON, in position order: exactly the events "
        "the checkpoint's state_digest covers, so a reader picks them out of whatever else is on the topic",
    )
    signature: Hex64


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

    @once
    def jcs(self) -> bytes:
        """The canonical form, from the fields as they are (``Model.jcs`` dumps the model to JSON
        values first): an event's fields are plain JSON values already, except where a rule put
        another type into ``data`` — canonical JSON refuses that (TypeError) and the dump is
        used. Every event of every block is encoded so, on every node; the property test
        ``test_an_events_canonical_form_is_its_dumps`` holds the two forms equal."""
        return self.fields_jcs(_EVENT_FIELDS)

    @property
    def json_bytes(self) -> bytes:
        """An event goes on its topic and into its store as its canonical form: the state digest
        and the checkpoint's signature need that form anyway, so one encoding serves all three
        (any JSON reader reads it; only the key order differs from pydantic's)."""
        return self.jcs

    @property
    def position(self) -> tuple[int, int, int]:
        """``(height, tx index, event index)``: a reader drops a duplicate by position, never by
        equality (two equal payments are two events). Events no transaction caused sort first."""
        return (self.height, -1 if self.tx_index is None else self.tx_index, self.event_index)


_EVENT_FIELDS = tuple(DomainEvent.model_fields)
