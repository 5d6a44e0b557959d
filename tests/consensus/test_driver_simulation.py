"""The validator's driver (not only the pure machine) in a simulation: four ``Validator``
objects with their real intake, proposals, sync and publisher on one in-memory broker, on an
event loop whose clock is virtual (``looptime``: timeouts, grace periods and back-offs pass
instantly when every task waits), so a run is quick and repeatable.

What it shows: a Byzantine proposer that keeps a pending transaction's id and signature and
changes its payload is refused by the honest validators and the chain seals the genuine
transaction instead; a member whose queued transactions all become invalid after admission
(it is removed) cannot stop the chain; a validator that crashes and restarts from its store
rejoins. Agreement (one block per height everywhere) is checked after every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import looptime
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.consensus.chainkit import Kit
from traco.core.adapters.memory import MemoryBroker, MemoryEventBus
from traco.core.adapters.memory_store import MemoryBlockStore, MemoryStateStore
from traco.core.adapters.signer_file import KeySigner
from traco.core.ports import BusMessage, OutgoingMessage
from traco.core.positions import loop_time
from traco.core.topics import chain_topics, topic
from traco.schemas.tx import TxEnvelope
from traco.services.consensus import machine as m
from traco.services.consensus import wire
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.mempool import Selection
from traco.services.consensus.publisher import Publisher
from traco.services.consensus.sync import BlockSync
from traco.services.consensus.validator import Validator, ValidatorConfig

TIMING = m.TimingConfig(propose_ms=400, prevote_ms=200, precommit_ms=200, delta_ms=100)


def substitute(tx: TxEnvelope) -> TxEnvelope:
    """The same id and signature over another payload: what a Byzantine proposer would seal."""
    return TxEnvelope.model_validate({**tx.model_dump(), "payload": {"digest": "66" * 32, "label": "substituted"}})


class SubstitutingProposer(Validator):
    """Honest in everything but the blocks it builds: those carry substituted payloads."""

    async def _maybe_propose(self) -> None:
        honest = self.mempool.select

        def select(*args: Any, **kwargs: Any) -> Selection:
            chosen = honest(*args, **kwargs)
            return Selection([substitute(tx) for tx in chosen.txs], chosen.refused)

        self.mempool.select = select  # type: ignore[method-assign]
        try:
            await super()._maybe_propose()
        finally:
            self.mempool.select = honest  # type: ignore[method-assign]


class Cluster:
    def __init__(self, kit: Kit, kinds: dict[int, type[Validator]] | None = None) -> None:
        self.kit = kit
        self.broker = MemoryBroker()
        self.kinds = kinds or {}
        self.ledgers = [Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore()) for _ in range(4)]
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.buses: dict[int, MemoryEventBus] = {}
        self.client = MemoryEventBus(self.broker)

    async def start(self) -> None:
        await self.client.start()
        await self.client.ensure_topics(chain_topics(self.kit.chain_id, nodes=[f"n{i}" for i in range(4)]))
        for i in range(4):
            await self.start_validator(i)

    async def start_validator(self, i: int) -> None:
        bus = MemoryEventBus(self.broker)
        await bus.start()
        validator = self.kinds.get(i, Validator)(
            self.kit.genesis,
            self.ledgers[i],
            bus,
            ValidatorConfig(i, KeySigner(self.kit.validator_keys[i]), TIMING, publish_grace_s=0.3),
            node_id=f"n{i}",
        )
        self.buses[i] = bus
        self.tasks[i] = asyncio.create_task(validator.run())

    async def crash(self, i: int) -> None:
        task = self.tasks.pop(i)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self.buses.pop(i).stop()

    async def stop(self) -> None:
        for i in list(self.tasks):
            await self.crash(i)
        await self.client.stop()

    async def submit(self, *txs: TxEnvelope) -> None:
        topic_name = topic(self.kit.chain_id, "tx")
        await self.client.publish_many(
            [OutgoingMessage(topic_name, tx.model_dump_json().encode(), tx.sender.encode()) for tx in txs]
        )

    def sealed(self, i: int = 0) -> set[str]:
        ledger = self.ledgers[i]
        return {tx.tx_id for block in ledger.blocks.blocks(1, ledger.height) for tx in block.txs}

    async def until(self, done: Callable[[], bool], virtual_s: float = 120) -> None:
        async with asyncio.timeout(virtual_s):
            while not done():
                await asyncio.sleep(0.05)

    def check_agreement(self) -> None:
        """One block per height on every validator that has it, and every sealed transaction's
        id is the hash of what it carries (no substituted payload was ever sealed)."""
        top = max(ledger.height for ledger in self.ledgers)
        for height in range(1, top + 1):
            hashes = {h.block_hash() for ledger in self.ledgers if (h := ledger.blocks.header(height)) is not None}
            assert len(hashes) == 1, f"validators disagree at height {height}"
        for ledger in self.ledgers:
            for block in ledger.blocks.blocks(1, ledger.height):
                assert all(tx.id_matches() for tx in block.txs), f"a forged payload was sealed at {block.height}"


def run_virtual(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run ``scenario`` on an event loop whose clock jumps ahead whenever every task waits."""
    loop = looptime.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


