"""Supervised reader tasks (architecture: Kafka is not trusted): a reader that fails is restarted with back-off, and one
that keeps failing takes its process down with a non-zero exit — never dies silently.

Why: an asyncio task that raises is only noticed when someone awaits it. A validator whose
``tx`` reader died would keep voting on an empty mempool forever and look healthy. Every
long-running reader of a process therefore runs under ``supervised``; the process awaits all of
them with ``run_all``, which cancels the rest and re-raises as soon as one gives up.

Cancellation is not a failure: it passes straight through, so stopping a process stays quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from traco.core.errors import TracoError

log = logging.getLogger(__name__)


class SupervisorGaveUp(TracoError):
    """A supervised task failed ``max_failures`` times within ``window_s``: the process must exit."""


async def supervised(
    name: str,
    make: Callable[[], Awaitable[None]],
    *,
    max_failures: int = 5,
    window_s: float = 60.0,
    first_delay_s: float = 0.2,
    max_delay_s: float = 10.0,
) -> None:
    """Run ``make()`` until it returns; restart it after a failure, doubling the delay each time;
    raise ``SupervisorGaveUp`` when it has failed ``max_failures`` times within ``window_s``."""
    failures: list[float] = []
    delay = first_delay_s
    while True:
        try:
            await make()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            now = time.monotonic()
            failures = [t for t in failures if t > now - window_s] + [now]
            if len(failures) >= max_failures:
                log.critical("%s failed %d times in %.0f s; giving up", name, len(failures), window_s)
                raise SupervisorGaveUp(f"{name} failed {len(failures)} times in {window_s:.0f} s: {exc!r}") from exc
            log.exception("%s failed; restarting in %.1f s", name, delay)
            await asyncio.sleep(delay)
            delay = min(max_delay_s, delay * 2)


async def run_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Wait for every task; the first to raise cancels the others and its exception propagates.
    Cancelling ``run_all`` cancels them all."""
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


__all__ = ["SupervisorGaveUp", "run_all", "supervised"]
