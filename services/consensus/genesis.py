"""Creating a new chain: keys and the genesis file (``traco init``, and ``traco up`` on first start).

Development genesis: N validators with power 1 each and one admitted member key, all written
under the data directory. A real consortium writes its genesis by hand from its members' public
keys; only the files' shape matters to the rest of the mesh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traco.core import crypto, keyfile
from traco.schemas.genesis import (
    DEFAULT_EMPTY_BLOCK_INTERVAL_MS,
    ChainParams,
    Genesis,
    GenesisMember,
    GenesisNode,
    GenesisValidator,
)


@dataclass(frozen=True)
class DataDir:
    """Where every file of a node lives; one place so that no path is spelled twice."""

    root: Path

    @property
    def genesis(self) -> Path:
        return self.root / "genesis.json"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def member_key(self) -> Path:
        return self.keys / "member.key"

    def validator_key(self, index: int) -> Path:
        return self.keys / f"validator-{index}.key"

    def component(self, name: str) -> Path:
        return self.root / name

    @property
    def api_file(self) -> Path:
        """Written by a running API so that the CLI can find it from the data dir alone."""
        return self.root / "api.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def load_genesis(path: Path) -> Genesis:
    try:
        return Genesis.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise FileNotFoundError(f"no genesis at {path}; run `traco init` first") from None


def _key(paths: DataDir, name: str) -> bytes:
    """The public key of ``keys/<name>.key``, created on first use as a plaintext key file
    marked as the development cast's (docs/key-custody.md); an existing file of either kind
    (an operator may have encrypted it) is only inspected, never decrypted."""
    path = paths.keys / f"{name}.key"
    if path.exists():
        return keyfile.inspect(path).public_key
    key = crypto.generate_private_key()
    crypto.write_key_file(path, key, development=True)
    return crypto.public_key(key)


DEVELOPMENT_CUSTODIANS = ("custodian", "custodian-2", "custodian-3")
"""TRC's custodians in the development cast: any two of the three attest a reserve."""
DEVELOPMENT_COCO_ACCOUNTS = {"issuance": "bank-a", "private_placement": "bank-b", "founders": "exporter"}
"""Who holds Coco's allocations in the development cast (members whose roles may transfer)."""


def init_chain(
    data_dir: Path, chain_id: str, validators: int, services: tuple[str, ...] | None = None, observers: int = 0
) -> Genesis:
    """Create keys and genesis if the data dir has none; return the genesis either way.

    Every validator runs node ``n<i>`` under its validator key; ``observers`` more nodes
    (``n<validators>``, …, keys ``keys/n<i>.key``) follow the chain without voting until the
    council adds their key to the validator set. All belong to the development member.

    ``services`` are the executing services the chain runs (default: all of them, in their
    fixed order); with the party service, the development cast (exporter, importer, carrier,
    bank-a, bank-b, custodian, kyc, council-1..3) gets keys and roles. An existing genesis is
    never overwritten: it defines the chain the stores hold.
    """
    from traco.services import registry

    paths = DataDir(data_dir)
    if paths.genesis.exists():
        return load_genesis(paths.genesis)
    services = registry.ORDER if services is None else services
    paths.keys.mkdir(parents=True, exist_ok=True)
    vals = tuple(
        GenesisValidator(name=f"validator-{i}", public_key=_key(paths, f"validator-{i}").hex(), power=1)
        for i in range(validators)
    )
    member = _key(paths, "member").hex()
    members = [GenesisMember(name="member", public_key=member, roles=("regulator",))]
    extensions: dict[str, Any] = {}
    if "party" in services:
        from traco.services.party import genesis as party

        cast = {name: _key(paths, name).hex() for name, *_ in party.DEVELOPMENT_CAST}
        dev = party.development_genesis(cast, validators={v.public_key: v.power for v in vals}, genesis_time=0)
        dev_member = party.GenesisMember(
            name="member", organisation="Development member", jurisdiction="SG", public_key=member, roles=["regulator"]
        )
        extensions["party"] = dev.model_copy(update={"members": (dev_member, *dev.members)}).model_dump(mode="json")
        members += [GenesisMember(name=m.name, public_key=m.public_key, roles=tuple(m.roles)) for m in dev.members]
    if "trade" in services and "party" in services:
        from traco.services.trade import genesis as trade

        extensions["trade"] = trade.development_section(
            custodians=DEVELOPMENT_CUSTODIANS, coco_accounts=DEVELOPMENT_COCO_ACCOUNTS
        )
    nodes = [GenesisNode(id=f"n{i}", public_key=v.public_key, member="member") for i, v in enumerate(vals)]
    for i in range(validators, validators + observers):
        observer = _key(paths, f"n{i}").hex()
        nodes.append(GenesisNode(id=f"n{i}", public_key=observer, member="member"))
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=int(time.time() * 1000),
        validators=vals,
        members=tuple(members),
        nodes=tuple(nodes),
        params=ChainParams(
            kinds=("chain.anchor", *registry.kinds(services)),
            services=services,
            empty_block_interval_ms=DEFAULT_EMPTY_BLOCK_INTERVAL_MS,
            rules={"party": 2, "doc": 2, "trade": 2},  # new chains start at the newest rules (decisions 0021, 0023)
        ),
        extensions=extensions,
    )
    tmp = paths.genesis.with_suffix(".tmp")
    tmp.write_text(genesis.model_dump_json(indent=2) + "\n")
    tmp.replace(paths.genesis)
    return genesis