def anchors(kit: Kit, member: int, count: int, prefix: str) -> list[TxEnvelope]:
    return [kit.anchor(member, f"{prefix}-{i}") for i in range(count)]


def test_a_proposer_substituting_a_payload_is_refused_and_the_genuine_tx_is_sealed() -> None:
    kit = Kit()
    cluster = Cluster(kit, {0: SubstitutingProposer})
    genuine = anchors(kit, 0, 6, "genuine")

    async def scenario() -> None:
        await cluster.start()
        try:
            await cluster.submit(*genuine)
            wanted = {tx.tx_id for tx in genuine}
            await cluster.until(lambda: all(wanted <= cluster.sealed(i) for i in range(4)))
            cluster.check_agreement()
            proposers = {
                block.header.proposer
                for ledger in cluster.ledgers
                for block in ledger.blocks.blocks(1, ledger.height)
                if block.txs
            }
            byzantine = kit.genesis.validators[0].public_key
            assert byzantine not in proposers  # none of its blocks got a quorum
        finally:
            await cluster.stop()

    run_virtual(scenario)


def test_a_member_whose_queue_becomes_invalid_cannot_stop_the_chain() -> None:
    kit = Kit()
    params = kit.genesis.params.model_copy(update={"max_block_txs": 10})
    kit.genesis = kit.genesis.model_copy(update={"params": params})  # the flood takes 30 blocks
    cluster = Cluster(kit)
    flood = anchors(kit, 0, 300, "flood")
    honest = anchors(kit, 1, 5, "honest")

    removed = flood[0].sender
    sealed_before: set[str] = set()

    def remove_after_first_block(ledger: Ledger) -> None:
        """The council's removal of member 0 takes effect with block 1 on every node (as party's
        state at the end of a height would): wrap each ledger's apply."""
        apply = ledger.apply

        def applying(block: Any) -> Any:
            applied = apply(block)
            if block.height == 1:
                sealed_before.update(tx.tx_id for tx in block.txs)
                for other in cluster.ledgers:
                    members = other.admitted.genesis_members
                    other.admitted.genesis_members = frozenset(k for k in members if k != removed)
            return applied

        ledger.apply = applying  # type: ignore[method-assign]

    for ledger in cluster.ledgers:
        remove_after_first_block(ledger)

    async def scenario() -> None:
        await cluster.start()
        try:
            await cluster.submit(*flood)
            await cluster.until(lambda: len(cluster.sealed()) > 0)
            await cluster.submit(*honest)
            wanted = {tx.tx_id for tx in honest}
            await cluster.until(lambda: all(wanted <= cluster.sealed(i) for i in range(4)))
            cluster.check_agreement()
            sealed_flood = {t for t in cluster.sealed() if t in {tx.tx_id for tx in flood}}
            assert 0 < len(sealed_before) <= 10
            # nothing of the removed member was sealed after block 1: its queue was dropped at
            # proposal time (with refusals), not proposed again and again
            assert sealed_flood == sealed_before
            # and no round was lost to proposals the others had to refuse (the queue is dropped
            # when a block is built, not only by the periodic purge)
            rounds = [b.header.round for b in cluster.ledgers[0].blocks.blocks(1, cluster.ledgers[0].height)]
            assert set(rounds[1:]) == {0}, rounds
        finally:
            await cluster.stop()

    run_virtual(scenario)


