"""The Kafka bus's one fetch loop for all its readers (``core/adapters/kafka_fetch.py``).

On the real Tansu broker: readers of several topics on one bus each get their own records,
in order, once, while others come and go; a reader that takes nothing pauses without holding
up the others; a second reader of a partition gets a consumer of its own; readers that start
together share one consumer. With a scripted consumer (a unit-test tool, no broker): a fetch
error reaches every reader after what it already holds, and the loop serves later readers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from traco.core.adapters.kafka import KafkaEventBus
from traco.core.adapters.kafka_fetch import BATCHES_AHEAD, FETCH_RECORDS, SharedFetch
from traco.core.errors import BusError
from traco.core.ports import BusMessage, OutgoingMessage, TopicSpec
from traco.core.topics import topic


async def fill(bus: KafkaEventBus, name: str, count: int, size: int = 8, partitions: int = 1) -> None:
    await bus.publish_many(
        [OutgoingMessage(name, f"{i:0{size}d}".encode(), partition=i % partitions) for i in range(count)]
    )


async def read(bus: KafkaEventBus, name: str, count: int, timeout: float = 15.0) -> list[BusMessage]:
    got: list[BusMessage] = []
    async with asyncio.timeout(timeout), aclosing(bus.consume(name)) as stream:
        async for batch in stream:
            got.extend(batch)
            if len(got) >= count:
                break
    return got


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait for the fetch loop to make ``condition`` true (a failure, not a hang, if it never does)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0)


def values(messages: list[BusMessage], partition: int = 0) -> list[int]:
    return [int(m.value) for m in messages if m.partition == partition]


@pytest.fixture
async def bus(tansu_broker: str) -> AsyncIterator[KafkaEventBus]:
    bus = KafkaEventBus(tansu_broker, "fetch-test", fetch_max_wait_ms=10)
    await bus.start()
    yield bus
    await bus.stop()


@pytest.mark.integration
class TestOnTansu:
    async def test_readers_of_three_topics_share_one_consumer_and_each_gets_its_own(
        self, bus: KafkaEventBus, unique_chain: str
    ) -> None:
        names = [topic(unique_chain, n) for n in ("tx", "consensus", "blocks")]
        await bus.ensure_topics([TopicSpec(names[0], 4), TopicSpec(names[1], 1), TopicSpec(names[2], 1)])
        await fill(bus, names[0], 400, partitions=4)
        await fill(bus, names[1], 300)
        await fill(bus, names[2], 200)
        tx, consensus, blocks = await asyncio.gather(
            read(bus, names[0], 400), read(bus, names[1], 300), read(bus, names[2], 200)
        )
        assert {m.topic for m in tx} == {names[0]}
        for p in range(4):
            assert values(tx, p) == list(range(p, 400, 4))
        assert values(consensus) == list(range(300))
        assert values(blocks) == list(range(200))
        assert not bus._consumers

    async def test_a_reader_keeps_its_place_while_others_come_and_go(
        self, bus: KafkaEventBus, unique_chain: str
    ) -> None:
        steady, visitor = topic(unique_chain, "blocks"), topic(unique_chain, "consensus")
        await bus.ensure_topics([TopicSpec(steady, 1), TopicSpec(visitor, 1)])
        await fill(bus, visitor, 50)
        got: list[BusMessage] = []

        async def keep_reading() -> None:
            async with aclosing(bus.consume(steady)) as stream:
                async for batch in stream:
                    got.extend(batch)
                    if len(got) >= 600:
                        return

        reader = asyncio.create_task(keep_reading())
        for round_ in range(6):  # each visit reassigns the shared consumer twice
            await fill(bus, steady, 100)
            assert values(await read(bus, visitor, 50)) == list(range(50)), round_
        await asyncio.wait_for(reader, 15)
        assert [int(m.value) for m in got] == [i % 100 for i in range(600)]
        assert [m.offset for m in got] == list(range(600))

    async def test_a_reader_that_takes_nothing_pauses_and_does_not_hold_up_another(
        self, tansu_broker: str, unique_chain: str
    ) -> None:
        bus = KafkaEventBus(tansu_broker, "fetch-test", fetch_max_wait_ms=10)
        await bus.start()
        bus._shared = SharedFetch(bus._new_consumer, backlog=20_000)
        try:
            slow, fast = topic(unique_chain, "tx"), topic(unique_chain, "blocks")
            await bus.ensure_topics([TopicSpec(slow, 1), TopicSpec(fast, 1)])
            await fill(bus, slow, 2_000, size=1_000)  # 2 MB, a hundred times the backlog
            async with aclosing(bus.consume(slow, max_batch=10)) as lagging:
                first = await anext(lagging)  # then it takes nothing for a while
                await fill(bus, fast, 100)
                assert values(await read(bus, fast, 100, timeout=5)) == list(range(100))
                reader = bus._shared._owners[TopicPartition(slow, 0)]
                assert reader.paused
                assert reader.size < 20_000 + 2 * 1024 * 1024  # the backlog and at most one fetch more
                rest: list[BusMessage] = []
                async with asyncio.timeout(15):
                    async for batch in lagging:
                        rest.extend(batch)
                        if len(first) + len(rest) >= 2_000:
                            break
            assert values(first + rest) == list(range(2_000))
        finally:
            await bus.stop()

    async def test_a_flood_of_transactions_does_not_hold_up_consensus(
        self, bus: KafkaEventBus, tansu_broker: str, unique_chain: str
    ) -> None:
        tx, consensus = topic(unique_chain, "tx"), topic(unique_chain, "consensus")
        await bus.ensure_topics([TopicSpec(tx, 4), TopicSpec(consensus, 1)])
        attacker = AIOKafkaProducer(bootstrap_servers=tansu_broker, linger_ms=50)
        await attacker.start()
        try:
            for i in range(40_000):  # garbage, as anyone may write to the transaction topic
                await attacker.send(tx, b"\xff" * 40, partition=i % 4)
            await attacker.flush()
        finally:
            await attacker.stop()
        async with aclosing(bus.consume(tx, max_batch=200)) as flooded:
            await anext(flooded)  # a node's intake, busy with its first batch: it takes no more
            await bus.publish(OutgoingMessage(consensus, b"prevote"))
            loop = asyncio.get_running_loop()
            began = loop.time()
            (message,) = await read(bus, consensus, 1, timeout=10)
            assert message.value == b"prevote"
            assert loop.time() - began < 3.0
            reader = bus._shared._owners[TopicPartition(tx, 0)]
            assert reader.paused
            assert len(reader.buffered) < BATCHES_AHEAD * 200 + FETCH_RECORDS

    async def test_a_second_reader_of_a_partition_gets_a_consumer_of_its_own(
        self, bus: KafkaEventBus, unique_chain: str
    ) -> None:
        name = topic(unique_chain, "blocks")
        await bus.ensure_topics([TopicSpec(name, 1)])
        await fill(bus, name, 300)
        async with aclosing(bus.consume(name)) as first:
            head = await anext(first)
            again = await read(bus, name, 300)  # the same partition, from the start
            assert values(again) == list(range(300))
            rest = list(head)
            async with asyncio.timeout(10):
                while len(rest) < 300:
                    rest.extend(await anext(first))
        assert values(rest) == list(range(300))

    async def test_opens_at_once_start_one_consumer(self, bus: KafkaEventBus, unique_chain: str) -> None:
        made: list[Any] = []

        def counted() -> Any:
            made.append(bus._new_consumer())
            return made[-1]

        fetch = SharedFetch(counted, backlog=1024)
        names = [topic(unique_chain, n) for n in ("tx", "consensus", "blocks")]
        await bus.ensure_topics([TopicSpec(n, 1) for n in names])
        try:
            readers = await asyncio.gather(*(fetch.open({TopicPartition(n, 0): 0}, 10) for n in names))
            assert all(r is not None for r in readers) and fetch.readers == 3
            assert len(made) == 1
        finally:
            await fetch.stop()

    async def test_a_reader_with_a_consumer_of_its_own_keeps_batches_bounded_and_in_partition_order(
        self, bus: KafkaEventBus, unique_chain: str
    ) -> None:
        name = topic(unique_chain, "tx")
        await bus.ensure_topics([TopicSpec(name, 4)])
        await fill(bus, name, 400, partitions=4)
        async with aclosing(bus.consume(name)) as first:
            await anext(first)  # the shared loop reads the topic: the next reader reads alone
            got: list[BusMessage] = []
            async with asyncio.timeout(10), aclosing(bus.consume(name, max_batch=7)) as alone:
                async for batch in alone:
                    assert 1 <= len(batch) <= 7
                    assert [m.partition for m in batch] == sorted(m.partition for m in batch)
                    got.extend(batch)
                    if len(got) >= 400:
                        break
        for p in range(4):
            assert values(got, p) == list(range(p, 400, 4))

    async def test_readers_that_start_together_get_one_consumer(self, tansu_broker: str, unique_chain: str) -> None:
        made: list[Any] = []
        bus = KafkaEventBus(tansu_broker, "fetch-test", fetch_max_wait_ms=10)
        await bus.start()

        def counted() -> Any:
            made.append(bus._new_consumer())
            return made[-1]

        bus._shared = SharedFetch(counted, backlog=1024 * 1024)
        try:
            names = [topic(unique_chain, n) for n in ("tx", "consensus", "blocks")]
            await bus.ensure_topics([TopicSpec(n, 1) for n in names])
            for name in names:
                await fill(bus, name, 20)
            results = await asyncio.gather(*(read(bus, n, 20) for n in names))
            assert [values(r) for r in results] == [list(range(20))] * 3
            assert len(made) == 1
        finally:
            await bus.stop()


class _ScriptedConsumer:
    """An aiokafka consumer's surface, answering ``getmany`` from a script (unit tests only)."""

    def __init__(self, script: list[Any], refuse_start: bool = False) -> None:
        self.script = script
        self.refuse_start = refuse_start
        self.assigned: list[TopicPartition] = []
        self.paused: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int] = {}
        self.stopped = False

    async def start(self) -> None:
        await asyncio.sleep(0)  # as a real start does: others run meanwhile
        if self.refuse_start:
            raise KafkaConnectionError("broker unreachable")

    async def stop(self) -> None:
        self.stopped = True

    def assign(self, partitions: list[TopicPartition]) -> None:
        # as aiokafka's: a new assignment, with no positions and nothing paused
        self.assigned = list(partitions)
        self.paused = set()
        self.positions = {}

    def unsubscribe(self) -> None:
        self.assigned = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def pause(self, *tps: TopicPartition) -> None:
        self.paused |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused -= set(tps)

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        await asyncio.sleep(0)
        if not self.script:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step  # type: ignore[no-any-return]


