"""Messages on the ``consensus`` topic: signed proposals and votes, and block requests."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from traco.schemas.base import Hex32, Hex64, Model
from traco.schemas.block import BlockHeader
from traco.schemas.tx import TxEnvelope


class ProposalMessage(Model):
    """A proposer's block for (height, round), signed over ``proposal_sign_bytes``."""

    type: Literal["proposal"] = "proposal"
    height: int = Field(ge=1)
    round: int = Field(ge=0)
    block_hash: Hex32
    valid_round: int = Field(ge=-1)
    proposer: Hex32
    signature: Hex64
    header: BlockHeader
    txs: tuple[TxEnvelope, ...]


class VoteMessage(Model):
    """A prevote or precommit, signed over ``vote_sign_bytes``; ``block_hash`` None is nil."""

    type: Literal["vote"] = "vote"
    kind: Literal["prevote", "precommit"]
    height: int = Field(ge=1)
    round: int = Field(ge=0)
    block_hash: Hex32 | None
    validator: Hex32
    signature: Hex64


class BlockRequest(Model):
    """A node that found a gap in the ``blocks`` topic asks validators to republish."""

    type: Literal["block_request"] = "block_request"
    from_height: int = Field(ge=1)
    to_height: int = Field(ge=1)
    requester: str = Field(max_length=64)