def test_a_validator_that_crashes_rejoins_from_its_store_and_all_agree() -> None:
    kit = Kit()
    cluster = Cluster(kit)
    first, second = anchors(kit, 0, 5, "first"), anchors(kit, 1, 5, "second")

    async def scenario() -> None:
        await cluster.start()
        try:
            await cluster.submit(*first)
            await cluster.until(lambda: {tx.tx_id for tx in first} <= cluster.sealed(0))
            await cluster.crash(3)
            await cluster.submit(*second)
            wanted = {tx.tx_id for tx in second}
            await cluster.until(lambda: wanted <= cluster.sealed(0))  # three of four seal
            await cluster.start_validator(3)
            await cluster.until(lambda: cluster.ledgers[3].height >= cluster.ledgers[0].height)
            cluster.check_agreement()
        finally:
            await cluster.stop()

    run_virtual(scenario)


@pytest.mark.parametrize("label", ["a", "b"])
def test_runs_are_repeatable_in_outcome(label: str) -> None:
    """Virtual time: the same scenario seals the same transactions whatever the machine's load."""
    kit = Kit()
    cluster = Cluster(kit)
    txs = anchors(kit, 0, 3, hashlib.sha256(label.encode()).hexdigest()[:8])

    async def scenario() -> None:
        await cluster.start()
        try:
            await cluster.submit(*txs)
            await cluster.until(lambda: {tx.tx_id for tx in txs} <= cluster.sealed(0))
            cluster.check_agreement()
        finally:
            await cluster.stop()

    run_virtual(scenario)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def hostile_bytes() -> st.SearchStrategy[bytes]:
    """Garbage, JSON of any shape, and JSON shaped like the real messages with wrong values."""
    shaped = st.fixed_dictionaries(
        {"type": st.sampled_from(["vote", "proposal", "block_request", "proposal_request", "x"])},
        optional={
            "height": st.integers(-5, 2**64),
            "round": st.integers(-5, 2**64),
            "kind": st.sampled_from(["prevote", "precommit", "other"]),
            "header": JSONISH,
            "txs": st.lists(JSONISH, max_size=3),
            "tx_leaves": st.lists(st.text(max_size=70) | st.just("ab" * 32), max_size=3),
            "block_hash": st.none() | st.text(max_size=70),
            "requester": st.text(max_size=70) | st.just("cd" * 32),
        },
    )
    return (
        st.binary(max_size=300)
        | JSONISH.map(lambda v: json.dumps(v).encode())
        | shaped.map(lambda v: json.dumps(v).encode())
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["tx", "consensus", "blocks"]), hostile_bytes()), min_size=1, max_size=20))
def test_whatever_is_written_to_the_topics_the_chain_keeps_sealing_and_agreeing(
    hostile: list[tuple[str, bytes]],
) -> None:
    kit = Kit()
    cluster = Cluster(kit)
    txs = anchors(kit, 0, 3, "amid-garbage")

    async def scenario() -> None:
        await cluster.start()
        try:
            await cluster.client.publish_many(
                [OutgoingMessage(topic(kit.chain_id, name), value, b"k") for name, value in hostile]
            )
            await cluster.submit(*txs)
            wanted = {tx.tx_id for tx in txs}
            await cluster.until(lambda: all(wanted <= cluster.sealed(i) for i in range(4)))
            cluster.check_agreement()
            assert all(not task.done() for task in cluster.tasks.values())  # no validator stopped
        finally:
            await cluster.stop()

    run_virtual(scenario)


