"""Compact proposals: a proposal names its transactions by Merkle leaf hash, and each validator
takes them from its own mempool (decision 0008).

Why: every validator already holds nearly every transaction of a proposal (they all read the
``tx`` topic), yet decoding a full proposal — every envelope again, through the model — was a
fifth of a validator's CPU, and the proposal's bytes crossed the broker once per reader. A
compact proposal carries the header, the signature and one 32-byte hash per transaction: the
hash of the whole envelope as ``tx_root`` hashes it (signature included, never the tx id
alone), so the transactions taken from the mempool are exactly the bytes the header commits
to, and the usual check (``proposals.check``: ``tx_root``, validity, nonces) runs on them.

What if a validator lacks some: it first admits the transaction batches already queued behind
the proposal (``Inbox.drain_txs``), then keeps the proposal here and asks the proposer for the
full one (``ProposalRequest``); it tries again after every transaction batch and asks again
every ``REQUEST_AGAIN_S``. Until then it has simply not received the proposal: the round's
timeout covers a proposer that never answers, as it covers one that never proposed.
"""

from __future__ import annotations

from traco.core.bounded import trim_oldest
from traco.schemas.consensus import ProposalMessage, ProposalRequest
from traco.services.consensus.mempool import Mempool

REQUEST_AGAIN_S = 1.0
"""How often a validator asks again for a proposal it still cannot complete."""
ANSWER_EVERY_S = 0.2
"""How often a proposer answers requests for one proposal (many validators may ask at once)."""
MAX_INCOMPLETE = 16
"""Compact proposals kept while their transactions are missing (the oldest go first)."""


def resolve(proposal: ProposalMessage, mempool: Mempool) -> ProposalMessage | None:
    """The full proposal, with the transactions its leaf hashes name taken from ``mempool``;
    the proposal itself if it is full; None while any is missing."""
    if not proposal.compact:
        return proposal
    txs = []
    for leaf in proposal.tx_leaves:
        tx = mempool.by_leaf(leaf)
        if tx is None:
            return None
        txs.append(tx)
    return proposal.model_copy(update={"txs": tuple(txs), "tx_leaves": ()})


class CompactProposals:
    """A validator's bookkeeping of compact proposals: those it waits to complete, and its own
    (full) to answer requests with."""

    def __init__(self, me: str) -> None:
        self.me = me
        self.incomplete: dict[str, tuple[ProposalMessage, float]] = {}
        self.own: dict[str, ProposalMessage] = {}
        self._answered: dict[str, float] = {}

    def wait_for(self, proposal: ProposalMessage, now: float) -> ProposalRequest | None:
        """Keep ``proposal`` until its transactions are here; the request to send for it (None
        if it was asked for less than ``REQUEST_AGAIN_S`` ago)."""
        key = proposal.block_hash
        previous = self.incomplete.get(key)
        if previous is not None and now - previous[1] < REQUEST_AGAIN_S:
            return None
        self.incomplete[key] = (proposal, now)
        trim_oldest(self.incomplete, MAX_INCOMPLETE)
        return ProposalRequest(height=proposal.height, round=proposal.round, block_hash=key, requester=self.me)

    def stale(self, now: float) -> list[ProposalRequest]:
        """Requests to repeat for proposals still incomplete after ``REQUEST_AGAIN_S``."""
        return [r for proposal, _ in list(self.incomplete.values()) if (r := self.wait_for(proposal, now)) is not None]

    def take_completed(self, mempool: Mempool) -> list[ProposalMessage]:
        """The kept proposals whose transactions have all arrived, now full (no longer kept)."""
        done: list[ProposalMessage] = []
        for key, (proposal, _) in list(self.incomplete.items()):
            full = resolve(proposal, mempool)
            if full is not None:
                del self.incomplete[key]
                done.append(full)
        return done

    def answer(self, request: ProposalRequest, now: float) -> ProposalMessage | None:
        """This validator's own full proposal that ``request`` asks for (None if it is not ours,
        or was sent less than ``ANSWER_EVERY_S`` ago)."""
        full = self.own.get(request.block_hash)
        if full is None or now - self._answered.get(request.block_hash, -ANSWER_EVERY_S) < ANSWER_EVERY_S:
            return None
        self._answered[request.block_hash] = now
        return full

    def forget(self, height: int) -> None:
        """Drop everything of heights up to ``height`` (committed)."""
        self.incomplete = {k: v for k, v in self.incomplete.items() if v[0].height > height}
        self.own = {k: v for k, v in self.own.items() if v.height > height}
        self._answered = {k: v for k, v in self._answered.items() if k in self.own}


__all__ = ["ANSWER_EVERY_S", "MAX_INCOMPLETE", "REQUEST_AGAIN_S", "CompactProposals", "resolve"]
