"""One fetch loop for every reader of a ``KafkaEventBus`` (``consume``), instead of one each.

Why: a Kafka consumer long-polls. Tansu holds a fetch that finds nothing for the consumer's
``fetch_max_wait_ms`` and answers it empty, so an idle consumer asks again every
``fetch_max_wait_ms`` — 100 times a second at the 10 ms a node uses, because that wait is
the latency of every hop. A node read its three topics (transactions, consensus, blocks)
with three consumers. Measured with the four nodes of a dev mesh and nothing to do: each node
spent 8% of a core polling and the broker a third of a core answering. Under load the same
polling took its share of the two cores from the work (decision 0008, fifth round).

How: one aiokafka consumer per bus is assigned the partitions of every reader. One fetch
request carries them all, and its records go to the reader that owns their partition. Each
reader keeps what it was given in its own buffer, and ``take`` hands it out in batches.

What still holds, reader by reader:

* **Order.** Records of one partition reach their reader in offset order, each once.
* **Positions.** ``assign`` replaces the consumer's assignment and forgets its positions, so
  this module keeps each partition's next offset itself and seeks there after every change.
* **Backpressure.** A reader that does not take what it was given (a node's bounded queue of
  transaction batches) must not hold up the others, nor grow without bound. Once it holds
  ``BATCHES_AHEAD`` of its batches, or ``backlog`` bytes, its partitions are paused, and they
  resume when it has taken them below both.
* **A flood on one topic does not delay the others.** Anyone can write to the transaction
  topic. One ``getmany`` decodes at most ``FETCH_RECORDS`` records, so the loop hands a
  flooded reader a bounded slice at a time, and pausing it drops what aiokafka had fetched
  for it undecoded: the next fetch carries the other readers' records (the consensus
  messages behind the flood) at once.
* **Failure.** A fetch error reaches every reader as ``BusError``, and ends their reading
  (their supervisors start them again from their own positions). The loop goes on for
  readers that come later.
* **A partition two readers want.** It can be assigned once, so the second reader of one
  partition on the same bus gets a consumer of its own (``open`` returns None).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError

from ..errors import BusError

log = logging.getLogger(__name__)

FETCH_TIMEOUT_MS = 1000
"""How long one ``getmany`` waits for records before the loop looks at its readers again."""

FETCH_RECORDS = 500
"""Records one ``getmany`` of the shared loop decodes at most (aiokafka decodes in Python)."""

BATCHES_AHEAD = 4
"""Batches a reader may hold untaken before its partitions pause."""


class SharedReader:
    """One ``consume`` call's partitions and the records fetched for it, not yet taken."""

    def __init__(self, partitions: frozenset[TopicPartition], max_batch: int) -> None:
        self.partitions = partitions
        self.max_batch = max_batch
        self.buffered: deque[Any] = deque()
        self.size = 0
        """Bytes of key and value buffered."""
        self.wake = asyncio.Event()
        self.failure: BusError | None = None
        self.stopped = False
        self.paused = False

    def full(self, backlog: int) -> bool:
        """Does it hold enough untaken that its partitions should pause?"""
        return self.size >= backlog or len(self.buffered) >= BATCHES_AHEAD * self.max_batch