def test_each_block_goes_on_the_blocks_topic_once_when_its_proposer_publishes_it() -> None:
    """The proposer publishes a block; the others publish it only if it has not appeared within
    their grace. A copy that arrives after a validator committed the block itself counts as
    appeared — otherwise every validator republishes every block of a quiet chain, and every
    reader of ``blocks`` (observers, rebuilds, auditors) reads each block four times."""
    kit = Kit()
    cluster = Cluster(kit)
    batches = [anchors(kit, i % 2, 2, f"quiet-{i}") for i in range(3)]

    async def scenario() -> None:
        await cluster.start()
        try:
            for batch in batches:  # one quiet height at a time: the grace runs out between them
                await cluster.submit(*batch)
                await cluster.until(lambda b=batch: {tx.tx_id for tx in b} <= cluster.sealed(0))  # type: ignore[misc]
                await asyncio.sleep(2.0)  # virtual: several graces
            height = min(ledger.height for ledger in cluster.ledgers)
            copies: dict[int, int] = {}
            for partition in cluster.broker.topics[topic(kit.chain_id, "blocks")]:
                for message in partition:
                    claimed = json.loads(message.value)["header"]["height"]
                    copies[claimed] = copies.get(claimed, 0) + 1
            assert height >= 3
            assert {h: copies.get(h, 0) for h in range(1, height + 1)} == dict.fromkeys(range(1, height + 1), 1)
            cluster.check_agreement()
        finally:
            await cluster.stop()

    run_virtual(scenario)


def test_only_a_true_copy_of_a_held_block_counts_as_the_block_on_the_topic() -> None:
    """A validator holding block H that it has not seen on the topic yet publishes it when its
    grace runs out, unless a copy appears first. A copy counts only if it is that block in
    everything but its commit and its commit seals it: a forged copy (no signatures, no
    transactions, or another block's commit) is refused by every reader of the topic, so it
    must not stop this validator from publishing its own."""
    kit = Kit()
    cluster = Cluster(kit)
    txs = anchors(kit, 0, 3, "held")

    async def scenario() -> None:
        await cluster.start()
        try:
            await cluster.submit(*txs)
            await cluster.until(lambda: {tx.tx_id for tx in txs} <= cluster.sealed(1))
            await cluster.until(lambda: cluster.ledgers[1].height >= 2)
        finally:
            await cluster.stop()
        ledger = cluster.ledgers[1]
        held = next(b for b in ledger.blocks.blocks(1, ledger.height) if b.txs)
        other = next(b for b in ledger.blocks.blocks(1, ledger.height) if b.height != held.height)
        topics = wire.Topics(kit.chain_id, "n1")
        forged = {
            "unsigned": held.model_copy(update={"commit": held.commit.model_copy(update={"signatures": ()})}),
            "emptied": held.model_copy(update={"txs": ()}),
            "another block's commit": held.model_copy(update={"commit": other.commit}),
            "one transaction fewer": held.model_copy(update={"txs": held.txs[:-1]}),
        }
        bus = MemoryEventBus(MemoryBroker())
        await bus.start()
        await bus.ensure_topics(chain_topics(kit.chain_id, nodes=["n1"]))
        published: dict[str, bool] = {}
        for name, copy in [*forged.items(), ("the block itself", held)]:
            publisher = Publisher(ledger, bus, topics, grace_s=1.0)
            publisher.pending[held.height] = (loop_time() - 1.0, [OutgoingMessage(topics.blocks, name.encode())], held)

            async def never(*_: Any) -> None:
                raise AssertionError("nothing here is dead-lettered or committed")

            sync = BlockSync(ledger, topics, bus, publisher, "me", never, never)
            await sync.on_message(BusMessage(topics.blocks, 0, 0, None, wire.block_message(topics, copy).value))
            await publisher.on_tick()  # the grace has run out: publish unless the copy was true
            assert held.height not in publisher.pending
        for partition in bus.broker.topics[topics.blocks]:
            for message in partition:
                published[message.value.decode()] = True
        await bus.stop()
        assert published == dict.fromkeys(forged, True)  # each forged copy: this validator published its own

    run_virtual(scenario)
