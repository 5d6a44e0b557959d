"""Signers (core/adapters/signer_*.py, the factory's open_signer): a key in memory, a key file
of either kind, and an Ed25519 key inside SoftHSM2 reached through PKCS#11.

Every signature is checked with the project's strict verifier (``crypto.verify``); an HSM's
Ed25519 signature is deterministic, so it must also equal the one the same key makes in
software. A validator's votes and a node's checkpoints are made through the HSM signer and
accepted by the checks other nodes run on them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.softhsm import SoftHsm
from traco.core import crypto, keyfile
from traco.core.adapters.factory import SignerConfig, open_signer
from traco.core.adapters.signer_file import KeySigner
from traco.core.errors import SignerError, WrongPassphrase
from traco.core.keyfile import PassphraseSource
from traco.core.nodes import NodeKey, check_signed
from traco.core.ports import Signer
from traco.schemas.events import BlockProcessed
from traco.services.consensus import machine as m
from traco.services.consensus import proposals
from traco.services.consensus.wire import vote_message

MESSAGE = b"traco signer test message"


def _label() -> str:
    return f"t-{secrets.token_hex(4)}"


def test_a_key_signer_signs_as_the_key_does() -> None:
    seed = crypto.generate_private_key()
    signer = KeySigner(seed)
    assert signer.public_key == crypto.public_key(seed)
    assert signer.sign(MESSAGE) == crypto.sign(seed, MESSAGE)
    assert seed.hex() not in repr(signer)
    with pytest.raises(ValueError):
        KeySigner(b"short")


def test_the_factory_opens_an_encrypted_file_with_the_passphrase_file(tmp_path: Path) -> None:
    seed = crypto.generate_private_key()
    path = tmp_path / "node.key"
    keyfile.write_encrypted_key_file(path, seed, "node passphrase", keyfile.MIN_LIMITS)
    secret = tmp_path / "passphrase"
    secret.write_text("node passphrase\n")
    signer = open_signer(SignerConfig(passphrase=PassphraseSource(file=secret)), path, "n0")
    assert crypto.verify(crypto.public_key(seed), MESSAGE, signer.sign(MESSAGE))
    secret.write_text("another passphrase\n")
    with pytest.raises(WrongPassphrase):
        open_signer(SignerConfig(passphrase=PassphraseSource(file=secret)), path, "n0")


def test_pkcs11_without_its_settings_names_every_missing_one(tmp_path: Path) -> None:
    with pytest.raises(SignerError) as caught:
        open_signer(SignerConfig(kind="pkcs11"), tmp_path / "unused.key", "n0")
    message = str(caught.value)
    for name in ("TRACO_PKCS11_MODULE", "TRACO_PKCS11_TOKEN_LABEL", "TRACO_PKCS11_PIN"):
        assert name in message


def test_a_pin_file_is_read_and_an_unreadable_one_named(tmp_path: Path) -> None:
    (tmp_path / "pin").write_text("1234\n")
    config = SignerConfig(kind="pkcs11", pkcs11_module=Path("/m.so"), pkcs11_token_label="t")
    assert SignerConfig(**{**config.__dict__, "pkcs11_pin_file": tmp_path / "pin"}).pkcs11_target()[2] == "1234"
    with pytest.raises(SignerError, match=r"TRACO_PKCS11_PIN_FILE names .*absent"):
        SignerConfig(**{**config.__dict__, "pkcs11_pin_file": tmp_path / "absent"}).pkcs11_target()


# --------------------------------------------------------------------------- SoftHSM2


def _config(hsm: SoftHsm, pin: str | None = None, token: str | None = None, module: Path | None = None) -> SignerConfig:
    return SignerConfig(
        kind="pkcs11",
        pkcs11_module=module or hsm.module,
        pkcs11_token_label=token or hsm.token_label,
        pkcs11_pin=pin or hsm.pin,
    )


def _import(hsm: SoftHsm, label: str, seed: bytes) -> None:
    from traco.core.adapters.signer_pkcs11 import import_key, open_session

    session = open_session(hsm.module, hsm.token_label, hsm.pin, rw=True)
    try:
        assert import_key(session, label, seed) == crypto.public_key(seed)
    finally:
        session.close()


@pytest.fixture
def eddsa(softhsm: SoftHsm) -> SoftHsm:
    if not softhsm.eddsa:
        pytest.skip("this SoftHSM2 build does not offer CKM_EDDSA (built without OpenSSL Ed25519)")
    return softhsm


@pytest.fixture
def hsm_key(eddsa: SoftHsm) -> Iterator[tuple[Signer, bytes]]:
    """A signer for a key imported into the token, and the key itself (to compare)."""
    seed, label = crypto.generate_private_key(), _label()
    _import(eddsa, label, seed)
    signer = open_signer(_config(eddsa), Path("/nonexistent"), label)
    try:
        yield signer, seed
    finally:
        signer.close()


def test_softhsm_signs_ed25519_that_the_strict_verifier_accepts(hsm_key: tuple[Signer, bytes]) -> None:
    signer, seed = hsm_key
    assert signer.public_key == crypto.public_key(seed)
    for message in (MESSAGE, b"", bytes(range(256)) * 40):
        signature = signer.sign(message)
        assert crypto.verify(signer.public_key, message, signature)
        assert signature == crypto.sign(seed, message)  # pure Ed25519, not Ed25519ph


def test_a_key_generated_inside_the_token_signs(eddsa: SoftHsm) -> None:
    from traco.core.adapters.signer_pkcs11 import generate_key, open_session

    label = _label()
    session = open_session(eddsa.module, eddsa.token_label, eddsa.pin, rw=True)
    try:
        public = generate_key(session, label)
        with pytest.raises(SignerError, match="already holds objects labelled"):
            generate_key(session, label)
    finally:
        session.close()
    signer = open_signer(_config(eddsa), Path("/nonexistent"), label)
    try:
        assert signer.public_key == public
        assert crypto.verify(public, MESSAGE, signer.sign(MESSAGE))
    finally:
        signer.close()


def test_a_validator_and_a_node_sign_through_the_hsm(hsm_key: tuple[Signer, bytes]) -> None:
    """What other validators and checkpoint readers check is what the HSM signed."""
    signer, _ = hsm_key
    me = signer.public_key.hex()
    vote = proposals.sign_vote("hsm-chain", signer, me, m.Vote("prevote", 3, 0, "ab" * 32, me, b""))
    assert proposals.signed_vote("hsm-chain", vote_message(vote)) is not None
    assert proposals.signed_vote("other-chain", vote_message(vote)) is None
    node = NodeKey("n0", signer)
    checkpoint = BlockProcessed(service="party", height=3, state_digest="cd" * 32)
    signed = node.sign("hsm-chain", checkpoint, [], [])
    assert check_signed("hsm-chain", signed, "n0", me) is None
    assert check_signed("hsm-chain", signed, "n0", KeySigner(crypto.generate_private_key()).public_key.hex())


def test_a_wrong_pin_is_a_clear_error(softhsm: SoftHsm) -> None:
    with pytest.raises(SignerError, match=r"PIN .* does not log into token") as caught:
        open_signer(_config(softhsm, pin="000000"), Path("/nonexistent"), "n0")
    assert "000000" not in str(caught.value)


def test_an_unknown_token_lists_the_tokens_there_are(softhsm: SoftHsm) -> None:
    with pytest.raises(SignerError, match=f"no token labelled 'nope'.*{softhsm.token_label}"):
        open_signer(_config(softhsm, token="nope"), Path("/nonexistent"), "n0")


def test_a_missing_module_is_named(softhsm: SoftHsm, tmp_path: Path) -> None:
    with pytest.raises(SignerError, match=r"cannot load the PKCS#11 module .*absent\.so"):
        open_signer(_config(softhsm, module=tmp_path / "absent.so"), Path("/nonexistent"), "n0")


def test_a_missing_key_label_is_named(softhsm: SoftHsm) -> None:
    expected = "no private and public key pair labelled 'absent-node'" if softhsm.eddsa else "CKM_EDDSA"
    with pytest.raises(SignerError, match=expected):
        open_signer(_config(softhsm), Path("/nonexistent"), "absent-node")


def test_a_key_pair_that_does_not_match_fails_at_start(eddsa: SoftHsm) -> None:
    """A public key object of another key under the label: the probe signature catches it."""
    from pkcs11 import Attribute, KeyType, ObjectClass

    from traco.core.adapters.signer_pkcs11 import ED25519_PARAMS, open_session

    label = _label()
    seed, stranger = crypto.generate_private_key(), crypto.generate_private_key()
    session = open_session(eddsa.module, eddsa.token_label, eddsa.pin, rw=True)
    try:
        common = {Attribute.KEY_TYPE: KeyType.EC_EDWARDS, Attribute.TOKEN: True, Attribute.LABEL: label}
        common[Attribute.EC_PARAMS] = ED25519_PARAMS
        session.create_object(
            {**common, Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.VALUE: seed, Attribute.SIGN: True}
        )
        point = b"\x04\x20" + crypto.public_key(stranger)
        session.create_object({**common, Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.EC_POINT: point})
    finally:
        session.close()
    with pytest.raises(SignerError, match="does not verify under its public key"):
        open_signer(_config(eddsa), Path("/nonexistent"), label)
