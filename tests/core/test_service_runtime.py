"""The service runtime: height order, upstream checkpoints, one transaction per block, restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
import pytest

from tests.consensus.chainkit import Kit
from traco.core import crypto
from traco.core.adapters.memory import MemoryBroker, MemoryEventBus
from traco.core.adapters.memory_store import MemoryStateStore
from traco.core.domain import Accepted, Event, Outcome, Rejected, StateView, TxContext, encode
from traco.core.ports import OutgoingMessage
from traco.core.service_runtime import ServiceRuntime
from traco.core.topics import chain_topics, topic
from traco.schemas.block import SealedBlock
from traco.schemas.tx import sign_tx
from traco.services.consensus import rules


class Counter:
    """Upstream toy service: ``counter.add {n}`` adds to a total."""

    service = "counter"
    kinds = frozenset({"counter.add"})

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
        n = tx.payload.get("n")
        if not isinstance(n, int) or n <= 0:
            return Rejected("INVALID_PAYLOAD", "n: a positive integer")
        return Accepted((Event("Added", "total", {"n": n}),), {"n": n})

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        total = orjson.loads(state.get("total") or b"0")
        return {"total": encode(total + event.data["n"])}


class Mirror:
    """Downstream toy service: ``mirror.check {min}`` passes when the counter's total (as of the
    previous block) is at least ``min`` — the rule that makes upstream ordering visible."""

    service = "mirror"
    kinds = frozenset({"mirror.check"})

    def execute(self, state: StateView, upstream: Mapping[str, StateView], tx: TxContext) -> Outcome:
        total = orjson.loads(upstream["counter"].get("total") or b"0")
        if total < tx.payload["min"]:
            return Rejected("TOO_LOW", f"counter total is {total}")
        return Accepted((Event("Seen", "seen", {"total": total}),), {"total": total})

    def mutate(self, state: StateView, event: Event) -> dict[str, bytes | None]:
        return {"seen": encode(event.data["total"])}


def genesis_events(service: str) -> list[Event]:
    return [Event("Added", "total", {"n": 100})] if service == "counter" else []


class Chain:
    """A correctly sealed chain of blocks carrying toy transactions."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self.tip = rules.genesis_tip(kit.genesis)
        self.nonce = 0

    def tx(self, kind: str, payload: dict[str, Any]) -> Any:
        self.nonce += 1
        return sign_tx(self.kit.member_keys[0], self.kit.chain_id, kind, self.nonce, payload)

    def block(self, *txs: Any, keys: list[bytes] | None = None, announce: list[bytes] | None = None) -> SealedBlock:
        """The next block, sealed by ``keys`` (default: the genesis validators); ``announce``
        hands the chain over to a validator set of those keys from the next height on."""
        upcoming = None if announce is None else self.kit.power_set(announce)
        block = self.kit.seal(self.tip, list(txs), keys=keys, next_validators=upcoming)
        self.tip = replace(
            self.tip,
            height=block.height,
            block_hash=block.block_hash(),
            time=block.header.time,
            validators=block.next_validators or self.tip.validators,
        )
        return block


async def publish(bus: MemoryEventBus, block: SealedBlock) -> None:
    await bus.publish(OutgoingMessage(topic(block.header.chain_id, "blocks"), block.model_dump_json().encode(), b"k"))


@pytest.fixture
def kit() -> Kit:
    return Kit()


async def start(
    kit: Kit, broker: MemoryBroker, domain: Any, store: MemoryStateStore, upstream: tuple[Any, ...] = ()
) -> tuple[ServiceRuntime, asyncio.Task[None]]:
    bus = MemoryEventBus(broker)
    await bus.start()
    await bus.ensure_topics(chain_topics(kit.chain_id, services=("counter", "mirror")))
    runtime = ServiceRuntime(domain, kit.genesis, store, bus, upstream, genesis_events)
    return runtime, asyncio.create_task(runtime.run())


