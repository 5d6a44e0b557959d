"""The validator's check of proposed blocks, including Tendermint's re-proposal of validValue."""

from __future__ import annotations

import asyncio

import pytest

from tests.consensus.chainkit import Kit
from traco.core import crypto
from traco.core.adapters.memory import MemoryEventBus
from traco.core.adapters.memory_store import MemoryBlockStore, MemoryStateStore
from traco.core.adapters.signer_file import KeySigner
from traco.core.ports import BusMessage, TopicSpec
from traco.core.positions import loop_time
from traco.schemas.block import SealedBlock, proposal_sign_bytes
from traco.schemas.consensus import ProposalMessage
from traco.schemas.genesis import ValidatorPower
from traco.services.consensus import machine as m
from traco.services.consensus import rules
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.validator import Validator, ValidatorConfig


def make(kit: Kit) -> Validator:
    ledger = Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())
    return Validator(
        kit.genesis, ledger, MemoryEventBus(), ValidatorConfig(1, KeySigner(kit.validator_keys[1]), m.TimingConfig())
    )


def check(validator: Validator, proposal: ProposalMessage) -> str | None:
    """The validator's verdict, expecting the validator set it derives itself for the next height."""
    return validator._check_proposal(proposal, validator._next_validators(proposal.height))


def proposal(
    kit: Kit,
    validator: Validator,
    built_round: int,
    round_: int,
    valid_round: int,
    next_validators: tuple[ValidatorPower, ...] | None = None,
) -> ProposalMessage:
    """A signed proposal at (1, round_) of a block built in ``built_round`` by its proposer."""
    keys = {crypto.public_key(k).hex(): k for k in kit.validator_keys}
    txs = [kit.anchor(0, "x", nonce=1)]
    builder = validator.vset.proposer(1, built_round)
    header = rules.build_header(
        kit.genesis, validator.ledger.tip, built_round, kit.genesis.genesis_time + 5, builder, txs, next_validators
    )
    proposer = validator.vset.proposer(1, round_)
    signature = crypto.sign(
        keys[proposer], proposal_sign_bytes(kit.chain_id, 1, round_, header.block_hash(), valid_round)
    )
    return ProposalMessage(
        height=1,
        round=round_,
        block_hash=header.block_hash(),
        valid_round=valid_round,
        proposer=proposer,
        signature=signature.hex(),
        header=header,
        txs=tuple(txs),
    )


def test_a_fresh_proposal_must_be_built_in_its_own_round() -> None:
    kit = Kit()
    validator = make(kit)
    assert check(validator, proposal(kit, validator, built_round=0, round_=0, valid_round=-1)) is None
    stale = proposal(kit, validator, built_round=0, round_=2, valid_round=-1)
    assert "must name this proposer and round" in (check(validator, stale) or "")


def test_a_valid_value_is_re_proposed_with_the_header_it_was_built_with() -> None:
    kit = Kit()
    validator = make(kit)
    assert check(validator, proposal(kit, validator, built_round=0, round_=3, valid_round=1)) is None
    assert check(validator, proposal(kit, validator, built_round=1, round_=3, valid_round=1)) is None
    too_new = proposal(kit, validator, built_round=2, round_=3, valid_round=1)
    assert "re-proposed" in (check(validator, too_new) or "")


def test_a_re_proposal_naming_the_wrong_builder_is_refused() -> None:
    kit = Kit()
    validator = make(kit)
    honest = proposal(kit, validator, built_round=0, round_=3, valid_round=1)
    wrong_builder = honest.header.model_copy(update={"proposer": validator.vset.proposer(1, 1)})
    assert wrong_builder.proposer != honest.header.proposer
    forged = honest.model_copy(update={"header": wrong_builder, "block_hash": wrong_builder.block_hash()})
    assert "re-proposed" in (check(validator, forged) or "")


