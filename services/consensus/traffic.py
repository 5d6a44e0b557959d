"""Consensus traffic of a validator: votes and proposals in, this node's own out (architecture: Consensus).

Part of the validator's driver (``validator.py``), which delegates these steps here and keeps
all the state: each function takes the ``Validator`` as a method takes ``self`` and works on
its ledger, mempool, candidates and machine (through ``Validator._feed``). They are one job,
moving consensus messages between the ``consensus`` topic and the machine:

- in: a vote or a proposal from a member of the current set is checked (its signature, then
  ``proposals.check`` for a proposal) and fed to the machine; a compact proposal is completed
  from the mempool, if need be after the transaction batches queued behind it, or kept and
  asked for (``compact.py``); requests for a full proposal and for blocks are answered;
- out: when the machine asks for a value, this node's block is built from the mempool; what
  the machine broadcasts is signed and published (a proposal in its compact form unless the
  config says otherwise), and what it relays goes out as it was signed.

Records are logged under the validator's logger name, so the driver's log is one source.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from traco.core import tracing
from traco.core.ports import BusMessage
from traco.core.positions import loop_time
from traco.schemas.consensus import BlockRequest, ProposalMessage, ProposalRequest
from traco.schemas.genesis import ValidatorPower
from traco.services.consensus import compact, proposals, rules, wire
from traco.services.consensus import machine as m
from traco.services.consensus.proposals import Candidate

if TYPE_CHECKING:
    from traco.services.consensus.validator import Validator

log = logging.getLogger("traco.services.consensus.validator")  # one logger for the whole driver


async def on_consensus(validator: Validator, message: BusMessage) -> None:
    decoded = wire.decode_consensus(message.value)
    if isinstance(decoded, str):
        await validator._dead_letter_duty(message, decoded)
        return
    if isinstance(decoded, BlockRequest):
        await validator.publisher.answer(decoded)
        return
    if isinstance(decoded, ProposalRequest):
        if decoded.requester != validator.me and decoded.requester in validator.vset:
            answer = validator.compact.answer(decoded, loop_time())
            if answer is not None:
                await validator.bus.publish(wire.consensus_message(validator.topics, answer))
        return
    sender = decoded.proposer if isinstance(decoded, ProposalMessage) else decoded.validator
    if sender == validator.me or sender not in validator.vset:
        return
    if decoded.height > validator.ledger.height + 1:
        if decoded.height <= validator.ledger.height + 1000:  # a bounded memory of who is ahead
            validator.seen_height_traffic.add(decoded.height)
    elif decoded.height == validator.ledger.height + 1:
        validator.seen_height_traffic.add(decoded.height)
    if isinstance(decoded, ProposalMessage):
        await validator._on_proposal(decoded)
        return
    vote = proposals.signed_vote(validator.genesis.chain_id, decoded)
    if vote is None:
        log.warning("dropping vote with a bad signature from %s", sender[:16])
        return
    await validator._feed(m.VoteIn(vote))


async def on_proposal(validator: Validator, proposal: ProposalMessage) -> None:
    if proposal.height <= validator.ledger.height:
        return
    if proposal.height > validator.ledger.height + 1 or not validator._ready():
        # too early: for a future height, or before the services' results of the tip are in
        validator.future_proposals = [*validator.future_proposals[-63:], proposal]
        return
    signed = proposals.signed_proposal(validator.genesis.chain_id, proposal)
    if signed is None:
        log.warning("dropping proposal with a bad signature from %s", proposal.proposer[:16])
        return
    if proposal.compact:
        full = compact.resolve(proposal, validator.mempool)
        if full is None:
            await validator.inbox.drain_txs()  # the transactions may be queued behind it
            if proposal.height != validator.ledger.height + 1:
                return  # what the drain completed committed this height meanwhile
            full = compact.resolve(proposal, validator.mempool)
        if full is None:
            request = validator.compact.wait_for(proposal, loop_time())
            if request is not None:
                await validator.bus.publish(wire.consensus_message(validator.topics, request))
            return
        proposal = full
    validator.compact.incomplete.pop(proposal.block_hash, None)  # a full copy answered our request
    upcoming = validator._next_validators(proposal.height)
    problem = validator._check_proposal(proposal, upcoming)
    if problem:
        log.warning(
            "invalid proposal %d/%d from %s: %s", proposal.height, proposal.round, proposal.proposer[:16], problem
        )
    else:
        carried = rules.carried_validators(validator.ledger.tip.validators, upcoming)
        validator.candidates[proposal.block_hash] = Candidate(proposal.header, proposal.txs, carried)
    await validator._feed(m.ProposalIn(signed, problem is None))


def check_proposal(validator: Validator, proposal: ProposalMessage, upcoming: tuple[ValidatorPower, ...]) -> str | None:
    return proposals.check(
        validator.genesis,
        validator.ledger,
        validator.vset,
        proposal,
        upcoming,
        validator.signatures,
        _now_ms(),
        validator.mempool,
    )


async def maybe_propose(validator: Validator) -> None:
    if validator.want_value is None:
        return
    height, round_ = validator.want_value
    if height != validator.ledger.height + 1 or height != validator._running_height():
        validator.want_value = None
        return
    if not validator._ready():
        return  # asked again once the services' results of the tip are in
    validator.want_value = None
    params = validator.genesis.params
    selection = validator.mempool.select(
        validator.ledger.chain_nonce, params.max_block_txs, params.max_block_bytes, validator.intake.recheck
    )
    if selection.refused:
        await validator.intake.refuse_pending(selection.refused)
    candidate = proposals.build(
        validator.genesis,
        validator.ledger,
        round_,
        _now_ms(),
        validator.me,
        selection.txs,
        validator._next_validators(height),
    )
    block_hash = candidate.header.block_hash()
    validator.candidates[block_hash] = candidate
    traces = [t for tx in selection.txs if (t := validator.mempool.traceparent(tx.tx_id))]
    with tracing.block_span(f"propose {height}/{round_}", traces):  # the proposal carries it
        await validator._feed(m.ValueReady(height, round_, block_hash))


async def broadcast(validator: Validator, message: m.Proposal | m.Vote) -> None:
    chain_id = validator.genesis.chain_id
    if isinstance(message, m.Vote):
        vote = proposals.sign_vote(chain_id, validator.config.signer, validator.me, message)
        await validator.bus.publish(wire.consensus_message(validator.topics, wire.vote_message(vote)))
        await validator._feed(m.VoteIn(vote))
        return
    candidate = validator.candidates.get(message.value_id)
    if candidate is None:
        # After a restart the machine may re-propose a block this process no longer holds;
        # without it the round times out and another proposer takes over.
        log.warning("cannot (re)propose block %s…: its content is not held", message.value_id[:16])
        return
    signed = proposals.sign_proposal(chain_id, validator.config.signer, validator.me, message)
    full = wire.proposal_message(signed, candidate.header, candidate.txs)
    validator.compact.own[message.value_id] = full  # answers requests from validators that lack some
    wire_msg = wire.compact_form(full) if validator.config.compact_proposals else full
    await validator.bus.publish(wire.consensus_message(validator.topics, wire_msg))
    await validator._feed(m.ProposalIn(signed, True))


async def relay(validator: Validator, message: m.Proposal | m.Vote) -> None:
    """Forward another validator's message as it was signed (the machine's gossip)."""
    if isinstance(message, m.Vote):
        await validator.bus.publish(wire.consensus_message(validator.topics, wire.vote_message(message)))
        return
    candidate = validator.candidates.get(message.value_id)
    if candidate is not None:
        wire_msg = wire.proposal_message(message, candidate.header, candidate.txs)
        await validator.bus.publish(wire.consensus_message(validator.topics, wire_msg))


def _now_ms() -> int:
    return int(time.time() * 1000)
