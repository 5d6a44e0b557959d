"""Compact proposals (``services/consensus/compact.py``): transactions named by leaf hash, taken
from the validator's own mempool, the full proposal asked for when one is missing."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.consensus.chainkit import Kit
from tests.consensus.test_validator_proposals import make, proposal
from traco.core import crypto
from traco.core.ports import BusMessage, TopicSpec
from traco.schemas.consensus import ProposalMessage, ProposalRequest
from traco.schemas.tx import TxEnvelope
from traco.services.consensus import compact, wire
from traco.services.consensus.compact import ANSWER_EVERY_S, REQUEST_AGAIN_S, CompactProposals
from traco.services.consensus.mempool import Mempool
from traco.services.consensus.validator import Validator


def compacted(full: ProposalMessage) -> ProposalMessage:
    """The compact form of a full proposal, as it crosses the wire (decoded again)."""
    decoded = wire.decode_consensus(wire.compact_form(full).model_dump_json().encode())
    assert isinstance(decoded, ProposalMessage) and decoded.compact
    return decoded


def pending(mempool: Mempool, *txs: TxEnvelope) -> None:
    for tx in txs:
        assert mempool.add(tx, 0, tx.nonce - 1, tx.sender) is None


async def started(validator: Validator) -> Validator:
    await validator.bus.start()
    await validator.bus.ensure_topics([TopicSpec(validator.topics.consensus), TopicSpec(validator.topics.tx)])
    return validator


def requests_sent(validator: Validator) -> list[ProposalRequest]:
    logs = validator.bus.broker.topics.get(validator.topics.consensus, [[]])  # type: ignore[attr-defined]
    out = []
    for message in logs[0]:
        data = orjson.loads(message.value)
        if data.get("type") == "proposal_request":
            out.append(ProposalRequest.model_validate(data))
    return out


# --------------------------------------------------------------------------- pure parts


def test_a_compact_proposal_resolves_to_exactly_the_pending_envelopes() -> None:
    kit = Kit()
    txs = [kit.anchor(0, "a", nonce=1), kit.anchor(1, "b", nonce=1)]
    validator = make(kit)
    full = proposal(kit, validator, 0, 0, -1)
    small = compacted(full.model_copy(update={"txs": tuple(txs)}))
    mempool = Mempool()
    assert compact.resolve(small, mempool) is None
    pending(mempool, txs[0])
    assert compact.resolve(small, mempool) is None, "one of two is not enough"
    pending(mempool, txs[1])
    resolved = compact.resolve(small, mempool)
    assert resolved is not None and not resolved.compact
    assert [tx.tx_id for tx in resolved.txs] == [tx.tx_id for tx in txs]
    assert resolved.txs[0] is mempool.by_leaf(wire.leaf_hash(txs[0])), "the mempool's own objects, not copies"


def test_a_leaf_names_the_whole_envelope_not_the_id() -> None:
    """Two envelopes with one id (same signed content) but different signature bytes have
    different leaves: a compact proposal can never swap one for the other."""
    kit = Kit()
    tx = kit.anchor(0, "a", nonce=1)
    other_signature = tx.model_copy(update={"signature": "00" * 64})
    assert other_signature.tx_id == tx.tx_id
    assert wire.leaf_hash(other_signature) != wire.leaf_hash(tx)
    mempool = Mempool()
    pending(mempool, tx)
    assert mempool.by_leaf(wire.leaf_hash(other_signature)) is None


def test_a_proposal_with_both_forms_is_refused_by_the_decoder() -> None:
    kit = Kit()
    full = proposal(kit, make(kit), 0, 0, -1)
    both = full.model_copy(update={"tx_leaves": (wire.leaf_hash(full.txs[0]),)})
    problem = wire.decode_consensus(both.model_dump_json().encode())
    assert isinstance(problem, str) and "not both" in problem


def test_the_mempool_forgets_the_leaf_of_what_leaves_it() -> None:
    kit = Kit()
    tx = kit.anchor(0, "a", nonce=1)
    mempool = Mempool()
    pending(mempool, tx)
    mempool.remove_sealed([tx], lambda _sender: 1)
    assert mempool.by_leaf(wire.leaf_hash(tx)) is None


def test_requests_and_answers_are_throttled_and_forgotten_at_commit() -> None:
    kit = Kit()
    full = proposal(kit, make(kit), 0, 0, -1)
    small = compacted(full)
    book = CompactProposals("aa" * 32)
    first = book.wait_for(small, now=10.0)
    assert first is not None and first.block_hash == small.block_hash and first.requester == "aa" * 32
    assert book.wait_for(small, now=10.0 + REQUEST_AGAIN_S / 2) is None
    assert book.stale(now=10.0 + REQUEST_AGAIN_S / 2) == []
    assert [r.block_hash for r in book.stale(now=10.0 + REQUEST_AGAIN_S)] == [small.block_hash]
    book.own[full.block_hash] = full
    assert book.answer(first, now=20.0) is full
    assert book.answer(first, now=20.0 + ANSWER_EVERY_S / 2) is None
    assert book.answer(first, now=20.0 + 2 * ANSWER_EVERY_S) is full
    book.forget(full.height)
    assert book.incomplete == {} and book.own == {} and book.answer(first, now=99.0) is None


# --------------------------------------------------------------------------- in the validator


def test_a_validator_lacking_a_transaction_asks_for_the_full_proposal_and_completes_it_later() -> None:
    async def run() -> None:
        kit = Kit()
        validator = await started(make(kit))
        full = proposal(kit, validator, 0, 0, -1)
        small = compacted(full)
        await validator._on_proposal(small)
        assert full.block_hash not in validator.candidates, "nothing is judged without its transactions"
        asked = requests_sent(validator)
        assert [(r.height, r.round, r.block_hash) for r in asked] == [(1, 0, full.block_hash)]
        await validator._on_proposal(small)  # the same proposal again: not asked twice at once
        assert len(requests_sent(validator)) == 1
        pending(validator.mempool, *full.txs)
        await validator._handle("tx", [])  # a transaction batch arrived: the kept proposal completes
        assert full.block_hash in validator.candidates
        assert validator.compact.incomplete == {}

    asyncio.run(run())


def test_a_validator_holding_the_transactions_judges_a_compact_proposal_at_once() -> None:
    async def run() -> None:
        kit = Kit()
        validator = await started(make(kit))
        full = proposal(kit, validator, 0, 0, -1)
        pending(validator.mempool, *full.txs)
        await validator._on_proposal(compacted(full))
        assert full.block_hash in validator.candidates and requests_sent(validator) == []

    asyncio.run(run())


def test_a_compact_proposal_whose_leaves_do_not_match_its_header_is_refused() -> None:
    """The transactions found by hash still meet ``tx_root``: a proposer cannot name other ones."""

    async def run() -> None:
        kit = Kit()
        validator = await started(make(kit))
        full = proposal(kit, validator, 0, 0, -1)
        other = kit.anchor(1, "other", nonce=1)
        pending(validator.mempool, other)
        swapped = compacted(full).model_copy(update={"tx_leaves": (wire.leaf_hash(other),)})
        await validator._on_proposal(swapped)
        assert full.block_hash not in validator.candidates and requests_sent(validator) == []

    asyncio.run(run())


@pytest.mark.parametrize("asker", ["validator", "stranger", "itself"])
def test_only_the_proposer_answers_and_only_validators_are_answered(asker: str) -> None:
    async def run() -> None:
        kit = Kit()
        validator = await started(make(kit))
        full = proposal(kit, validator, 0, 0, -1)
        validator.compact.own[full.block_hash] = full
        # another validator (keys are random per kit, so the proposer may be this validator itself)
        other = next(key for key in (crypto.public_key(k).hex() for k in kit.validator_keys) if key != validator.me)
        requester = {"validator": other, "stranger": "ab" * 32, "itself": validator.me}[asker]
        request = ProposalRequest(height=1, round=0, block_hash=full.block_hash, requester=requester)
        message = BusMessage(validator.topics.consensus, 0, 0, b"1", request.model_dump_json().encode(), ())
        await validator._on_consensus(message)
        logs = validator.bus.broker.topics[validator.topics.consensus][0]  # type: ignore[attr-defined]
        answers = [m for m in logs if orjson.loads(m.value).get("type") == "proposal"]
        assert len(answers) == (1 if asker == "validator" else 0)
        if answers:
            answered = wire.decode_consensus(answers[0].value)
            assert isinstance(answered, ProposalMessage) and not answered.compact and answered.txs == full.txs

    asyncio.run(run())


def test_a_height_committed_while_draining_the_queue_ends_the_wait_for_its_proposal() -> None:
    """Admitting the queued transactions can complete another proposal of the same height and
    commit it; the compact proposal being handled is then old and is dropped, not judged."""

    async def run() -> None:
        kit = Kit()
        validator = await started(make(kit))
        small = compacted(proposal(kit, validator, 0, 0, -1))

        async def drain_commits_height_1() -> None:
            validator.ledger.apply(kit.seal(validator.ledger.tip, [kit.anchor(1, "other", nonce=1)]))

        validator.inbox.drain_txs = drain_commits_height_1  # type: ignore[method-assign]
        await validator._on_proposal(small)
        assert validator.ledger.height == 1
        assert small.block_hash not in validator.candidates and requests_sent(validator) == []
        assert validator.compact.incomplete == {}

    asyncio.run(run())
