"""How the consensus service's messages look on Kafka: topics, keys, and decoding.

Every payload is a pydantic model serialised as JSON; a message that does not decode is
returned as an error string for the caller to dead-letter, never raised into a consumer loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

import orjson

from traco.core.boundary import Rejected, decode_model
from traco.core.ports import OutgoingMessage
from traco.core.topics import node_topic, topic
from traco.schemas.block import BlockHeader, SealedBlock
from traco.schemas.consensus import BlockRequest, ProposalMessage, ProposalRequest, VoteMessage
from traco.schemas.events import BlockProcessed, DomainEvent
from traco.schemas.receipt import Receipt
from traco.schemas.tx import TxEnvelope
from traco.services.consensus import machine as m

ConsensusMessage: TypeAlias = ProposalMessage | VoteMessage | BlockRequest | ProposalRequest

_BY_TYPE: dict[str, type[ProposalMessage] | type[VoteMessage] | type[BlockRequest] | type[ProposalRequest]] = {
    "proposal": ProposalMessage,
    "vote": VoteMessage,
    "block_request": BlockRequest,
    "proposal_request": ProposalRequest,
}


class Topics:
    """The topic names of one chain; a node's own outputs (receipts, the chain's events, dead
    letters) go to its node-scoped topics when ``node_id`` is given (architecture: Topics)."""

    def __init__(self, chain_id: str, node_id: str | None = None) -> None:
        self.tx = topic(chain_id, "tx")
        self.consensus = topic(chain_id, "consensus")
        self.blocks = topic(chain_id, "blocks")

        def own(name: str) -> str:
            return node_topic(chain_id, node_id, name) if node_id is not None else topic(chain_id, name)

        self.receipts = own("receipts")
        self.events_chain = own("events.chain")
        self.dlq = own("dlq")


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


def compact_form(full: ProposalMessage) -> ProposalMessage:
    """The same proposal naming its transactions by leaf hash (``ProposalMessage``)."""
    return full.model_copy(update={"txs": (), "tx_leaves": tuple(leaf_hash(tx) for tx in full.txs)})


def leaf_hash(tx: TxEnvelope) -> str:
    """A transaction's Merkle leaf hash in hex: what ``tx_root`` is built from and what a
    compact proposal names it by (the whole envelope, signature included, never the id alone)."""
    return tx.leaf_hash.hex()


MAX_CONSENSUS_BYTES = 32 << 20
"""The largest consensus message read (a proposal carries its block's transactions)."""
MAX_BLOCK_BYTES = 32 << 20
"""The largest sealed block read from ``blocks``."""


def claimed_height(raw: bytes) -> int | None:
    """The height ``raw`` plainly claims to be a block of: a JSON object (parsed by orjson, no
    model) whose ``header.height`` is a non-negative integer; None for anything else (too big,
    not JSON, no such field), which is left to ``decode_block``, the topic's boundary. Why: a
    node reads every block on ``blocks``, nearly all of them heights it has sealed already, and
    the model's decode of a big block was a twentieth of a node's CPU."""
    if len(raw) > MAX_BLOCK_BYTES:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    header = data.get("header") if isinstance(data, dict) else None
    claimed = header.get("height") if isinstance(header, dict) else None
    return claimed if type(claimed) is int and claimed >= 0 else None


def decode_consensus(raw: bytes) -> ConsensusMessage | str:
    """A message from ``consensus`` as a checked value, or why not (never raises)."""
    if len(raw) > MAX_CONSENSUS_BYTES:
        return f"consensus message is {len(raw)} bytes; the limit is {MAX_CONSENSUS_BYTES}"
    try:
        kind = orjson.loads(raw).get("type")
    except (orjson.JSONDecodeError, AttributeError) as exc:
        return f"not a JSON object: {exc}"
    model = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    if model is None:
        return f"unknown consensus message type {str(kind)[:64]!r}"
    decoded = decode_model(model, raw, what=kind)
    return decoded.reason if isinstance(decoded, Rejected) else decoded


def decode_block(raw: bytes) -> SealedBlock | str:
    """A message from ``blocks`` as a checked value, or why not (never raises). Decoding is not
    trusting: the caller still checks the commit, the roots and the link."""
    decoded = decode_model(SealedBlock, raw, MAX_BLOCK_BYTES, what="block")
    return decoded.reason if isinstance(decoded, Rejected) else decoded


def decode_receipt(raw: bytes) -> Receipt | str:
    decoded = decode_model(Receipt, raw, 1 << 20, what="receipt")
    return decoded.reason if isinstance(decoded, Rejected) else decoded


def height_key(height: int) -> bytes:
    return str(height).encode()


def consensus_message(topics: Topics, message: ConsensusMessage) -> OutgoingMessage:
    height = message.from_height if isinstance(message, BlockRequest) else message.height
    return OutgoingMessage(topics.consensus, message.model_dump_json().encode(), height_key(height))


def block_message(topics: Topics, block: SealedBlock) -> OutgoingMessage:
    return OutgoingMessage(topics.blocks, block.json_bytes, height_key(block.height))


def chain_outputs(
    topics: Topics,
    block: SealedBlock,
    receipts: list[Receipt],
    events: list[DomainEvent],
    checkpoint: BlockProcessed,
    traces: Mapping[str, bytes] | None = None,
) -> list[OutgoingMessage]:
    """The chain's receipts, events and checkpoint of a block.

    A receipt carries the ``traceparent`` its transaction was submitted with (``traces``), so a
    trace follows a transaction from submission to its receipt across the Kafka hops.
    """
    traces = traces or {}
    out = [
        OutgoingMessage(
            topics.receipts,
            r.json_bytes,
            r.tx_id.encode(),
            {"traceparent": traces[r.tx_id]} if r.tx_id in traces else {},
        )
        for r in receipts
    ]
    out += [OutgoingMessage(topics.events_chain, e.json_bytes, e.aggregate_id.encode()) for e in events]
    out.append(OutgoingMessage(topics.events_chain, checkpoint.model_dump_json().encode(), height_key(block.height)))
    return out


def block_outputs(
    topics: Topics,
    block: SealedBlock,
    receipts: list[Receipt],
    events: list[DomainEvent],
    checkpoint: BlockProcessed,
    traces: Mapping[str, bytes] | None = None,
) -> list[OutgoingMessage]:
    """The block, then its chain outputs."""
    return [block_message(topics, block), *chain_outputs(topics, block, receipts, events, checkpoint, traces)]


def receipt_message(topics: Topics, receipt: Receipt) -> OutgoingMessage:
    return OutgoingMessage(topics.receipts, receipt.json_bytes, receipt.tx_id.encode())
