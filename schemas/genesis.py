"""The genesis file: the chain's starting validator set, members and parameters.

Its canonical hash is the ``prev_hash`` of block 1, so every block links back to the exact
genesis an auditor or light client starts from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Protocol

from pydantic import Field

from traco.core.canonical import canonicalize
from traco.schemas.base import ChainId, Hex32, Model


class GenesisValidator(Model):
    name: str
    public_key: Hex32
    power: int = Field(ge=1, le=10**9)


class GenesisMember(Model):
    name: str
    public_key: Hex32
    roles: tuple[str, ...] = ()


class ChainParams(Model):
    max_tx_bytes: int = Field(default=64 * 1024, ge=1024)
    max_block_txs: int = Field(default=2000, ge=1)
    max_block_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    max_nonce_gap: int = Field(default=1000, ge=1)
    kinds: tuple[str, ...] = ("chain.anchor",)
    services: tuple[str, ...] = Field(
        default=(),
        description="executing services in their fixed order; each block's results include their "
        "receipts and checkpoints, and validators wait for them before proposing the next block",
    )


class Genesis(Model):
    chain_id: ChainId
    genesis_time: int = Field(ge=0, description="milliseconds since the Unix epoch (UTC)")
    validators: tuple[GenesisValidator, ...] = Field(min_length=1)
    members: tuple[GenesisMember, ...] = ()
    params: ChainParams = ChainParams()
    extensions: dict[str, Any] = Field(
        default_factory=dict, description="per-service genesis sections, e.g. the party service's members and roles"
    )

    def genesis_hash(self) -> str:
        return self.canonical_hash()


class ValidatorPower(Model):
    """One member of a validator set as headers commit to it: a key and its voting power."""

    public_key: Hex32
    power: int = Field(ge=1, le=10**9)


class HasPower(Protocol):
    @property
    def public_key(self) -> str: ...

    @property
    def power(self) -> int: ...


def validator_set(validators: Iterable[HasPower]) -> tuple[ValidatorPower, ...]:
    """A validator set in its one canonical order (by public key), whatever order it came in.

    The genesis file, the party service and the machine each list validators in their own
    order; headers, blocks and proofs use this one.
    """
    return tuple(
        sorted((ValidatorPower(public_key=v.public_key, power=v.power) for v in validators), key=lambda v: v.public_key)
    )


def validator_set_hash(validators: Iterable[HasPower]) -> str:
    """Hash of the canonical (public key, power) list: what headers commit to."""
    body = canonicalize([{"public_key": v.public_key, "power": v.power} for v in validator_set(validators)])
    return hashlib.sha256(body).hexdigest()
