"""``traco keys``: make, show, encrypt and decrypt key files, and put keys into an HSM.

Key files are described in docs/key-custody.md. Passphrases come from
``TRACO_KEY_PASSPHRASE``, the file ``TRACO_KEY_PASSPHRASE_FILE`` names, or a prompt when a
terminal is attached (twice when a new one is set). No command replaces an existing file
unless ``--force`` is given, every file is written atomically with mode 0600, and every
failure is one line saying what to do, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from traco.cli.common import DataDirOpt, err, fail, out, settings_for
from traco.core import crypto, keyfile
from traco.core.adapters.factory import SignerConfig
from traco.core.errors import KeyCustodyError
from traco.core.settings import Settings
from traco.schemas.genesis import Genesis
from traco.services.consensus.genesis import DataDir

if TYPE_CHECKING:
    from pkcs11 import Session

app = typer.Typer(no_args_is_help=True, help="Keys: files (plaintext or encrypted) and HSM keys")

KdfOpt = Annotated[
    keyfile.Level,
    typer.Option(
        "--kdf",
        help="Argon2id cost: interactive (64 MiB, for service keys every process opens at start),"
        " moderate (256 MiB, a person's key), sensitive (1 GiB)",
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="replace an existing file")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="where to write [default: replace KEY_FILE, with --force]")]
LabelOpt = Annotated[str, typer.Option("--label", help="the key's label on the token: the node id (n0, n1, …)")]


def _custody_failed(exc: Exception) -> NoReturn:
    fail(str(exc))


def _passphrase(settings: Settings) -> keyfile.PassphraseSource:
    return keyfile.PassphraseSource.from_settings(settings)


def _target(key_file: Path, out_file: Path | None, force: bool) -> Path:
    target = out_file or key_file
    if target.exists() and not force:
        hint = "pass --out NEW_FILE, or --force to replace it" if out_file is None else "pass --force to replace it"
        fail(f"{target} exists; {hint} (keep a copy: a key file may be the only copy of a key)")
    return target


@app.command("new")
def keys_new(
    out_file: Annotated[Path, typer.Option("--out", help="where to write the key")],
    encrypt: Annotated[bool, typer.Option("--encrypt", help="encrypt the file with a passphrase")] = False,
    kdf: KdfOpt = keyfile.PERSON_LEVEL,
    force: ForceOpt = False,
) -> None:
    """Generate an Ed25519 key; print its public key."""
    if out_file.exists() and not force:
        fail(f"{out_file} exists; refusing to overwrite a key (--force replaces it)")
    key = crypto.generate_private_key()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        if encrypt:
            secret = _passphrase(settings_for(None)).get(str(out_file), confirm=True)
            keyfile.write_encrypted_key_file(out_file, key, secret, keyfile.LEVELS[kdf], overwrite=force)
        else:
            crypto.write_key_file(out_file, key, overwrite=force)
            err.print(f"[yellow]note:[/] {out_file} is not encrypted; `traco keys encrypt {out_file}` encrypts it")
    except (KeyCustodyError, FileExistsError) as exc:
        _custody_failed(exc)
    out.print(crypto.public_key(key).hex())


@app.command("show")
def keys_show(
    key_file: Path,
    chain: Annotated[str | None, typer.Option(help="chain id [default: the data dir's genesis]")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a key file's address (no passphrase needed); how it is stored goes to stderr."""
    try:
        info = keyfile.inspect(key_file)
    except KeyCustodyError as exc:
        _custody_failed(exc)
    if chain is None:
        genesis_path = DataDir(settings_for(data_dir).data_dir).genesis
        chain = Genesis.model_validate_json(genesis_path.read_bytes()).chain_id if genesis_path.exists() else "main"
    out.print(crypto.address(chain, info.public_key))
    if info.limits is not None:
        limits = info.limits
        err.print(f"encrypted (argon2id, opslimit {limits.opslimit}, memlimit {limits.memlimit >> 20} MiB)")
    else:
        err.print(
            "plaintext" + (" (development cast)" if info.development else ": encrypt it with `traco keys encrypt`")
        )


