"""A self-contained proof that a transaction is on the chain, for a light client (architecture: Consensus).

Given only a trusted validator set (the genesis file), and the headers that changed the set
since (carried in the proof), a verifier checks: the commit carries
signatures of > 2/3 of the voting power over the header's hash, the Merkle path leads from the
transaction's canonical bytes to the header's ``tx_root``, and the transaction's own signature.
When the next block is sealed, the bundle also proves the transaction's receipt: the receipt is
a leaf of ``last_results_root`` in header H+1, itself sealed by its own commit.
"""

from __future__ import annotations

from pydantic import Field

from traco.schemas.base import Hex32, Model
from traco.schemas.block import BlockHeader, Commit
from traco.schemas.genesis import ValidatorPower
from traco.schemas.receipt import Receipt
from traco.schemas.tx import TxEnvelope


class ResultProof(Model):
    receipt: Receipt
    index: int = Field(ge=0)
    size: int = Field(ge=1)
    path: tuple[Hex32, ...]
    header: BlockHeader = Field(description="header H+1, whose last_results_root covers the receipt")
    commit: Commit


class ValidatorChange(Model):
    """A sealed header that changed the validator set, and the set it changed to."""

    header: BlockHeader
    commit: Commit
    next_validators: tuple[ValidatorPower, ...]


class TxProof(Model):
    chain_id: str
    tx: TxEnvelope
    height: int = Field(ge=1)
    index: int = Field(ge=0)
    header: BlockHeader
    commit: Commit
    path: tuple[Hex32, ...] = Field(description="RFC 6962 audit path from the tx leaf to tx_root")
    result: ResultProof | None = None
    validator_changes: tuple[ValidatorChange, ...] = Field(
        default=(),
        description="every header before the result's block that changed the validator set, in "
        "height order, so a verifier that trusts only the genesis set can follow it",
    )
