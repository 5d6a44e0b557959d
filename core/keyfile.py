"""Key files at rest: encrypted with a passphrase, or plaintext for the development cast.

Why: a key file on a disk, a backup or a Kubernetes Secret is a bank's signing authority. An
encrypted file is useless without its passphrase, and the passphrase lives apart from it (a
person's memory, another Secret, an operator's vault). ``traco init`` still writes plaintext
keys for the development cast so that ``traco up`` needs nothing; reading any other
plaintext key logs one warning per file.

The encrypted format (version 1), JSON with the public key in clear so tools can show an
address without the passphrase::

    {"format": "traco-encrypted-key", "version": 1, "kind": "ed25519",
     "public_key": "<64 hex>",
     "kdf": {"name": "argon2id", "salt": "<32 hex>", "opslimit": 2, "memlimit": 67108864},
     "cipher": {"name": "xsalsa20-poly1305", "nonce": "<48 hex>", "ciphertext": "<96 hex>"}}

The passphrase (UTF-8) and salt go through Argon2id (libsodium's ``crypto_pwhash``, via
PyNaCl) with the recorded limits to a 32-byte key; the 32-byte private key is sealed with that
key in a ``SecretBox`` (XSalsa20-Poly1305). Decryption uses the limits the file records, so a
file written with other settings still opens; limits outside ``[MIN, MAX]`` are refused before
any work, so a doctored file cannot make a node allocate gigabytes. A changed ciphertext, salt,
nonce or limit fails the box's authentication (reported like a wrong passphrase: the two cannot
be told apart); a changed public key is caught by comparing it with the decrypted key's.

KDF levels (measured on the 2-core development machine, idle to busy; docs/key-custody.md):
``interactive`` (opslimit 2, 64 MiB, 0.1-0.5 s) for service keys, which every process opens at
start — four nodes at once cost 256 MiB; ``moderate`` (3, 256 MiB, 0.5-3 s) for a person's key
(``traco keys new --encrypt``); ``sensitive`` (4, 1 GiB, 4-13 s) on request.

Passphrases come from ``TRACO_KEY_PASSPHRASE``, else the file named by
``TRACO_KEY_PASSPHRASE_FILE`` (one trailing newline stripped), else a prompt when standard
input is a terminal (twice when setting one), else ``PassphraseUnavailable`` naming all three.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.secret
import nacl.utils
from pydantic import SecretStr

from traco.core import crypto
from traco.core.errors import KeyFileError, PassphraseUnavailable, WrongPassphrase

log = logging.getLogger(__name__)

FORMAT = "traco-encrypted-key"
VERSION = 1
KDF_NAME = "argon2id"
CIPHER_NAME = "xsalsa20-poly1305"
MIN_PASSPHRASE_LENGTH = 8

Level = Literal["interactive", "moderate", "sensitive"]


@dataclass(frozen=True)
class KdfLimits:
    """Argon2id's cost: passes over memory (``opslimit``) and bytes of memory (``memlimit``)."""

    opslimit: int
    memlimit: int


