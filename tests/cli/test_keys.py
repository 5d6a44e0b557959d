"""``traco keys``: encrypted key files made, shown, encrypted and decrypted from the command line,
and keys put into SoftHSM2. Failures are one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.softhsm import SoftHsm
from traco.cli.common import load_key
from traco.cli.main import app
from traco.core import crypto, keyfile

PASS = "a passphrase for tests"
FAST = ["--kdf", "interactive"]
runner = CliRunner()


def traco(*args: str, **env: str) -> tuple[int, str, str]:
    """Run ``traco`` in-process with only the given TRACO_* variables; stdin is no terminal."""
    clean = {k: None for k in os.environ if k.startswith("TRACO_")}
    result = runner.invoke(app, list(args), env={**clean, **env})
    return result.exit_code, result.stdout, result.stderr


def _plain(path: Path) -> bytes:
    seed = crypto.generate_private_key()
    crypto.write_key_file(path, seed)
    return seed


def test_keys_new_encrypt_writes_a_person_level_file(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    code, out, _ = traco("keys", "new", "--out", str(path), "--encrypt", TRACO_KEY_PASSPHRASE=PASS)
    assert code == 0
    info = keyfile.inspect(path)
    assert out.strip() == info.public_key.hex()
    assert info.limits == keyfile.LEVELS["moderate"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert crypto.public_key(keyfile.read_private_key(path, keyfile.PassphraseSource(value=PASS))) == info.public_key


def test_without_a_passphrase_source_nothing_is_written_and_the_options_are_named(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    code, _, err = traco("keys", "new", "--out", str(path), "--encrypt", *FAST)
    assert code == 1
    assert "TRACO_KEY_PASSPHRASE" in err and "TRACO_KEY_PASSPHRASE_FILE" in err and "terminal" in err
    assert not path.exists()


def test_encrypt_then_decrypt_round_trips_and_never_overwrites_unasked(tmp_path: Path) -> None:
    plain, sealed, back = tmp_path / "plain.key", tmp_path / "sealed.key", tmp_path / "back.key"
    seed = _plain(plain)
    before = plain.read_bytes()
    code, _, err = traco("keys", "encrypt", str(plain), *FAST, TRACO_KEY_PASSPHRASE=PASS)
    assert code == 1 and "exists; pass --out NEW_FILE, or --force" in err
    assert plain.read_bytes() == before
    assert traco("keys", "encrypt", str(plain), "--out", str(sealed), *FAST, TRACO_KEY_PASSPHRASE=PASS)[0] == 0
    assert keyfile.inspect(sealed).encrypted
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600

    code, out, _ = traco("keys", "show", str(sealed), "--chain", "c1")  # no passphrase needed
    assert code == 0 and out.strip() == crypto.address("c1", crypto.public_key(seed))

    secret = tmp_path / "passphrase"
    secret.write_text(PASS + "\n")
    assert traco("keys", "decrypt", str(sealed), "--out", str(plain), TRACO_KEY_PASSPHRASE_FILE=str(secret))[0] == 1
    code, _, _ = traco("keys", "decrypt", str(sealed), "--out", str(back), TRACO_KEY_PASSPHRASE_FILE=str(secret))
    assert code == 0 and crypto.read_key_file(back) == seed

    code, _, _ = traco("keys", "encrypt", str(plain), "--force", *FAST, TRACO_KEY_PASSPHRASE=PASS)  # in place
    assert code == 0 and keyfile.read_private_key(plain, keyfile.PassphraseSource(value=PASS)) == seed
    code, _, err = traco("keys", "encrypt", str(plain), "--out", str(tmp_path / "x"), TRACO_KEY_PASSPHRASE=PASS)
    assert code == 1 and "already encrypted" in err


def test_a_wrong_passphrase_or_a_changed_file_is_one_line(tmp_path: Path) -> None:
    sealed = tmp_path / "sealed.key"
    keyfile.write_encrypted_key_file(sealed, crypto.generate_private_key(), PASS, keyfile.MIN_LIMITS)
    code, _, err = traco("keys", "decrypt", str(sealed), "--out", str(tmp_path / "o"), TRACO_KEY_PASSPHRASE="nope")
    expected = f"error: the passphrase does not open {sealed} (or its encrypted part was changed)"
    assert code == 1 and err.strip() == expected
    document = json.loads(sealed.read_text())
    document["version"] = 7
    sealed.write_text(json.dumps(document))
    code, _, err = traco("keys", "show", str(sealed))
    assert code == 1 and "format version 7; this TRACO reads version 1" in err
    assert not (tmp_path / "o").exists()


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    sealed = tmp_path / "sealed.key"
    keyfile.write_encrypted_key_file(sealed, crypto.generate_private_key(), PASS, keyfile.MIN_LIMITS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACO_")}
    done = subprocess.run(
        [sys.executable, "-m", "traco.cli.main", "keys", "decrypt", str(sealed), "--out", str(tmp_path / "o")],
        env={**env, "TRACO_KEY_PASSPHRASE": "wrong"},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: the passphrase does not open")


def test_the_cli_signs_with_an_encrypted_member_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "member.key"
    seed = crypto.generate_private_key()
    keyfile.write_encrypted_key_file(path, seed, PASS, keyfile.MIN_LIMITS)
    monkeypatch.setenv("TRACO_KEY_PASSPHRASE", PASS)
    assert load_key(tmp_path, path) == seed


def test_hsm_import_then_show(softhsm: SoftHsm, tmp_path: Path) -> None:
    if not softhsm.eddsa:
        pytest.skip("this SoftHSM2 build does not offer CKM_EDDSA (built without OpenSSL Ed25519)")
    plain = tmp_path / "node.key"
    seed = _plain(plain)
    label = f"cli-{os.getpid()}-{tmp_path.name[-8:]}"
    env = {k: v for k, v in softhsm.env().items() if k.startswith("TRACO_")}
    code, out, err = traco("keys", "hsm-import", str(plain), "--label", label, **env)
    assert code == 0, err
    assert out.strip() == crypto.public_key(seed).hex() and "destroy" in err
    code, _, err = traco("keys", "hsm-import", str(plain), "--label", label, **env)
    assert code == 1 and "already holds objects labelled" in err
    code, out, _ = traco("keys", "hsm-show", "--label", label, "--chain", "c1", **env)
    assert code == 0 and out.strip() == crypto.address("c1", crypto.public_key(seed))
    code, _, err = traco("keys", "hsm-show", "--label", label, **{**env, "TRACO_PKCS11_PIN": "999999"})
    assert code == 1 and "does not log into token" in err and "999999" not in err
