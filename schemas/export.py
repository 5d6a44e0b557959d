"""Generate the checked-in JSON Schemas and the AsyncAPI document from the pydantic models.

``traco schemas export`` writes them; a test regenerates them in memory and fails when the
checked-in files are stale, so the published contract cannot drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from traco.schemas.block import SealedBlock
from traco.schemas.consensus import BlockRequest, ProposalMessage, VoteMessage
from traco.schemas.events import BlockProcessed, DomainEvent, SignedCheckpoint
from traco.schemas.genesis import Genesis
from traco.schemas.proof import TxProof
from traco.schemas.receipt import Receipt
from traco.schemas.state_proof import StateValueProof
from traco.schemas.tx import TxEnvelope

MODELS: dict[str, type[BaseModel]] = {
    "TxEnvelope": TxEnvelope,
    "SealedBlock": SealedBlock,
    "Receipt": Receipt,
    "ProposalMessage": ProposalMessage,
    "VoteMessage": VoteMessage,
    "BlockRequest": BlockRequest,
    "BlockProcessed": BlockProcessed,
    "DomainEvent": DomainEvent,
    "Genesis": Genesis,
    "TxProof": TxProof,
    "SignedCheckpoint": SignedCheckpoint,
    "StateValueProof": StateValueProof,
}

# topic suffix -> (key, models carried, description)
TOPICS: dict[str, tuple[str, list[str], str]] = {
    "tx": ("sender public key (hex)", ["TxEnvelope"], "signed transaction envelopes (the mempool)"),
    "consensus": (
        "height",
        ["ProposalMessage", "VoteMessage", "BlockRequest"],
        "signed proposals and votes",
    ),
    "blocks": ("height", ["SealedBlock"], "sealed blocks in height order"),
    "node.{node}.receipts": ("tx id", ["Receipt"], "node {node}'s receipt per transaction"),
    "node.{node}.events.chain": (
        "aggregate id, or height for the checkpoint",
        ["DomainEvent", "BlockProcessed"],
        "the chain's events on node {node}, then its checkpoint",
    ),
    "node.{node}.events.{service}": (
        "aggregate id, or height for the checkpoint",
        ["DomainEvent", "SignedCheckpoint"],
        "node {node}'s events of a service, then its checkpoint signed by the node key",
    ),
    "node.{node}.dlq": ("none", [], "what node {node} could not decode or refused, with the error"),
}


def json_schemas() -> dict[str, dict[str, Any]]:
    return {name: model.model_json_schema(mode="serialization") for name, model in MODELS.items()}


def asyncapi() -> dict[str, Any]:
    schemas = json_schemas()
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for suffix, (key, names, description) in TOPICS.items():
        channels[suffix] = {
            "address": f"traco.{{chain}}.{suffix}",
            "description": f"{description}; key: {key}",
            "parameters": {"chain": {"description": "chain id, e.g. main"}},
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
        }
        for n in names:
            messages[n] = {
                "name": n,
                "contentType": "application/json",
                "headers": {"type": "object", "properties": {"traceparent": {"type": "string"}}},
                "payload": {"$ref": f"#/components/schemas/{n}"},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "TRACO mesh topics", "version": "0.1.0"},
        "channels": channels,
        "components": {"schemas": schemas, "messages": messages},
    }


def rendered() -> dict[str, str]:
    """File name -> content of everything that is checked in."""
    files = {f"{name}.json": _dump(schema) for name, schema in json_schemas().items()}
    files["asyncapi.json"] = _dump(asyncapi())
    return files


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def export_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in rendered().items():
        path = out_dir / name
        path.write_text(content)
        written.append(path)
    return written