def test_a_proposal_announcing_a_set_nobody_scheduled_is_refused() -> None:
    kit = Kit()
    validator = make(kit)
    unscheduled = kit.power_set([crypto.generate_private_key() for _ in range(4)])
    problem = check(validator, proposal(kit, validator, 0, 0, -1, next_validators=unscheduled))
    assert problem is not None and "next_validator_set_hash" in problem


def test_the_block_store_is_asked_only_about_transactions_not_pending_in_the_mempool() -> None:
    """A pending transaction is never a sealed one (sealed ones leave the mempool as their block
    commits), so the check skips that lookup for it; any other is looked up and, if sealed, refused."""
    kit = Kit()
    validator = make(kit)
    offered = proposal(kit, validator, built_round=0, round_=0, valid_round=-1)
    asked: list[str] = []
    sealed: set[str] = set()

    def is_sealed(tx_id: str) -> bool:
        asked.append(tx_id)
        return tx_id in sealed

    validator.ledger.is_sealed = is_sealed  # type: ignore[method-assign]
    assert check(validator, offered) is None and asked == [offered.txs[0].tx_id]
    sealed.add(offered.txs[0].tx_id)
    assert "already on the chain" in (check(validator, offered) or "")
    sealed.clear()
    tx = offered.txs[0]
    assert validator.mempool.add(tx, 0, 0, tx.sender, None) is None
    asked.clear()
    assert check(validator, offered) is None and asked == []


def test_a_replayed_sealed_transaction_is_dropped_silently_and_only_old_nonces_are_looked_up() -> None:
    """Admission drops an exact replay of a sealed envelope without a receipt (its receipt is the
    original's); it asks the block store only for a nonce the sender has used, since only such a
    transaction can be sealed."""

    kit = Kit()
    validator = make(kit)
    first = kit.anchor(0, "sealed", nonce=1)
    validator.ledger.apply(kit.seal(validator.ledger.tip, [first]))
    asked: list[str] = []
    real = validator.ledger.is_sealed

    def is_sealed(tx_id: str) -> bool:
        asked.append(tx_id)
        return real(tx_id)

    validator.ledger.is_sealed = is_sealed  # type: ignore[method-assign]
    message = BusMessage(validator.topics.tx, 0, 0, None, b"", ())
    assert validator.intake.admit(first, message) is None and first.tx_id not in validator.mempool
    assert asked == [first.tx_id]
    fresh = kit.anchor(0, "fresh", nonce=2)
    assert validator.intake.admit(fresh, message) is None and fresh.tx_id in validator.mempool
    assert asked == [first.tx_id], "a new nonce is never looked up"
    reuse = kit.anchor(0, "other content, used nonce", nonce=1)
    refusal = validator.intake.admit(reuse, message)
    assert refusal is not None and refusal.code.value == "NONCE_REUSED"


@pytest.mark.parametrize("pending", [True, False])
def test_a_block_that_sent_commands_starts_the_next_height_at_once(pending: bool) -> None:
    """Commands sent at H are executed at H+1 and their outcomes seen at H+2: a block with no
    transaction but with commands in flight must not wait for the empty-block interval."""

    async def run() -> int:
        kit = Kit()
        ledger = Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())
        config = ValidatorConfig(1, KeySigner(kit.validator_keys[1]), m.TimingConfig(), empty_block_interval_s=60)
        bus = MemoryEventBus()

        async def execute(_block: SealedBlock) -> None:
            return None

        validator = Validator(
            kit.genesis, ledger, bus, config, node_id="n1", after_commit=execute, work_pending=lambda: pending
        )
        await bus.start()
        await bus.ensure_topics([TopicSpec(t) for t in vars(validator.topics).values()])
        validator.last_block_at = validator.last_progress = loop_time()
        await validator._apply_commit(kit.seal(ledger.tip, []), publish_now=False, traces={})
        await validator._maybe_start_height()
        return validator._running_height()

    assert asyncio.run(run()) == (2 if pending else 0)
