"""Encrypted key files (core/keyfile.py): round trip, wrong passphrase, tampering, versions,
recorded KDF limits, passphrase sources and the plaintext warning.

Most tests use libsodium's smallest Argon2id limits so the suite stays fast; one test runs the
real service level to check the recorded values are what a service gets.
"""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from traco.core import crypto, keyfile
from traco.core.errors import KeyFileError, PassphraseUnavailable, WrongPassphrase
from traco.core.keyfile import KdfLimits, PassphraseSource

FAST = keyfile.MIN_LIMITS
PASS = "correct horse battery"
SEED = bytes(range(32))


def _write(path: Path, limits: KdfLimits = FAST, passphrase: str = PASS) -> Path:
    keyfile.write_encrypted_key_file(path, SEED, passphrase, limits)
    return path


def _given(passphrase: str) -> PassphraseSource:
    return PassphraseSource(value=passphrase, interactive=False)


def _edit(path: Path, change: dict[str, object], section: str | None = None) -> None:
    document = json.loads(path.read_text())
    (document[section] if section else document).update(change)
    path.write_text(json.dumps(document))


def test_round_trip_keeps_the_key_and_shows_the_public_key_without_the_passphrase(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["k.key"]  # no temporary left behind
    document = json.loads(path.read_text())
    assert SEED.hex() not in path.read_text()
    assert document["format"] == "traco-encrypted-key" and document["version"] == 1
    assert document["public_key"] == crypto.public_key(SEED).hex()
    info = keyfile.inspect(path)
    assert (info.public_key, info.encrypted, info.limits) == (crypto.public_key(SEED), True, FAST)
    assert keyfile.read_private_key(path, _given(PASS)) == SEED


def test_two_encryptions_of_one_key_share_no_salt_nonce_or_ciphertext(tmp_path: Path) -> None:
    first = json.loads(_write(tmp_path / "a").read_text())
    second = json.loads(_write(tmp_path / "b").read_text())
    assert first["kdf"]["salt"] != second["kdf"]["salt"]
    assert first["cipher"]["nonce"] != second["cipher"]["nonce"]
    assert first["cipher"]["ciphertext"] != second["cipher"]["ciphertext"]


def test_the_recorded_limits_are_the_ones_used(tmp_path: Path) -> None:
    """A file written with other limits than the reader's defaults still opens (the reader takes
    the file's), and changing a recorded limit makes the derived key wrong."""
    limits = KdfLimits(FAST.opslimit + 1, FAST.memlimit * 2)
    path = _write(tmp_path / "k", limits)
    kdf = json.loads(path.read_text())["kdf"]
    assert (kdf["name"], kdf["opslimit"], kdf["memlimit"]) == ("argon2id", limits.opslimit, limits.memlimit)
    assert keyfile.read_private_key(path, _given(PASS)) == SEED
    _edit(path, {"opslimit": FAST.opslimit}, "kdf")
    with pytest.raises(WrongPassphrase):
        keyfile.read_private_key(path, _given(PASS))


def test_service_level_limits_are_recorded(tmp_path: Path) -> None:
    path = _write(tmp_path / "k", keyfile.LEVELS[keyfile.SERVICE_LEVEL])
    kdf = json.loads(path.read_text())["kdf"]
    assert (kdf["opslimit"], kdf["memlimit"]) == (2, 64 * 1024 * 1024)
    assert keyfile.read_private_key(path, _given(PASS)) == SEED


def test_a_wrong_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "k")
    with pytest.raises(WrongPassphrase, match=r"the passphrase does not open .*k"):
        keyfile.read_private_key(path, _given("correct horse battery!"))


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_a_changed_cipher_field_does_not_open(tmp_path: Path, field: str) -> None:
    path = _write(tmp_path / "k")
    value = json.loads(path.read_text())["cipher"][field]
    _edit(path, {field: ("0" if value[0] != "0" else "1") + value[1:]}, "cipher")
    with pytest.raises(WrongPassphrase, match="encrypted part was changed"):
        keyfile.read_private_key(path, _given(PASS))


def test_a_changed_salt_does_not_open(tmp_path: Path) -> None:
    path = _write(tmp_path / "k")
    _edit(path, {"salt": "00" * 16}, "kdf")
    with pytest.raises(WrongPassphrase):
        keyfile.read_private_key(path, _given(PASS))


def test_a_swapped_public_key_is_caught_after_decryption(tmp_path: Path) -> None:
    path = _write(tmp_path / "k")
    other = crypto.public_key(crypto.generate_private_key()).hex()
    _edit(path, {"public_key": other})
    assert keyfile.inspect(path).public_key.hex() == other  # without the passphrase nobody can tell
    with pytest.raises(KeyFileError, match="public_key is not the encrypted key's"):
        keyfile.read_private_key(path, _given(PASS))


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
def test_an_unknown_version_is_refused_by_name(tmp_path: Path, version: object) -> None:
    path = _write(tmp_path / "k")
    _edit(path, {"version": version})
    with pytest.raises(KeyFileError, match=r"format version .* this TRACO reads version 1"):
        keyfile.inspect(path)
    with pytest.raises(KeyFileError, match="version"):
        keyfile.read_private_key(path, _given(PASS))


