"""The checked-in JSON Schemas and AsyncAPI document are what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from traco.schemas.export import rendered

JSON_DIR = Path(__file__).resolve().parents[1] / "schemas" / "json"


@pytest.mark.parametrize("name", sorted(rendered()))
def test_checked_in_schema_is_current(name: str) -> None:
    path = JSON_DIR / name
    assert path.exists(), f"{path} is missing: run `make schemas`"
    assert path.read_text() == rendered()[name], f"{path} is stale: run `make schemas`"


def test_asyncapi_names_every_topic_and_its_payloads() -> None:
    doc = json.loads((JSON_DIR / "asyncapi.json").read_text())
    assert set(doc["channels"]) == {
        "tx",
        "consensus",
        "blocks",
        "node.{node}.receipts",
        "node.{node}.events.chain",
        "node.{node}.events.{service}",
        "node.{node}.dlq",
    }
    signed = doc["channels"]["node.{node}.events.{service}"]["messages"]
    assert signed["SignedCheckpoint"] == {"$ref": "#/components/messages/SignedCheckpoint"}
    assert doc["channels"]["blocks"]["messages"] == {"SealedBlock": {"$ref": "#/components/messages/SealedBlock"}}
    envelope = doc["components"]["schemas"]["TxEnvelope"]
    assert envelope["additionalProperties"] is False
    assert {"chain_id", "tx_id", "kind", "sender", "nonce", "payload", "signature"} <= set(envelope["required"])
