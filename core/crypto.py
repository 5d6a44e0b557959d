"""Ed25519 keys and signatures, TRACO addresses, and key files.

Why: every transaction and every consensus vote is an Ed25519 signature, and a verifier
that disagrees with another node about a single edge case splits the chain. So ``verify``
is *strict* in the RFC 8032 sense and identical on every node:

* the signature's ``S`` must be canonical (``S < L``), so nobody can re-encode a valid
  signature into a second valid one (``S + L``) with a different ``tx_id`` hash;
* ``A`` (public key) and ``R`` must be canonical encodings (``y < p``) and must not be one of
  the 8 points of small order (14 encodings, counting both sign bits and ``y = p, p + 1``);
  a small-order key would "verify" signatures nobody made.

libsodium (bundled with PyNaCl) already enforces all of this in ``crypto_sign_open``; the
same checks are repeated here, cheaply, so the rules do not depend on how the installed
libsodium was built (older or ``ED25519_COMPAT`` builds are lenient). The tests show both.

How:

* ``generate_private_key()`` returns a 32-byte seed; ``public_key(seed)`` its 32-byte key;
  ``sign(seed, message)`` a 64-byte detached signature; ``verify(key, message, signature)``
  is ``True`` or ``False`` and never raises, whatever it is given.
* ``address(chain_id, key)`` is ``traco:<chain>:<64 lowercase hex>``; ``parse_address``
  reverses it and raises ``ValueError`` saying what is wrong.
* ``write_key_file`` / ``read_key_file``: the *plaintext* key file, JSON ``{"kind":
  "ed25519", "private_key": hex, "public_key": hex}`` (plus ``"development": true`` on the
  keys ``traco init`` writes), mode 0600, written atomically and never over an existing file
  unless asked. Encrypted key files, and reading either kind with a passphrase, are
  ``traco.core.keyfile``'s (docs/key-custody.md).

Caveats: PyNaCl has no binding for the detached ``crypto_sign_verify_detached``, so
``verify`` calls libsodium's ``crypto_sign_open`` (the same check on ``signature ||
message``) through PyNaCl's cffi module, which costs one copy of the message. ``sign``
caches the expanded secret key of recently used seeds (``_expand_seed``) because deriving it
costs as much as signing; the cache holds key material for the life of the process, as the
caller already does.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path

import nacl.bindings
from nacl._sodium import ffi, lib

__all__ = [
    "ADDRESS_PREFIX",
    "PRIVATE_KEY_SIZE",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "address",
    "generate_private_key",
    "is_development_key",
    "is_hex_public_key",
    "key_from_document",
    "load_json_key_file",
    "parse_address",
    "public_key",
    "read_key_file",
    "sign",
    "verify",
    "write_key_file",
    "write_secret_file",
]

PRIVATE_KEY_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
ADDRESS_PREFIX = "traco"
KEY_KIND = "ed25519"

_L = 2**252 + 27742317777372353535851937790883648493  # order of the base point
_P = 2**255 - 19  # the field prime
_Y_MASK = (1 << 255) - 1  # an encoding without its sign bit is y

# y-coordinates (little-endian, without sign bit) of the points of order 1, 2, 4 and 8,
# including the non-canonical encodings p (= 0) and p + 1 (= 1).
_SMALL_ORDER_Y = (
    0,  # order 4
    1,  # order 1: the identity
    _P - 1,  # order 2
    _P,  # = 0, order 4
    _P + 1,  # = 1, the identity
    0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826,  # order 8
    0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7,  # order 8
)
_SMALL_ORDER_ENCODINGS = frozenset((y | sign << 255).to_bytes(32, "little") for y in _SMALL_ORDER_Y for sign in (0, 1))

_CHAIN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LOWER_HEX_KEY_RE = re.compile(r"[0-9a-f]{64}")
_ANY_HEX_KEY_RE = re.compile(r"[0-9a-fA-F]{64}")
_KEY_FILE_FIELDS = frozenset({"kind", "private_key", "public_key"})


# --- keys and signatures ---------------------------------------------------------------


def generate_private_key() -> bytes:
    """A new random 32-byte Ed25519 private key (the RFC 8032 seed)."""
    return secrets.token_bytes(PRIVATE_KEY_SIZE)


def public_key(private_key: bytes) -> bytes:
    """The 32-byte public key of a 32-byte private key."""
    return _expand_seed(_private_key_bytes(private_key))[0]


def sign(private_key: bytes, message: bytes) -> bytes:
    """The 64-byte detached Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
    secret = _expand_seed(_private_key_bytes(private_key))[1]
    if not isinstance(message, bytes):
        raise TypeError(f"message must be bytes, not {type(message).__name__}")
    signed: bytes = nacl.bindings.crypto_sign(message, secret)
    return signed[:SIGNATURE_SIZE]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True only for a valid, strictly encoded signature; False for anything else."""
    if not (
        isinstance(public_key, bytes)
        and isinstance(message, bytes)
        and isinstance(signature, bytes)
        and len(public_key) == PUBLIC_KEY_SIZE
        and len(signature) == SIGNATURE_SIZE
    ):
        return False
    if not _strictly_encoded(public_key, signature):
        return False
    return _sodium_open(public_key, message, signature)


def _strictly_encoded(public_key: bytes, signature: bytes) -> bool:
    r = signature[:32]
    if public_key in _SMALL_ORDER_ENCODINGS or r in _SMALL_ORDER_ENCODINGS:
        return False
    if not (_canonical_point(public_key) and _canonical_point(r)):
        return False
    return int.from_bytes(signature[32:], "little") < _L


def _canonical_point(encoding: bytes) -> bool:
    return int.from_bytes(encoding, "little") & _Y_MASK < _P


def _sodium_open(public_key: bytes, message: bytes, signature: bytes) -> bool:
    signed = signature + message
    out = ffi.new("unsigned char[]", len(signed))
    out_len = ffi.new("unsigned long long *")
    return bool(lib.crypto_sign_open(out, out_len, signed, len(signed), public_key) == 0)


def _private_key_bytes(private_key: object) -> bytes:
    if not isinstance(private_key, (bytes, bytearray, memoryview)):
        raise TypeError(f"private key must be bytes, not {type(private_key).__name__}")
    key = bytes(private_key)
    if len(key) != PRIVATE_KEY_SIZE:
        raise ValueError(f"private key must be {PRIVATE_KEY_SIZE} bytes, not {len(key)}")
    return key


@lru_cache(maxsize=256)
def _expand_seed(seed: bytes) -> tuple[bytes, bytes]:
    """``(public key, 64-byte libsodium secret key)`` of a seed; costs one scalar mult."""
    public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
    return public, secret


# --- addresses -------------------------------------------------------------------------


def address(chain_id: str, public_key: bytes) -> str:
    """``traco:<chain_id>:<lowercase hex public key>``."""
    _check_chain_id(chain_id)
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"public key must be {PUBLIC_KEY_SIZE} bytes")
    return f"{ADDRESS_PREFIX}:{chain_id}:{public_key.hex()}"


def parse_address(text: str) -> tuple[str, bytes]:
    """``(chain_id, public_key)`` of an address; ``ValueError`` saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"address must be a string, not {type(text).__name__}")
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != ADDRESS_PREFIX:
        raise ValueError(f"address {text!r:.120} is not of the form traco:<chain>:<hex key>")
    chain_id, key_hex = parts[1], parts[2]
    _check_chain_id(chain_id)
    if not is_hex_public_key(key_hex):
        raise ValueError(f"address {text!r:.120} does not end in a public key of 64 lowercase hex digits")
    return chain_id, bytes.fromhex(key_hex)


