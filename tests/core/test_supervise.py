"""Supervised readers: restarted after a failure, given up on (an error for the process) when
they keep failing, never swallowing a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from traco.core.supervise import SupervisorGaveUp, run_all, supervised


async def test_a_reader_that_fails_is_restarted_and_its_success_ends_supervision() -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("poison")

    await supervised("flaky", flaky, first_delay_s=0.001)
    assert calls == 3


async def test_a_reader_that_keeps_failing_takes_the_process_down() -> None:
    async def broken() -> None:
        raise ValueError("always")

    with pytest.raises(SupervisorGaveUp, match="broken failed 4 times"):
        await supervised("broken", broken, max_failures=4, first_delay_s=0.001)


async def test_run_all_cancels_the_others_and_raises_the_first_failure() -> None:
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise SupervisorGaveUp("gave up")

    tasks = [asyncio.create_task(forever()), asyncio.create_task(fails())]
    with pytest.raises(SupervisorGaveUp):
        await run_all(tasks)
    assert cancelled.is_set()


async def test_cancellation_passes_straight_through() -> None:
    started = asyncio.Event()

    async def waits() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervised("waits", waits))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
