"""How the consensus service's messages look on Kafka: topics, keys, and decoding.

Every payload is a pydantic model serialised as JSON; a message that does not decode is
returned as an error string for the caller to dead-letter, never raised into a consumer loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

import orjson
from pydantic import ValidationError

from traco.core.ports import OutgoingMessage
from traco.core.topics import topic
from traco.schemas.block import BlockHeader, SealedBlock
from traco.schemas.consensus import BlockRequest, ProposalMessage, VoteMessage
from traco.schemas.events import BlockProcessed, DomainEvent
from traco.schemas.receipt import Receipt
from traco.schemas.tx import TxEnvelope
from traco.services.consensus import machine as m

ConsensusMessage: TypeAlias = ProposalMessage | VoteMessage | BlockRequest

_BY_TYPE: dict[str, type[ProposalMessage] | type[VoteMessage] | type[BlockRequest]] = {
    "proposal": ProposalMessage,
    "vote": VoteMessage,
    "block_request": BlockRequest,
}


class Topics:
    """The topic names of one chain."""

    def __init__(self, chain_id: str) -> None:
        self.tx = topic(chain_id, "tx")
        self.consensus = topic(chain_id, "consensus")
        self.blocks = topic(chain_id, "blocks")
        self.receipts = topic(chain_id, "receipts")
        self.events_chain = topic(chain_id, "events.chain")
        self.dlq = topic(chain_id, "dlq")


def vote_message(vote: m.Vote) -> VoteMessage:
    """A machine vote, signed, in its wire form."""
    return VoteMessage(
        kind=vote.kind,
        height=vote.height,
        round=vote.round,
        block_hash=vote.value_id,
        validator=vote.validator,
        signature=vote.signature.hex(),
    )


def proposal_message(proposal: m.Proposal, header: BlockHeader, txs: tuple[TxEnvelope, ...]) -> ProposalMessage:
    """A machine proposal, signed, in its wire form with the block it proposes."""
    return ProposalMessage(
        height=proposal.height,
        round=proposal.round,
        block_hash=proposal.value_id,
        valid_round=proposal.valid_round,
        proposer=proposal.proposer,
        signature=proposal.signature.hex(),
        header=header,
        txs=txs,
    )


def decode_consensus(raw: bytes) -> ConsensusMessage | str:
    try:
        kind = orjson.loads(raw).get("type")
    except (orjson.JSONDecodeError, AttributeError) as exc:
        return f"not a JSON object: {exc}"
    model = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    if model is None:
        return f"unknown consensus message type {kind!r}"
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        return f"invalid {kind}: {exc.errors()[0].get('msg')} at {exc.errors()[0].get('loc')}"


def decode_block(raw: bytes) -> SealedBlock | str:
    try:
        return SealedBlock.model_validate_json(raw)
    except ValidationError as exc:
        return f"invalid block: {exc.errors()[0].get('msg')} at {exc.errors()[0].get('loc')}"


def decode_receipt(raw: bytes) -> Receipt | str:
    try:
        return Receipt.model_validate_json(raw)
    except ValidationError as exc:
        return f"invalid receipt: {exc.errors()[0].get('msg')} at {exc.errors()[0].get('loc')}"


def height_key(height: int) -> bytes:
    return str(height).encode()


def consensus_message(topics: Topics, message: ConsensusMessage) -> OutgoingMessage:
    height = message.from_height if isinstance(message, BlockRequest) else message.height
    return OutgoingMessage(topics.consensus, message.model_dump_json().encode(), height_key(height))


def block_outputs(
    topics: Topics,
    block: SealedBlock,
    receipts: list[Receipt],
    events: list[DomainEvent],
    checkpoint: BlockProcessed,
    traces: Mapping[str, bytes] | None = None,
) -> list[OutgoingMessage]:
    """The block, then its receipts and the chain's events and checkpoint.

    A receipt carries the ``traceparent`` its transaction was submitted with (``traces``), so a
    trace follows a transaction from submission to its receipt across the Kafka hops.
    """
    traces = traces or {}
    out = [OutgoingMessage(topics.blocks, block.model_dump_json().encode(), height_key(block.height))]
    out += [
        OutgoingMessage(
            topics.receipts,
            r.model_dump_json().encode(),
            r.tx_id.encode(),
            {"traceparent": traces[r.tx_id]} if r.tx_id in traces else {},
        )
        for r in receipts
    ]
    out += [OutgoingMessage(topics.events_chain, e.model_dump_json().encode(), e.aggregate_id.encode()) for e in events]
    out.append(OutgoingMessage(topics.events_chain, checkpoint.model_dump_json().encode(), height_key(block.height)))
    return out


def receipt_message(topics: Topics, receipt: Receipt) -> OutgoingMessage:
    return OutgoingMessage(topics.receipts, receipt.model_dump_json().encode(), receipt.tx_id.encode())
