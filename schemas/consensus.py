"""Messages on the ``consensus`` topic: signed proposals and votes, and block and proposal requests."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from traco.schemas.base import Hex32, Hex64, Model
from traco.schemas.block import BlockHeader
from traco.schemas.tx import TxEnvelope


class ProposalMessage(Model):
    """A proposer's block for (height, round), signed over ``proposal_sign_bytes``.

    Full, with ``txs``; or compact, with ``tx_leaves`` instead: each transaction's Merkle leaf
    hash (SHA-256 of 0x00 and its canonical bytes, signature included, as in ``tx_root``), in
    block order. A validator takes a compact proposal's transactions from its own mempool by
    those hashes and asks for the full proposal (``ProposalRequest``) when it lacks one. The
    signature covers the header's hash, which commits to ``tx_root``, so neither form can change
    what is proposed."""

    type: Literal["proposal"] = "proposal"
    height: int = Field(ge=1)
    round: int = Field(ge=0)
    block_hash: Hex32
    valid_round: int = Field(ge=-1)
    proposer: Hex32
    signature: Hex64
    header: BlockHeader
    txs: tuple[TxEnvelope, ...]
    tx_leaves: tuple[Hex32, ...] = ()

    @model_validator(mode="after")
    def _one_form(self) -> ProposalMessage:
        if self.txs and self.tx_leaves:
            raise ValueError("a proposal carries its transactions or their leaf hashes, not both")
        return self

    @property
    def compact(self) -> bool:
        return bool(self.tx_leaves)


class VoteMessage(Model):
    """A prevote or precommit, signed over ``vote_sign_bytes``; ``block_hash`` None is nil."""

    type: Literal["vote"] = "vote"
    kind: Literal["prevote", "precommit"]
    height: int = Field(ge=1)
    round: int = Field(ge=0)
    block_hash: Hex32 | None
    validator: Hex32
    signature: Hex64


class ProposalRequest(Model):
    """A validator that lacks some of a compact proposal's transactions asks its proposer for
    the full proposal."""

    type: Literal["proposal_request"] = "proposal_request"
    height: int = Field(ge=1)
    round: int = Field(ge=0)
    block_hash: Hex32
    requester: Hex32


class BlockRequest(Model):
    """A node that found a gap in the ``blocks`` topic asks validators to republish."""

    type: Literal["block_request"] = "block_request"
    from_height: int = Field(ge=1)
    to_height: int = Field(ge=1)
    requester: str = Field(max_length=64)
