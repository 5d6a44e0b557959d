"""Upstream filters: a downstream service keeps only the upstream state it declares
(``upstream_keeps``), and decides exactly as with the upstream's whole state."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import orjson

from tests.consensus.chainkit import Kit
from tests.core.test_service_runtime import Chain, Counter, Mirror, genesis_events, publish
from traco.core.adapters.memory import MemoryBroker, MemoryEventBus
from traco.core.adapters.memory_store import MemoryStateStore
from traco.core.domain import Event, StateView, encode
from traco.core.service_runtime import ServiceRuntime
from traco.core.topics import chain_topics
from traco.services.consensus.audit_replay import ServiceReplay


class NoisyCounter(Counter):
    """The counter also keeps a log entry per addition: state the mirror has no use for."""

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        writes = super().mutate(state, event)
        total = orjson.loads(writes["total"] or b"0")
        return {**writes, f"log/{total:08d}": encode(event.data["n"])}


class FilteredMirror(Mirror):
    upstream_keeps: Mapping[str, tuple[str, ...] | None] = {"counter": ("total",)}


async def test_a_filtered_projection_keeps_only_what_is_declared_and_decides_alike() -> None:
    kit = Kit()
    chain = Chain(kit)
    broker = MemoryBroker()
    bus = MemoryEventBus(broker)
    await bus.start()
    await bus.ensure_topics(chain_topics(kit.chain_id, services=("counter", "mirror")))
    counter = ServiceRuntime(NoisyCounter(), kit.genesis, MemoryStateStore(), bus, genesis_events=genesis_events)
    mirror = ServiceRuntime(
        FilteredMirror(), kit.genesis, MemoryStateStore(), bus, (NoisyCounter(),), genesis_events=genesis_events
    )
    replay = ServiceReplay([NoisyCounter(), Mirror()], {"mirror": ("counter",)}, genesis_events)
    tasks = [asyncio.create_task(r.run()) for r in (counter, mirror)]
    digests = []
    try:
        for n, wanted in ((5, 100), (7, 105), (1, 113)):
            block = chain.block(chain.tx("counter.add", {"n": n}), chain.tx("mirror.check", {"min": wanted}))
            await publish(bus, block)
            digests.append({r.checkpoint.service: r for r in replay.execute(block)}["mirror"].checkpoint.state_digest)
        assert await mirror.wait_for_height(3, 5)
        kept = [key for key, _ in mirror.store.scan("up/counter/")]
        assert kept == ["up/counter/total"]
        assert [key for key, _ in counter.store.scan("log/")]  # the upstream has the log
        assert [mirror.store.state_digest(h) for h in (1, 2, 3)] == digests
        assert [r.code for h in (1, 2, 3) for r in mirror.store.receipts(h)] == ["OK", "OK", "TOO_LOW"]
    finally:
        for task in tasks:
            task.cancel()
