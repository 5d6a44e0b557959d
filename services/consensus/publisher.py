"""A validator's publishing: sealed blocks and their chain outputs onto ``blocks``, ``receipts``
and ``events.chain`` (architecture: Topics), and republishing what a broker lost.

- The proposer of the deciding round publishes the sealed block at once; every other validator
  that decided holds its outputs for ``grace_s`` and publishes them only if the block has not
  shown up on ``blocks`` by then, so a proposer that crashes right after deciding loses nothing.
  Duplicates are harmless: readers dedupe by height.
- After a broker restart the ``blocks`` topic may be behind the block store: ``fill_topic``
  republishes from the store (validators wait a little by index, so normally one does it).
- A ``BlockRequest`` on ``consensus`` (a reader found a gap) is answered from the store, at most
  once every two seconds per starting height.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from traco.core.lightclient import verify_commit
from traco.core.ports import EventBus, OutgoingMessage
from traco.core.positions import last_message, loop_time
from traco.schemas.block import SealedBlock
from traco.schemas.consensus import BlockRequest
from traco.services.consensus import wire
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.rules import BlockResult

log = logging.getLogger(__name__)

MAX_ANSWERED_BLOCKS = 200
"""The most blocks one ``BlockRequest`` gets republished."""
MAX_COPIES_KEPT = 4
"""Messages kept per pending height to check as copies (more are forgeries or duplicates: a
flood of forgeries can only make this validator publish its own copy, never stop it)."""


class Publisher:
    def __init__(
        self, ledger: Ledger, bus: EventBus, topics: wire.Topics, grace_s: float, own_outputs: bool = False
    ) -> None:
        """``own_outputs``: this validator belongs to a node, whose chain receipts and events go
        to its own topics at every commit (the block itself is still published once)."""
        self.own_outputs = own_outputs
        self.ledger = ledger
        self.bus = bus
        self.topics = topics
        self.grace_s = grace_s
        self.topic_height = 0  # the highest block seen on (or put on) the blocks topic
        self.pending: dict[int, tuple[float, list[OutgoingMessage], SealedBlock]] = {}
        self.copies: dict[int, list[bytes]] = {}  # messages claiming a pending height (copy_seen)
        self.answered: dict[int, float] = {}

    def copy_seen(self, height: int, raw: bytes) -> None:
        """A message on ``blocks`` claims ``height``, a block this validator holds: if it waits to
        publish that block, keep the message (a few per height) to be checked when its grace
        runs out — most waits end sooner (a later block of its own goes out), and a check
        decodes the whole block."""
        if height in self.pending:
            kept = self.copies.setdefault(height, [])
            if len(kept) < MAX_COPIES_KEPT:
                kept.append(raw)

    def _true_copy(self, block: SealedBlock, raw: bytes) -> bool:
        """Whether ``raw`` is ``block`` in everything but its commit, with a commit that seals
        it. A copy with another body, or a commit that does not verify, is refused by every
        reader of the topic, so it does not count as the block being there."""
        copy = wire.decode_block(raw)
        if isinstance(copy, str) or copy.model_copy(update={"commit": block.commit}) != block:
            return False
        return verify_commit(copy.header, copy.commit, self.ledger.validators_at(block.height)) is None

    def saw_block(self, height: int) -> None:
        """A block of ``height`` is on the topic: nobody needs to publish it again."""
        self.topic_height = max(self.topic_height, height)
        self.pending.pop(height, None)
        self.copies.pop(height, None)

    async def committed(
        self, block: SealedBlock, result: BlockResult, traces: Mapping[str, bytes], publish_now: bool
    ) -> None:
        if self.own_outputs:
            # a node writes its own chain outputs every time; only the block is shared
            await self.bus.publish_many(
                wire.chain_outputs(self.topics, block, result.receipts, result.events, result.checkpoint, traces)
            )
            outputs = [wire.block_message(self.topics, block)]
        else:
            outputs = wire.block_outputs(self.topics, block, result.receipts, result.events, result.checkpoint, traces)
        if publish_now:
            await self.bus.publish_many(outputs)
            self.topic_height = max(self.topic_height, block.height)
        elif self.topic_height < block.height:
            self.pending[block.height] = (loop_time() + self.grace_s, outputs, block)

    async def on_tick(self) -> None:
        now = loop_time()
        for height, (deadline, outputs, block) in list(self.pending.items()):
            if height <= self.topic_height:
                del self.pending[height]
                self.copies.pop(height, None)
            elif now >= deadline:
                if any(self._true_copy(block, raw) for raw in self.copies.get(height, ())):
                    self.saw_block(height)  # a true copy is there: the block has been seen
                    continue
                del self.pending[height]
                self.copies.pop(height, None)
                log.info("proposer did not publish block %d; publishing it", height)
                await self.bus.publish_many(outputs)

    async def fill_topic(self, index: int) -> None:
        """Republish the blocks the topic lacks after a broker restart."""
        await asyncio.sleep(0.5 * index)
        last = await self._last_good_height()
        self.topic_height = max(self.topic_height, last)
        if last < self.ledger.height:
            log.info("republishing blocks %d..%d to %s", last + 1, self.ledger.height, self.topics.blocks)
            await self.republish(last + 1, self.ledger.height)

    async def _last_good_height(self) -> int:
        """The height the ``blocks`` topic reaches, judged by its last message: a block this node
        holds counts only if it is the same block (a forged last message must not stop the
        republishing); one beyond this node's tip means others have more to give."""
        message = await last_message(self.bus, self.topics.blocks)
        decoded = wire.decode_block(message.value) if message is not None else None
        if decoded is None or isinstance(decoded, str):
            return 0
        if decoded.height > self.ledger.height:
            return self.ledger.height
        stored = self.ledger.blocks.header(decoded.height)
        return decoded.height if stored is not None and stored.block_hash() == decoded.block_hash() else 0

    async def republish(self, start: int, end: int) -> None:
        batch: list[OutgoingMessage] = []
        for block in self.ledger.blocks.blocks(start, end):
            if self.own_outputs:
                batch.append(wire.block_message(self.topics, block))
            else:
                receipts, checkpoints = self.ledger.chain_results(block.height)
                events = self.ledger.state.events(block.height)
                batch += wire.block_outputs(self.topics, block, receipts, events, checkpoints[0])
            if len(batch) >= 500:
                await self.bus.publish_many(batch)
                batch = []
        if batch:
            await self.bus.publish_many(batch)

    async def answer(self, request: BlockRequest) -> None:
        end = min(request.to_height, self.ledger.height, request.from_height + MAX_ANSWERED_BLOCKS - 1)
        if request.from_height > end:
            return
        now = loop_time()
        if self.answered.get(request.from_height, 0.0) > now - 2.0:
            return  # already answered this gap a moment ago
        self.answered = {h: t for h, t in self.answered.items() if t > now - 2.0}
        self.answered[request.from_height] = now
        await self.republish(request.from_height, end)
