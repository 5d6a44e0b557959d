"""Blocks a validator proposes and proposals it judges; signed consensus messages in and out.

Pure functions: the validator driver passes its ledger's tip and state in. The proposal check
is the validity rule of every transaction (``validity.check_block_txs``) plus the header's
rules (``rules.check_header``): an honest validator prevotes a block only when both pass.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

from traco.core import crypto
from traco.core.ports import Signer
from traco.schemas.block import BlockHeader, proposal_sign_bytes, vote_sign_bytes
from traco.schemas.consensus import ProposalMessage, VoteMessage
from traco.schemas.genesis import Genesis, ValidatorPower
from traco.schemas.tx import TxEnvelope
from traco.services.consensus import machine as m
from traco.services.consensus import rules, validity
from traco.services.consensus.ledger import Ledger


@dataclass
class Candidate:
    """A block this node knows by hash: proposed by someone, maybe decided later."""

    header: BlockHeader
    txs: tuple[TxEnvelope, ...]
    next_validators: tuple[ValidatorPower, ...] | None  # what the sealed block carries


def build(
    genesis: Genesis,
    ledger: Ledger,
    round_: int,
    now_ms: int,
    proposer: str,
    txs: Sequence[TxEnvelope],
    upcoming: tuple[ValidatorPower, ...],
) -> Candidate:
    """The block this validator proposes on top of its tip."""
    header = rules.build_header(genesis, ledger.tip, round_, now_ms, proposer, txs, upcoming)
    return Candidate(header, tuple(txs), rules.carried_validators(ledger.tip.validators, upcoming))


def check(
    genesis: Genesis,
    ledger: Ledger,
    vset: m.ValidatorSet,
    proposal: ProposalMessage,
    upcoming: tuple[ValidatorPower, ...],
    signatures: validity.SignatureCache,
    now_ms: int,
    pending: Container[str] = (),
) -> str | None:
    """Why this validator refuses the proposal; ``upcoming`` is the set it expects from the
    height after the proposal's (the header must commit to it). ``pending``: the ids in this
    validator's mempool, which holds no sealed transaction (sealed ones leave it as their block
    commits), so for those the block store is not asked again."""
    header = proposal.header
    if header.block_hash() != proposal.block_hash:
        return "block_hash is not the hash of the header"
    if proposal.valid_round < 0:
        if header.proposer != proposal.proposer or header.round != proposal.round:
            return "a new block's header must name this proposer and round"
    elif header.round > proposal.valid_round or header.proposer != vset.proposer(header.height, header.round):
        # a re-proposed block (Tendermint's validValue) keeps the header it was built with
        return "a re-proposed block's header is not from the round and proposer that built it"
    problem = rules.check_header(genesis, ledger.tip, header, proposal.txs, now_ms=now_ms, next_validators=upcoming)
    if problem:
        return problem
    kinds = ledger.kinds_at(header.height)

    def is_sealed(tx_id: str) -> bool:
        return tx_id not in pending and ledger.is_sealed(tx_id)

    return validity.check_block_txs(
        genesis, ledger.admitted, proposal.txs, ledger.chain_nonce, is_sealed, signatures, kinds
    )


def signed_vote(chain_id: str, vote: VoteMessage) -> m.Vote | None:
    """The machine's vote, if its signature is the validator's (None for a forgery)."""
    sign_bytes = vote_sign_bytes(chain_id, vote.kind, vote.height, vote.round, vote.block_hash)
    signature = bytes.fromhex(vote.signature)
    if not crypto.verify(bytes.fromhex(vote.validator), sign_bytes, signature):
        return None
    return m.Vote(vote.kind, vote.height, vote.round, vote.block_hash, vote.validator, signature)


def signed_proposal(chain_id: str, proposal: ProposalMessage) -> m.Proposal | None:
    """The machine's proposal, if its signature is the proposer's (None for a forgery)."""
    sign_bytes = proposal_sign_bytes(
        chain_id, proposal.height, proposal.round, proposal.block_hash, proposal.valid_round
    )
    signature = bytes.fromhex(proposal.signature)
    if not crypto.verify(bytes.fromhex(proposal.proposer), sign_bytes, signature):
        return None
    return m.Proposal(
        proposal.height, proposal.round, proposal.block_hash, proposal.valid_round, proposal.proposer, signature
    )


def sign_vote(chain_id: str, signer: Signer, me: str, vote: m.Vote) -> m.Vote:
    sign_bytes = vote_sign_bytes(chain_id, vote.kind, vote.height, vote.round, vote.value_id)
    return m.Vote(vote.kind, vote.height, vote.round, vote.value_id, me, signer.sign(sign_bytes))


def sign_proposal(chain_id: str, signer: Signer, me: str, proposal: m.Proposal) -> m.Proposal:
    sign_bytes = proposal_sign_bytes(chain_id, proposal.height, proposal.round, proposal.value_id, proposal.valid_round)
    signature = signer.sign(sign_bytes)
    return m.Proposal(proposal.height, proposal.round, proposal.value_id, proposal.valid_round, me, signature)
