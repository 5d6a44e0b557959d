"""The EventBus contract, run against every adapter.

``EventBusContract`` holds the tests once; each ``Test...`` subclass supplies a bus through
its ``bus`` fixture. The Kafka subclass runs on the real Tansu broker of the session
(``tansu_broker``), so the memory adapter is held to what Kafka really does, and the Kafka
adapter to what the port promises, including the Tansu quirks it works around. Where a Docker
engine is reachable, the contract runs again on a real Apache Kafka (``apache_kafka`` in
``tests/core/conftest.py``, with the idempotent producer Tansu cannot give).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from traco.core.adapters.kafka import KafkaEventBus
from traco.core.adapters.memory import MemoryBroker, MemoryEventBus
from traco.core.adapters.murmur2 import kafka_partition
from traco.core.errors import BusError, OffsetOutOfRange, TopicNotReady
from traco.core.ports import BusMessage, EventBus, OutgoingMessage, StartAt, TopicSpec
from traco.core.topics import chain_topics, topic
from traco.core.tracing import extract_context

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331


async def collect(
    bus: EventBus,
    name: str,
    count: int,
    start: StartAt = "earliest",
    partitions: list[int] | None = None,
    timeout: float = 10.0,
) -> list[BusMessage]:
    """Exactly the first ``count`` messages a consumer of ``name`` yields."""
    received: list[BusMessage] = []
    async with asyncio.timeout(timeout), aclosing(bus.consume(name, start, partitions)) as it:
        async for batch in it:
            received.extend(batch)
            if len(received) >= count:
                break
    assert len(received) == count, f"expected {count} messages, got {len(received)}"
    return received


async def assert_nothing_more(bus: EventBus, name: str, start: StartAt) -> None:
    """No message arrives from ``start`` within a short wait."""
    async with aclosing(bus.consume(name, start)) as it:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                batch = await anext(it)
                pytest.fail(f"unexpected messages: {batch}")


def remote_span() -> NonRecordingSpan:
    """A span as if a client had sent us its trace context (no SDK needed)."""
    return NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(1)))


class EventBusContract:
    """What every EventBus adapter must do. Subclasses provide the ``bus`` fixture."""

    @pytest.fixture
    async def bus(self) -> AsyncIterator[EventBus]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def test_ensure_topics_is_idempotent_and_keeps_existing_topics(
        self, bus: EventBus, unique_chain: str
    ) -> None:
        name = topic(unique_chain, "tx")
        await bus.ensure_topics([TopicSpec(name, 3)])
        await bus.ensure_topics([TopicSpec(name, 3)])
        await bus.ensure_topics([TopicSpec(name, 1)])  # existing topics are left as they are
        assert await bus.end_offsets(name) == {0: 0, 1: 0, 2: 0}

    async def test_every_topic_of_a_chain_can_be_created(self, bus: EventBus, unique_chain: str) -> None:
        await bus.ensure_topics(chain_topics(unique_chain, tx_partitions=3))
        assert len(await bus.end_offsets(topic(unique_chain, "tx"))) == 3
        for single in ("consensus", "blocks", "events.doc", "events.chain", "dlq"):
            assert await bus.end_offsets(topic(unique_chain, single)) == {0: 0}

    async def test_consume_reads_every_partition_the_topic_really_has(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "tx")
        await bus.ensure_topics([TopicSpec(name, 3)])
        await bus.ensure_topics([TopicSpec(name, 1)])  # a caller who believes it has one
        for partition in range(3):
            await bus.publish(OutgoingMessage(name, b"p%d" % partition, partition=partition))
        received = await collect(bus, name, 3)
        assert sorted(m.value for m in received) == [b"p0", b"p1", b"p2"]

    async def test_round_trip_keeps_key_value_headers_and_position(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "receipts")
        await bus.ensure_topics([TopicSpec(name, 2)])
        headers = {"content-type": b"application/json", "x-binary": b"\x00\xff"}
        partition, offset = await bus.publish(OutgoingMessage(name, b'{"ok":true}', key=b"tx-1", headers=headers))
        (message,) = await collect(bus, name, 1)
        assert (message.topic, message.partition, message.offset) == (name, partition, offset)
        assert message.key == b"tx-1"
        assert message.value == b'{"ok":true}'
        assert message.header("content-type") == b"application/json"
        assert message.header("x-binary") == b"\x00\xff"
        assert message.timestamp_ms > 0

    async def test_a_key_keeps_its_partition_and_its_order(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "tx")
        await bus.ensure_topics([TopicSpec(name, 3)])
        keys = [b"alice", b"bob", b"carol", b"dave", b"erin"]
        placed: dict[bytes, set[int]] = defaultdict(set)
        for seq in range(60):
            key = keys[seq % len(keys)]
            partition, _ = await bus.publish(OutgoingMessage(name, b"%d" % seq, key=key))
            placed[key].add(partition)
        assert all(len(partitions) == 1 for partitions in placed.values())
        received = await collect(bus, name, 60)
        by_key: dict[bytes | None, list[int]] = defaultdict(list)
        offsets: dict[int, list[int]] = defaultdict(list)
        for message in received:
            by_key[message.key].append(int(message.value))
            offsets[message.partition].append(message.offset)
            assert message.partition in placed[message.key or b""]
        assert all(seqs == sorted(seqs) for seqs in by_key.values())
        assert all(offs == list(range(len(offs))) for offs in offsets.values())

    async def test_publish_and_publish_many_place_a_key_alike(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "tx")
        await bus.ensure_topics([TopicSpec(name, 4)])
        keys = [b"sender-%d" % i for i in range(40)]
        singles = [(await bus.publish(OutgoingMessage(name, b"1", key=k)))[0] for k in keys]
        many = await bus.publish_many([OutgoingMessage(name, b"2", key=k) for k in keys])
        assert singles == [partition for partition, _ in many]
        assert len(set(singles)) > 1  # the keys are really spread

    async def test_start_earliest_latest_and_mapping(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "blocks")
        await bus.ensure_topics([TopicSpec(name, 1)])
        await bus.publish_many([OutgoingMessage(name, b"old-%d" % i) for i in range(10)])

        earliest = await collect(bus, name, 10)
        assert [m.offset for m in earliest] == list(range(10))
        from_seven = await collect(bus, name, 3, start={0: 7})
        assert [m.value for m in from_seven] == [b"old-7", b"old-8", b"old-9"]
        await assert_nothing_more(bus, name, start={0: 10})  # the end is a valid position

        # "latest" skips what is there when iteration starts and delivers what comes after.
        async with aclosing(bus.consume(name, "latest")) as it:
            first = asyncio.ensure_future(anext(it))
            for i in range(200):
                await bus.publish(OutgoingMessage(name, b"new-%d" % i))
                done, _ = await asyncio.wait([first], timeout=0.05)
                if done:
                    break
            batch = await asyncio.wait_for(first, 10)
        assert batch
        assert all(m.value.startswith(b"new-") for m in batch)
        assert batch[0].offset >= 10

    async def test_bad_start_positions_are_refused(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "blocks")
        await bus.ensure_topics([TopicSpec(name, 1)])
        await bus.publish_many([OutgoingMessage(name, b"%d" % i) for i in range(3)])
        with pytest.raises(OffsetOutOfRange):
            await collect(bus, name, 1, start={0: 4})
        with pytest.raises(ValueError, match="not being consumed"):
            await collect(bus, name, 1, start={5: 0})
        with pytest.raises(BusError):
            await collect(bus, name, 1, partitions=[1])

    async def test_end_offsets_count_every_acknowledged_message(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "receipts")
        await bus.ensure_topics([TopicSpec(name, 2)])
        assert await bus.end_offsets(name) == {0: 0, 1: 0}
        await bus.publish(OutgoingMessage(name, b"a", partition=0))
        # One batch of many records: Tansu's own ListOffsets would say 1 here.
        await bus.publish_many([OutgoingMessage(name, b"b", partition=1) for _ in range(300)])
        assert await bus.end_offsets(name) == {0: 1, 1: 300}

    async def test_publish_many_delivers_each_message_once_in_order_per_key(
        self, bus: EventBus, unique_chain: str
    ) -> None:
        name = topic(unique_chain, "tx")
        await bus.ensure_topics([TopicSpec(name, 4)])
        count, keys = 2000, 37
        messages = [
            OutgoingMessage(name, b"%d:" % seq + b"x" * 200, key=b"sender-%d" % (seq % keys)) for seq in range(count)
        ]
        positions = await bus.publish_many(messages)
        assert len(positions) == count
        assert len(set(positions)) == count  # every message has its own offset

        received = await collect(bus, name, count)
        assert sorted((m.partition, m.offset) for m in received) == sorted(positions)
        seqs_by_key: dict[bytes | None, list[int]] = defaultdict(list)
        for message in received:
            seqs_by_key[message.key].append(int(message.value.split(b":")[0]))
        assert sorted(s for seqs in seqs_by_key.values() for s in seqs) == list(range(count))
        assert all(seqs == sorted(seqs) for seqs in seqs_by_key.values())
        assert sum((await bus.end_offsets(name)).values()) == count
        await assert_nothing_more(bus, name, start=await bus.end_offsets(name))

    async def test_publish_many_of_nothing_returns_nothing(self, bus: EventBus, unique_chain: str) -> None:
        assert await bus.publish_many([]) == []

    async def test_trace_context_travels_with_the_message(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "tx")
        await bus.ensure_topics([TopicSpec(name, 1)])
        foreign = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        with trace.use_span(remote_span()):
            await bus.publish(OutgoingMessage(name, b"one"))
            await bus.publish_many([OutgoingMessage(name, b"two"), OutgoingMessage(name, b"3")])
            # A message that already carries a trace (being forwarded) keeps it.
            await bus.publish(OutgoingMessage(name, b"fwd", headers={"traceparent": foreign.encode()}))
        await bus.publish(OutgoingMessage(name, b"untraced"))
        one, two, three, forwarded, untraced = await collect(bus, name, 5)
        for message in (one, two, three):
            context = trace.get_current_span(extract_context(message.headers)).get_span_context()
            assert context.trace_id == TRACE_ID
        assert forwarded.header("traceparent") == foreign.encode()
        assert untraced.header("traceparent") is None

    async def test_dead_letter_keeps_the_original_and_the_reason(self, bus: EventBus, unique_chain: str) -> None:
        source, dlq = topic(unique_chain, "blocks"), topic(unique_chain, "dlq")
        await bus.ensure_topics([TopicSpec(source, 1), TopicSpec(dlq, 1)])
        await bus.publish(OutgoingMessage(source, b"\xffnot json", key=b"7", headers={"x-origin": b"bank-a"}))
        (bad,) = await collect(bus, source, 1)
        await bus.dead_letter(bad, "JSONDecodeError: Expecting value", dlq)
        (letter,) = await collect(bus, dlq, 1)
        record = json.loads(letter.value)
        assert record["source_topic"] == source
        assert (record["partition"], record["offset"]) == (bad.partition, bad.offset)
        assert base64.b64decode(record["key_b64"]) == b"7"
        assert base64.b64decode(record["value_b64"]) == b"\xffnot json"
        assert record["error"] == "JSONDecodeError: Expecting value"
        assert {"name": "x-origin", "value_b64": base64.b64encode(b"bank-a").decode()} in record["headers"]
        assert letter.header("x-origin") == b"bank-a"  # original headers kept on the letter

    async def test_unknown_topics_are_refused_and_not_created(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "never-created")
        with pytest.raises(TopicNotReady, match="ensure_topics"):
            await bus.publish(OutgoingMessage(name, b"lost?"))
        with pytest.raises(TopicNotReady):
            await bus.publish_many([OutgoingMessage(name, b"lost?")])
        with pytest.raises(TopicNotReady):
            await collect(bus, name, 1)
        # Asking again consults the broker: the refused attempts did not create the topic.
        with pytest.raises(TopicNotReady):
            await bus.end_offsets(name)

    async def test_a_refused_batch_publishes_nothing(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "tx")
        await bus.ensure_topics([TopicSpec(name, 1)])
        with pytest.raises(TopicNotReady):
            await bus.publish_many([OutgoingMessage(name, b"ok"), OutgoingMessage(topic(unique_chain, "nope"), b"x")])
        with pytest.raises(BusError, match="no partition"):
            await bus.publish_many([OutgoingMessage(name, b"ok"), OutgoingMessage(name, b"x", partition=3)])
        assert await bus.end_offsets(name) == {0: 0}

    async def test_large_messages_round_trip_and_oversized_ones_are_refused(
        self, bus: EventBus, unique_chain: str
    ) -> None:
        name = topic(unique_chain, "blocks")
        await bus.ensure_topics([TopicSpec(name, 1)])
        big = bytes(range(256)) * (3 * 1024 * 4)  # 3 MiB
        await bus.publish(OutgoingMessage(name, big))
        (message,) = await collect(bus, name, 1)
        assert message.value == big
        with pytest.raises(BusError, match="exceeds"):
            await bus.publish(OutgoingMessage(name, b"x" * (9 * 1024 * 1024)))

    async def test_consumers_end_when_the_bus_stops(self, bus: EventBus, unique_chain: str) -> None:
        name = topic(unique_chain, "blocks")
        await bus.ensure_topics([TopicSpec(name, 1)])

        async def read_forever() -> int:
            batches = 0
            async for _ in bus.consume(name):
                batches += 1
            return batches

        reader = asyncio.create_task(read_forever())
        await asyncio.sleep(0.2)
        await bus.stop()
        assert await asyncio.wait_for(reader, 5) == 0
        with pytest.raises(BusError, match="not started"):
            await bus.publish(OutgoingMessage(name, b"late"))


class TestMemoryEventBus(EventBusContract):
    @pytest.fixture
    async def bus(self) -> AsyncIterator[EventBus]:
        bus = MemoryEventBus()
        await bus.start()
        yield bus
        await bus.stop()

    async def test_clients_of_one_broker_see_each_other(self, unique_chain: str) -> None:
        broker = MemoryBroker()
        producer, consumer = MemoryEventBus(broker), MemoryEventBus(broker)
        await producer.start()
        await consumer.start()
        name = topic(unique_chain, "blocks")
        await producer.ensure_topics([TopicSpec(name, 1)])
        await producer.publish(OutgoingMessage(name, b"shared"))
        (message,) = await collect(consumer, name, 1)
        assert message.value == b"shared"


class TestKafkaEventBus(EventBusContract):
    pytestmark = pytest.mark.integration

    @pytest.fixture
    async def bus(self, tansu_broker: str) -> AsyncIterator[EventBus]:
        bus = KafkaEventBus(tansu_broker, "contract-test")
        await bus.start()
        yield bus
        await bus.stop()

    @settings(max_examples=300, deadline=None)
    @given(key=st.binary(max_size=80), partitions=st.integers(1, 64))
    def test_partitioning_is_kafkas_murmur2(self, key: bytes, partitions: int) -> None:
        # Other Kafka clients (enterprises producing to `tx`) must agree on a key's partition.
        choices = list(range(partitions))
        assert kafka_partition(key, partitions) == DefaultPartitioner()(key, choices, choices)

    async def test_idempotence_on_tansu_fails_at_start_with_a_clear_error(self, tansu_broker: str) -> None:
        bus = KafkaEventBus(tansu_broker, "idempotent", idempotence=True)
        with pytest.raises(BusError, match="idempotence to False"):
            await bus.start()

    async def test_unreachable_broker_fails_at_start(self) -> None:
        with pytest.raises(BusError, match="cannot reach Kafka"):
            await KafkaEventBus("127.0.0.1:1", "nowhere").start()


class TestKafkaEventBusOnApacheKafka(EventBusContract):
    """The same contract on a real Apache Kafka (``testcontainers``; skipped, with the reason,
    where no Docker engine is reachable)."""

    pytestmark = pytest.mark.integration

    @pytest.fixture
    async def bus(self, apache_kafka: str) -> AsyncIterator[EventBus]:
        bus = KafkaEventBus(apache_kafka, "contract-test-kafka", idempotence=True)  # Kafka has InitProducerId
        await bus.start()
        yield bus
        await bus.stop()