def is_hex_public_key(text: str) -> bool:
    """True for exactly 64 lowercase hex digits, the form keys take in transactions.

    Checks the spelling only, not that the key is a usable curve point (``verify`` does).
    """
    return isinstance(text, str) and _LOWER_HEX_KEY_RE.fullmatch(text) is not None


def _check_chain_id(chain_id: object) -> None:
    if not isinstance(chain_id, str) or _CHAIN_ID_RE.fullmatch(chain_id) is None:
        raise ValueError(
            f"chain id {chain_id!r:.80} must be 1-64 characters of letters, digits, '.', '_'"
            " or '-', starting with a letter or digit"
        )


# --- key files -------------------------------------------------------------------------


def write_key_file(
    path: str | os.PathLike[str], private_key: bytes, *, overwrite: bool = False, development: bool = False
) -> None:
    """Write a private key as a mode-0600 *plaintext* JSON key file, atomically.

    Refuses (``FileExistsError``) to replace an existing file unless ``overwrite``: a key
    file may be the only copy of a key. ``development`` marks the keys ``traco init`` writes
    for the development cast, which are read without the plaintext warning
    (``traco.core.keyfile`` writes the encrypted files everything else should use).
    """
    key = _private_key_bytes(private_key)
    document: dict[str, object] = {"kind": KEY_KIND, "private_key": key.hex(), "public_key": public_key(key).hex()}
    if development:
        document["development"] = True
    write_secret_file(path, json.dumps(document, indent=2) + "\n", overwrite=overwrite)


