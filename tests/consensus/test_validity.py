"""The one validity rule per transaction, its decoder, and the mempool that applies it."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.consensus.chainkit import Kit
from traco.core import crypto
from traco.core.adapters.memory_store import MemoryBlockStore, MemoryStateStore
from traco.schemas.genesis import Genesis
from traco.schemas.receipt import Code
from traco.schemas.tx import TxEnvelope, sign_tx, signing_bytes
from traco.services.consensus import validity, wire
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.mempool import Mempool
from traco.services.consensus.validity import Refusal, SignatureCache


@pytest.fixture
def kit() -> Kit:
    return Kit()


def ledger_for(kit: Kit) -> Ledger:
    return Ledger(kit.genesis, MemoryBlockStore(), MemoryStateStore())


def envelope_json(kit: Kit, payload_json: bytes, nonce: int = 1) -> bytes:
    """An envelope around a payload given as raw JSON text (the id and signature are junk)."""
    sender = crypto.public_key(kit.member_keys[0]).hex()
    return (
        b'{"chain_id":"unit","tx_id":"' + b"ab" * 32 + b'","kind":"chain.anchor","sender":"' + sender.encode()
        + b'","nonce":' + str(nonce).encode() + b',"payload":' + payload_json + b',"signature":"' + b"cd" * 64 + b'"}'
    )  # fmt: skip


HOSTILE_PAYLOADS = {
    "integer beyond 2^53": b'{"amount": 9007199254740993}',
    "integer of 5000 digits": b'{"amount": ' + b"9" * 5000 + b"}",
    "huge exponent": b'{"amount": 1e99999}',
    "negative huge exponent": b'{"amount": -1e400}',
    "NaN literal": b'{"amount": NaN}',
    "lone surrogate": b'{"label": "\\ud800"}',
    "lone low surrogate in a key": b'{"\\udc00": 1}',
    "deep nesting": b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "duplicate keys": b'{"digest": "00", "digest": "11"}',
    "payload is a list": b"[1, 2, 3]",
    "payload is a string": b'"text"',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PAYLOADS))
def test_hostile_payloads_are_refused_or_checked_never_raised(kit: Kit, name: str) -> None:
    decoded = validity.decode_tx(envelope_json(kit, HOSTILE_PAYLOADS[name]), 64 * 1024)
    if isinstance(decoded, Refusal):
        assert decoded.code is Code.MALFORMED
        return
    # what decodes has a canonical form, so the rule itself cannot raise on it either
    assert name == "duplicate keys"
    assert decoded.canonical_bytes() and decoded.signing_bytes()
    refusal = validity.check_tx(decoded, kit.genesis, {decoded.sender}, SignatureCache())
    assert refusal is not None and refusal.code is Code.INVALID_TX_ID


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b"null", b'{"chain_id": 1}', b"\xff\xfe", b"\xc3\x28", b"x" * 100_000, b'{"a":' * 100],
)
def test_garbage_is_malformed_or_too_large(raw: bytes) -> None:
    refusal = validity.decode_tx(raw, 64 * 1024)
    assert isinstance(refusal, Refusal) and refusal.code in (Code.MALFORMED, Code.TOO_LARGE)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.text(max_size=500).map(str.encode))
def test_decode_tx_never_raises(raw: bytes) -> None:
    assert isinstance(validity.decode_tx(raw, 64 * 1024), TxEnvelope | Refusal)


def test_every_envelope_problem_is_named_at_once(kit: Kit) -> None:
    raw = (
        b'{"chain_id": "UPPER", "tx_id": "zz", "kind": "nokind", "sender": 5, "nonce": 0,'
        b' "payload": {}, "signature": ""}'
    )
    refusal = validity.decode_tx(raw, 64 * 1024)
    assert isinstance(refusal, Refusal)
    for field in ("chain_id", "tx_id", "kind", "sender", "nonce", "signature"):
        assert field in refusal.message


def test_size_is_the_canonical_size_even_when_the_submitted_form_is_small(kit: Kit) -> None:
    """1e20 is 4 bytes as submitted and 21 in canonical form (ECMAScript number formatting)."""
    payload = {"values": [1e20] * 4000}
    tx = sign_tx(kit.member_keys[0], kit.chain_id, "chain.anchor", 1, payload)
    submitted = tx.model_dump_json().replace("100000000000000000000.0", "1e20").encode()
    assert len(submitted) < kit.genesis.params.max_tx_bytes < len(tx.canonical_bytes())
    decoded = validity.decode_tx(submitted, kit.genesis.params.max_tx_bytes)
    assert isinstance(decoded, TxEnvelope) and decoded.tx_id == tx.tx_id
    refusal = validity.check_tx(decoded, kit.genesis, {tx.sender}, SignatureCache())
    assert refusal is not None and refusal.code is Code.TOO_LARGE


def test_a_cached_signature_never_vouches_for_a_changed_payload(kit: Kit) -> None:
    """A Byzantine proposer keeps a pending transaction's id and signature and changes its
    payload: the cache holds the genuine one, yet the substitute is refused."""
    cache = SignatureCache()
    admitted = {crypto.public_key(k).hex() for k in kit.member_keys}
    genuine = kit.anchor(0, "genuine")
    assert validity.check_tx(genuine, kit.genesis, admitted, cache) is None
    assert len(cache) == 1
    substitute = TxEnvelope.model_validate(
        {**genuine.model_dump(), "payload": {"digest": hashlib.sha256(b"evil").hexdigest(), "label": "evil"}}
    )
    assert substitute.tx_id == genuine.tx_id and substitute.signature == genuine.signature
    refusal = validity.check_tx(substitute, kit.genesis, admitted, cache)
    assert refusal is not None and refusal.code is Code.INVALID_TX_ID
    # and a block carrying it is refused by the same rule
    ledger = ledger_for(kit)
    problem = validity.check_block_txs(kit.genesis, admitted, [substitute], ledger.chain_nonce, ledger.is_sealed, cache)
    assert problem is not None and "INVALID_TX_ID" in problem


def test_the_cache_is_keyed_by_signed_bytes_and_signature(kit: Kit) -> None:
    cache = SignatureCache(capacity=2)
    admitted = {crypto.public_key(k).hex() for k in kit.member_keys}
    a = kit.anchor(0, "a")
    resigned = a.model_copy(update={"signature": kit.anchor(1, "z").signature})
    assert validity.check_tx(a, kit.genesis, admitted, cache) is None
    refusal = validity.check_tx(resigned, kit.genesis, admitted, cache)
    assert refusal is not None and refusal.code is Code.INVALID_SIGNATURE
    for label in ("b", "c", "d"):
        assert validity.check_tx(kit.anchor(0, label), kit.genesis, admitted, cache) is None
    assert len(cache) == 2  # bounded


def test_specific_codes_in_rule_order(kit: Kit) -> None:
    admitted = {crypto.public_key(k).hex() for k in kit.member_keys}
    cache = SignatureCache()
    assert validity.check_tx(kit.anchor(), kit.genesis, admitted, cache) is None
    cases = [
        (Kit(chain_id="other").anchor(), Code.WRONG_CHAIN),
        (Kit(chain_id="unit").anchor(), Code.NOT_ADMITTED),
        (sign_tx(kit.member_keys[0], "unit", "nope.kind", 9, {}), Code.UNKNOWN_KIND),
    ]
    for tx, code in cases:
        refusal = validity.check_tx(tx, kit.genesis, admitted, cache)
        assert refusal is not None and refusal.code is code


def test_block_transactions_must_be_valid_in_nonce_order_and_new(kit: Kit) -> None:
    ledger = ledger_for(kit)
    a, b = kit.anchor(0, "1"), kit.anchor(0, "2")

    def check(txs: list[TxEnvelope]) -> str | None:
        return validity.check_block_txs(
            kit.genesis, ledger.admitted, txs, ledger.chain_nonce, ledger.is_sealed, SignatureCache()
        )

    assert check([a, b]) is None
    assert "nonce" in (check([b, a]) or "")
    assert "twice" in (check([a, a]) or "")
    forged = a.model_copy(update={"payload": {"digest": "00" * 32, "label": "forged"}})
    assert "INVALID_TX_ID" in (check([forged]) or "")
    resigned = a.model_copy(update={"signature": kit.anchor(1, "z").signature})
    assert "INVALID_SIGNATURE" in (check([resigned]) or "")


# --------------------------------------------------------------------------- the mempool


def add(pool: Mempool, tx: TxEnvelope, chain_nonce: int = 0, member: str | None = None) -> Refusal | None:
    return pool.add(tx, 0, chain_nonce, member or tx.sender)


def test_mempool_orders_by_nonce_waits_for_gaps_and_refuses_reuse(kit: Kit) -> None:
    pool = Mempool(max_nonce_gap=10)
    t1, t2, t3 = (kit.anchor(0, str(i)) for i in range(3))
    nonce = {t1.sender: 0}
    assert add(pool, t3) is None
    assert not pool.has_ready(lambda s: nonce.get(s, 0))
    assert add(pool, t2) is None
    assert add(pool, t1) is None
    assert pool.select(lambda s: nonce.get(s, 0), 10, 10_000).txs == [t1, t2, t3]
    refusal = add(pool, kit.anchor(0, "clash", nonce=2))
    assert refusal is not None and refusal.code is Code.NONCE_REUSED
    refusal = add(pool, kit.anchor(0, "far", nonce=50))
    assert refusal is not None and refusal.code is Code.NONCE_TOO_FAR
    nonce[t1.sender] = 2  # a block sealed t1 and a *different* nonce-2 envelope: t2 is stale
    stale = pool.remove_sealed([t1], lambda s: nonce.get(s, 0))
    assert [p.tx for p in stale] == [t2]
    assert pool.select(lambda s: nonce.get(s, 0), 10, 10_000).txs == [t3]


def test_mempool_respects_block_limits(kit: Kit) -> None:
    pool = Mempool()
    txs = [kit.anchor(0, str(i)) for i in range(10)]
    for tx in txs:
        add(pool, tx)
    assert pool.select(lambda s: 0, 4, 100_000).txs == txs[:4]
    size = len(txs[0].canonical_bytes())
    assert pool.select(lambda s: 0, 100, 2 * size + 1).txs == txs[:2]


def test_one_members_flood_cannot_fill_the_mempool_or_the_blocks(kit: Kit) -> None:
    pool = Mempool(max_txs=100, max_per_member=20)
    flood = [kit.anchor(0, f"f{i}") for i in range(30)]
    refusals = [add(pool, tx, member="flooder") for tx in flood]
    assert refusals[:20] == [None] * 20
    assert all(r is not None and r.code is Code.MEMBER_QUOTA for r in refusals[20:])
    other = kit.anchor(1, "other")
    assert add(pool, other, member="someone") is None
    block = pool.select(lambda s: 0, 4, 1_000_000).txs
    assert other in block  # arrived last, but one per sender in turn puts it in the first block
    assert block[:2] == [flood[0], other]


def test_select_rechecks_and_drops_what_became_invalid(kit: Kit) -> None:
    pool = Mempool()
    removed = [kit.anchor(0, f"r{i}") for i in range(3)]
    kept = kit.anchor(1, "k")
    for tx in [*removed, kept]:
        add(pool, tx)
    gone = removed[0].sender

    def recheck(tx: TxEnvelope) -> Refusal | None:
        return Refusal(Code.NOT_ADMITTED, "removed") if tx.sender == gone else None

    selection = pool.select(lambda s: 0, 10, 1_000_000, recheck)
    assert selection.txs == [kept]
    assert [p.tx for p, _ in selection.refused] == [removed[0]]
    dropped = pool.purge_senders(lambda sender: sender != gone)
    assert [p.tx for p in dropped] == removed[1:]
    assert len(pool) == 1 and pool.pending_of(gone) == 0


def test_decoded_envelopes_round_trip_their_canonical_bytes(kit: Kit) -> None:
    tx = kit.anchor(0, "rt")
    decoded = validity.decode_tx(orjson.dumps(orjson.loads(tx.model_dump_json())), 64 * 1024)
    assert isinstance(decoded, TxEnvelope) and decoded.canonical_bytes() == tx.canonical_bytes()


@pytest.mark.parametrize(
    ("raw", "tip", "claimed"),
    [
        (b'{"header": {"height": 5}, "txs": []}', 5, True),
        (b'{"header": {"height": 5}}', 7, True),
        (b'{"header": {"height": 6}, "txs": []}', 5, False),  # ahead of the tip: decoded and checked
        (b'{"header": {"height": "3"}}', 5, False),
        (b'{"header": {"height": 3.0}}', 5, False),
        (b'{"header": {"height": true}}', 5, False),
        (b'{"header": {"height": -1}}', 5, False),
        (b'{"header": {"height": 99999999999999999999999}}', 5, False),
        (b'{"header": [3]}', 5, False),
        (b"[1, 2]", 5, False),
        (b"\xff\xfe not json", 5, False),
        (b'{"header": {"height": 1}' + b" " * wire.MAX_BLOCK_BYTES + b"}", 5, False),
    ],
)
def test_only_a_plain_claim_of_a_sealed_height_skips_the_block_decoder(raw: bytes, tip: int, claimed: bool) -> None:
    """What is skipped is a block a decode would have ignored anyway (a height the node holds);
    anything else goes to ``decode_block``, which dead-letters what it cannot decode."""
    height = wire.claimed_height(raw)
    assert (height is not None and height <= tip) is claimed


# --------------------------------------------------------------------------- the rule's edges


def with_params(kit: Kit, **params: object) -> Genesis:
    return kit.genesis.model_copy(update={"params": kit.genesis.params.model_copy(update=params)})


def test_a_signature_verified_once_never_vouches_for_other_signed_bytes(kit: Kit) -> None:
    """The attack the cache's key exists for: another payload under a *correct* new id, with the
    signature of a transaction verified before. Only the signed bytes' digest in the key
    refuses it; an id check cannot (the id is right)."""
    cache = SignatureCache()
    admitted = {crypto.public_key(k).hex() for k in kit.member_keys}
    genuine = kit.anchor(0, "genuine")
    assert validity.check_tx(genuine, kit.genesis, admitted, cache) is None
    payload = {"digest": hashlib.sha256(b"evil").hexdigest(), "label": "evil"}
    body = signing_bytes(genuine.chain_id, genuine.kind, genuine.sender, genuine.nonce, payload)
    substitute = genuine.model_copy(update={"payload": payload, "tx_id": hashlib.sha256(body).hexdigest()})
    assert substitute.id_matches() and substitute.signature == genuine.signature
    refusal = validity.check_tx(substitute, kit.genesis, admitted, cache)
    assert refusal is not None and refusal.code is Code.INVALID_SIGNATURE


def test_the_size_limit_takes_a_transaction_of_exactly_the_limit(kit: Kit) -> None:
    admitted = {crypto.public_key(k).hex() for k in kit.member_keys}
    tx = kit.anchor(0, "sized")
    size = len(tx.canonical_bytes())
    assert validity.check_tx(tx, with_params(kit, max_tx_bytes=size), admitted, SignatureCache()) is None
    refusal = validity.check_tx(tx, with_params(kit, max_tx_bytes=size - 1), admitted, SignatureCache())
    assert refusal is not None and refusal.code is Code.TOO_LARGE


def test_submitted_bytes_are_parsed_up_to_the_limit_and_its_slack(kit: Kit) -> None:
    raw = kit.anchor(0, "padded").json_bytes
    limit = 1000
    at_limit = raw + b" " * (limit + validity.RAW_SLACK_BYTES - len(raw))
    assert isinstance(validity.decode_tx(at_limit, limit), TxEnvelope)
    over = validity.decode_tx(at_limit + b" ", limit)
    assert isinstance(over, Refusal) and over.code is Code.TOO_LARGE


def test_kinds_an_upgrade_activated_are_taken_alone_and_in_blocks(kit: Kit) -> None:
    admitted = {crypto.public_key(k).hex() for k in kit.member_keys}
    new_kind = sign_tx(kit.member_keys[0], kit.chain_id, "future.act", 1, {})
    assert validity.check_tx(new_kind, kit.genesis, admitted, SignatureCache()) is not None  # not at genesis
    upgraded = frozenset({*kit.genesis.params.kinds, "future.act"})
    assert validity.check_tx(new_kind, kit.genesis, admitted, SignatureCache(), upgraded) is None
    ledger = ledger_for(kit)
    args = (kit.genesis, admitted, [new_kind], ledger.chain_nonce, ledger.is_sealed, SignatureCache())
    assert "UNKNOWN_KIND" in (validity.check_block_txs(*args) or "")
    assert validity.check_block_txs(*args, upgraded) is None


def test_block_limits_take_exactly_the_limit_and_refuse_one_more(kit: Kit) -> None:
    ledger = ledger_for(kit)
    txs = [kit.anchor(0, str(i)) for i in range(3)]
    size = sum(len(tx.canonical_bytes()) for tx in txs)

    def check(genesis: Genesis, block: list[TxEnvelope]) -> str | None:
        return validity.check_block_txs(
            genesis, ledger.admitted, block, ledger.chain_nonce, ledger.is_sealed, SignatureCache()
        )

    assert check(with_params(kit, max_block_txs=3, max_block_bytes=size), txs) is None
    assert "limit is 2" in (check(with_params(kit, max_block_txs=2), txs) or "")
    assert f"limit is {size - 1}" in (check(with_params(kit, max_block_bytes=size - 1), txs) or "")


def test_a_transaction_already_sealed_is_refused_in_a_later_block(kit: Kit) -> None:
    ledger = ledger_for(kit)
    tx = kit.anchor(0, "once")
    ledger.apply(kit.seal(ledger.tip, [tx]))
    problem = validity.check_block_txs(
        kit.genesis, ledger.admitted, [tx], lambda _: 0, ledger.is_sealed, SignatureCache()
    )
    assert "already on the chain" in (problem or "")


def test_a_senders_next_block_continues_from_its_sealed_nonce(kit: Kit) -> None:
    ledger = ledger_for(kit)
    first, second = kit.anchor(0, "n1"), kit.anchor(0, "n2")
    ledger.apply(kit.seal(ledger.tip, [first]))

    def check(txs: list[TxEnvelope]) -> str | None:
        return validity.check_block_txs(
            kit.genesis, ledger.admitted, txs, ledger.chain_nonce, ledger.is_sealed, SignatureCache()
        )

    assert check([second]) is None
    assert "expected 2" in (check([kit.anchor(0, "n3")]) or "")
