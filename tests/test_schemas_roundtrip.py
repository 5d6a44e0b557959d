"""Every wire type survives JSON and keeps its canonical bytes (the hashed form)."""

from __future__ import annotations

import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tests.consensus.chainkit import Kit
from tests.core.test_canonical import JSON, KEYS
from traco.core.canonical import canonicalize
from traco.schemas.base import Model
from traco.schemas.consensus import BlockRequest, ProposalMessage, VoteMessage
from traco.schemas.events import BlockProcessed, DomainEvent
from traco.schemas.receipt import Receipt, ReceiptStatus
from traco.schemas.tx import TxEnvelope
from traco.services.consensus import rules


def samples() -> list[Model]:
    kit = Kit()
    tx = kit.anchor()
    block = kit.seal(rules.genesis_tip(kit.genesis), [tx, kit.anchor(1)])
    return [
        tx,
        block,
        block.header,
        block.commit,
        kit.genesis,
        Receipt(
            tx_id=tx.tx_id, kind=tx.kind, status=ReceiptStatus.ACCEPTED, code="OK", height=1, index=0, service="chain"
        ),
        BlockProcessed(service="chain", height=1, state_digest="ab" * 32),
        DomainEvent(type="Anchored", service="chain", height=1, aggregate_id="x", data={"n": 1}),
        ProposalMessage(
            height=1,
            round=0,
            block_hash=block.block_hash(),
            valid_round=-1,
            proposer=block.header.proposer,
            signature="00" * 64,
            header=block.header,
            txs=block.txs,
        ),
        VoteMessage(kind="prevote", height=1, round=0, block_hash=None, validator="11" * 32, signature="22" * 64),
        BlockRequest(from_height=1, to_height=3, requester="api"),
    ]


@pytest.mark.parametrize("value", samples(), ids=lambda v: type(v).__name__)
def test_round_trip_keeps_value_and_canonical_bytes(value: Model) -> None:
    again = type(value).model_validate_json(value.model_dump_json())
    assert again == value
    assert again.canonical_bytes() == value.canonical_bytes()


@pytest.mark.parametrize("value", samples(), ids=lambda v: type(v).__name__)
def test_the_stored_and_published_json_reads_back_as_the_value(value: Model) -> None:
    assert type(value).model_validate_json(value.json_bytes) == value


def test_an_events_json_is_its_canonical_form_and_a_copy_has_its_own() -> None:
    event = DomainEvent(type="Transferred", service="trade", height=3, aggregate_id="token:TRC", data={"b": 1, "a": 2})
    assert event.json_bytes == event.canonical_bytes()  # one encoding for topic, store and digest
    copy = event.model_copy(update={"data": {"a": 3}})
    assert copy.json_bytes == copy.canonical_bytes() != event.json_bytes


def test_unknown_fields_are_refused() -> None:
    tx = Kit().anchor()
    data = tx.model_dump(mode="json") | {"extra": 1}
    with pytest.raises(ValidationError):
        type(tx).model_validate(data)


def test_copies_do_not_keep_the_originals_cached_signature_check() -> None:
    tx = Kit().anchor()
    assert tx.signature_valid()
    assert tx.json_bytes == tx.model_dump_json().encode()  # computed once, then kept
    forged = tx.model_copy(update={"payload": {"digest": "00" * 32, "label": "forged"}})
    assert not forged.signature_valid()
    assert forged.canonical_bytes() != tx.canonical_bytes()
    assert forged.json_bytes == forged.model_dump_json().encode() != tx.json_bytes


def test_models_are_frozen() -> None:
    tx: BaseModel = Kit().anchor()
    with pytest.raises(ValidationError):
        tx.nonce = 5  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(
    payload=st.dictionaries(KEYS, JSON, max_size=6),
    kind=st.sampled_from(["chain.anchor", "trade.transfer", "doc.register", "a.b_c.d9"]),
    chain_id=st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,31}\Z"),
    nonce=st.integers(1, 2**53 - 1),
    hexes=st.tuples(
        st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32), st.binary(min_size=64, max_size=64)
    ),
)
def test_an_envelopes_canonical_bytes_derived_from_its_signed_body_are_its_canonical_form(
    payload: dict[str, object], kind: str, chain_id: str, nonce: int, hexes: tuple[bytes, bytes, bytes]
) -> None:
    """The envelope's canonical bytes are built from the signed body (``TxEnvelope.jcs``); they
    must be exactly what encoding the whole envelope gives, for any payload."""
    tx_id, sender, signature = (h.hex() for h in hexes)
    tx = TxEnvelope(
        chain_id=chain_id, tx_id=tx_id, kind=kind, sender=sender, nonce=nonce, payload=payload, signature=signature
    )
    assert tx.canonical_bytes() == canonicalize(tx.json_value())


class Side(enum.StrEnum):
    BUY = "buy"


class Count(enum.IntEnum):
    ONE = 1


ODD_VALUES = st.sampled_from([(1, "two"), Side.BUY, Count.ONE, 2.5, [("x", 1)], {"k": (3,)}])


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(KEYS, st.one_of(JSON, ODD_VALUES), max_size=6),
    tx_index=st.one_of(st.none(), st.integers(0, 10_000)),
    tx_id=st.one_of(st.none(), st.binary(min_size=32, max_size=32).map(bytes.hex)),
)
def test_an_events_canonical_form_is_its_dumps(
    data: dict[str, object], tx_index: int | None, tx_id: str | None
) -> None:
    """``DomainEvent.jcs`` encodes the fields as they are; it must be exactly the canonical form
    of the event's JSON dump, whatever a rule put into ``data`` (tuples, enums and floats too:
    the dump turns a tuple into a list and an enum into its value)."""
    event = DomainEvent(
        type="t.happened", service="t", height=3, tx_id=tx_id, tx_index=tx_index, aggregate_id="a/1", data=data
    )
    assert event.jcs == canonicalize(event.json_value())
    assert set(event.json_value()) == set(DomainEvent.model_fields)  # no computed or excluded field


@settings(max_examples=300, deadline=None)
@given(
    result=st.dictionaries(KEYS, st.one_of(JSON, ODD_VALUES), max_size=6),
    status=st.sampled_from(list(ReceiptStatus)),
    height=st.one_of(st.none(), st.integers(1, 10**9)),
    index=st.one_of(st.none(), st.integers(0, 10_000)),
    message=st.text(max_size=20),
)
def test_a_receipts_leaf_is_its_dumps_canonical_form(
    result: dict[str, object], status: ReceiptStatus, height: int | None, index: int | None, message: str
) -> None:
    """``Receipt.leaf_bytes`` encodes the fields as they are; it must be exactly the canonical
    form of the receipt's JSON dump without ``message``, whatever a rule put into ``result``."""
    receipt = Receipt(
        tx_id="ab" * 32,
        kind="t.do",
        status=status,
        code="OK" if status is ReceiptStatus.ACCEPTED else "NO",
        message=message,
        height=height,
        index=index,
        service="t",
        result=result,
    )
    dumped = receipt.json_value()
    del dumped["message"]
    assert receipt.leaf_bytes() == canonicalize(dumped)
    assert set(dumped) | {"message"} == set(Receipt.model_fields)  # no computed or excluded field