@app.command("encrypt")
def keys_encrypt(
    key_file: Path, out_file: OutOpt = None, force: ForceOpt = False, kdf: KdfOpt = keyfile.PERSON_LEVEL
) -> None:
    """Encrypt a plaintext key file with a new passphrase (asked twice at a terminal)."""
    try:
        info = keyfile.inspect(key_file)
        if info.encrypted:
            fail(f"{key_file} is already encrypted")
        private = crypto.read_key_file(key_file)
        target = _target(key_file, out_file, force)
        secret = _passphrase(settings_for(None)).get(str(target), confirm=True)
        keyfile.write_encrypted_key_file(target, private, secret, keyfile.LEVELS[kdf], overwrite=force)
    except (KeyCustodyError, FileExistsError, ValueError) as exc:
        _custody_failed(exc)
    out.print(f"{target}: encrypted ({kdf}), public key {info.public_key.hex()}")


@app.command("decrypt")
def keys_decrypt(key_file: Path, out_file: OutOpt = None, force: ForceOpt = False) -> None:
    """Write an encrypted key file's key as a plaintext key file (anyone who can read it can sign)."""
    try:
        if not keyfile.inspect(key_file).encrypted:
            fail(f"{key_file} is not encrypted")
        target = _target(key_file, out_file, force)
        private = keyfile.read_private_key(key_file, _passphrase(settings_for(None)))
        crypto.write_key_file(target, private, overwrite=force)
    except (KeyCustodyError, FileExistsError) as exc:
        _custody_failed(exc)
    err.print(f"[yellow]note:[/] {target} holds the key in plaintext")
    out.print(f"{target}: decrypted, public key {crypto.public_key(private).hex()}")


# ---------------------------------------------------------------------------- HSM


def _hsm_session() -> Session:
    from traco.core.adapters.signer_pkcs11 import open_session

    module, token, pin = SignerConfig.from_settings(settings_for(None)).pkcs11_target()
    return open_session(module, token, pin, rw=True)


@app.command("hsm-import")
def keys_hsm_import(key_file: Path, label: LabelOpt) -> None:
    """Copy a key file's key into the HSM (TRACO_PKCS11_MODULE, _TOKEN_LABEL, _PIN or _PIN_FILE)
    as a sensitive, non-extractable key labelled LABEL; then destroy the file's copies."""
    from traco.core.adapters.signer_pkcs11 import import_key

    try:
        private = keyfile.read_private_key(key_file, _passphrase(settings_for(None)))
        session = _hsm_session()
        try:
            public = import_key(session, label, private)
        finally:
            session.close()
    except KeyCustodyError as exc:
        _custody_failed(exc)
    out.print(public.hex())
    err.print(f"key {label!r} is on the token; destroy {key_file} and its backups once the HSM's are made")


@app.command("hsm-generate")
def keys_hsm_generate(label: LabelOpt) -> None:
    """Generate an Ed25519 key inside the HSM, labelled LABEL; print its public key."""
    from traco.core.adapters.signer_pkcs11 import generate_key

    try:
        session = _hsm_session()
        try:
            public = generate_key(session, label)
        finally:
            session.close()
    except KeyCustodyError as exc:
        _custody_failed(exc)
    out.print(public.hex())


@app.command("hsm-show")
def keys_hsm_show(
    label: LabelOpt,
    chain: Annotated[str, typer.Option(help="chain id for the address")] = "main",
) -> None:
    """Print the address of the HSM key labelled LABEL, after a test signature verifies."""
    from traco.core.adapters.signer_pkcs11 import Pkcs11Signer

    try:
        signer = Pkcs11Signer(*SignerConfig.from_settings(settings_for(None)).pkcs11_target(), label)
    except KeyCustodyError as exc:
        _custody_failed(exc)
    try:
        out.print(crypto.address(chain, signer.public_key))
    finally:
        signer.close()
