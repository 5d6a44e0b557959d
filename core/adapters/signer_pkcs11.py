"""The signer whose key never leaves an HSM: PKCS#11 through ``python-pkcs11`` (extra ``hsm``).

Why: banks keep signing keys in hardware security modules; the process asks the module to
sign and never sees the key. Every HSM vendor ships a PKCS#11 library (``.so``); SoftHSM2 is
the software one the tests use.

How: ``Pkcs11Signer(module, token_label, pin, key_label)`` loads the library, opens a session
on the token with the user PIN, finds the private key and the public key whose label is
``key_label`` (a node's id, by contract), and signs with ``CKM_EDDSA`` (pure Ed25519, RFC 8032).
The constructor signs a probe and checks it with the project's strict verifier, and every
signature is checked again before it is returned: a token that signs with another key, or
with Ed25519ph, fails at start, not in the middle of a round. ``import_key`` and
``generate_key`` put a key on a token (``traco keys hsm-import`` / ``hsm-generate``).

Caveats:

* One session per token in a process: PKCS#11 logs in per application, so a second signer on
  the same token reuses the login (``UserAlreadyLoggedIn`` is not an error here).
* A signer is used from one thread (the event loop); sessions are not shared across threads.
* Every failure is a ``SignerError`` naming the module, token or key and what to check; the
  PIN is never in a message.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from traco.core import crypto
from traco.core.errors import SignerError
from traco.core.ports import Signer

if TYPE_CHECKING:
    from pkcs11 import Session
    from pkcs11.types import SignMixin

# CKA_EC_PARAMS of Ed25519: the curve named as a PrintableString (PKCS#11 3.0 §2.3.10).
ED25519_PARAMS = b"\x13\x0cedwards25519"
_PROBE = b"traco pkcs11 signer probe"


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise SignerError("TRACO_SIGNER=pkcs11 needs the python-pkcs11 package: pip install 'traco[hsm]'") from None
    return pkcs11


def open_session(module: str | os.PathLike[str], token_label: str, pin: str, *, rw: bool = False) -> Session:
    """A logged-in session on the token labelled ``token_label`` of the PKCS#11 ``module``."""
    pkcs11 = _pkcs11()
    from pkcs11 import exceptions as e

    try:
        lib = pkcs11.lib(os.fspath(module))
    except e.PKCS11Error as exc:
        raise SignerError(f"cannot load the PKCS#11 module {module} (TRACO_PKCS11_MODULE): {exc}") from None
    try:
        token = lib.get_token(token_label=token_label)
    except e.NoSuchToken:
        labels = sorted(t.label for t in lib.get_tokens() if t.label)
        raise SignerError(
            f"no token labelled {token_label!r} (TRACO_PKCS11_TOKEN_LABEL) in {module}; tokens: {labels or 'none'}"
        ) from None
    except e.MultipleTokensReturned:
        raise SignerError(f"more than one token is labelled {token_label!r} in {module}") from None
    try:
        session: Session = token.open(user_pin=pin, rw=rw)
    except e.UserAlreadyLoggedIn:
        session = token.open(rw=rw)  # this process logged in already (another signer)
    except (e.PinIncorrect, e.PinInvalid, e.PinLenRange):
        raise SignerError(
            f"the PIN (TRACO_PKCS11_PIN or TRACO_PKCS11_PIN_FILE) does not log into token {token_label!r}"
        ) from None
    except e.PinLocked:
        raise SignerError(
            f"the user PIN of token {token_label!r} is locked; its security officer must reset it"
        ) from None
    except e.PKCS11Error as exc:
        raise SignerError(f"cannot open a session on token {token_label!r}: {type(exc).__name__} {exc}") from None
    return session


def _ed25519_point(raw: bytes) -> bytes:
    """CKA_EC_POINT of an Ed25519 key: a DER OCTET STRING of 32 bytes, or (some tokens) the
    32 bytes themselves."""
    if len(raw) == 34 and raw[:2] == b"\x04\x20":
        return raw[2:]
    if len(raw) == crypto.PUBLIC_KEY_SIZE:
        return raw
    raise SignerError(f"the token's public key is not an Ed25519 point ({len(raw)} bytes)")


