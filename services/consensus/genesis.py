"""Creating a new chain: keys and the genesis file (``traco init``, and ``traco up`` on first start).

Development genesis: N validators with power 1 each and one admitted member key, all written
under the data directory. A real consortium writes its genesis by hand from its members' public
keys; only the files' shape matters to the rest of the mesh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from traco.core import crypto
from traco.schemas.genesis import Genesis, GenesisMember, GenesisValidator


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


def init_chain(data_dir: Path, chain_id: str, validators: int) -> Genesis:
    """Create keys and genesis if the data dir has none; return the genesis either way.

    An existing genesis is never overwritten: it defines the chain the stores hold.
    """
    paths = DataDir(data_dir)
    if paths.genesis.exists():
        return load_genesis(paths.genesis)
    paths.keys.mkdir(parents=True, exist_ok=True)
    vals = []
    for i in range(validators):
        key_path = paths.validator_key(i)
        key = crypto.read_key_file(key_path) if key_path.exists() else crypto.generate_private_key()
        if not key_path.exists():
            crypto.write_key_file(key_path, key)
        vals.append(GenesisValidator(name=f"validator-{i}", public_key=crypto.public_key(key).hex(), power=1))
    if paths.member_key.exists():
        member = crypto.read_key_file(paths.member_key)
    else:
        member = crypto.generate_private_key()
        crypto.write_key_file(paths.member_key, member)
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time=int(time.time() * 1000),
        validators=tuple(vals),
        members=(GenesisMember(name="member", public_key=crypto.public_key(member).hex(), roles=("council",)),),
    )
    tmp = paths.genesis.with_suffix(".tmp")
    tmp.write_text(genesis.model_dump_json(indent=2) + "\n")
    tmp.replace(paths.genesis)
    return genesis
