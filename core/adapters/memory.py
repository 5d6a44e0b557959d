"""An in-process ``EventBus`` for unit tests: the port's semantics without a broker.

Why: domain and service tests should run in milliseconds and deterministically, yet exercise
the same rules the Kafka adapter enforces, so that code that passes here does not break on
Tansu. The shared contract tests (``tests/core/test_event_bus.py``) run against both.

What it keeps from Kafka:

* topics must be created with ``ensure_topics`` first; publishing to or consuming from any
  other topic raises :class:`~traco.core.errors.TopicNotReady`;
* a key always maps to the same partition; offsets count from 0 per partition; order is kept
  per partition; a message larger than ``max_message_bytes`` is refused;
* consumers read by position (no groups), wait for new messages, and end when their bus
  client stops; starting past the end raises :class:`~traco.core.errors.OffsetOutOfRange`;
* ``traceparent`` is injected on publish exactly as the Kafka adapter does.

How: several services in one test can share a :class:`MemoryBroker` (the "cluster"), each
with its own :class:`MemoryEventBus` (the "client")::

    broker = MemoryBroker()
    validator, doc_service = MemoryEventBus(broker), MemoryEventBus(broker)

Caveats: not for production (nothing is persisted, everything lives in one event loop). The
key-to-partition hash is CRC-32, not Kafka's murmur2, so never assert *which* partition a key
lands on, only that it is always the same one. Keyless messages are spread round-robin.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncGenerator, Sequence

from ..errors import BusError, TopicNotReady
from ..ports import BusMessage, EventBus, OutgoingMessage, StartAt, TopicSpec
from ..topics import dead_letter_record
from ..tracing import TRACEPARENT, inject_headers
from .partitions import choose_partitions, start_positions

__all__ = ["MemoryBroker", "MemoryEventBus"]

DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class MemoryBroker:
    """The shared state of in-memory topics: per topic, one list of messages per partition."""

    def __init__(self) -> None:
        self.topics: dict[str, list[list[BusMessage]]] = {}
        self._round_robin: dict[str, int] = {}
        self._wakeup = asyncio.Event()

    def wakeup_event(self) -> asyncio.Event:
        """An event set at the next change (publish or a client stopping)."""
        return self._wakeup

    def notify(self) -> None:
        """Wake every waiting consumer; each re-checks its partitions."""
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def next_round_robin(self, topic: str, partitions: int) -> int:
        """The partition for a keyless message: round-robin per topic."""
        value = self._round_robin.get(topic, 0)
        self._round_robin[topic] = value + 1
        return value % partitions


def _partition_for(key: bytes, partitions: int) -> int:
    return zlib.crc32(key) % partitions


def _message_size(message: OutgoingMessage) -> int:
    size = len(message.value) + (len(message.key) if message.key is not None else 0)
    return size + sum(len(name) + len(value) for name, value in message.headers.items())


class MemoryEventBus(EventBus):
    """``EventBus`` over a :class:`MemoryBroker` (a private one unless given)."""

    def __init__(
        self,
        broker: MemoryBroker | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.broker = broker if broker is not None else MemoryBroker()
        self._max_message_bytes = max_message_bytes
        self._started = False

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            self.broker.notify()  # lets this client's consumers see that it stopped

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        self._require_started()
        for spec in specs:
            if spec.partitions < 1:
                raise ValueError(f"topic {spec.name!r} needs at least one partition")
        for spec in specs:
            self.broker.topics.setdefault(spec.name, [[] for _ in range(spec.partitions)])

    async def publish(self, message: OutgoingMessage) -> tuple[int, int]:
        return (await self.publish_many([message]))[0]

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> list[tuple[int, int]]:
        self._require_started()
        # Validate everything first: a refused batch leaves no partial trace.
        for message in messages:
            logs = self._require_topic(message.topic)
            if message.partition is not None and not 0 <= message.partition < len(logs):
                raise BusError(f"{message.topic!r} has no partition {message.partition} (it has {len(logs)})")
            size = _message_size(message)
            if size > self._max_message_bytes:
                raise BusError(
                    f"message of {size} bytes for {message.topic!r} exceeds the {self._max_message_bytes}-byte limit"
                )
        trace = inject_headers()
        now_ms = int(time.time() * 1000)
        results: list[tuple[int, int]] = []
        for message in messages:
            logs = self.broker.topics[message.topic]
            if message.partition is not None:
                partition = message.partition
            elif message.key is not None:
                partition = _partition_for(message.key, len(logs))
            else:
                partition = self.broker.next_round_robin(message.topic, len(logs))
            log = logs[partition]
            headers = dict(message.headers)
            if TRACEPARENT not in headers:
                for name, value in trace.items():
                    headers.setdefault(name, value)
            log.append(
                BusMessage(
                    topic=message.topic,
                    partition=partition,
                    offset=len(log),
                    key=message.key,
                    value=message.value,
                    headers=tuple(headers.items()),
                    timestamp_ms=now_ms,
                )
            )
            results.append((partition, len(log) - 1))
        if messages:
            self.broker.notify()
        # Kafka acknowledges asynchronously; yield once so callers cannot rely on the opposite.
        await asyncio.sleep(0)
        return results

    async def _consume(
        self,
        topic: str,
        start: StartAt,
        partitions: Sequence[int] | None,
        max_batch: int,
    ) -> AsyncGenerator[list[BusMessage], None]:
        self._require_started()
        logs = self._require_topic(topic)
        chosen = choose_partitions(topic, len(logs), partitions)
        ends = {p: len(logs[p]) for p in chosen}
        positions = start_positions(topic, chosen, start, dict.fromkeys(chosen, 0), ends)
        rotation = 0
        while self._started:
            wakeup = self.broker.wakeup_event()
            batch: list[BusMessage] = []
            # Rotate the first partition so that a busy partition cannot starve the others.
            for i in range(len(chosen)):
                partition = chosen[(rotation + i) % len(chosen)]
                log = logs[partition]
                position = positions[partition]
                taken = log[position : position + max_batch - len(batch)]
                batch.extend(taken)
                positions[partition] = position + len(taken)
                if len(batch) >= max_batch:
                    break
            rotation += 1
            if batch:
                yield batch
            else:
                await wakeup.wait()

    async def end_offsets(self, topic: str) -> dict[int, int]:
        self._require_started()
        return {p: len(log) for p, log in enumerate(self._require_topic(topic))}

    async def dead_letter(self, message: BusMessage, error: str, dlq_topic: str) -> None:
        headers: dict[str, bytes] = {}
        for name, value in message.headers:
            headers.setdefault(name, value)
        await self.publish(OutgoingMessage(topic=dlq_topic, value=dead_letter_record(message, error), headers=headers))

    def _require_started(self) -> None:
        if not self._started:
            raise BusError("MemoryEventBus is not started; call start() first")

    def _require_topic(self, topic: str) -> list[list[BusMessage]]:
        logs = self.broker.topics.get(topic)
        if logs is None:
            raise TopicNotReady(
                topic,
                f"topic {topic!r} does not exist; create it with ensure_topics() first (topics are never auto-created)",
            )
        return logs
