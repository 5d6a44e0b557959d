"""Reading positions on the chain's single-partition topics, and asking for missing blocks.

A node's position is a block height, never an offset (architecture: The data flow). Two things every follower of
the chain needs, whatever it is (API follower, executing service, validator): where a topic
ends, in heights; and, when ``blocks`` skips heights, a ``BlockRequest`` on ``consensus`` so
that validators republish them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from traco.core.ports import BusMessage, EventBus, OutgoingMessage
from traco.schemas.consensus import BlockRequest

log = logging.getLogger(__name__)

GAP_REQUEST_AFTER_S = 1.0
"""How long a gap may last before a node asks for the missing blocks (and between asks)."""


async def last_message(bus: EventBus, topic: str) -> BusMessage | None:
    """The last message on partition 0 of ``topic`` (None when it is empty)."""
    end = (await bus.end_offsets(topic)).get(0, 0)
    if end == 0:
        return None
    stream = bus.consume(topic, start={0: end - 1})
    try:
        async for batch in stream:
            return batch[-1] if batch else None
    finally:
        close = getattr(stream, "aclose", None)  # leaving early: stop the consumer now, not at GC
        if close is not None:
            await close()
    return None


async def watch_for_gaps(
    bus: EventBus, consensus_topic: str, requester: str, gap: Callable[[], tuple[int, int] | None]
) -> None:
    """Forever: when ``gap()`` has named the same missing heights for a while, ask for them.

    ``gap()`` returns ``(first missing height, last missing height)`` or None when nothing is
    missing.
    """
    since: float | None = None
    while True:
        await asyncio.sleep(0.25)
        span = gap()
        if span is None:
            since = None
            continue
        now = time.monotonic()
        if since is None:
            since = now
        elif now - since >= GAP_REQUEST_AFTER_S:
            log.info("%s: blocks %d..%d are missing; asking validators to republish them", requester, *span)
            request = BlockRequest(from_height=span[0], to_height=span[1], requester=requester)
            key = str(request.from_height).encode()
            await bus.publish(OutgoingMessage(consensus_topic, request.model_dump_json().encode(), key))
            since = now


async def wait_for_height(progress: asyncio.Condition, height: Callable[[], int], target: int, timeout: float) -> bool:
    """Wait until ``height()`` reaches ``target``, woken by ``progress`` (False on timeout).

    The follower and the service runtime notify their condition after each stored block;
    tests and benchmarks wait on it instead of polling.
    """

    async def reached() -> None:
        async with progress:
            await progress.wait_for(lambda: height() >= target)

    try:
        await asyncio.wait_for(reached(), timeout)
    except TimeoutError:
        return False
    return True


def loop_time() -> float:
    """The event loop's clock: monotonic, and virtual where a test runs the loop on virtual time
    (so timeouts, grace periods and back-offs can all be simulated)."""
    return asyncio.get_running_loop().time()
