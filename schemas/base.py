"""The base model every wire type derives from, and the helpers that hash it canonically."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, StringConstraints

from traco.core.canonical import canonicalize

Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A 32-byte value (hash, public key) as 64 lowercase hex characters."""

Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]
"""A 64-byte value (Ed25519 signature) as 128 lowercase hex characters."""

ChainId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
"""Chain ids appear in topic names and addresses, so they are short and plain."""

ZERO_HASH = "0" * 64


class Model(BaseModel):
    """Frozen, strict about unknown fields: a message that carries more than we know is wrong."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def json_value(self) -> Any:
        """The model as a plain JSON value (the form that is canonicalised and hashed)."""
        return self.model_dump(mode="json")

    @cached_property
    def json_bytes(self) -> bytes:
        """The model's JSON as it goes on a topic or into a store, computed once per (immutable)
        instance: a receipt is published, stored and recorded in the block's results, and a
        block is published and stored, each from the same bytes. Not the canonical form."""
        return self.model_dump_json().encode()

    @cached_property
    def jcs(self) -> bytes:
        """RFC 8785 canonical JSON of the model, computed once per (immutable) instance."""
        return canonicalize(self.json_value())

    def canonical_bytes(self) -> bytes:
        """RFC 8785 canonical JSON of the model: the one encoding that is signed or hashed."""
        return self.jcs

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy without the cached encodings: they describe the original, not the copy."""
        copied = super().model_copy(update=update, deep=deep)
        for cls in type(self).__mro__:
            for name, attr in vars(cls).items():
                if isinstance(attr, cached_property):
                    copied.__dict__.pop(name, None)
        return copied

    def canonical_hash(self) -> str:
        """SHA-256 of the canonical bytes, as hex."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()
