"""Topic names and partition counts of one chain (architecture: Topics), in one place.

Every topic of chain ``<chain>`` is called ``traco.<chain>.<name>``; build names with
:func:`topic` rather than by hand so a typo cannot create a stray topic. :func:`chain_topics`
lists every topic a chain needs with its partition count; entry points pass it to
``EventBus.ensure_topics`` at start-up, because nothing may rely on the broker auto-creating
a topic (decision 0006).

Partition counts matter: ``consensus``, ``blocks``, every ``events.<svc>`` and ``dlq`` have
exactly one partition because their readers depend on one total order. ``tx`` and
``receipts`` are keyed (sender address, tx id) and may be spread over several partitions.

It also defines the record written to ``dlq`` (:func:`dead_letter_record`), so that every
bus adapter writes the same JSON and an auditor can read any of them.

Caveat: ``ensure_topics`` never changes an existing topic, so raising ``tx_partitions`` later
does not repartition a running chain (and would move senders between partitions).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import TypedDict

from .ports import BusMessage, TopicSpec

PREFIX = "traco"

DEFAULT_SERVICES: tuple[str, ...] = ("party", "doc", "trade", "bridge", "chain")
"""Services that publish ``events.<svc>`` topics by default."""

# The same rule as ``schemas.base.ChainId`` (core cannot import schemas: schemas import core).
_CHAIN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# Kafka allows [a-zA-Z0-9._-]; TRACO names are lower case, dot separated.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$")
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

TX = "tx"
CONSENSUS = "consensus"
BLOCKS = "blocks"
RECEIPTS = "receipts"
DLQ = "dlq"


def topic(chain_id: str, name: str) -> str:
    """The full topic name, e.g. ``topic("main", "blocks") == "traco.main.blocks"``.

    Raises ``ValueError`` for a chain id or name that cannot be part of a TRACO topic name.
    """
    if not _CHAIN_ID.fullmatch(chain_id):
        raise ValueError(f"invalid chain id {chain_id!r}: 1-32 characters of a-z, 0-9 and '-', not starting with '-'")
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid topic name {name!r}: dot-separated words of a-z, 0-9, _ and -")
    return f"{PREFIX}.{chain_id}.{name}"


def events_topic(chain_id: str, service: str) -> str:
    """The domain-event topic of one service, e.g. ``traco.main.events.doc``."""
    if not _SERVICE.fullmatch(service):
        raise ValueError(f"invalid service name {service!r}")
    return topic(chain_id, f"events.{service}")


def node_topic(chain_id: str, node_id: str, name: str) -> str:
    """A topic of one node's outputs, e.g. ``traco.main.node.n0.receipts`` (architecture: Topics)."""
    if not _SERVICE.fullmatch(node_id):
        raise ValueError(f"invalid node id {node_id!r}")
    return topic(chain_id, f"node.{node_id}.{name}")


def node_topics(
    chain_id: str, node_id: str, receipts_partitions: int = 4, services: Iterable[str] = DEFAULT_SERVICES
) -> list[TopicSpec]:
    """The topics node ``node_id`` writes: its receipts, each service's events, its dead letters."""
    specs = [TopicSpec(node_topic(chain_id, node_id, RECEIPTS), receipts_partitions)]
    specs += [TopicSpec(node_topic(chain_id, node_id, f"events.{svc}"), 1) for svc in services]
    specs.append(TopicSpec(node_topic(chain_id, node_id, DLQ), 1))
    return specs


def chain_topics(
    chain_id: str,
    tx_partitions: int = 4,
    receipts_partitions: int = 4,
    services: Iterable[str] = DEFAULT_SERVICES,
    nodes: Iterable[str] = (),
) -> list[TopicSpec]:
    """Every topic chain ``chain_id`` needs, with the partition counts of architecture: Topics"""
    for label, count in (
        ("tx_partitions", tx_partitions),
        ("receipts_partitions", receipts_partitions),
    ):
        if count < 1:
            raise ValueError(f"{label} must be at least 1, got {count}")
    service_list = list(services)
    if len(set(service_list)) != len(service_list):
        raise ValueError(f"duplicate service in {service_list!r}")
    specs = [
        TopicSpec(topic(chain_id, TX), tx_partitions),
        TopicSpec(topic(chain_id, CONSENSUS), 1),
        TopicSpec(topic(chain_id, BLOCKS), 1),
        TopicSpec(topic(chain_id, RECEIPTS), receipts_partitions),
    ]
    specs.extend(TopicSpec(events_topic(chain_id, svc), 1) for svc in service_list)
    specs.append(TopicSpec(topic(chain_id, DLQ), 1))
    for node_id in nodes:
        specs.extend(node_topics(chain_id, node_id, receipts_partitions, service_list))
    return specs


class DeadLetterHeader(TypedDict):
    """One original header of a dead-lettered message."""

    name: str
    value_b64: str


class DeadLetterRecord(TypedDict):
    """The JSON value of a ``dlq`` message: the original, byte for byte, and why it failed."""

    source_topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    error: str
    headers: list[DeadLetterHeader]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def dead_letter_record(message: BusMessage, error: str) -> bytes:
    """The ``dlq`` payload for ``message``: JSON of a :class:`DeadLetterRecord`.

    Key, value and header values are base64 because an undecodable message is, by
    definition, not known to be UTF-8. Headers are a list (Kafka allows repeated names).
    """
    record: DeadLetterRecord = {
        "source_topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "key_b64": None if message.key is None else _b64(message.key),
        "value_b64": _b64(message.value),
        "error": error,
        "headers": [{"name": name, "value_b64": _b64(value)} for name, value in message.headers],
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
