"""The AsyncAPI 3.0 document of every topic (architecture: Topics), generated from the wire models.

Perspective: a member's client (the integration contract). It ``send``s signed transactions
to ``tx`` and ``receive``s everything else: its node's receipts, events and dead letters, and
the shared ``consensus`` and ``blocks`` topics an auditor replays. Nodes write those; nothing
read from them is trusted without its signature or commit (docs/integrators-guide.md).

Channels follow ``core/topics.py``: ``traco.{chainId}.<name>``; a node's outputs are
``traco.{chainId}.node.{nodeId}.<name>``, one channel per events topic so that each lists
exactly the events its service emits. The unscoped ``receipts``, ``events.<svc>`` and ``dlq``
topics, written only by processes started without a node id, are listed too.

Schemas: every model's JSON Schema lives once under ``components/schemas`` (pydantic's
``$defs`` are hoisted there and every ``$ref`` points there), so the document is
self-contained and every reference resolves. OpenAPI-style ``discriminator`` objects become the
AsyncAPI form (the property name); the tagged unions name ``kind`` (transactions) or ``type``
(events, consensus messages).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from traco.core.topics import DEFAULT_SERVICES
from traco.schemas.asyncapi_models import DeadLetterRecord, event_models, transaction_models
from traco.schemas.block import SealedBlock
from traco.schemas.consensus import BlockRequest, ProposalMessage, ProposalRequest, VoteMessage
from traco.schemas.events import BlockProcessed, DomainEvent, SignedCheckpoint
from traco.schemas.receipt import Receipt
from traco.schemas.tx import sign_tx

VERSION = "0.1.0"
BINDING = "0.5.0"
REF = "#/components/schemas/{model}"
HEX64 = "^[0-9a-f]{64}$"
TRACEPARENT = "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"

KEYS: dict[str, dict[str, Any]] = {
    "sender": {"type": "string", "pattern": HEX64, "description": "the envelope's sender (hex public key)"},
    "height": {"type": "string", "pattern": "^[0-9]+$", "description": "the block height, decimal"},
    "tx_id": {"type": "string", "pattern": HEX64, "description": "the receipt's tx id"},
    "aggregate": {"type": "string", "description": "the event's aggregate_id (member, document, digest…)"},
}
"""Kafka message keys (architecture: Topics), as UTF-8 strings."""


def _schemas() -> dict[str, Any]:
    """Every schema the document names, keyed by model name, refs pointing at each other."""
    models: list[type[BaseModel]] = [
        SealedBlock,
        ProposalMessage,
        VoteMessage,
        BlockRequest,
        ProposalRequest,
        Receipt,
        BlockProcessed,
        SignedCheckpoint,
        DomainEvent,
        DeadLetterRecord,
        *transaction_models().values(),
        *(m for per_service in event_models().values() for m in per_service.values()),
    ]
    _, top = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    defs: dict[str, Any] = top.get("$defs", {})
    return {name: _asyncapi_form(schema) for name, schema in sorted(defs.items())}


def _asyncapi_form(node: Any) -> Any:
    """OpenAPI ``discriminator: {propertyName}`` -> AsyncAPI ``discriminator: <name>``."""
    if isinstance(node, dict):
        out = {k: _asyncapi_form(v) for k, v in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_asyncapi_form(v) for v in node]
    return node


def _one_of(names: list[str], discriminator: str) -> dict[str, Any]:
    return {"oneOf": [{"$ref": REF.format(model=n)} for n in names], "discriminator": discriminator}


def _message(name: str, title: str, summary: str, payload: dict[str, Any], key: str | None) -> dict[str, Any]:
    kafka: dict[str, Any] = {"bindingVersion": BINDING}
    if key is not None:
        kafka["key"] = KEYS[key]
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/KafkaHeaders"},
        "payload": payload,
        "bindings": {"kafka": kafka},
    }


def _messages() -> dict[str, Any]:
    txs = [m.__name__ for m in transaction_models().values()]
    events = event_models()
    out = {
        "Transaction": _message(
            "Transaction",
            "Signed transaction",
            "A signed envelope of one of the chain's kinds; payload typed per kind.",
            _one_of(txs, "kind"),
            "sender",
        ),
        "Proposal": _message(
            "Proposal",
            "Proposal",
            "A proposer's signed block: its transactions, or (compact) their Merkle leaf hashes.",
            _ref("ProposalMessage"),
            "height",
        ),
        "ProposalRequest": _message(
            "ProposalRequest",
            "Proposal request",
            "A validator lacking some of a compact proposal's transactions asks for the full proposal.",
            _ref("ProposalRequest"),
            "height",
        ),
        "Vote": _message("Vote", "Vote", "A signed prevote or precommit.", _ref("VoteMessage"), "height"),
        "BlockRequest": _message(
            "BlockRequest", "Block request", "A node asking for sealed blocks.", _ref("BlockRequest"), "height"
        ),
        "SealedBlock": _message(
            "SealedBlock", "Sealed block", "Header, transactions and commit.", _ref("SealedBlock"), "height"
        ),
        "Receipt": _message(
            "Receipt", "Receipt", "A transaction's outcome (see the receipt rules).", _ref("Receipt"), "tx_id"
        ),
        "BlockProcessed": _message(
            "BlockProcessed", "Checkpoint", "The chain's checkpoint of a height.", _ref("BlockProcessed"), "height"
        ),
        "SignedCheckpoint": _message(
            "SignedCheckpoint",
            "Signed checkpoint",
            "A service's checkpoint of a height, signed by the node key, with the receipts it covers.",
            _ref("SignedCheckpoint"),
            "height",
        ),
        "DomainEvent": _message(
            "DomainEvent", "Domain event", "An event of a service with no typed events yet.", _ref("DomainEvent"), None
        ),
        "DeadLetter": _message(
            "DeadLetter", "Dead letter", "What a node refused, byte for byte, and why.", _ref("DeadLetterRecord"), None
        ),
    }
    out["DomainEvent"]["bindings"]["kafka"]["key"] = KEYS["aggregate"]
    out["Transaction"]["examples"] = [_transaction_example()]
    for service, types in events.items():
        name = f"{service.capitalize()}Event"
        out[name] = _message(
            name,
            f"{service} event",
            f"An event of the {service} service; data typed per event type.",
            _one_of([m.__name__ for m in types.values()], "type"),
            "aggregate",
        )
    return out


def _transaction_example() -> dict[str, Any]:
    """The worked example of docs/signing.md (vector ``anchor``): its key is public on purpose."""
    payload = {"digest": hashlib.sha256(b"hello, traco").hexdigest(), "label": "hello"}
    tx = sign_tx(bytes(range(32)), "main", "chain.anchor", 1, payload)
    return {
        "name": "anchor",
        "summary": "docs/signing.md's worked example",
        "headers": {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        "payload": tx.model_dump(mode="json"),
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _channel(address: str, description: str, messages: list[str], partitions: int, node: bool) -> dict[str, Any]:
    parameters: dict[str, Any] = {"chainId": {"description": "chain id, e.g. main", "examples": ["main"]}}
    if node:
        parameters["nodeId"] = {"description": "id of the node (n0, n1, …)", "examples": ["n0"]}
    return {
        "address": address,
        "description": description,
        "parameters": parameters,
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
        "bindings": {"kafka": {"bindingVersion": BINDING, "partitions": partitions}},
    }


def _service_messages(service: str) -> list[str]:
    typed = event_models()
    if service == "chain":
        return ["ChainEvent", "BlockProcessed"]
    if service in typed:
        return [f"{service.capitalize()}Event", "SignedCheckpoint"]
    return ["DomainEvent", "SignedCheckpoint"]


def channels() -> dict[str, Any]:
    """Channel id -> channel; ids are stable names an integrator's code may use."""
    base = "traco.{chainId}"
    node = "traco.{chainId}.node.{nodeId}"
    out = {
        "tx": _channel(
            f"{base}.tx",
            "Signed transaction envelopes (the mempool). Key: sender. Partitions: TRACO_TX_PARTITIONS (4).",
            ["Transaction"],
            4,
            False,
        ),
        "consensus": _channel(
            f"{base}.consensus",
            "Signed proposals and votes, block and proposal requests. Key: height.",
            ["Proposal", "Vote", "BlockRequest", "ProposalRequest"],
            1,
            False,
        ),
        "blocks": _channel(f"{base}.blocks", "Sealed blocks in height order. Key: height.", ["SealedBlock"], 1, False),
        "nodeReceipts": _channel(
            f"{node}.receipts",
            "Node nodeId's receipt per transaction: sealed (height set) or refused before ordering. Key: tx id.",
            ["Receipt"],
            4,
            True,
        ),
        "nodeDeadLetters": _channel(
            f"{node}.dlq",
            "What node nodeId could not decode or refused, with the reason. No key.",
            ["DeadLetter"],
            1,
            True,
        ),
    }
    for service in DEFAULT_SERVICES:
        cap = service.capitalize()
        out[f"node{cap}Events"] = _channel(
            f"{node}.events.{service}",
            f"Node nodeId's replica of {service}: its events of each height, then the checkpoint. Key: aggregate id "
            "(events), height (checkpoint).",
            _service_messages(service),
            1,
            True,
        )
    legacy = "Written only by a process started without a node id; members read the node.<id> topic."
    out["receipts"] = _channel(f"{base}.receipts", f"Receipts. {legacy}", ["Receipt"], 4, False)
    out["dlq"] = _channel(f"{base}.dlq", f"Dead letters. {legacy}", ["DeadLetter"], 1, False)
    for service in DEFAULT_SERVICES:
        out[f"{service}Events"] = _channel(
            f"{base}.events.{service}", f"Events of {service}. {legacy}", _service_messages(service), 1, False
        )
    return out