def write_secret_file(path: str | os.PathLike[str], text: str, *, overwrite: bool = False) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically (a reader sees the old file or the
    new one, never half of one) and, unless ``overwrite``, never over an existing file
    (``FileExistsError``, checked by the final link itself, so two writers cannot both win)."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"key file {target} already exists")
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, target)
        else:
            try:
                os.link(temporary, target)
            except FileExistsError:
                raise FileExistsError(f"key file {target} already exists") from None
            Path(temporary).unlink()
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The private key stored in a plaintext key file; ``ValueError`` if the file is not a
    valid one (an encrypted file included: ``traco.core.keyfile`` opens those)."""
    target = Path(path)
    return key_from_document(load_json_key_file(target), target)


def load_json_key_file(target: Path) -> object:
    """The parsed JSON of a key file; ``ValueError`` naming the file if it is not JSON text."""
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"key file {target} is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"key file {target} is not valid JSON: {exc}") from exc


def is_development_key(document: object) -> bool:
    """True for a plaintext key file that ``traco init`` wrote for the development cast."""
    return isinstance(document, dict) and document.get("development") is True


def key_from_document(document: object, target: Path) -> bytes:
    """The private key of a parsed plaintext key file; ``ValueError`` saying what is wrong."""
    if not isinstance(document, dict):
        raise ValueError(f"key file {target} must hold a JSON object")
    if "format" in document or "cipher" in document:
        raise ValueError(f"key file {target} is encrypted; it needs its passphrase (traco.core.keyfile)")
    fields = set(document)
    if not _KEY_FILE_FIELDS <= fields <= _KEY_FILE_FIELDS | {"development"}:
        raise ValueError(
            f"key file {target} must have exactly the fields {sorted(_KEY_FILE_FIELDS)}"
            f" (and optionally 'development'), found {sorted(map(str, document))}"
        )
    if "development" in document and not isinstance(document["development"], bool):
        raise ValueError(f"key file {target}: development must be true or false")
    if document["kind"] != KEY_KIND:
        raise ValueError(f"key file {target} holds a {document['kind']!r:.40} key, not ed25519")
    private = _hex_field(document, "private_key", target)
    public = _hex_field(document, "public_key", target)
    if public_key(private) != public:
        raise ValueError(f"key file {target}: public_key does not match private_key")
    return private


def _hex_field(document: dict[str, object], field: str, target: Path) -> bytes:
    value = document[field]
    if not isinstance(value, str) or _ANY_HEX_KEY_RE.fullmatch(value) is None:
        raise ValueError(f"key file {target}: {field} must be 64 hex digits")
    return bytes.fromhex(value)
