"""A follower: a non-voting node that keeps its own verified copy of the chain.

The consensus HTTP API runs on one. It reads ``blocks`` in height order, checks each block's
commit against the validator set (the light-client check) before storing it, and executes the
chain's kinds itself, so its receipts and proofs never depend on trusting the broker. It also
records the refusal receipts validators write for transactions that never reached a block.

Heights, not offsets, are its position: a gap in ``blocks`` (a lost message, a new broker) is
noticed, and it asks the validators to republish the missing heights.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence

from traco.core.ports import BusMessage, EventBus
from traco.core.positions import wait_for_height, watch_for_gaps
from traco.core.supervise import run_all, supervised
from traco.core.topics import node_topic, topic
from traco.schemas.block import SealedBlock
from traco.services.consensus import wire
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.results import offer_results

log = logging.getLogger(__name__)


class Follower:
    def __init__(self, ledger: Ledger, bus: EventBus, name: str = "follower", node_id: str | None = None) -> None:
        """With ``node_id``, it serves that node: reads the node's own topics (and the ledger
        should trust only that node's signed checkpoints, ``Ledger.trust_node``)."""
        self.ledger = ledger
        self.bus = bus
        self.name = name
        self.node_id = node_id
        self.topics = wire.Topics(ledger.genesis.chain_id, node_id)
        self.early: dict[int, SealedBlock] = {}
        self.rejected_blocks = 0
        self.new_height = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        """Follow until cancelled; every reader supervised (restart with back-off, an error out
        of ``run`` when one keeps failing)."""
        loop = asyncio.get_running_loop()
        chain = self.ledger.genesis.chain_id

        def events(service: str) -> str:
            name = f"events.{service}"
            return node_topic(chain, self.node_id, name) if self.node_id is not None else topic(chain, name)

        def gaps() -> Awaitable[None]:
            return watch_for_gaps(self.bus, self.topics.consensus, self.name, self._gap)

        readers: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("blocks reader", self._follow_blocks),
            ("receipts reader", self._follow_receipts),
            ("gap watcher", gaps),
        ]
        readers += [
            (f"{s} checkpoints reader", functools.partial(self._follow_checkpoints, events(s)))
            for s in self.ledger.services
        ]
        self._tasks = [loop.create_task(supervised(f"{self.name}: {name}", make)) for name, make in readers]
        await run_all(self._tasks)

    async def _follow_blocks(self) -> None:
        async for batch in self.bus.consume(self.topics.blocks, start="earliest"):
            await self.on_blocks(batch)

    async def on_blocks(self, batch: Sequence[BusMessage]) -> None:
        advanced = False
        for message in batch:
            block = wire.decode_block(message.value)
            if isinstance(block, str):
                log.warning("undecodable message on %s at %d: %s", message.topic, message.offset, block)
                continue
            if block.height <= self.ledger.height:
                continue
            if block.height > self.ledger.height + 1:
                if len(self.early) < 5000:
                    self.early[block.height] = block
                continue
            advanced |= self._apply(block)
            while (nxt := self.early.pop(self.ledger.height + 1, None)) is not None:
                advanced |= self._apply(nxt)
        if advanced:
            self.early = {h: b for h, b in self.early.items() if h > self.ledger.height}
            async with self.new_height:
                self.new_height.notify_all()

    def _apply(self, block: SealedBlock) -> bool:
        problem = self.ledger.check_sealed(block)
        if problem:
            self.rejected_blocks += 1
            log.warning("refusing block %d: %s", block.height, problem)
            return False
        self.ledger.apply(block)
        self.ledger.admitted.at_time(block.header.time)
        self.ledger.admitted.advance(self.ledger.height)
        return True

    async def _follow_receipts(self) -> None:
        async for batch in self.bus.consume(self.topics.receipts, start="earliest"):
            if self.ledger.services:
                offer_results(self.ledger, "receipts", batch)  # the services' sealed receipts
            for message in batch:
                if b'"height":null' not in message.value:
                    continue  # a sealed receipt: the chain's are computed here, services' offered above
                receipt = wire.decode_receipt(message.value)
                if isinstance(receipt, str) or receipt.height is not None:
                    continue
                self.ledger.state.put_rejection(receipt)

    async def _follow_checkpoints(self, events_topic: str) -> None:
        follows_party = events_topic.endswith(".events.party")
        async for batch in self.bus.consume(events_topic, start="earliest"):
            if follows_party:  # the API refuses non-members as the validators would
                self.ledger.admitted.offer(batch, self.ledger.height)
            offer_results(self.ledger, "checkpoints", batch)

    def _gap(self) -> tuple[int, int] | None:
        """Heights missing between the stored chain and the blocks that arrived early."""
        return (self.ledger.height + 1, min(self.early) - 1) if self.early else None

    async def wait_for_height(self, height: int, timeout: float) -> bool:
        """Wait until the follower has stored ``height`` (False on timeout)."""
        return await wait_for_height(self.new_height, lambda: self.ledger.height, height, timeout)
