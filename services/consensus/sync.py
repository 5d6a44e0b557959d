"""A validator's block sync: sealed blocks it did not decide itself (it was down or slow), read
from ``blocks`` (CometBFT's block-sync reactor).

A block from the topic is only a claim: it is applied only when ``Ledger.check_sealed`` accepts
it (a > 2/3 commit of the height's validator set, the header's roots and counts match its
transactions, ``prev_hash`` links, every transaction passes the validity rule). Undecodable
messages are dead-lettered by one validator; decodable blocks that fail the check are logged
and ignored (a late duplicate of an honest block looks the same as a forgery until checked).

A block at or below the tip (most of the topic: what the proposers publish) is recognised by
its header's height alone (``wire.claimed_height``) and skipped without the full decode, since
a decoded one would be ignored just the same; what is not plainly such a claim still goes
through the decoder, and is dead-lettered if it fails. The one use of such a message: a block
this node committed itself and would publish once its grace runs out is handed to the
publisher (``Publisher.copy_seen``), which publishes nothing if a copy turns out to be that
block with a commit that verifies — so a quiet chain's blocks go on the topic once, not once
per validator.

Blocks ahead of the tip wait in a bounded buffer; when the tip stops moving while blocks wait,
the gap is asked for with a ``BlockRequest`` on ``consensus``.

``note`` keeps the highest sealed height seen on the topic (for readiness and the lag metric)
before the blocks of a batch are applied one by one: a node catching up knows how far it has to
go. Only a block whose commit verifies against the current validator set counts, so a forged
height cannot make a node look behind.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from traco.core import metrics
from traco.core.lightclient import verify_commit
from traco.core.ports import BusMessage, EventBus
from traco.core.positions import loop_time
from traco.schemas.block import SealedBlock
from traco.schemas.consensus import BlockRequest
from traco.services.consensus import wire
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.publisher import Publisher

log = logging.getLogger(__name__)

MAX_EARLY_BLOCKS = 1000
"""Blocks ahead of the tip kept while the gap before them is filled."""
NOTE_TRIES = 3
"""Highest-keyed blocks of a batch that ``note`` decodes and checks before giving up on it."""


class BlockSync:
    def __init__(
        self,
        ledger: Ledger,
        topics: wire.Topics,
        bus: EventBus,
        publisher: Publisher,
        me: str,
        dead_letter: Callable[[BusMessage, str], Awaitable[None]],
        commit: Callable[[SealedBlock], Awaitable[None]],
    ) -> None:
        self.ledger = ledger
        self.bus = bus
        self.topics = topics
        self.publisher = publisher
        self.me = me
        self.dead_letter = dead_letter  # writes once, by the validator whose duty it is
        self.commit = commit  # applies a checked block as if this node had decided it
        self.early: dict[int, SealedBlock] = {}
        self.diverged_at: int | None = None  # the height whose results this node computed otherwise
        self.highest_seen = 0  # the highest checked block seen on the topic

    def note(self, batch: Sequence[BusMessage]) -> None:
        """Remember the highest sealed height in ``batch`` (blocks are keyed by height; only the
        few highest are decoded, and only one whose commit verifies counts)."""
        keyed = [(int(m.key), m) for m in batch if m.key is not None and m.key.isdigit() and len(m.key) < 16]
        for height, message in sorted(keyed, key=lambda pair: pair[0], reverse=True)[:NOTE_TRIES]:
            if height <= max(self.highest_seen, self.ledger.height):
                return
            block = wire.decode_block(message.value)
            if isinstance(block, str) or block.height != height:
                continue
            if verify_commit(block.header, block.commit, self.ledger.tip.validators) is None:
                self.highest_seen = height
                return

    async def on_message(self, message: BusMessage) -> None:
        claimed = wire.claimed_height(message.value)
        if claimed is not None and claimed <= self.ledger.height:
            self.publisher.copy_seen(claimed, message.value)
            return  # a block of a height this node holds: decoded, it would be ignored just the same
        decoded = wire.decode_block(message.value)
        if isinstance(decoded, str):
            await self.dead_letter(message, decoded)
            return
        if decoded.height <= self.ledger.height:
            return
        if decoded.height == self.ledger.height + 1:
            await self.try_apply(decoded, message)
        elif len(self.early) < MAX_EARLY_BLOCKS or decoded.height < max(self.early):
            self.early[decoded.height] = decoded
            if len(self.early) > MAX_EARLY_BLOCKS:
                del self.early[max(self.early)]

    async def try_apply(self, block: SealedBlock, message: BusMessage | None = None) -> bool:
        problem = self.ledger.check_sealed(block)
        if problem and "last_results_root" in problem and block.height > 1:
            await self._diverged(block, message)
            return False
        if problem:
            log.warning("ignoring block %d from the blocks topic: %s", block.height, problem)
            return False
        log.info("syncing block %d from the blocks topic", block.height)
        self.publisher.saw_block(block.height)
        await self.commit(block)
        return True

    async def _diverged(self, block: SealedBlock, message: BusMessage | None) -> None:
        """A block whose commit verifies but whose header commits to other results of the block
        before than this node computed: this node's services diverge from the chain. Said once,
        loudly (log, dead letter); the node stops here instead of forking."""
        height = block.height - 1
        if self.diverged_at == height:
            return
        self.diverged_at = height
        metrics.DIVERGENCES.add(1)
        reason = (
            f"results diverge: block {block.height}, sealed by the validators, commits to results of block "
            f"{height} that differ from this node's own ({self.ledger.tip.results_root}); this node stops at "
            f"{height} until its service stores are rebuilt from the blocks"
        )
        log.critical(reason)
        if message is not None:
            await self.dead_letter(message, reason)

    async def apply_early(self) -> None:
        """Blocks that arrived early, now that the tip has moved."""
        while (block := self.early.pop(self.ledger.height + 1, None)) is not None:
            await self.try_apply(block)
        self.early = {h: b for h, b in self.early.items() if h > self.ledger.height}

    async def request_gap(self, stalled_s: float, last_progress: float) -> bool:
        """Ask validators to republish the blocks between the tip and the early ones; True if asked."""
        if not self.early or loop_time() - last_progress <= stalled_s:
            return False
        request = BlockRequest(from_height=self.ledger.height + 1, to_height=min(self.early) - 1, requester=self.me)
        if request.to_height < request.from_height:
            return False
        await self.bus.publish(wire.consensus_message(self.topics, request))
        return True