def test_every_problem_of_a_malformed_file_is_named_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path / "k")
    document = json.loads(path.read_text())
    document["kind"] = "rsa"
    document["extra"] = 1
    document["kdf"].update(name="scrypt", salt="zz", opslimit="2")
    del document["cipher"]["nonce"]
    path.write_text(json.dumps(document))
    with pytest.raises(KeyFileError) as caught:
        keyfile.inspect(path)
    message = str(caught.value)
    for problem in ["unknown field(s) extra", "kind must be", "kdf.name", "kdf.salt", "kdf.opslimit", "cipher.nonce"]:
        assert problem in message, problem


def test_limits_beyond_the_bounds_are_refused_before_any_work(tmp_path: Path) -> None:
    """A doctored file must not make a node allocate 64 GiB while it starts."""
    path = _write(tmp_path / "k")
    _edit(path, {"memlimit": 64 << 30, "opslimit": 1000}, "kdf")
    with pytest.raises(KeyFileError, match=r"memlimit .* is outside") as caught:
        keyfile.read_private_key(path, _given(PASS))
    assert "opslimit 1000" in str(caught.value)
    with pytest.raises(KeyFileError, match="opslimit"):
        keyfile.encrypt(SEED, PASS, KdfLimits(0, FAST.memlimit))


@pytest.mark.parametrize(
    ("content", "complaint"),
    [(b"", "not valid JSON"), (b"\xff", "UTF-8"), (b"[]", "JSON object")],
)
def test_unreadable_files_are_key_file_errors(tmp_path: Path, content: bytes, complaint: str) -> None:
    path = tmp_path / "k"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match=complaint):
        keyfile.read_private_key(path, _given(PASS))


def test_a_missing_file_is_a_key_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no key file at"):
        keyfile.read_private_key(tmp_path / "absent", _given(PASS))


def test_an_encrypted_file_is_never_overwritten_unless_asked(tmp_path: Path) -> None:
    path = _write(tmp_path / "k")
    with pytest.raises(FileExistsError):
        keyfile.write_encrypted_key_file(path, crypto.generate_private_key(), PASS, FAST)
    assert keyfile.read_private_key(path, _given(PASS)) == SEED
    other = crypto.generate_private_key()
    keyfile.write_encrypted_key_file(path, other, PASS, FAST, overwrite=True)
    assert keyfile.read_private_key(path, _given(PASS)) == other


def test_the_plaintext_reader_names_an_encrypted_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is encrypted; it needs its passphrase"):
        crypto.read_key_file(_write(tmp_path / "k"))


# --------------------------------------------------------------------------- plaintext warning


def test_a_plaintext_key_warns_once_and_the_development_cast_not_at_all(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain, dev = tmp_path / "plain.key", tmp_path / "dev.key"
    crypto.write_key_file(plain, SEED)
    crypto.write_key_file(dev, SEED, development=True)
    with caplog.at_level(logging.WARNING, logger="traco.core.keyfile"):
        assert keyfile.read_private_key(plain) == SEED
        assert keyfile.read_private_key(plain) == SEED
        assert keyfile.read_private_key(dev) == SEED
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "plain.key is not encrypted" in warnings[0]
    assert keyfile.inspect(dev).development and not keyfile.inspect(plain).development


# --------------------------------------------------------------------------- passphrase sources


def test_the_variable_wins_over_the_file_and_the_file_loses_one_trailing_newline(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("from the file \n")
    assert PassphraseSource(value="from env", file=secret).get("k") == "from env"
    assert PassphraseSource(file=secret, interactive=False).get("k") == "from the file "
    secret.write_text("crlf\r\n")
    assert PassphraseSource(file=secret).get("k") == "crlf"


def test_an_unreadable_or_empty_passphrase_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PassphraseUnavailable, match=r"TRACO_KEY_PASSPHRASE_FILE names .*absent"):
        PassphraseSource(file=tmp_path / "absent").get("k")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(PassphraseUnavailable, match="empty"):
        PassphraseSource(file=tmp_path / "empty").get("k")


def test_without_a_source_or_a_terminal_the_error_names_every_option() -> None:
    with pytest.raises(PassphraseUnavailable) as caught:
        PassphraseSource(interactive=False).get("node.key")
    message = str(caught.value)
    assert "node.key" in message
    for option in ("TRACO_KEY_PASSPHRASE,", "TRACO_KEY_PASSPHRASE_FILE", "terminal"):
        assert option in message


def test_a_terminal_is_asked_once_to_open_and_twice_to_set() -> None:
    answers = iter(["first passphrase", "first passphrase", "again", "other"])
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return next(answers)

    source = PassphraseSource(interactive=True, prompt=prompt)
    assert source.get("k") == "first passphrase"
    assert source.get("k", confirm=False) == "first passphrase"
    with pytest.raises(PassphraseUnavailable, match="differ"):
        source.get("k", confirm=True)
    assert asked == ["Passphrase for k: "] * 2 + ["Passphrase for k: ", "Passphrase for k (again): "]


def test_setting_a_short_passphrase_is_refused() -> None:
    with pytest.raises(PassphraseUnavailable, match="at least 8"):
        PassphraseSource(value="short").get("k", confirm=True)
    assert PassphraseSource(value="short").get("k") == "short"  # opening an old file still works
