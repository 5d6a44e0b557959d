"""Node keys and signed checkpoints (architecture: Nodes, Kafka is not trusted).

A node signs each service's checkpoint of each height with its node key, over bytes tagged
with their purpose (``schemas.events.checkpoint_sign_bytes``). A reader trusts a checkpoint —
and the receipts it carries, which must hash to its ``receipts_root`` — only when the
signature is its own node's: whoever else writes to the node's topics changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from traco.core import crypto, merkle
from traco.core.ports import Signer
from traco.schemas.events import BlockProcessed, DomainEvent, SignedCheckpoint, checkpoint_sign_bytes
from traco.schemas.receipt import Receipt


@dataclass(frozen=True)
class NodeKey:
    """A node's registered name and the signer of its key (a key file's, or an HSM's)."""

    id: str
    signer: Signer

    @cached_property
    def public_key(self) -> str:
        return self.signer.public_key.hex()

    def sign(
        self,
        chain_id: str,
        checkpoint: BlockProcessed,
        receipts: Sequence[Receipt],
        events: Sequence[DomainEvent],
    ) -> SignedCheckpoint:
        hashes = tuple(event_hash(e) for e in events)
        signature = self.signer.sign(checkpoint_sign_bytes(chain_id, self.id, checkpoint, hashes))
        return SignedCheckpoint(
            node=self.id,
            checkpoint=checkpoint,
            receipts=tuple(receipts),
            event_hashes=hashes,
            signature=signature.hex(),
        )


def event_hash(event: DomainEvent) -> str:
    """SHA-256 of an event's canonical JSON (what a signed checkpoint lists)."""
    return hashlib.sha256(event.canonical_bytes()).hexdigest()


def check_signed(chain_id: str, signed: SignedCheckpoint, node_id: str, node_public_key: str) -> str | None:
    """Why ``signed`` is not node ``node_id``'s checkpoint with its own receipts (None if it is)."""
    if signed.node != node_id:
        return f"checkpoint of node {signed.node!r}, not {node_id!r}"
    message = checkpoint_sign_bytes(chain_id, node_id, signed.checkpoint, signed.event_hashes)
    if not crypto.verify(bytes.fromhex(node_public_key), message, bytes.fromhex(signed.signature)):
        return "the checkpoint's signature is not the node key's"
    root = signed.checkpoint.receipts_root
    if root is not None and merkle.root([r.leaf_bytes() for r in signed.receipts]).hex() != root:
        return "the receipts carried do not hash to the checkpoint's receipts_root"
    return None


__all__ = ["NodeKey", "check_signed", "event_hash"]