LEVELS: dict[str, KdfLimits] = {
    "interactive": KdfLimits(argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": KdfLimits(argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE),
    "sensitive": KdfLimits(argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE),
}
SERVICE_LEVEL: Level = "interactive"
PERSON_LEVEL: Level = "moderate"
# What a file may ask for: libsodium's minimum up to the sensitive level (and a few passes more).
MIN_LIMITS = KdfLimits(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
MAX_LIMITS = KdfLimits(16, argon2id.MEMLIMIT_SENSITIVE)

_TOP_FIELDS = frozenset({"format", "version", "kind", "public_key", "kdf", "cipher"})
_KDF_FIELDS = frozenset({"name", "salt", "opslimit", "memlimit"})
_CIPHER_FIELDS = frozenset({"name", "nonce", "ciphertext"})
_SEALED_SIZE = crypto.PRIVATE_KEY_SIZE + nacl.secret.SecretBox.MACBYTES
_warned_plaintext: set[Path] = set()


# --------------------------------------------------------------------------- passphrases


class _PassphraseSettings(Protocol):
    """The passphrase fields of ``traco.core.settings.Settings``."""

    @property
    def key_passphrase(self) -> SecretStr | None: ...

    @property
    def key_passphrase_file(self) -> Path | None: ...


@dataclass(frozen=True)
class PassphraseSource:
    """Where a passphrase comes from, in the contract's order: value, file, terminal.

    ``prompt`` and ``interactive`` exist for tests; by default the prompt is ``getpass`` and
    it is used only when standard input is a terminal.
    """

    value: str | None = None
    file: Path | None = None
    interactive: bool | None = None
    prompt: Callable[[str], str] = getpass.getpass

    @classmethod
    def from_settings(cls, settings: _PassphraseSettings) -> PassphraseSource:
        secret = settings.key_passphrase
        return cls(value=secret.get_secret_value() if secret else None, file=settings.key_passphrase_file)

    def get(self, what: str, *, confirm: bool = False) -> str:
        """The passphrase for ``what`` (a key file's name); ``confirm`` asks twice at a prompt
        and enforces ``MIN_PASSPHRASE_LENGTH`` (it is setting a passphrase, not using one)."""
        passphrase = self._find(what, confirm)
        if confirm and len(passphrase) < MIN_PASSPHRASE_LENGTH:
            raise PassphraseUnavailable(f"a passphrase must have at least {MIN_PASSPHRASE_LENGTH} characters")
        return passphrase

    def _find(self, what: str, confirm: bool) -> str:
        if self.value:
            return self.value
        if self.file is not None:
            return _passphrase_from_file(self.file)
        interactive = sys.stdin.isatty() if self.interactive is None else self.interactive
        if interactive:
            first = self.prompt(f"Passphrase for {what}: ")
            if confirm and self.prompt(f"Passphrase for {what} (again): ") != first:
                raise PassphraseUnavailable("the two passphrases differ; nothing was written")
            if not first:
                raise PassphraseUnavailable(f"no passphrase was entered for {what}")
            return first
        raise PassphraseUnavailable(
            f"{what} needs a passphrase and none is available: set TRACO_KEY_PASSPHRASE, or"
            " TRACO_KEY_PASSPHRASE_FILE to a file holding it, or run from a terminal to be asked"
        )


def _passphrase_from_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PassphraseUnavailable(f"TRACO_KEY_PASSPHRASE_FILE names {path}, which cannot be read: {exc}") from exc
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise PassphraseUnavailable(f"TRACO_KEY_PASSPHRASE_FILE names {path}, which is empty")
    return text


# --------------------------------------------------------------------------- encrypting


def encrypt(private_key: bytes, passphrase: str, limits: KdfLimits = LEVELS[PERSON_LEVEL]) -> dict[str, object]:
    """The version-1 encrypted document of ``private_key`` (a fresh salt and nonce each time)."""
    public = crypto.public_key(private_key)  # a key of the wrong type or size fails here, first
    _check_limits(limits, "the requested KDF limits")
    salt = nacl.utils.random(argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, limits))
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    sealed = box.encrypt(private_key, nonce).ciphertext
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": crypto.KEY_KIND,
        "public_key": public.hex(),
        "kdf": {"name": KDF_NAME, "salt": salt.hex(), "opslimit": limits.opslimit, "memlimit": limits.memlimit},
        "cipher": {"name": CIPHER_NAME, "nonce": nonce.hex(), "ciphertext": sealed.hex()},
    }


def write_encrypted_key_file(
    path: str | os.PathLike[str],
    private_key: bytes,
    passphrase: str,
    limits: KdfLimits = LEVELS[PERSON_LEVEL],
    *,
    overwrite: bool = False,
) -> None:
    """Write an encrypted key file: mode 0600, atomically, never over a file unless asked."""
    document = encrypt(private_key, passphrase, limits)
    crypto.write_secret_file(path, json.dumps(document, indent=2) + "\n", overwrite=overwrite)


def _derive(passphrase: str, salt: bytes, limits: KdfLimits) -> bytes:
    key: bytes = argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase.encode("utf-8"),
        salt,
        opslimit=limits.opslimit,
        memlimit=limits.memlimit,
    )
    return key


def _check_limits(limits: KdfLimits, what: str) -> None:
    problems = []
    if not MIN_LIMITS.opslimit <= limits.opslimit <= MAX_LIMITS.opslimit:
        problems.append(f"opslimit {limits.opslimit} is outside {MIN_LIMITS.opslimit}..{MAX_LIMITS.opslimit}")
    if not MIN_LIMITS.memlimit <= limits.memlimit <= MAX_LIMITS.memlimit:
        problems.append(f"memlimit {limits.memlimit} is outside {MIN_LIMITS.memlimit}..{MAX_LIMITS.memlimit}")
    if problems:
        raise KeyFileError(f"{what}: " + "; ".join(problems))


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class KeyFileInfo:
    """What a key file says without its passphrase."""

    path: Path
    public_key: bytes
    encrypted: bool
    development: bool = False
    limits: KdfLimits | None = None


def inspect(path: str | os.PathLike[str]) -> KeyFileInfo:
    """The public key and storage of a key file, checked but not opened (no passphrase)."""
    target = Path(path)
    document = _load(target)
    if _is_encrypted(document):
        assert isinstance(document, dict)
        public, limits, _, _, _ = _encrypted_fields(document, target)
        return KeyFileInfo(target, public, True, limits=limits)
    private = _plaintext(document, target)
    return KeyFileInfo(target, crypto.public_key(private), False, crypto.is_development_key(document))


