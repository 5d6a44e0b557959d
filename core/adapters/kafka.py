"""``EventBus`` on Kafka (and Tansu) with aiokafka.

Why it looks the way it does (all measured against Tansu 0.6, decision 0006):

* **No auto-creation, ever.** Tansu auto-creates any topic named in a Metadata, Produce or
  Fetch request, always with 4 partitions, and loses acknowledged messages on topics created
  that way; its CLI cannot turn this off, and aiokafka's clients name topics with
  ``allow_auto_topic_creation=true``. So the bus only touches topics it has seen in an
  *all-topics* metadata listing (which names nothing and so creates nothing):
  :meth:`KafkaEventBus.ensure_topics` creates topics through the admin API and waits until
  metadata shows every partition with a leader; publishing to, consuming from or asking the
  end offsets of any other topic raises :class:`~traco.core.errors.TopicNotReady`.
* **Idempotence is a setting and fails loudly.** ``idempotence=True`` turns on aiokafka's
  idempotent producer, which needs the broker's InitProducerId; Tansu answers it with
  UnknownError. Then :meth:`KafkaEventBus.start` raises ``BusError`` naming the setting
  rather than quietly falling back: an operator who asked for idempotence should learn that
  the broker cannot give it. Nothing depends on it (transactions dedupe by ``tx_id``,
  services by height), so ``False`` is the right value for Tansu.
* **publish_many is the throughput path.** It partitions messages itself with Kafka's
  murmur2 rule (``murmur2.kafka_partition``, bit-identical to the Java client's and
  aiokafka's default partitioner, so a key lands where ``publish`` and any other Kafka client
  put it; compiled where it was built), fills one
  aiokafka ``BatchBuilder`` per partition, hands full batches to the producer and awaits all
  acknowledgements at the end. That skips aiokafka's per-message ``send`` machinery: about
  2.5x the rate of one ``send`` per message. Order within a call is kept per partition.
* **Consumers are assigned partitions by hand** (no group, no commits): a service's
  position is a block height it stores itself. Every ``consume`` of a bus is served by one
  shared consumer and its fetch loop (``kafka_fetch``): one fetch request for all the
  readers' partitions instead of one per reader. ``"earliest"`` and ``"latest"`` are resolved
  to concrete offsets when iteration starts; a mapped offset outside
  ``[beginning, end]`` raises :class:`~traco.core.errors.OffsetOutOfRange` (Kafka would
  silently reset it, Tansu would silently wait for it).
* **Fetch latency is the fetch wait.** Tansu does not answer a long-polling fetch early when
  data arrives; it holds it for ``fetch_max_wait_ms``. aiokafka's default of 500 ms gave a
  median hop latency of ~120 ms; the default here, 100 ms, gives ~25 ms at the cost of ten
  idle fetches a second per consumer (one per bus, above). Lower it for consensus traffic.

Every publish injects the current W3C trace context (``traceparent``) unless the message
already carries one, inside a PRODUCER span. All aiokafka errors surface as ``BusError``
with the original as ``__cause__``.

Caveats: if a topic is deleted behind the bus's back, aiokafka's periodic metadata refresh
would let Tansu recreate it; the bus notices only at the next refresh (consume and
end_offsets refresh, publish uses what it has seen). Several ``publish`` calls in flight
concurrently are each ordered, but their relative order is whatever the event loop makes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, for_code
from opentelemetry.trace import SpanKind

from ..errors import BusError, TopicNotReady
from ..metrics import dead_letter as count_dead_letter
from ..ports import BusMessage, EventBus, OutgoingMessage, StartAt, TopicSpec
from ..topics import dead_letter_record
from ..tracing import TRACEPARENT, inject_headers, received, tracer
from .kafka_config import KafkaConfig
from .kafka_fetch import SharedFetch, SharedReader, read_alone
from .kafka_offsets import offset_range
from .murmur2 import kafka_partition
from .partitions import choose_partitions, start_positions

__all__ = ["KafkaEventBus"]

log = logging.getLogger(__name__)
_tracer = tracer(__name__)

MiB = 1024 * 1024
_TOPIC_ALREADY_EXISTS = 36
# Record-batch and record framing around key, value and headers, generously rounded up.
_RECORD_OVERHEAD = 128

Headers = list[tuple[str, bytes]]


class _OpenBatch:
    """A BatchBuilder being filled for one partition, and which messages went into it."""

    __slots__ = ("builder", "partition", "slots", "topic")

    def __init__(self, builder: Any, topic: str, partition: int) -> None:
        self.builder = builder
        self.topic = topic
        self.partition = partition
        self.slots: list[tuple[int, int]] = []  # (index in the call, offset within batch)


class KafkaEventBus(EventBus):
    """``EventBus`` over a Kafka-protocol broker at ``bootstrap`` ("host:port[,host:port]").

    ``client_id`` names this process in broker logs. ``linger_ms`` is how long single
    ``publish`` calls wait to share a batch. ``max_request_size`` bounds one message (and one
    produce request); consumers fetch up to that much per partition, so any message that
    could be published can be read back. ``replication_factor`` applies to topics this bus
    creates (1 for Tansu; 3 for a production Kafka).

    ``kafka`` carries the security (TLS, SASL), producer and topic settings of a real cluster
    (``KafkaConfig.from_settings``); every client this bus makes gets the same ones. Given, it
    wins over ``idempotence`` and ``replication_factor``. With ``create_topics=False``,
    :meth:`ensure_topics` only checks that the topics exist (an operator made them).
    """

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        idempotence: bool = False,
        linger_ms: int = 5,
        max_request_size: int = 8 * MiB,
        *,
        replication_factor: int = 1,
        fetch_max_wait_ms: int = 100,
        max_batch_bytes: int = 256 * 1024,
        request_timeout_ms: int = 30_000,
        topic_ready_timeout: float = 15.0,
        kafka: KafkaConfig | None = None,
    ) -> None:
        if kafka is None:
            kafka = KafkaConfig(idempotence=idempotence, replication_factor=replication_factor)
        # Topics this bus creates must take the largest message it may publish.
        self._kafka = dataclasses.replace(kafka, max_message_bytes=max(max_request_size, kafka.max_message_bytes))
        idempotence, replication_factor = kafka.idempotence, kafka.replication_factor
        self._client_kwargs: dict[str, Any] = {}  # security arguments, built at start()
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._idempotence = idempotence
        self._linger_ms = linger_ms
        self._max_request_size = max_request_size
        self._replication_factor = replication_factor
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._max_batch_bytes = max_batch_bytes
        self._request_timeout_ms = request_timeout_ms
        self._topic_ready_timeout = topic_ready_timeout
        self._producer: Any = None
        self._admin: Any = None
        self._offsets: Any = None  # a consumer used only for offset queries, under the lock
        self._offsets_lock = asyncio.Lock()
        self._consumers: set[Any] = set()  # those of readers that could not share (kafka_fetch)
        self._shared = SharedFetch(self._new_consumer, backlog=max(max_request_size, MiB))
        self._partition_counts: dict[str, int] = {}
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        try:
            self._client_kwargs = self._kafka.client_kwargs()  # one TLS context for all clients
            self._admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                client_id=f"{self._client_id}-admin",
                request_timeout_ms=self._request_timeout_ms,
                **self._client_kwargs,
            )
            try:
                await self._admin.start()
            except Exception as err:  # aiokafka's SCRAM client raises KeyError when refused
                raise BusError(
                    f"cannot reach Kafka at {self._bootstrap} as {self._kafka.security_protocol}"
                    + (
                        f" ({self._kafka.sasl_mechanism} user {self._kafka.sasl_username!r})"
                        if self._kafka.uses_sasl
                        else ""
                    )
                    + f": {err!r}"
                ) from err
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                linger_ms=self._linger_ms,
                max_request_size=self._max_request_size,
                max_batch_size=self._max_batch_bytes,
                request_timeout_ms=self._request_timeout_ms,
                **self._kafka.producer_kwargs(self._client_kwargs),  # acks=all, idempotence, compression
            )
            try:
                await self._producer.start()
            except KafkaError as err:
                if self._idempotence:
                    raise BusError(
                        f"the idempotent producer could not start on {self._bootstrap} "
                        f"({err!r}): this broker does not support idempotent producers "
                        "(Tansu answers InitProducerId with UnknownError). Set idempotence "
                        "to False; duplicates are harmless (decision 0006)."
                    ) from err
                raise BusError(f"producer could not start on {self._bootstrap}: {err!r}") from err
            self._offsets = self._new_consumer()
            try:
                await self._offsets.start()
            except KafkaError as err:
                raise BusError(f"consumer could not start on {self._bootstrap}: {err!r}") from err
            await self._refresh_topics()
        except BaseException:
            await self._close_clients()
            raise
        self._started = True

    async def stop(self) -> None:
        self._started = False
        await self._close_clients()

    async def _close_clients(self) -> None:
        # Consumers first: their iterators end cleanly (ConsumerStoppedError is handled).
        await self._shared.stop()
        clients = [*self._consumers, self._offsets, self._producer, self._admin]
        self._consumers.clear()
        self._offsets = self._producer = self._admin = None
        # aiokafka 0.14: a consumer stopped before its background task took its first step
        # raises CancelledError from stop(); one turn of the loop lets that step happen.
        await asyncio.sleep(0)
        for client in clients:
            if client is None:
                continue
            try:
                await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())
            except KafkaError as err:  # flushing failed; nothing more can be done here
                log.warning("error while stopping %s: %r", type(client).__name__, err)

    # -- topics ---------------------------------------------------------------------------

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        admin = self._require_admin()
        wanted: dict[str, int] = {}
        for spec in specs:
            if spec.partitions < 1:
                raise ValueError(f"topic {spec.name!r} needs at least one partition")
            wanted[spec.name] = max(spec.partitions, wanted.get(spec.name, 0))
        existing = await self._refresh_topics()
        for name, count in existing.items():
            if name in wanted and count != wanted[name]:
                log.warning(
                    "topic %r exists with %d partitions, not %d; leaving it as it is",
                    name,
                    count,
                    wanted[name],
                )
                wanted[name] = count
        missing = [name for name in wanted if name not in existing]
        if missing and not self._kafka.create_topics:
            raise TopicNotReady(
                missing[0],
                f"TRACO_KAFKA_CREATE_TOPICS is false and {len(missing)} topic(s) do not exist on "
                f"{self._bootstrap}: {', '.join(sorted(missing))} (create them, e.g. as KafkaTopic resources)",
            )
        if missing:
            new_topics = [
                NewTopic(name, wanted[name], self._replication_factor, topic_configs=self._kafka.topic_configs(name))
                for name in missing
            ]
            try:
                response = await admin.create_topics(new_topics, timeout_ms=self._request_timeout_ms)
            except KafkaError as err:
                raise BusError(f"creating topics {missing} failed: {err!r}") from err
            for item in response.topic_errors:
                name, code = item[0], item[1]
                detail = item[2] if len(item) > 2 else None
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise BusError(f"creating topic {name!r} failed: {for_code(code).__name__} ({detail})")
        await self._wait_until_visible(wanted)

    async def _wait_until_visible(self, wanted: Mapping[str, int]) -> None:
        """Poll all-topics metadata until every topic shows its partitions with leaders."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._topic_ready_timeout
        delay = 0.02
        while True:
            described = await self._describe_all()
            pending = {
                name: count
                for name, count in wanted.items()
                if described.get(name, 0) < count  # leaderless partitions are not counted
            }
            if not pending:
                return
            if loop.time() + delay > deadline:
                name = next(iter(pending))
                raise TopicNotReady(
                    name,
                    f"topics not ready after {self._topic_ready_timeout:.0f}s: "
                    + ", ".join(f"{n} ({described.get(n, 0)}/{c} partitions)" for n, c in pending.items()),
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _describe_all(self) -> dict[str, int]:
        """Topic -> partitions with a leader, from an all-topics Metadata request.

        Naming no topic is what keeps Tansu from auto-creating one.
        """
        if self._admin is None:
            raise BusError("KafkaEventBus is not started; call start() first")
        try:
            topics = await self._admin.describe_topics()
        except KafkaError as err:
            raise BusError(f"metadata request to {self._bootstrap} failed: {err!r}") from err
        counts: dict[str, int] = {}
        for entry in topics:
            if entry["error_code"] != 0:
                continue
            counts[entry["topic"]] = sum(1 for p in entry["partitions"] if p["error_code"] == 0 and p["leader"] >= 0)
        return counts

    async def _refresh_topics(self) -> dict[str, int]:
        # Topics that vanished are forgotten too, so the bus never re-creates one by naming it.
        self._partition_counts = {n: c for n, c in (await self._describe_all()).items() if c}
        return dict(self._partition_counts)

    async def _require_topic(self, topic: str, refresh: bool = False) -> int:
        """The partition count of ``topic``, or TopicNotReady if metadata does not list it."""
        count = None if refresh else self._partition_counts.get(topic)
        if count is None:
            count = (await self._refresh_topics()).get(topic)
        if count is None:
            raise TopicNotReady(
                topic,
                f"refusing to use topic {topic!r}: it does not exist on {self._bootstrap}. "
                "Create it with ensure_topics() first; the broker would auto-create it with "
                "the wrong partition count and can lose acknowledged messages (decision 0006).",
            )
        return count

    # -- publishing -----------------------------------------------------------------------

    async def publish(self, message: OutgoingMessage) -> tuple[int, int]:
        producer = self._require_producer()
        count = await self._require_topic(message.topic)
        self._check_message(message, count)
        with _tracer.start_as_current_span(
            f"publish {message.topic}",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": message.topic},
        ):
            headers = list(inject_headers(message.headers).items())
            try:
                future = await producer.send(
                    message.topic,
                    message.value,
                    key=message.key,
                    partition=message.partition,
                    headers=headers,
                )
                metadata = await future
            except KafkaError as err:
                raise BusError(f"publish to {message.topic!r} failed: {err!r}") from err
        return int(metadata.partition), int(metadata.offset)

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> list[tuple[int, int]]:
        producer = self._require_producer()
        if not messages:
            return []
        # Check everything before sending anything: a refused call publishes nothing.
        partitions_of: dict[str, list[int]] = {}
        for message in messages:
            if message.topic not in partitions_of:
                await self._require_topic(message.topic)
                try:
                    known = await producer.partitions_for(message.topic)
                except KafkaError as err:
                    raise BusError(f"metadata for {message.topic!r} failed: {err!r}") from err
                partitions_of[message.topic] = sorted(known)
            self._check_message(message, len(partitions_of[message.topic]))
        topics = sorted(partitions_of)
        with _tracer.start_as_current_span(
            f"publish {topics[0]}" if len(topics) == 1 else "publish",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": ",".join(topics),
                "messaging.batch.message_count": len(messages),
            },
        ):
            trace: Headers = list(inject_headers().items())
            return await self._publish_batches(producer, messages, partitions_of, trace)

    async def _publish_batches(
        self,
        producer: Any,
        messages: Sequence[OutgoingMessage],
        partitions_of: Mapping[str, list[int]],
        trace: Headers,
    ) -> list[tuple[int, int]]:
        open_batches: dict[tuple[str, int], _OpenBatch] = {}
        submitted: list[tuple[asyncio.Future[Any], _OpenBatch]] = []
        failure: BaseException | None = None
        try:
            for index, message in enumerate(messages):
                topic = message.topic
                partition = message.partition
                if partition is None:
                    choices = partitions_of[topic]
                    key = message.key
                    if len(choices) == 1:
                        partition = choices[0]  # no hash to compute (receipts' keys never repeat)
                    elif key is None:
                        partition = random.choice(choices)  # as aiokafka does for no key
                    else:
                        partition = choices[kafka_partition(key, len(choices))]
                headers = trace if not message.headers else _merge_headers(message.headers, trace)
                slot = (topic, partition)
                batch = open_batches.get(slot)
                if batch is None:
                    batch = open_batches[slot] = _OpenBatch(producer.create_batch(), topic, partition)
                meta = batch.builder.append(key=message.key, value=message.value, timestamp=None, headers=headers)
                if meta is None:  # full: send it, start the next one for this partition
                    await self._submit(producer, batch, submitted)
                    batch = open_batches[slot] = _OpenBatch(producer.create_batch(), topic, partition)
                    # An empty batch always takes one record, whatever its size.
                    meta = batch.builder.append(key=message.key, value=message.value, timestamp=None, headers=headers)
                batch.slots.append((index, meta.offset))
            for batch in open_batches.values():
                if batch.slots:
                    await self._submit(producer, batch, submitted)
        except KafkaError as err:
            failure = err
        # Wait for every batch that left, even after a failure: the caller must be able to
        # trust that nothing of this call is still in flight when it returns or raises.
        outcomes = await asyncio.gather(*(f for f, _ in submitted), return_exceptions=True)
        results: list[tuple[int, int] | None] = [None] * len(messages)
        failed = 0
        for outcome, (_, batch) in zip(outcomes, submitted, strict=True):
            if isinstance(outcome, BaseException):
                failed += 1
                failure = failure or outcome
                continue
            base = int(outcome.offset)
            for index, relative in batch.slots:
                results[index] = (batch.partition, base + relative)
        if failure is not None:
            sent = sum(r is not None for r in results)
            raise BusError(
                f"publish_many: {sent} of {len(messages)} messages acknowledged, {failed} batch(es) failed: {failure!r}"
            ) from failure
        return [r for r in results if r is not None]

    @staticmethod
    async def _submit(
        producer: Any, batch: _OpenBatch, submitted: list[tuple[asyncio.Future[Any], _OpenBatch]]
    ) -> None:
        batch.builder.close()  # nothing else may join it, and it leaves without lingering
        future = await producer.send_batch(batch.builder, batch.topic, partition=batch.partition)
        submitted.append((future, batch))

    def _check_message(self, message: OutgoingMessage, partitions: int) -> None:
        if message.partition is not None and not 0 <= message.partition < partitions:
            raise BusError(f"{message.topic!r} has no partition {message.partition} (it has {partitions})")
        size = len(message.value)
        if message.key is not None:
            size += len(message.key)
        if message.headers:
            size += sum(len(name) + len(value) for name, value in message.headers.items())
        if size + _RECORD_OVERHEAD > self._max_request_size:
            raise BusError(
                f"message of {size} bytes for {message.topic!r} exceeds max_request_size "
                f"({self._max_request_size} bytes)"
            )

    # -- consuming ------------------------------------------------------------------------

    async def _consume(
        self,
        topic: str,
        start: StartAt,
        partitions: Sequence[int] | None,
        max_batch: int,
    ) -> AsyncGenerator[list[BusMessage], None]:
        self._require_producer()
        # Refresh: the topic may have more partitions now than when it was ensured.
        count = await self._require_topic(topic, refresh=True)
        chosen = choose_partitions(topic, count, partitions)
        tps = [TopicPartition(topic, p) for p in chosen]
        begins, ends = await self._offset_range(tps)
        positions = start_positions(topic, chosen, start, begins, ends)
        if not self._started:
            return  # stopped meanwhile: end like every other consumer of this bus
        reader = await self._shared.open({tp: positions[tp.partition] for tp in tps}, max_batch)
        source = (
            self._shared_records(reader)
            if reader is not None
            else self._records_alone(topic, tps, positions, max_batch)
        )
        async with contextlib.aclosing(source) as records_of:
            async for records in records_of:
                batch = [_to_bus_message(record) for record in records]
                received(batch)  # a CONSUMER span per traced message, child of its producer's
                yield batch

    async def _shared_records(self, reader: SharedReader) -> AsyncGenerator[list[Any], None]:
        """The records of a reader of the bus's shared fetch loop, batch by batch."""
        try:
            while self._started:
                records = await self._shared.take(reader)
                if records is None:
                    return  # the bus stopped
                yield records
        finally:
            self._shared.release(reader)

    async def _records_alone(
        self, topic: str, tps: list[Any], positions: dict[int, int], max_batch: int
    ) -> AsyncGenerator[list[Any], None]:
        """A reader with a consumer of its own: another reader of this bus reads its partitions."""
        log.info("%r: read by a consumer of its own (another reader of this bus reads it)", topic)
        consumer = self._new_consumer()
        self._consumers.add(consumer)
        try:
            async for records in read_alone(consumer, topic, tps, positions, max_batch, lambda: self._started):
                yield records
        finally:
            self._consumers.discard(consumer)
            try:
                await consumer.stop()
            except KafkaError as err:
                log.warning("error while stopping a consumer of %r: %r", topic, err)

    def _new_consumer(self) -> Any:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=f"{self._client_id}-consumer",
            group_id=None,
            enable_auto_commit=False,
            # Only reached if a position vanishes under a running consumer (retention):
            # re-reading is safe (dedupe by height and tx_id), skipping is not.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            max_partition_fetch_bytes=max(self._max_request_size, MiB),
            fetch_max_bytes=max(self._max_request_size, 50 * MiB),
            request_timeout_ms=self._request_timeout_ms,
            **self._client_kwargs,
        )

    async def end_offsets(self, topic: str) -> dict[int, int]:
        self._require_producer()
        count = await self._require_topic(topic, refresh=True)
        _, ends = await self._offset_range([TopicPartition(topic, p) for p in range(count)])
        return ends

    async def _offset_range(self, tps: list[Any]) -> tuple[dict[int, int], dict[int, int]]:
        """``(beginning, end)`` offsets per partition, the end corrected for Tansu (``kafka_offsets``)."""
        consumer = self._offsets
        if consumer is None:
            raise BusError("KafkaEventBus is not started; call start() first")
        async with self._offsets_lock:
            return await offset_range(consumer, tps, self._fetch_max_wait_ms)

    async def dead_letter(self, message: BusMessage, error: str, dlq_topic: str) -> None:
        headers: dict[str, bytes] = {}
        for name, value in message.headers:
            headers.setdefault(name, value)  # keep the first, as BusMessage.header() does
        await self.publish(OutgoingMessage(topic=dlq_topic, value=dead_letter_record(message, error), headers=headers))
        count_dead_letter(message.topic, error)

    # -- helpers --------------------------------------------------------------------------

    def _require_producer(self) -> Any:
        if not self._started or self._producer is None:
            raise BusError("KafkaEventBus is not started; call start() first")
        return self._producer

    def _require_admin(self) -> Any:
        self._require_producer()
        return self._admin


def _merge_headers(own: Mapping[str, bytes], trace: Headers) -> Headers:
    headers = list(own.items())
    if TRACEPARENT not in own:
        headers.extend(pair for pair in trace if pair[0] not in own)
    return headers


def _to_bus_message(record: Any) -> BusMessage:
    return BusMessage(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value if record.value is not None else b"",
        tuple((name, value if value is not None else b"") for name, value in record.headers),
        record.timestamp,
    )
