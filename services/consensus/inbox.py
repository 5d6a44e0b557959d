"""A validator's inputs, in the order they must be handled, each handled inside one guard.

Why a module of its own: the order is a liveness rule and the guard a safety net, and both
are easy to get wrong inside the consensus driver. Consensus traffic, blocks, results, timers
and ticks go first; batches of transactions only when nothing else waits (a backlog of
submitted transactions must never delay a vote); the transaction queue is bounded, so its
reader pushes back on the broker rather than on memory.

Every input is handled by ``handle(kind, item)``; whatever that raises is logged, counted,
and the message (or, in a batch, the one message to blame) is dead-lettered: a failure is the
message's fault or a bug, never the loop's end (architecture: Kafka is not trusted). After every input,
``after_each()`` (starting a height, proposing) runs under the same guard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from traco.core.ports import BusMessage, EventBus, StartAt

log = logging.getLogger(__name__)

Handler = Callable[[str, Any], Awaitable[None]]


class Inbox:
    def __init__(
        self,
        bus: EventBus,
        handle: Handler,
        after_each: Callable[[], Awaitable[None]],
        dead_letter: Callable[[BusMessage, str], Awaitable[None]],
    ) -> None:
        self.bus = bus
        self.handle = handle
        self.after_each = after_each
        self.dead_letter = dead_letter
        self.first: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.txs: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=4)
        self.wakeup = asyncio.Event()
        self.failures = 0

    def post(self, item: tuple[str, Any]) -> None:
        """An input of the first rank (timeouts, ticks)."""
        self.first.put_nowait(item)
        self.wakeup.set()

    def reader(self, topic: str, kind: str, start: StartAt, max_batch: int = 500) -> Callable[[], Awaitable[None]]:
        """A restartable reader of one topic: after a failure it resumes after the last batch it
        handed on (a restart neither skips nor repeats a batch). ``kind == "tx"`` goes to the
        bounded queue of the second rank."""
        position: dict[int, int] = {}
        queue = self.txs if kind == "tx" else self.first

        async def read() -> None:
            begin: StartAt = dict(position) if position else start
            async for batch in self.bus.consume(topic, start=begin, max_batch=max_batch):
                await queue.put((kind, batch))
                self.wakeup.set()
                for message in batch:
                    position[message.partition] = message.offset + 1

        return read

    async def ticker(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.post(("tick", None))

    async def next_input(self) -> tuple[str, Any]:
        while True:
            if not self.first.empty():
                return self.first.get_nowait()
            if not self.txs.empty():
                return self.txs.get_nowait()
            self.wakeup.clear()
            await self.wakeup.wait()

    async def loop(self) -> None:
        while True:
            kind, item = await self.next_input()
            await self.handle_guarded(kind, item)

    async def drain_txs(self) -> None:
        """Handle the transaction batches already queued, now: a compact proposal names
        transactions that may be waiting there behind it. Guarded like every input, without
        ``after_each`` (the caller is in the middle of handling another input)."""
        while not self.txs.empty():
            kind, item = self.txs.get_nowait()
            await self.handle_guarded(kind, item, after=False)

    async def handle_guarded(self, kind: str, item: Any, after: bool = True) -> None:
        messages: Sequence[BusMessage] = item if isinstance(item, list) else []
        try:
            await self.handle(kind, item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failures += 1
            log.exception("handling %s failed", kind)
            if len(messages) > 1:
                # one of them is to blame: handle them one by one so the others still count
                for message in messages:
                    await self._handle_one(kind, message)
            elif messages:
                await self.dead_letter(messages[0], _reason(kind, exc))
        if not after:
            return
        try:
            await self.after_each()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures += 1
            log.exception("after handling %s", kind)

    async def _handle_one(self, kind: str, message: BusMessage) -> None:
        try:
            await self.handle(kind, [message])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("handling a %s message at %s/%d failed", kind, message.topic, message.offset)
            await self.dead_letter(message, _reason(kind, exc))


def _reason(kind: str, exc: Exception) -> str:
    return f"internal error handling {kind}: {type(exc).__name__}: {exc}"[:500]