class SharedFetch:
    """The one consumer of a bus that its readers share, and the loop that feeds them.

    ``make_consumer`` builds an aiokafka consumer (not started) with the bus's settings;
    ``backlog`` is how many bytes a reader may hold untaken before its partitions pause.
    """

    def __init__(self, make_consumer: Callable[[], Any], backlog: int) -> None:
        if backlog < 1:
            raise ValueError(f"backlog must be at least 1, got {backlog}")
        self._make_consumer = make_consumer
        self._backlog = backlog
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._owners: dict[TopicPartition, SharedReader] = {}
        self._positions: dict[TopicPartition, int] = {}
        self._assigned = asyncio.Event()
        self._starting = asyncio.Lock()

    def claims(self, partitions: Iterable[TopicPartition]) -> bool:
        """True if no reader of this fetch reads any of ``partitions`` now."""
        return not any(tp in self._owners for tp in partitions)

    @property
    def readers(self) -> int:
        """How many readers the fetch serves now."""
        return len(set(self._owners.values()))

    async def open(self, positions: dict[TopicPartition, int], max_batch: int) -> SharedReader | None:
        """A reader of ``positions``' partitions, each from its offset there, taking batches of
        up to ``max_batch`` records; None if another reader of this fetch reads one of them
        (the caller reads with a consumer of its own)."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if not self.claims(positions):
            return None
        async with self._starting:  # readers that start together get the one consumer
            if self._consumer is None:
                consumer = self._make_consumer()
                try:
                    await consumer.start()
                except KafkaError as err:
                    raise BusError(f"the shared consumer could not start: {err!r}") from err
                self._consumer = consumer
                self._task = asyncio.get_running_loop().create_task(self._run(consumer))
        if not self.claims(positions):  # taken while the consumer started
            return None
        reader = SharedReader(frozenset(positions), max_batch)
        for tp, offset in positions.items():
            self._owners[tp] = reader
            self._positions[tp] = offset
        self._assign()
        return reader

    def release(self, reader: SharedReader) -> None:
        """Stop fetching for ``reader`` (its ``consume`` ended); what it had not taken is dropped."""
        if reader.stopped:
            return
        reader.stopped = True
        for tp in reader.partitions:
            if self._owners.get(tp) is reader:
                del self._owners[tp]
                del self._positions[tp]
        if self._consumer is not None:
            self._assign()

    async def take(self, reader: SharedReader) -> list[Any] | None:
        """Up to the reader's ``max_batch`` records, waiting for the first; ``None`` once the
        fetch stopped. Raises the fetch's ``BusError`` after handing out what came before it."""
        while not reader.buffered:
            if reader.failure is not None:
                raise reader.failure
            if reader.stopped:
                return None
            reader.wake.clear()
            await reader.wake.wait()
        count = min(reader.max_batch, len(reader.buffered))
        batch = [reader.buffered.popleft() for _ in range(count)]
        reader.size -= sum(_size(record) for record in batch)
        if reader.paused and not reader.full(self._backlog) and not reader.stopped:
            reader.paused = False
            if self._consumer is not None:
                self._consumer.resume(*reader.partitions)
        return batch

    async def stop(self) -> None:
        """End every reader (their ``take`` returns ``None``) and stop the consumer."""
        async with self._starting:  # a consumer being started is stopped too, not left running
            consumer, task = self._consumer, self._task
            self._consumer = self._task = None
        for reader in set(self._owners.values()):
            reader.stopped = True
            reader.wake.set()
        self._owners.clear()
        self._positions.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if consumer is not None:
            # aiokafka 0.14: a consumer stopped before its background task took its first
            # step raises CancelledError from stop(); one turn of the loop lets it happen.
            await asyncio.sleep(0)
            try:
                await consumer.stop()
            except KafkaError as err:
                log.warning("error while stopping the shared consumer: %r", err)

    # -- the loop -----------------------------------------------------------------------

    def _assign(self) -> None:
        """Give the consumer exactly the readers' partitions, each at its next offset."""
        consumer = self._consumer
        if not self._owners:
            consumer.unsubscribe()
            self._assigned.clear()
            return
        consumer.assign(list(self._owners))
        for tp, offset in self._positions.items():
            consumer.seek(tp, offset)
        paused = [tp for tp, reader in self._owners.items() if reader.paused]
        if paused:
            consumer.pause(*paused)
        self._assigned.set()

    async def _run(self, consumer: Any) -> None:
        while True:
            await self._assigned.wait()
            try:
                fetched = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS, max_records=FETCH_RECORDS)
            except ConsumerStoppedError:
                return
            except KafkaError as err:
                self._fail(BusError(f"consuming {sorted({tp.topic for tp in self._owners})} failed: {err!r}"))
                continue
            except Exception as err:  # a bug in the client: its readers must not wait forever
                log.exception("the shared fetch loop failed")
                self._fail(BusError(f"consuming {sorted({tp.topic for tp in self._owners})} failed: {err!r}"))
                await asyncio.sleep(FETCH_TIMEOUT_MS / 1000)  # not a hot loop if it persists
                continue
            for tp, records in fetched.items():
                self._deliver(consumer, tp, records)

    def _deliver(self, consumer: Any, tp: TopicPartition, records: list[Any]) -> None:
        reader = self._owners.get(tp)
        if reader is None:
            return  # its reader left while the fetch was out
        start = self._positions[tp]
        fresh = [record for record in records if record.offset >= start]
        if not fresh:
            return
        reader.buffered.extend(fresh)
        reader.size += sum(_size(record) for record in fresh)
        self._positions[tp] = fresh[-1].offset + 1
        reader.wake.set()
        if not reader.paused and reader.full(self._backlog):
            reader.paused = True
            consumer.pause(*reader.partitions)

    def _fail(self, failure: BusError) -> None:
        """Every reader gets ``failure`` (after what it holds) and stops being fed."""
        for reader in set(self._owners.values()):
            reader.failure = failure
            reader.wake.set()
        self._owners.clear()
        self._positions.clear()
        self._assign()


async def read_alone(
    consumer: Any,
    topic: str,
    tps: list[TopicPartition],
    positions: dict[int, int],
    max_batch: int,
    running: Callable[[], bool],
) -> AsyncIterator[list[Any]]:
    """Batches of records of ``tps`` from ``positions`` (by partition), read by ``consumer``
    alone (a second reader of a partition the shared fetch serves), while ``running()``.
    The caller stops the consumer."""
    try:
        await consumer.start()
        consumer.assign(tps)
    except KafkaError as err:
        raise BusError(f"cannot start consuming {topic!r}: {err!r}") from err
    for tp in tps:
        consumer.seek(tp, positions[tp.partition])
    while running():
        try:
            fetched = await consumer.getmany(*tps, timeout_ms=FETCH_TIMEOUT_MS, max_records=max_batch)
        except ConsumerStoppedError:
            return  # the bus stopped
        except KafkaError as err:
            raise BusError(f"consuming {topic!r} failed: {err!r}") from err
        if fetched:
            yield [record for tp in sorted(fetched, key=lambda tp: tp.partition) for record in fetched[tp]]


def _size(record: Any) -> int:
    return len(record.value or b"") + len(record.key or b"")


__all__ = ["BATCHES_AHEAD", "FETCH_RECORDS", "FETCH_TIMEOUT_MS", "SharedFetch", "SharedReader", "read_alone"]