def _operation(action: str, channel: str, messages: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in messages],
    }


def operations(chans: dict[str, Any]) -> dict[str, Any]:
    out = {
        "sendTransaction": _operation("send", "tx", ["Transaction"], "Submit a signed transaction, keyed by sender.")
    }
    summaries = {
        "nodeReceipts": "Read your node's receipts (match by tx id).",
        "nodeDeadLetters": "Read what your node refused.",
        "blocks": "Follow sealed blocks (check each commit).",
        "consensus": "Observe consensus traffic (auditors).",
    }
    for channel_id, channel in chans.items():
        if channel_id == "tx":
            continue
        summary = summaries.get(channel_id, f"Receive {channel['address']}.")
        out[f"receive{channel_id[0].upper()}{channel_id[1:]}"] = _operation(
            "receive", channel_id, list(channel["messages"]), summary
        )
    return out


def asyncapi() -> dict[str, Any]:
    chans = channels()
    schemas = _schemas()
    schemas["KafkaHeaders"] = {
        "type": "object",
        "description": "Kafka record headers (UTF-8 values).",
        "properties": {
            "traceparent": {
                "type": "string",
                "pattern": TRACEPARENT,
                "description": "W3C trace context of the submission; consumers continue the trace",
            }
        },
    }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:traco:mesh",
        "info": {
            "title": "TRACO mesh topics",
            "version": VERSION,
            "description": "Every Kafka topic of one TRACO chain, seen from a member's client: it sends signed "
            "transactions and receives its node's receipts, events and dead letters. Kafka is not trusted: check "
            "signatures, commits and signed checkpoints (docs/integrators-guide.md, docs/signing.md).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The broker `traco up` starts on one machine (TRACO_BROKER_PORT); no TLS, no SASL.",
            },
            "cluster": {
                "host": "{bootstrap}",
                "protocol": "kafka-secure",
                "description": "A real Kafka cluster (TRACO_KAFKA_BOOTSTRAP, TRACO_KAFKA_SECURITY_PROTOCOL, …).",
                "variables": {"bootstrap": {"description": "bootstrap host:port", "default": "kafka:9093"}},
                "security": [
                    {"$ref": "#/components/securitySchemes/tls"},
                    {"$ref": "#/components/securitySchemes/scram"},
                ],
            },
        },
        "channels": chans,
        "operations": operations(chans),
        "components": {
            "schemas": schemas,
            "messages": _messages(),
            "securitySchemes": {
                "tls": {"type": "X509", "description": "mutual TLS (TRACO_KAFKA_SSL_CERTFILE/KEYFILE)"},
                "scram": {"type": "scramSha512", "description": "SASL SCRAM (TRACO_KAFKA_SASL_*)"},
            },
        },
    }