class Pkcs11Signer(Signer):
    """Signs with the Ed25519 key labelled ``key_label`` on a PKCS#11 token."""

    def __init__(self, module: str | os.PathLike[str], token_label: str, pin: str, key_label: str) -> None:
        _pkcs11()
        from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
        from pkcs11 import exceptions as e
        from pkcs11.types import SignMixin

        self._mechanism = Mechanism.EDDSA
        self.key_label = key_label
        self.token_label = token_label
        session = open_session(module, token_label, pin)
        self._session: Session | None = session
        try:
            if Mechanism.EDDSA not in session.token.slot.get_mechanisms():
                raise SignerError(f"token {token_label!r} of {module} does not offer CKM_EDDSA (Ed25519)")
            try:
                private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key_label)
                public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=key_label)
            except e.NoSuchKey:
                raise SignerError(
                    f"token {token_label!r} holds no private and public key pair labelled {key_label!r}"
                    " (the key label is the node id; see `traco keys hsm-import`)"
                ) from None
            except e.MultipleObjectsReturned:
                raise SignerError(f"token {token_label!r} holds more than one key labelled {key_label!r}") from None
            if private.key_type != KeyType.EC_EDWARDS or not isinstance(private, SignMixin):
                raise SignerError(f"key {key_label!r} on token {token_label!r} is not an Ed25519 (EC_EDWARDS) key")
            self._private: SignMixin = private
            self._public = _ed25519_point(bytes(public[Attribute.EC_POINT]))
            self.sign(_PROBE)  # a key pair that does not match, or a token that cannot sign, fails here
        except BaseException:
            self.close()
            raise

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        from pkcs11 import exceptions as e

        try:
            signature = bytes(self._private.sign(message, mechanism=self._mechanism))
        except e.PKCS11Error as exc:
            raise SignerError(f"the HSM did not sign with key {self.key_label!r}: {type(exc).__name__} {exc}") from None
        if not crypto.verify(self._public, message, signature):
            raise SignerError(
                f"the HSM's signature with key {self.key_label!r} does not verify under its public key"
                " (mismatched key pair, or not pure Ed25519)"
            )
        return signature

    def close(self) -> None:
        session = getattr(self, "_session", None)
        if session is not None:
            self._session = None
            session.close()

    def __repr__(self) -> str:
        return f"Pkcs11Signer(token={self.token_label!r}, key={self.key_label!r})"


def import_key(session: Session, label: str, private_key: bytes) -> bytes:
    """Store ``private_key`` on the token as a sensitive, non-extractable Ed25519 key pair
    labelled ``label``; returns the public key. The caller then destroys its copy."""
    from pkcs11 import Attribute, KeyType, ObjectClass

    public = crypto.public_key(private_key)
    _refuse_existing(session, label)
    common = {Attribute.KEY_TYPE: KeyType.EC_EDWARDS, Attribute.TOKEN: True, Attribute.LABEL: label}
    common[Attribute.EC_PARAMS] = ED25519_PARAMS
    session.create_object(
        {
            **common,
            Attribute.CLASS: ObjectClass.PRIVATE_KEY,
            Attribute.VALUE: private_key,
            Attribute.SIGN: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.PRIVATE: True,
        }
    )
    session.create_object(
        {
            **common,
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.EC_POINT: b"\x04\x20" + public,
            Attribute.VERIFY: True,
        }
    )
    return public


def generate_key(session: Session, label: str) -> bytes:
    """Generate an Ed25519 key pair on the token (the private key never exists outside it);
    returns the public key."""
    from pkcs11 import Attribute, KeyType

    _refuse_existing(session, label)
    public, _ = session.generate_keypair(
        KeyType.EC_EDWARDS,
        store=True,
        label=label,
        public_template={Attribute.EC_PARAMS: ED25519_PARAMS, Attribute.VERIFY: True},
        private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True},
    )
    return _ed25519_point(bytes(public[Attribute.EC_POINT]))


def _refuse_existing(session: Session, label: str) -> None:
    from pkcs11 import Attribute

    if any(True for _ in session.get_objects({Attribute.LABEL: label})):
        raise SignerError(f"the token already holds objects labelled {label!r}; refusing to add another key")


__all__ = ["ED25519_PARAMS", "Pkcs11Signer", "generate_key", "import_key", "open_session"]