def read_private_key(path: str | os.PathLike[str], passphrase: PassphraseSource | None = None) -> bytes:
    """The private key of a key file of either kind.

    An encrypted file asks ``passphrase`` (``KeyFileError``, ``WrongPassphrase`` or
    ``PassphraseUnavailable``, each saying what to do); a plaintext one is read as it is,
    with one warning per file unless ``traco init`` marked it as the development cast's.
    """
    target = Path(path)
    document = _load(target)
    if not _is_encrypted(document):
        private = _plaintext(document, target)
        if not crypto.is_development_key(document) and target not in _warned_plaintext:
            _warned_plaintext.add(target)
            log.warning(
                "key file %s is not encrypted: anyone who can read it can sign as its owner;"
                " encrypt it (`traco keys encrypt`) or keep the key in an HSM (docs/key-custody.md)",
                target,
            )
        return private
    assert isinstance(document, dict)
    public, limits, salt, nonce, sealed = _encrypted_fields(document, target)
    secret = (passphrase or PassphraseSource()).get(str(target))
    try:
        private = nacl.secret.SecretBox(_derive(secret, salt, limits)).decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase(f"the passphrase does not open {target} (or its encrypted part was changed)") from None
    if crypto.public_key(private) != public:
        raise KeyFileError(f"key file {target}: public_key is not the encrypted key's (the file was changed)")
    return private


def _load(target: Path) -> object:
    try:
        return crypto.load_json_key_file(target)
    except FileNotFoundError:
        raise KeyFileError(f"no key file at {target}") from None
    except IsADirectoryError:
        raise KeyFileError(f"{target} is a directory, not a key file") from None
    except PermissionError as exc:
        raise KeyFileError(f"key file {target} cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise KeyFileError(str(exc)) from None


def _is_encrypted(document: object) -> bool:
    return isinstance(document, dict) and ("format" in document or "version" in document or "cipher" in document)


def _plaintext(document: object, target: Path) -> bytes:
    try:
        return crypto.key_from_document(document, target)
    except ValueError as exc:
        raise KeyFileError(str(exc)) from None


def _encrypted_fields(document: dict[str, object], target: Path) -> tuple[bytes, KdfLimits, bytes, bytes, bytes]:
    """``(public key, limits, salt, nonce, sealed key)``; ``KeyFileError`` naming every problem."""
    if document.get("format") != FORMAT:
        raise KeyFileError(f"key file {target}: format {document.get('format')!r:.40} is not {FORMAT!r}")
    version = document.get("version")
    if version != VERSION or isinstance(version, bool):  # JSON true is not version 1
        raise KeyFileError(
            f"key file {target} is of format version {version!r:.20}; this TRACO reads version {VERSION}"
            " (a newer TRACO wrote it, or it was edited)"
        )
    problems: list[str] = []
    _exact_fields(document, _TOP_FIELDS, "", problems)
    if document.get("kind") != crypto.KEY_KIND:
        problems.append(f"kind must be {crypto.KEY_KIND!r}")
    public = _hex(document, "public_key", crypto.PUBLIC_KEY_SIZE, problems)
    kdf, cipher = _section(document, "kdf", problems), _section(document, "cipher", problems)
    _exact_fields(kdf, _KDF_FIELDS, "kdf.", problems)
    _exact_fields(cipher, _CIPHER_FIELDS, "cipher.", problems)
    if kdf.get("name", KDF_NAME) != KDF_NAME:
        problems.append(f"kdf.name must be {KDF_NAME!r}")
    if cipher.get("name", CIPHER_NAME) != CIPHER_NAME:
        problems.append(f"cipher.name must be {CIPHER_NAME!r}")
    salt = _hex(kdf, "salt", argon2id.SALTBYTES, problems, "kdf.")
    nonce = _hex(cipher, "nonce", nacl.secret.SecretBox.NONCE_SIZE, problems, "cipher.")
    sealed = _hex(cipher, "ciphertext", _SEALED_SIZE, problems, "cipher.")
    limits = KdfLimits(_int(kdf, "opslimit", problems), _int(kdf, "memlimit", problems))
    if not problems:
        try:
            _check_limits(limits, "kdf")
        except KeyFileError as exc:
            problems.append(str(exc))
    if problems:
        raise KeyFileError(f"key file {target}: " + "; ".join(problems))
    return public, limits, salt, nonce, sealed


def _exact_fields(section: dict[str, object], expected: frozenset[str], prefix: str, problems: list[str]) -> None:
    missing, unknown = sorted(expected - set(section)), sorted(set(map(str, section)) - expected)
    if missing and section:
        problems.append(f"missing {', '.join(prefix + m for m in missing)}")
    if unknown:
        problems.append(f"unknown field(s) {', '.join(prefix + u for u in unknown)}")


def _section(document: dict[str, object], name: str, problems: list[str]) -> dict[str, object]:
    value = document.get(name)
    if isinstance(value, dict):
        return value
    problems.append(f"{name} must be an object")
    return {}


def _hex(section: dict[str, object], name: str, size: int, problems: list[str], prefix: str = "") -> bytes:
    value = section.get(name)
    try:
        if isinstance(value, str) and len(value) == 2 * size:
            return bytes.fromhex(value)
    except ValueError:
        pass
    problems.append(f"{prefix}{name} must be {2 * size} hex digits")
    return b""


def _int(section: dict[str, object], name: str, problems: list[str]) -> int:
    value = section.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    problems.append(f"kdf.{name} must be an integer")
    return 0


__all__ = [
    "LEVELS",
    "PERSON_LEVEL",
    "SERVICE_LEVEL",
    "KdfLimits",
    "KeyFileInfo",
    "PassphraseSource",
    "encrypt",
    "inspect",
    "read_private_key",
    "write_encrypted_key_file",
]
