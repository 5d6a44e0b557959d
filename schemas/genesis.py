"""The genesis file: the chain's starting validator set, members and parameters.

Its canonical hash is the ``prev_hash`` of block 1, so every block links back to the exact
genesis an auditor or light client starts from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Annotated, Any, Protocol

from pydantic import Field, SerializerFunctionWrapHandler, StringConstraints, model_serializer

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


NodeId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
"""A node's registered name: part of its topic names (``traco.<chain>.node.<id>.…``)."""


class GenesisNode(Model):
    """A node (architecture: Nodes): one member's installation of a validator or an observer with
    its own replica of every executing service, under one node key. A validator node's key is
    its validator key."""

    id: NodeId
    public_key: Hex32
    member: str | None = Field(default=None, description="the member that runs the node")


DEFAULT_EMPTY_BLOCK_INTERVAL_MS = 5000
ADDED_LATER = ("empty_block_interval_ms", "rules")
"""Parameters added after chains were made: left out of the genesis hash while unset, so a
genesis file written before them keeps its hash (and its chain) when read by a newer version."""


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
    empty_block_interval_ms: int | None = Field(
        default=None,
        ge=0,
        le=24 * 3600 * 1000,
        description="a block is sealed after this long without one even when no transaction waits, so "
        "clauses (hold expiry, epochs) fire on an idle chain; 0 = never; unset = "
        f"{DEFAULT_EMPTY_BLOCK_INTERVAL_MS}. The council changes it (party proposal set_chain_params)",
    )

    rules: dict[str, int] | None = Field(
        default=None,
        description="the version of each service's rules in force from genesis (1 when unset); the "
        "council moves them up by height with an upgrade proposal",
    )

    @model_serializer(mode="wrap")
    def _leave_out_unset_later_fields(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name in ADDED_LATER:
                if data.get(name) is None:
                    data.pop(name, None)
        return data

    def genesis_rules(self, service: str) -> int:
        """The version of ``service``'s rules in force from genesis."""
        return (self.rules or {}).get(service, 1)

    @property
    def empty_block_interval(self) -> int:
        """The interval in force from genesis (ms), the default when the genesis leaves it unset."""
        value = self.empty_block_interval_ms
        return DEFAULT_EMPTY_BLOCK_INTERVAL_MS if value is None else value


class Genesis(Model):
    chain_id: ChainId
    genesis_time: int = Field(ge=0, description="milliseconds since the Unix epoch (UTC)")
    validators: tuple[GenesisValidator, ...] = Field(min_length=1)
    members: tuple[GenesisMember, ...] = ()
    nodes: tuple[GenesisNode, ...] = Field(
        default=(), description="registered nodes; without any, validator i runs node n<i> under its validator key"
    )
    params: ChainParams = ChainParams()
    extensions: dict[str, Any] = Field(
        default_factory=dict, description="per-service genesis sections, e.g. the party service's members and roles"
    )

    def genesis_hash(self) -> str:
        return self.canonical_hash()

    def node_list(self) -> tuple[GenesisNode, ...]:
        """The registered nodes, or one per validator (``n0``, ``n1``, …) when none are listed."""
        if self.nodes:
            return self.nodes
        return tuple(GenesisNode(id=f"n{i}", public_key=v.public_key) for i, v in enumerate(self.validators))

    def node(self, node_id: str) -> GenesisNode:
        """The node called ``node_id``; ``KeyError`` naming the known ones if there is none."""
        for node in self.node_list():
            if node.id == node_id:
                return node
        raise KeyError(f"no node {node_id!r} in the genesis; known: {', '.join(n.id for n in self.node_list())}")


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
