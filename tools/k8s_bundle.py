"""Package a chain's genesis and node keys for a kustomize overlay (``make k8s-bundle``).

Why: a node pod reads its genesis from a ConfigMap and its key from a Secret, both mounted
read-only (deploy/k8s/README.md); kustomize makes them from files in ``<overlay>/bundle/``,
which git ignores because it holds private keys. This script writes exactly those files from
a data directory made by ``traco init`` (or by a consortium's ceremony in the same layout):

    bundle/genesis.json           the genesis, byte for byte
    bundle/keys/<id>.key          each node's key file, as it is (plaintext or encrypted)
    bundle/keys/<id>.passphrase   with --passphrase-file: the passphrase of an encrypted key
    bundle/node-keys.yaml         a kustomize SecretGenerator per node: traco-node-key-<id>

A node's key is ``keys/validator-<i>.key`` for the validator whose key it runs under, else
``keys/<id>.key`` (services/node/serve.py). Before writing anything it checks, and names every
problem at once: the genesis's nodes are the overlay's nodes (deploy/k8s/base/nodes, made by
tools/k8s_manifests.py) with the same roles; the chain id is the one the overlay's KafkaTopics
name; each key file's public key is the one the genesis registers for its node; where the
overlay reads a passphrase (TRACO_KEY_PASSPHRASE_FILE), every key is encrypted and the
passphrase opens it. It never overwrites: an existing ``bundle/`` is an error (remove it
yourself, knowing what it held). The bundle is written into a temporary folder first and moved
into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from traco.core import keyfile
from traco.schemas.genesis import Genesis
from traco.services.consensus.genesis import DataDir, load_genesis
from traco.services.node.serve import node_key_file


def manifest_nodes(overlay: Path) -> dict[str, str]:
    """node id -> role ("validator" or "observer") as the overlay's base (generated) says."""
    nodes: dict[str, str] = {}
    for path in sorted((overlay.parent.parent / "base" / "nodes").glob("*/kustomization.yaml")):
        text = path.read_text()
        nodes[path.parent.name] = "validator" if "traco.io/role: validator" in text else "observer"
    return nodes


def check(data_dir: Path, overlay: Path, genesis: Genesis, passphrase_file: Path | None) -> list[str]:
    problems: list[str] = []
    validator_keys = {v.public_key for v in genesis.validators}
    wanted = {n.id: ("validator" if n.public_key in validator_keys else "observer") for n in genesis.node_list()}
    have = manifest_nodes(overlay)
    if wanted != have:
        problems.append(
            f"the genesis has nodes {wanted} but deploy/k8s/base/nodes has {have}; run "
            f"`python tools/k8s_manifests.py generate --genesis {data_dir / 'genesis.json'}` first"
        )
    topics = overlay / "kafka-topics.yaml"
    if topics.is_file() and f"topicName: traco.{genesis.chain_id}.blocks" not in topics.read_text():
        problems.append(
            f"{topics} does not create the topics of chain {genesis.chain_id!r}; "
            f"run `python tools/k8s_manifests.py generate --genesis {data_dir / 'genesis.json'}`"
        )
    kustomization = (overlay / "kustomization.yaml").read_text()
    needs_passphrase = "TRACO_KEY_PASSPHRASE_FILE" in kustomization
    if needs_passphrase and passphrase_file is None:
        problems.append(f"{overlay.name} reads TRACO_KEY_PASSPHRASE_FILE: give --passphrase-file")
    paths = DataDir(data_dir)
    for node in genesis.node_list():
        path = node_key_file(paths, genesis, node.id)
        try:
            info = keyfile.inspect(path)
        except (OSError, ValueError) as exc:
            problems.append(f"node {node.id}: key file {path}: {exc}")
            continue
        if info.public_key.hex() != node.public_key:
            problems.append(
                f"node {node.id}: {path} holds key {info.public_key.hex()}, the genesis registers {node.public_key}"
            )
        if needs_passphrase and not info.encrypted:
            problems.append(
                f"node {node.id}: {path} is a plaintext key; {overlay.name} wants encrypted keys "
                f"(`traco keys encrypt {path}`)"
            )
        if info.encrypted and passphrase_file is None:
            problems.append(f"node {node.id}: {path} is encrypted: give --passphrase-file")
        if info.encrypted and passphrase_file is not None:
            try:
                keyfile.read_private_key(path, keyfile.PassphraseSource(file=passphrase_file))
            except Exception as exc:  # wrong passphrase, unreadable file: say which node, go on
                problems.append(f"node {node.id}: {exc}")
    return problems


def secret_generators(genesis: Genesis, with_passphrase: bool) -> str:
    lines = ["# Written by tools/k8s_bundle.py: one Secret per node, mounted read-only at /etc/traco/keys."]
    for node in genesis.node_list():
        lines += [
            "---",
            "apiVersion: builtin",
            "kind: SecretGenerator",
            "metadata:",
            f"  name: traco-node-key-{node.id}",
            "type: Opaque",
            "files:",
            f"  - {node.id}.key=bundle/keys/{node.id}.key",
        ]
        if with_passphrase:
            lines.append(f"  - passphrase=bundle/keys/{node.id}.passphrase")
    return "\n".join(lines) + "\n"


def write_bundle(target: Path, data_dir: Path, genesis: Genesis, passphrase_file: Path | None) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=target.parent))
    try:
        os.chmod(staging, 0o700)
        (staging / "keys").mkdir(mode=0o700)
        shutil.copyfile(DataDir(data_dir).genesis, staging / "genesis.json")
        for node in genesis.node_list():
            source = node_key_file(DataDir(data_dir), genesis, node.id)
            copies = [(source, staging / "keys" / f"{node.id}.key")]
            if passphrase_file is not None:
                copies.append((passphrase_file, staging / "keys" / f"{node.id}.passphrase"))
            for origin, copy in copies:
                copy.touch(mode=0o600)
                copy.write_bytes(origin.read_bytes())
        (staging / "node-keys.yaml").write_text(secret_generators(genesis, passphrase_file is not None))
        staging.rename(target)  # fails if target appeared meanwhile: never overwrite
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="a data dir with genesis.json and keys/")
    parser.add_argument("--overlay", type=Path, required=True, help="e.g. deploy/k8s/overlays/dev")
    parser.add_argument("--passphrase-file", type=Path, help="the passphrase of the encrypted node keys")
    args = parser.parse_args()
    overlay: Path = args.overlay.resolve()
    target = overlay / "bundle"
    if not (overlay / "kustomization.yaml").is_file():
        raise SystemExit(f"{args.overlay} is not a kustomize overlay (no kustomization.yaml)")
    if target.exists():
        raise SystemExit(f"{target} exists; refusing to overwrite it (remove it first if it is no longer needed)")
    try:
        genesis = load_genesis(DataDir(args.data_dir).genesis)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"cannot read the genesis: {exc}") from None
    problems = check(args.data_dir, overlay, genesis, args.passphrase_file)
    if problems:
        print(f"not bundled, {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(1)
    write_bundle(target, args.data_dir, genesis, args.passphrase_file)
    nodes = ", ".join(n.id for n in genesis.node_list())
    print(f"wrote {target}: genesis of chain {genesis.chain_id}, keys of nodes {nodes}")
    print(f"next: kubectl apply -k {args.overlay}")


if __name__ == "__main__":
    main()
