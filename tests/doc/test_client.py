"""Client helpers: hashing files, payload builders that the rules accept, and sealed keys that
only their recipient can open."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import nacl.bindings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.doc.helpers import DAY, Actor, Cast, Ledger
from traco.core import crypto
from traco.services.doc import client, queries


def test_file_sha256_hashes_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bl.pdf"
    data = bytes(range(256)) * 5000  # more than one read chunk
    path.write_bytes(data)
    assert client.file_sha256(path) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert client.file_sha256(str(empty)) == hashlib.sha256(b"").hexdigest()


def test_builders_produce_payloads_the_rules_accept(tmp_path: Path, ledger: Ledger, cast: Cast) -> None:
    path = tmp_path / "bl.pdf"
    path.write_bytes(b"%PDF-1.7 a bill of lading")
    payload = client.register_payload(
        client.file_sha256(path),
        "bill_of_lading",
        "NMFTA:MAEU/HHL71800000",
        metadata={"vessel": "MAERSK ESSEN"},
        holder=crypto.address("doctest", cast.exporter.public),
    )
    doc_id = ledger.ok(cast.carrier, "doc.register", payload).result["doc_id"]
    steps = [
        (cast.carrier, "doc.event", client.event_payload(doc_id, "loaded", location="CNSHA")),
        (cast.exporter, "doc.pledge", client.pledge_payload(doc_id, cast.bank_a.public, 5_000_00, "USD",
                                                            ledger.time + DAY, reference="L-1")),
        (cast.bank_a, "doc.release", client.release_payload(doc_id)),
        (cast.exporter, "doc.transfer", client.transfer_payload(doc_id, cast.importer.key)),
        (cast.importer, "doc.share_key", client.share_key_payload(doc_id, b"k" * 32, [cast.bank_b.key])),
    ]  # fmt: skip
    for sender, kind, step in steps:
        ledger.ok(sender, kind, step)
    new_id = ledger.ok(cast.carrier, "doc.amend", client.amend_payload(doc_id, "ab" * 32, reason="typo")).result[
        "doc_id"
    ]
    ledger.ok(cast.importer, "doc.surrender", client.surrender_payload(new_id))
    record = queries.document(ledger.state, new_id)
    assert record is not None and record["status"] == "surrendered"


@pytest.mark.parametrize(
    "call",
    [
        lambda: client.register_payload("00" * 32, "bill_of_lading", "no-slash"),
        lambda: client.register_payload("00" * 32, "bill_of_lading", "/REF"),
        lambda: client.register_payload("00" * 32, "passport", "NS/REF"),
        lambda: client.register_payload("xyz", "bill_of_lading", "NS/REF"),
        lambda: client.register_payload("00" * 32, "invoice", "NS/REF", metadata={"x": 0.5}),
        lambda: client.pledge_payload("00" * 32, "11" * 32, 0, "USD", 1),
        lambda: client.transfer_payload("00" * 32, "traco:main:nothex"),
        lambda: client.transfer_payload("00" * 32, b"short"),
        lambda: client.event_payload("00" * 32, "teleported"),
    ],
)
def test_builders_refuse_bad_input(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


def test_parse_business_key() -> None:
    assert client.parse_business_key("NMFTA:MAEU/INV/2024/1", scope="goods") == {
        "namespace": "NMFTA:MAEU",
        "reference": "INV/2024/1",
        "scope": "goods",
    }


def test_public_key_forms(cast: Cast) -> None:
    key = cast.exporter
    assert client.public_key_hex(key.public) == key.key
    assert client.public_key_hex(key.key.upper()) == key.key
    assert client.public_key_hex(crypto.address("main", key.public)) == key.key


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=16, max_size=64))
def test_a_sealed_key_opens_only_for_its_recipient(key: bytes) -> None:
    alice, bob = Actor.named("alice"), Actor.named("bob")
    sealed = client.seal_key_for(alice.public, key)
    assert client.open_sealed_key(alice.seed, sealed) == key
    with pytest.raises(ValueError, match="does not open"):
        client.open_sealed_key(bob.seed, sealed)


def test_sealing_is_randomised_and_tamper_evident() -> None:
    alice = Actor.named("alice")
    one, two = client.seal_key_for(alice.public, b"k" * 32), client.seal_key_for(alice.public, b"k" * 32)
    assert one != two  # a fresh ephemeral key each time: shares cannot be linked by content
    raw = bytearray(base64.b64decode(one))
    raw[-1] ^= 1
    with pytest.raises(ValueError, match="does not open"):
        client.open_sealed_key(alice.seed, base64.b64encode(bytes(raw)).decode())
    with pytest.raises(ValueError, match="not base64"):
        client.open_sealed_key(alice.seed, "***")


def test_the_64_byte_secret_key_works_too() -> None:
    alice = Actor.named("alice")
    secret = nacl.bindings.crypto_sign_seed_keypair(alice.seed)[1]
    sealed = client.seal_key_for(alice.public, b"s" * 16)
    assert client.open_sealed_key(secret, sealed) == b"s" * 16
    with pytest.raises(ValueError, match="32-byte seed or a 64-byte"):
        client.open_sealed_key(b"x" * 10, sealed)


@pytest.mark.parametrize(("public", "key"), [(b"\x00" * 31, b"k" * 32), (b"\x01" * 32, b"short")])
def test_sealing_refuses_bad_keys(public: bytes, key: bytes) -> None:
    with pytest.raises(ValueError):
        client.seal_key_for(public, key)
