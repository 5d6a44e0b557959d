"""A node's copy of the sealed chain: block store + chain state, and how a sealed block is
checked and applied. Shared by validators (which also vote) and followers (which serve the API).

Applying block H is: store the block, execute the chain's own kinds, commit state, receipts,
events and the new height in one storage transaction. If a node stops between the two writes,
it re-executes the stored blocks on start, so the state never lags the block store for long
and never differs from a fresh replay.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from traco.core.lightclient import next_validators, verify_commit
from traco.core.ports import BlockStore, StateBatch, StateStore
from traco.schemas.block import SealedBlock
from traco.schemas.events import BlockProcessed
from traco.schemas.genesis import Genesis, ValidatorPower, validator_set
from traco.schemas.receipt import Receipt
from traco.services.consensus import rules, validity
from traco.services.consensus.admission import Admission
from traco.services.consensus.results import PendingResults, decode_results, encode_results
from traco.services.consensus.rules import BlockResult, ChainTip

log = logging.getLogger(__name__)


@dataclass
class Applied:
    block: SealedBlock
    result: BlockResult


class Ledger:
    """The chain as one node holds it."""

    def __init__(self, genesis: Genesis, blocks: BlockStore, state: StateStore) -> None:
        self.genesis = genesis
        self.blocks = blocks
        self.state = state
        self.admitted = Admission(genesis)
        self.trusted_node: tuple[str, str] | None = None
        self.services = genesis.params.services
        self.pending: dict[int, PendingResults] = {}
        self._kinds: tuple[tuple[int, int], frozenset[str]] | None = None
        self.early: dict[int, list[Receipt | BlockProcessed]] = {}
        self._nonces: dict[str, int] = {}
        self.execution_cpu = 0.0
        """Thread CPU seconds spent executing the chain's own kinds and committing their state
        (``_execute``): the chain's part of a block, reported apart from the validator's
        (``traco_service_cpu{service="chain"}``), as each service replica's is."""
        self._catch_up_state()
        self.tip = self._load_tip()

    def trust_node(self, node_id: str, public_key: str) -> None:
        """Take the services' results (and party's state for admission) only from checkpoints
        that node ``node_id`` signed: the layout where a node's validator, services and API run
        as separate processes (architecture: Nodes)."""
        self.trusted_node = (node_id, public_key)
        self.admitted.trust_node(self.genesis.chain_id, node_id, public_key)

    # ------------------------------------------------------------------ reads

    def services_at(self, height: int) -> tuple[str, ...]:
        """The services whose results block ``height`` has (genesis's, then those activated by
        an upgrade by then), in the order the results root lists their checkpoints."""
        return self.admitted.services_at(self.services, height) if self.services else ()

    def kinds_at(self, height: int) -> frozenset[str]:
        """The transaction kinds a block at ``height`` may carry: the genesis's, and every kind
        of each service an upgrade touched by then (activated it, or moved its rules to a new
        version, which is how new kinds of an existing service arrive).

        Asked for every transaction admitted, so it is kept per (height, party height): the
        schedule changes only when party executes a block."""
        key = (height, self.admitted.party_height)
        if self._kinds is not None and self._kinds[0] == key:
            return self._kinds[1]
        kinds = set(self.genesis.params.kinds)
        upgraded = self.admitted.upgraded_services(self.services, height) if self.services else ()
        if upgraded:
            from traco.services import registry

            kinds.update(registry.kinds([s for s in upgraded if s in registry.ORDER]))
        self._kinds = (key, frozenset(kinds))
        return self._kinds[1]

    @property
    def height(self) -> int:
        return self.tip.height

    def chain_nonce(self, sender: str) -> int:
        """Last sealed nonce of ``sender``; cached, since the mempool asks for it constantly."""
        nonce = self._nonces.get(sender)
        if nonce is None:
            nonce = self._nonces[sender] = rules.read_nonce(self.state.get, sender)
        return nonce

    def is_sealed(self, tx_id: str) -> bool:
        return self.blocks.tx_location(tx_id) is not None

    def checkpoint(self, height: int) -> BlockProcessed | None:
        digest = self.state.state_digest(height)
        if digest is None:
            return None
        return BlockProcessed(service=rules.CHAIN_SERVICE, height=height, state_digest=digest)

    def chain_results(self, height: int) -> tuple[list[Receipt], list[BlockProcessed]]:
        """The chain's own part of a block's results (what the chain publishes)."""
        checkpoint = self.checkpoint(height)
        return self.state.receipts(height), [checkpoint] if checkpoint else []

    def results(self, height: int) -> tuple[list[Receipt], list[BlockProcessed]] | None:
        """What header ``height + 1`` commits to in ``last_results_root`` (None while the
        executing services' part has not arrived)."""
        if not self.services:
            return self.chain_results(height)
        raw = self.state.get_meta(f"results/{height}")
        if raw is None:
            return None
        return decode_results(raw)

    def receipt(self, tx_id: str) -> Receipt | None:
        """A transaction's receipt: the chain's, a service's (from the block's results), or a
        refusal before ordering."""
        found = self.state.receipt(tx_id)
        if found is not None and (found.height is not None or not self.services):
            return found
        location = self.blocks.tx_location(tx_id)
        results = self.results(location[0]) if location else None
        if results is not None:
            for receipt in results[0]:
                if receipt.tx_id == tx_id:
                    return receipt
        return found

    # ------------------------------------------------------------------ services' results

    def offer_receipt(self, receipt: Receipt) -> bool:
        """A service's receipt from the receipts topic; True if it completed the tip's results."""
        height = receipt.height or 0
        pending = self.pending.get(height)
        if pending is None:
            self._stash(height, receipt)
            return False
        return pending.offer_receipt(receipt) and self._maybe_complete(pending)

    def offer_checkpoint(self, checkpoint: BlockProcessed) -> bool:
        """A service's ``BlockProcessed``; True if it completed the tip's results."""
        pending = self.pending.get(checkpoint.height)
        if pending is None:
            self._stash(checkpoint.height, checkpoint)
            return False
        return pending.offer_checkpoint(checkpoint) and self._maybe_complete(pending)

    def _stash(self, height: int, item: Receipt | BlockProcessed) -> None:
        """Results that arrive before this node has applied their block (it is lagging)."""
        if self.tip.height < height <= self.tip.height + 1000 and len(self.early) < 100_000:
            self.early.setdefault(height, []).append(item)

    def _replay_early(self, pending: PendingResults) -> None:
        for item in self.early.pop(pending.height, []):
            if isinstance(item, Receipt):
                pending.offer_receipt(item)
            else:
                pending.offer_checkpoint(item)
        self.early = {h: items for h, items in self.early.items() if h > pending.height}

    def _maybe_complete(self, pending: PendingResults) -> bool:
        if not pending.complete:
            return False
        receipts, checkpoints = pending.leaves()
        # Not fsynced: the node recomputes a height's results from its services' stores on
        # restart, and the next vote's durable write syncs this one too.
        self.state.set_meta(f"results/{pending.height}", encode_results(receipts, checkpoints), durable=False)
        del self.pending[pending.height]
        if pending.height != self.tip.height:
            return False
        self.tip = replace(self.tip, results_root=pending.root())
        return True

    def waiting_for(self) -> str | None:
        """What the tip's results still lack (None when complete)."""
        pending = self.pending.get(self.tip.height)
        return pending.missing() if pending and self.tip.results_root is None else None

    # ------------------------------------------------------------------ writes

    def check_sealed(self, block: SealedBlock, verify_tx_signatures: bool = False) -> str | None:
        """Why ``block`` cannot be the next block of this chain (None if it can).

        The transactions pass the one validity rule (``validity.check_tx``); a commit of > 2/3
        of the validators vouches for admission and for the signatures (the honest validators
        among the signers checked them), so those are rechecked only with
        ``verify_tx_signatures`` (replaying auditors).
        """
        if block.height != self.tip.height + 1:
            return f"block {block.height} does not follow height {self.tip.height}"
        problem = verify_commit(block.header, block.commit, self.tip.validators)
        if problem:
            return problem
        upcoming = next_validators(block.header, block.next_validators, self.tip.validators)
        if isinstance(upcoming, str):
            return upcoming
        # Without the services' results of the tip yet, the commit of > 2/3 vouches for the root.
        problem = rules.check_header(
            self.genesis,
            self.tip,
            block.header,
            block.txs,
            now_ms=None,
            check_results=self.tip.results_root is not None,
        )
        if problem:
            return problem
        return validity.check_block_txs(
            self.genesis,
            validity.Everyone(),
            block.txs,
            self.chain_nonce,
            self.is_sealed,
            validity.SignatureCache() if verify_tx_signatures else validity.Vouched(),
            self.kinds_at(block.height),
        )

    def apply(self, block: SealedBlock) -> Applied:
        """Store and execute the next sealed block (already checked by the caller)."""
        self.blocks.put_block(block)
        result = self._execute(block)
        for tx in block.txs:
            self._nonces[tx.sender] = tx.nonce
        root: str | None = result.results_root
        if self.services:
            self.pending[block.height] = PendingResults.for_block(
                block, self.services_at(block.height), result.receipts, result.checkpoint
            )
            self.pending = {h: p for h, p in self.pending.items() if h > block.height - 1000}
            root = None
        upcoming = block.next_validators or self.tip.validators
        self.tip = ChainTip(block.height, block.block_hash(), block.header.time, root, upcoming)
        if self.services:
            pending = self.pending[block.height]
            self._replay_early(pending)
            self._maybe_complete(pending)
        return Applied(block, result)

    def _execute(self, block: SealedBlock) -> BlockResult:
        started = time.thread_time()
        try:
            return self._execute_and_commit(block)
        finally:
            self.execution_cpu += time.thread_time() - started

    def _execute_and_commit(self, block: SealedBlock) -> BlockResult:
        prev = self.state.state_digest(block.height - 1) if block.height > 1 else None
        wanted = set(rules.keys_read_by(block))
        prefetched = self.state.get_many(list(wanted))

        def read(key: str) -> bytes | None:
            # a wanted key missing from the prefetch does not exist; others are read directly
            return prefetched.get(key) if key in wanted else self.state.get(key)

        result = rules.execute_block(block, read, prev or rules.GENESIS_DIGEST)
        self.state.commit(
            StateBatch(
                height=block.height,
                writes=result.writes,
                receipts=result.receipts,
                events=result.events,
                state_digest=result.state_digest,
            )
        )
        return result

    def _catch_up_state(self) -> None:
        """Re-execute blocks that were stored but whose state commit did not happen."""
        stored, executed = self.blocks.height(), self.state.height()
        if executed > stored:
            raise RuntimeError(
                f"state is at height {executed} but the block store only at {stored}: "
                "the stores belong to different chains or the block store was replaced"
            )
        if executed < stored:
            log.info("re-executing blocks %d..%d", executed + 1, stored)
            for block in self.blocks.blocks(executed + 1, stored):
                self._execute(block)

    def validators_at(self, height: int) -> tuple[ValidatorPower, ...]:
        """The validator set of ``height`` (up to the tip's next height), from the recorded changes."""
        current = validator_set(self.genesis.validators)
        for from_height, members in rules.validator_history(self.state.scan):
            if from_height > height:
                break
            current = members
        return current

    def validator_change_heights(self) -> list[int]:
        """Heights of the blocks that changed the validator set (each carries the new set)."""
        return [from_height - 1 for from_height, _ in rules.validator_history(self.state.scan)]

    def _load_tip(self) -> ChainTip:
        height = self.blocks.height()
        if height == 0:
            return rules.genesis_tip(self.genesis)
        header = self.blocks.header(height)
        assert header is not None
        upcoming = self.validators_at(height + 1)
        results = self.results(height)
        if results is None:  # the services' part is re-collected from their topics
            block = self.blocks.block(height)
            assert block is not None
            receipts, checkpoints = self.chain_results(height)
            self.pending[height] = PendingResults.for_block(block, self.services_at(height), receipts, checkpoints[0])
            return ChainTip(height, header.block_hash(), header.time, None, upcoming)
        return ChainTip(height, header.block_hash(), header.time, rules.results_root(*results), upcoming)

    def close(self) -> None:
        self.blocks.close()
        self.state.close()