class _Record:
    def __init__(self, tp: TopicPartition, offset: int, size: int = 10, key: bytes | None = None) -> None:
        self.topic, self.partition, self.offset = tp.topic, tp.partition, offset
        self.key, self.value = key, b"x" * size


T1, T2 = TopicPartition("one", 0), TopicPartition("two", 0)


class TestScripted:
    async def test_a_fetch_error_reaches_every_reader_after_what_it_holds(self) -> None:
        consumer = _ScriptedConsumer([{T1: [_Record(T1, 0)], T2: [_Record(T2, 5)]}, KafkaConnectionError()])
        fetch = SharedFetch(lambda: consumer, backlog=1_000)
        one = await fetch.open({T1: 0}, 10)
        two = await fetch.open({T2: 5}, 10)
        assert one is not None and two is not None
        assert [r.offset for r in (await fetch.take(one)) or []] == [0]
        with pytest.raises(BusError, match="KafkaConnectionError"):
            await asyncio.wait_for(fetch.take(one), 2)
        assert [r.offset for r in (await fetch.take(two)) or []] == [5]
        with pytest.raises(BusError):
            await asyncio.wait_for(fetch.take(two), 2)
        assert fetch.readers == 0 and consumer.assigned == []
        taken = await fetch.open({T1: 1}, 10)  # its partition is free again; the failed reader's
        assert taken is not None  # leaving does not take it from the new one
        fetch.release(one)
        assert fetch.readers == 1 and consumer.assigned == [T1]
        fetch.release(taken)
        # the loop goes on: a reader that comes later is served
        consumer.script.append({T1: [_Record(T1, 1)]})
        again = await fetch.open({T1: 1}, 10)
        assert again is not None
        assert [r.offset for r in (await asyncio.wait_for(fetch.take(again), 2)) or []] == [1]
        await fetch.stop()
        assert consumer.stopped and await fetch.take(again) is None

    async def test_an_unexpected_error_in_the_client_ends_its_readers_instead_of_leaving_them_waiting(
        self,
    ) -> None:
        consumer = _ScriptedConsumer([RuntimeError("a bug in the client")])
        fetch = SharedFetch(lambda: consumer, backlog=1_000)
        reader = await fetch.open({T1: 0}, 10)
        assert reader is not None
        with pytest.raises(BusError, match="a bug in the client"):
            await asyncio.wait_for(fetch.take(reader), 2)
        consumer.script.append({T2: [_Record(T2, 0)]})
        later = await fetch.open({T2: 0}, 10)
        assert later is not None
        assert [r.offset for r in (await asyncio.wait_for(fetch.take(later), 3)) or []] == [0]
        await fetch.stop()

    async def test_records_before_a_readers_position_are_not_given_twice(self) -> None:
        consumer = _ScriptedConsumer([{T1: [_Record(T1, 3), _Record(T1, 4)]}, {T1: [_Record(T1, 4), _Record(T1, 5)]}])
        fetch = SharedFetch(lambda: consumer, backlog=1_000)
        reader = await fetch.open({T1: 4}, 10)
        assert reader is not None
        got: list[int] = []
        while len(got) < 2:
            got += [r.offset for r in (await asyncio.wait_for(fetch.take(reader), 2)) or []]
        assert got == [4, 5]
        await fetch.stop()

    async def test_pause_at_the_byte_backlog_and_resume_below_it(self) -> None:
        consumer = _ScriptedConsumer([{T1: [_Record(T1, i, size=100) for i in range(3)]}])
        fetch = SharedFetch(lambda: consumer, backlog=200)
        reader = await fetch.open({T1: 0}, 1)  # four records ahead allowed: the bytes decide
        assert reader is not None
        await until(lambda: reader.paused)
        assert T1 in consumer.paused and reader.size == 300
        await fetch.take(reader)
        assert reader.size == 200 and reader.paused and T1 in consumer.paused  # not below yet
        await fetch.take(reader)
        assert reader.size == 100 and not reader.paused and T1 not in consumer.paused
        consumer.script.append({T1: [_Record(T1, 3, size=100)]})  # back at the backlog: paused again
        await until(lambda: reader.paused)
        assert reader.size == 200 and T1 in consumer.paused
        await fetch.stop()

    async def test_pause_at_four_batches_ahead_and_resume_below(self) -> None:
        consumer = _ScriptedConsumer([{T1: [_Record(T1, i) for i in range(10)]}])
        fetch = SharedFetch(lambda: consumer, backlog=1_000_000)
        reader = await fetch.open({T1: 0}, 2)  # batches of 2: eight records ahead at most
        assert reader is not None
        await until(lambda: reader.paused)
        assert len(reader.buffered) == 10 and T1 in consumer.paused
        assert len(await fetch.take(reader) or []) == 2
        assert len(reader.buffered) == 8 and reader.paused  # not below yet
        await fetch.take(reader)
        assert len(reader.buffered) == 6 and not reader.paused and T1 not in consumer.paused
        consumer.script.append({T1: [_Record(T1, 10), _Record(T1, 11)]})
        await until(lambda: reader.paused)
        assert len(reader.buffered) == 8
        await fetch.stop()
        with pytest.raises(ValueError, match="max_batch"):
            await fetch.open({T2: 0}, 0)

    async def test_a_new_assignment_keeps_every_readers_position_and_pause(self) -> None:
        consumer = _ScriptedConsumer([{T1: [_Record(T1, i) for i in range(7, 17)]}])  # 100 bytes
        fetch = SharedFetch(lambda: consumer, backlog=100)
        first = await fetch.open({T1: 7}, 10)
        assert first is not None
        await until(lambda: first.paused)
        second = await fetch.open({T2: 2}, 10)  # aiokafka forgets positions and pauses here
        assert second is not None
        assert consumer.positions == {T1: 17, T2: 2}
        assert consumer.paused == {T1}
        fetch.release(second)
        assert consumer.positions == {T1: 17} and consumer.paused == {T1}
        await fetch.stop()

    async def test_a_partition_is_given_to_one_reader_only(self) -> None:
        fetch = SharedFetch(lambda: _ScriptedConsumer([]), backlog=100)
        # two opens of one partition at once, while the consumer starts: one reader
        both = await asyncio.gather(fetch.open({T1: 0, T2: 0}, 10), fetch.open({T2: 3}, 10))
        assert sorted(r is None for r in both) == [False, True]
        assert fetch.readers == 1
        assert await fetch.open({T2: 3}, 10) is None
        await fetch.stop()
        with pytest.raises(ValueError, match="backlog"):
            SharedFetch(lambda: _ScriptedConsumer([]), backlog=0)
        assert SharedFetch(lambda: _ScriptedConsumer([]), backlog=1) is not None  # the least allowed

    async def test_a_reader_below_its_backlog_is_not_paused_and_keys_count_in_its_size(self) -> None:
        consumer = _ScriptedConsumer([{T1: [_Record(T1, 0, size=10, key=b"k" * 5)]}])
        fetch = SharedFetch(lambda: consumer, backlog=100)
        reader = await fetch.open({T1: 0}, 10)
        assert reader is not None
        await until(lambda: bool(reader.buffered))
        assert reader.size == 15 and not reader.paused and not consumer.paused
        await fetch.take(reader)
        assert reader.size == 0
        await fetch.stop()

    async def test_a_released_reader_ends_and_the_fetch_starts_again_after_a_stop(self) -> None:
        made: list[_ScriptedConsumer] = []

        def make() -> _ScriptedConsumer:
            made.append(_ScriptedConsumer([{T1: [_Record(T1, 0)]}]))
            return made[-1]

        fetch = SharedFetch(make, backlog=100)
        reader = await fetch.open({T1: 0}, 10)
        assert reader is not None
        fetch.release(reader)
        assert await asyncio.wait_for(fetch.take(reader), 1) is None
        await fetch.stop()
        assert made[0].stopped
        again = await fetch.open({T1: 0}, 10)  # a bus started again after a stop
        assert again is not None and len(made) == 2
        assert [r.offset for r in (await asyncio.wait_for(fetch.take(again), 2)) or []] == [0]
        await fetch.stop()

    async def test_a_consumer_that_cannot_start_is_a_bus_error(self) -> None:
        fetch = SharedFetch(lambda: _ScriptedConsumer([], refuse_start=True), backlog=100)
        with pytest.raises(BusError, match=r"the shared consumer could not start: .*broker unreachable"):
            await fetch.open({T1: 0}, 10)
        assert fetch.readers == 0


def test_the_scripted_consumer_has_the_methods_the_fetch_calls() -> None:
    for name in ("start", "stop", "assign", "unsubscribe", "seek", "pause", "resume", "getmany"):
        assert callable(getattr(AIOKafkaConsumer, name)), name
