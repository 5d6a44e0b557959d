"""The base model every wire type derives from, and the helpers that hash it canonically."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Generic, Self, TypeVar, overload

from pydantic import BaseModel, ConfigDict, StringConstraints

from traco.core.canonical import canonicalize

Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A 32-byte value (hash, public key) as 64 lowercase hex characters."""

Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]
"""A 64-byte value (Ed25519 signature) as 128 lowercase hex characters."""

ChainId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
"""Chain ids appear in topic names and addresses, so they are short and plain."""

ZERO_HASH = "0" * 64

_T = TypeVar("_T")


class once(Generic[_T]):
    """A computed attribute kept on the instance after its first read.

    Why not ``functools.cached_property``: on Python 3.11 it takes a lock on every first read
    (removed in 3.12), which costs more than some of the encodings it keeps, and every
    transaction, receipt and event makes several of them on every node. The models are
    immutable, so a value computed twice by two threads would be the same value; no lock is
    needed. It stores straight into the instance's ``__dict__`` (bypassing a frozen model's
    ``__setattr__``), so a later read finds the value without calling this descriptor.
    """

    def __init__(self, compute: Callable[[Any], _T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> once[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> _T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> once[_T] | _T:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


class Model(BaseModel):
    """Frozen, strict about unknown fields: a message that carries more than we know is wrong."""

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(once,))

    def json_value(self) -> Any:
        """The model as a plain JSON value (the form that is canonicalised and hashed)."""
        return self.model_dump(mode="json")

    @once
    def json_bytes(self) -> bytes:
        """The model's JSON as it goes on a topic or into a store, computed once per (immutable)
        instance: a receipt is published, stored and recorded in the block's results, and a
        block is published and stored, each from the same bytes. Not the canonical form."""
        return self.model_dump_json().encode()

    @once
    def jcs(self) -> bytes:
        """RFC 8785 canonical JSON of the model, computed once per (immutable) instance."""
        return canonicalize(self.json_value())

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of the model: the one encoding that is signed or hashed."""
        return self.jcs

    def fields_jcs(self, names: tuple[str, ...], **plain: Any) -> bytes:
        """RFC 8785 canonical JSON of the fields ``names``, encoded from the fields as they are
        (``plain`` gives a field's plain JSON value where its type is not one, e.g. an enum's):
        dumping a model to JSON values first costs more than the encoding, and every node
        encodes every event and receipt. Where a field holds a value canonical JSON refuses (a
        rule's tuple), the dump is used; the property tests of events and receipts hold the two
        forms equal."""
        fields = self.__dict__
        try:
            return canonicalize({name: plain[name] if name in plain else fields[name] for name in names})
        except TypeError:
            dumped = self.json_value()
            return canonicalize({name: dumped[name] for name in names})

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy without the cached encodings: they describe the original, not the copy."""
        copied = super().model_copy(update=update, deep=deep)
        for cls in type(self).__mro__:
            for name, attr in vars(cls).items():
                if isinstance(attr, once):
                    copied.__dict__.pop(name, None)
        return copied

    def canonical_hash(self) -> str:
        """SHA-256 of the canonical bytes, as hex."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()
