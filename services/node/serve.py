"""``traco serve node --node ID``: one node as one process (what ``traco up`` starts four of).

The node's validator and service replicas run as tasks of one event loop (``node.py``), and
the process serves the node's APIs: consensus on ``api_port + 10 × i``, party and doc on the
next ports (``i`` is the node's place in the genesis node list, so node 0 answers on 8700,
8701, 8702 by default). Node 0 also writes the API addresses into the data dir, where the CLI
finds them; every node writes its own under ``nodes/<id>/``.

Stores: ``<data-dir>/<id>-chain/`` (blocks and chain state) and ``<id>-<service>/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from traco.core.adapters.factory import open_block_store, open_state_store
from traco.core.domain import StateView
from traco.core.logs import configure_process
from traco.core.nodes import NodeKey
from traco.core.ports import Signer
from traco.core.probes import Probes
from traco.core.settings import Settings
from traco.core.supervise import run_all
from traco.schemas.genesis import Genesis
from traco.services import registry
from traco.services.consensus.api import ApiState, create_app
from traco.services.consensus.follower import Follower
from traco.services.consensus.genesis import DataDir, load_genesis
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.runtime import (
    all_topics,
    make_bus,
    open_process_signer,
    storage_config,
    until_signalled,
    validator_config,
)
from traco.services.node import state_proofs
from traco.services.node.node import Node, node_components
from traco.services.serve import create_service_app

log = logging.getLogger(__name__)


def node_key_file(paths: DataDir, genesis: Genesis, node_id: str) -> Path:
    """A validator node's key is its validator key; another node's is ``keys/<id>.key``."""
    node = genesis.node(node_id)
    for i, validator in enumerate(genesis.validators):
        if validator.public_key == node.public_key:
            return paths.validator_key(i)
    return paths.keys / f"{node_id}.key"


def open_node_signer(settings: Settings, paths: DataDir, genesis: Genesis, node_id: str) -> Signer:
    """The node key's signer: the file ``TRACO_NODE_KEY_FILE`` names (a read-only Secret mount,
    read in place) or else the data dir's; with ``TRACO_SIGNER=pkcs11`` the HSM key labelled
    with the node id. One signer serves the node's validator and its checkpoints."""
    key_file = settings.node_key_file or node_key_file(paths, genesis, node_id)
    return open_process_signer(settings, key_file, node_id)


def registered_key(genesis: Genesis, party: StateView | None, node_id: str, height: int) -> str | None:
    """The key the chain registers for ``node_id`` at ``height``: from the node's own party
    replica once it has state (rotations are recorded there), else None (the genesis decides)."""
    if party is None or party.get(f"node/{node_id}") is None:
        return None
    from traco.services.party import queries

    found: str | None = queries.node_key_at(party, node_id, height)
    return found


def node_ports(settings: Settings, genesis: Genesis, node_id: str) -> dict[str, int]:
    index = [n.id for n in genesis.node_list()].index(node_id)
    base = settings.api_port + 10 * index
    return {"consensus": base, **{s: base + 1 + registry.ORDER.index(s) for s in registry.runnable(genesis)}}


async def serve_node(settings: Settings, node_id: str) -> None:
    configure_process(f"traco-node-{node_id}", settings.log_format)
    paths = DataDir(settings.data_dir)
    genesis = load_genesis(paths.genesis)
    registered = genesis.node(node_id)
    signer = open_node_signer(settings, paths, genesis, node_id)
    key = NodeKey(node_id, signer)
    config = storage_config(settings)
    services = registry.runnable(genesis)
    components = node_components(node_id, services)
    chain = components["chain"]
    ledger = Ledger(genesis, open_block_store(config, chain), open_state_store(config, chain))
    stores = {s: open_state_store(config, components[s]) for s in services}
    expected = registered_key(genesis, stores.get("party"), node_id, ledger.height + 1) or registered.public_key
    if key.public_key != expected:
        raise SystemExit(f"the key file of node {node_id} is not the key the chain registers for it ({expected})")
    bus = make_bus(settings, f"node-{node_id}")
    await bus.start()
    try:
        await bus.ensure_topics(all_topics(settings, genesis))
        index = [n.id for n in genesis.node_list()].index(node_id)
        # Every node runs the consensus machine: a node whose key is not in the validator set
        # follows as an observer (it sends nothing) and votes once the council adds its key.
        validator = validator_config(settings, index, signer)
        node = Node(genesis, key, ledger, stores, bus, validator)
        await node.catch_up()
        assert node.validator is not None
        log.info("node %s at height %d, services %s", node_id, ledger.height, node.services_at())
        ports = node_ports(settings, genesis, node_id)
        consensus_api = ApiState(Follower(ledger, bus), bus, settings.max_body_bytes, node.status)
        apps: dict[str, FastAPI] = {"consensus": create_app(consensus_api)}
        apps["consensus"].include_router(state_proofs.router(ledger, node.runtimes))
        probes = Probes(node.health, settings.ready_lag_heights)
        apps["consensus"].include_router(probes.router())  # /livez, /readyz, /metrics
        apps.update({name: create_service_app(runtime) for name, runtime in node.runtimes.items()})
        servers = [
            uvicorn.Server(
                uvicorn.Config(app, host=settings.api_host, port=ports[name], log_level="warning", lifespan="off")
            )
            for name, app in apps.items()
        ]
        written = _write_api_files(paths, settings, genesis, node_id, ports)
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(node.validator.run(), name="validator")]
        tasks += [loop.create_task(s.serve(), name=f"{name} API") for name, s in zip(apps, servers, strict=True)]
        probes.watch(tasks)

        async def everything() -> None:
            await run_all(tasks)

        try:
            await until_signalled(loop.create_task(everything()))
        finally:
            for path in written:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
    finally:
        await bus.stop()
        ledger.close()
        for store in stores.values():
            store.close()
        signer.close()


def _write_api_files(
    paths: DataDir, settings: Settings, genesis: Genesis, node_id: str, ports: dict[str, int]
) -> list[Path]:
    """Where the CLI finds the APIs: node 0's in the data dir itself, every node's under nodes/."""
    own = paths.root / "nodes" / node_id
    own.mkdir(parents=True, exist_ok=True)
    written = []
    first = genesis.node_list()[0].id == node_id
    for name, port in ports.items():
        record = json.dumps({"url": f"http://{settings.api_host}:{port}", "pid": os.getpid(), "node": node_id}) + "\n"
        filename = "api.json" if name == "consensus" else f"{name}-api.json"
        targets = [own / filename] + ([paths.root / filename] if first else [])
        for target in targets:
            target.write_text(record)
            written.append(target)
    return written