async def test_downstream_sees_upstream_state_as_of_the_previous_block(kit: Kit) -> None:
    broker = MemoryBroker()
    chain = Chain(kit)
    counter, counter_task = await start(kit, broker, Counter(), MemoryStateStore())
    mirror, mirror_task = await start(kit, broker, Mirror(), MemoryStateStore(), (Counter(),))
    feeder = MemoryEventBus(broker)
    await feeder.start()
    try:
        # block 1: add 5 and, in the same block, check for 105: the mirror must not see it yet
        await publish(feeder, chain.block(chain.tx("counter.add", {"n": 5}), chain.tx("mirror.check", {"min": 105})))
        await publish(feeder, chain.block(chain.tx("mirror.check", {"min": 105})))
        await publish(feeder, chain.block(chain.tx("counter.add", {"n": -1})))
        assert await mirror.wait_for_height(3, 5) and await counter.wait_for_height(3, 5)
        codes = [r.code for h in (1, 2) for r in mirror.store.receipts(h)]
        assert codes == ["TOO_LOW", "OK"]  # genesis 100 at height 1's view; 105 after block 1
        assert [r.code for r in counter.store.receipts(3)] == ["INVALID_PAYLOAD"]
        assert orjson.loads(counter.store.get("total") or b"") == 105
        assert mirror.store.state_digest(3) is not None
    finally:
        for task in (counter_task, mirror_task):
            task.cancel()


async def test_restart_and_rebuild_arrive_at_the_same_digests(kit: Kit) -> None:
    broker = MemoryBroker()
    chain = Chain(kit)
    feeder = MemoryEventBus(broker)
    await feeder.start()
    _counter, counter_task = await start(kit, broker, Counter(), MemoryStateStore())
    kept = MemoryStateStore()
    mirror, mirror_task = await start(kit, broker, Mirror(), kept, (Counter(),))
    for i in range(4):
        await publish(
            feeder, chain.block(chain.tx("counter.add", {"n": i + 1}), chain.tx("mirror.check", {"min": 100}))
        )
    assert await mirror.wait_for_height(4, 5)
    mirror_task.cancel()
    for _ in range(2):
        await publish(feeder, chain.block(chain.tx("mirror.check", {"min": 110})))
    restarted, restarted_task = await start(kit, broker, Mirror(), kept, (Counter(),))
    fresh, fresh_task = await start(kit, broker, Mirror(), MemoryStateStore(), (Counter(),))
    try:
        assert await restarted.wait_for_height(6, 5) and await fresh.wait_for_height(6, 5)
        digests = [kept.state_digest(h) for h in range(1, 7)]
        assert digests == [fresh.store.state_digest(h) for h in range(1, 7)]
        assert [r.code for r in fresh.store.receipts(6)] == ["OK"]
    finally:
        for task in (counter_task, restarted_task, fresh_task):
            task.cancel()


async def test_blocks_without_a_valid_commit_or_link_are_refused(kit: Kit) -> None:
    broker = MemoryBroker()
    chain = Chain(kit)
    feeder = MemoryEventBus(broker)
    await feeder.start()
    counter, task = await start(kit, broker, Counter(), MemoryStateStore())
    try:
        good = chain.block(chain.tx("counter.add", {"n": 1}))
        weak = good.model_copy(
            update={"commit": good.commit.model_copy(update={"signatures": good.commit.signatures[:2]})}
        )
        await publish(feeder, weak)
        await asyncio.sleep(0.05)
        assert counter.height == 0
        await publish(feeder, good)
        assert await counter.wait_for_height(1, 5)
        stranger = Chain(Kit())
        await publish(feeder, stranger.block())
        await asyncio.sleep(0.05)
        assert counter.height == 1
    finally:
        task.cancel()


async def test_a_service_follows_an_announced_validator_set_across_a_restart(kit: Kit) -> None:
    broker = MemoryBroker()
    chain = Chain(kit)
    feeder = MemoryEventBus(broker)
    await feeder.start()
    successors = [crypto.generate_private_key() for _ in range(4)]
    kept = MemoryStateStore()
    counter, task = await start(kit, broker, Counter(), kept)
    await publish(feeder, chain.block(chain.tx("counter.add", {"n": 1}), announce=successors))
    await publish(feeder, chain.block(chain.tx("counter.add", {"n": 2}), keys=successors[:3]))
    assert await counter.wait_for_height(2, 5)
    task.cancel()
    restarted, restarted_task = await start(kit, broker, Counter(), kept)
    try:
        by_old_set = chain.kit.seal(chain.tip, [chain.tx("counter.add", {"n": 90})])
        await publish(feeder, by_old_set)
        assert not await restarted.wait_for_height(3, 0.5)
        await publish(feeder, chain.block(chain.tx("counter.add", {"n": 3}), keys=successors[1:]))
        assert await restarted.wait_for_height(3, 5)
        assert orjson.loads(kept.get("total") or b"") == 106
        assert restarted.validators == kit.power_set(successors)
    finally:
        restarted_task.cancel()
