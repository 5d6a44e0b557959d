"""Blocks: header, transactions and the commit that seals them (architecture: Consensus).

The block hash is the SHA-256 of the canonical header. ``tx_root`` is the RFC 6962 root over
the transactions' canonical bytes (full envelopes, signatures included), so a Merkle proof
pins the exact signed bytes. A block is sealed by precommit signatures of validators holding
more than 2/3 of the voting power; each signature covers ``precommit_sign_bytes``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from traco.core.canonical import canonicalize
from traco.schemas.base import ChainId, Hex32, Hex64, Model, once
from traco.schemas.genesis import ValidatorPower
from traco.schemas.tx import TxEnvelope, tx_root


class BlockHeader(Model):
    chain_id: ChainId
    height: int = Field(ge=1)
    round: int = Field(ge=0)
    time: int = Field(ge=0, description="block time, milliseconds since the Unix epoch (UTC)")
    prev_hash: Hex32 = Field(description="hash of header height-1; the genesis hash at height 1")
    tx_root: Hex32
    tx_count: int = Field(ge=0)
    last_results_root: Hex32
    proposer: Hex32
    validator_set_hash: Hex32
    next_validator_set_hash: Hex32

    def block_hash(self) -> str:
        return self.canonical_hash()


class CommitSig(Model):
    validator: Hex32
    signature: Hex64


class Commit(Model):
    """Precommits for ``block_hash`` at (height, round) from > 2/3 of the voting power."""

    height: int = Field(ge=1)
    round: int = Field(ge=0)
    block_hash: Hex32
    signatures: tuple[CommitSig, ...]


class SealedBlock(Model):
    header: BlockHeader
    txs: tuple[TxEnvelope, ...]
    commit: Commit
    next_validators: tuple[ValidatorPower, ...] | None = Field(
        default=None,
        description="the validator set from the next height on, in canonical order; present only "
        "when it differs from this block's set (header.next_validator_set_hash is its hash)",
    )

    @property
    def height(self) -> int:
        return self.header.height

    def block_hash(self) -> str:
        return self.header.block_hash()

    @once
    def txs_root(self) -> str:
        """The Merkle root (hex) of the transactions this block carries, to compare with
        ``header.tx_root``; computed once per block object, from the envelopes' cached leaf
        hashes, for the node's validator and each of its replicas."""
        return tx_root(self.txs)


VoteKind = Literal["prevote", "precommit"]


def vote_sign_bytes(chain_id: str, kind: VoteKind, height: int, round_: int, block_hash: str | None) -> bytes:
    """What a validator signs for a vote; a nil vote signs ``block_hash: null``."""
    return canonicalize(
        {
            "type": kind,
            "chain_id": chain_id,
            "height": height,
            "round": round_,
            "block_hash": block_hash,
        }
    )


def proposal_sign_bytes(chain_id: str, height: int, round_: int, block_hash: str, valid_round: int) -> bytes:
    """What the proposer signs for a proposal (the block itself is bound by its hash)."""
    return canonicalize(
        {
            "type": "proposal",
            "chain_id": chain_id,
            "height": height,
            "round": round_,
            "block_hash": block_hash,
            "valid_round": valid_round,
        }
    )


__all__ = [
    "BlockHeader",
    "Commit",
    "CommitSig",
    "Hex64",
    "SealedBlock",
    "proposal_sign_bytes",
    "vote_sign_bytes",
]
