"""``traco serve party|doc``: one executing service as a process (what a Kubernetes pod runs).

It runs the shared ``ServiceRuntime`` with the service's pure rules and, beside it, the
service's HTTP API (queries over its own state; transactions are submitted to the consensus
API's ``POST /tx`` or produced to the ``tx`` topic). The API listens on the consensus API's
port + 1 + the service's position in ``registry.ORDER`` (party 8701, doc 8702 by default).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI

from traco.core.adapters.factory import open_state_store
from traco.core.lightclient import verify_commit
from traco.core.logs import configure_process
from traco.core.metrics import CONSUMER_LAG, SERVICE_HEIGHT
from traco.core.nodes import NodeKey
from traco.core.probes import Health, Probes
from traco.core.service_runtime import ServiceRuntime
from traco.core.settings import Settings
from traco.services import registry
from traco.services.consensus.genesis import DataDir, load_genesis
from traco.services.consensus.runtime import all_topics, make_bus, storage_config, until_signalled

log = logging.getLogger(__name__)


def service_health(runtime: ServiceRuntime) -> Health:
    """A service process's progress for ``GET /readyz``: its height against the highest block it
    holds ahead of itself whose commit verifies against its validator set (a forged height on the
    topic does not count)."""
    seen = runtime.height
    for height in sorted(runtime.early, reverse=True)[:3]:
        if any(verify_commit(b.header, b.commit, runtime.validators) is None for b in runtime.early[height]):
            seen = height
            break
    return Health(seen, {runtime.domain.service: runtime.height})


def watch_service(runtime: ServiceRuntime, node_id: str) -> None:
    """The gauges of a service running as a process of its own."""
    service = runtime.domain.service
    labels = {"service": service, "node": node_id}
    SERVICE_HEIGHT.watch(runtime, lambda r: [(r.height, labels)])
    CONSUMER_LAG.watch(runtime, lambda r: [(service_health(r).highest_seen - r.height, labels)])


def service_port(settings: Settings, name: str) -> int:
    return settings.api_port + 1 + registry.ORDER.index(name)


def create_service_app(runtime: ServiceRuntime) -> FastAPI:
    name = runtime.domain.service
    app = FastAPI(title=f"TRACO {name} service", version="0.1.0")
    router = APIRouter()

    @router.get("/status")
    async def status() -> dict[str, Any]:
        """Height executed, state digest and what the service is waiting for."""
        height = runtime.height
        return {
            "service": name,
            "height": height,
            "state_digest": runtime.store.state_digest(height) if height else None,
            "kinds": sorted(runtime.domain.kinds),
            "upstream": {u: s.completed for u, s in runtime.upstream.items()},
        }

    app.include_router(router)
    try:
        module = importlib.import_module(f"traco.services.{name}.api")
    except ModuleNotFoundError:
        return app
    app.include_router(module.router(runtime))
    return app


async def serve_service(settings: Settings, name: str, node_id: str = "n0") -> None:
    """Service ``name`` of node ``node_id`` as a process of its own: it signs its checkpoints
    with the node key, writes to the node's topics and trusts only its node's upstreams. Its
    store is the one the node process would use (``<node>-<service>``)."""
    from traco.services.node.serve import node_ports, open_node_signer

    configure_process(f"traco-{name}-{node_id}", settings.log_format)
    paths = DataDir(settings.data_dir)
    genesis = load_genesis(paths.genesis)
    key = NodeKey(node_id, open_node_signer(settings, paths, genesis, node_id))
    if key.public_key != genesis.node(node_id).public_key:
        raise SystemExit(f"the key file of node {node_id} is not the key the genesis registers for it")
    store = open_state_store(storage_config(settings), f"{node_id}-{name}")
    bus = make_bus(settings, f"{node_id}-{name}")
    await bus.start()
    try:
        await bus.ensure_topics(all_topics(settings, genesis))
        runtime = ServiceRuntime(
            registry.domain(name),
            genesis,
            store,
            bus,
            registry.upstream_domains(name),
            registry.genesis_events(genesis),
            node=key,
            commanders=registry.commander_domains(name, registry.runnable(genesis)),
            order=registry.runnable(genesis),
            schedule=registry.schedule(genesis),
        )
        port = node_ports(settings, genesis, node_id)[name]
        app = create_service_app(runtime)
        probes = Probes(lambda: service_health(runtime), settings.ready_lag_heights)
        app.include_router(probes.router())  # /livez, /readyz, /metrics
        watch_service(runtime, node_id)
        server = uvicorn.Server(
            uvicorn.Config(app, host=settings.api_host, port=port, log_level="warning", lifespan="off")
        )
        info = DataDir(settings.data_dir).root / f"{name}-api.json"
        info.write_text(json.dumps({"url": f"http://{settings.api_host}:{port}", "pid": os.getpid()}) + "\n")
        log.info("%s service at height %d, API on port %d", name, runtime.height, port)
        loop = asyncio.get_running_loop()
        running = [
            loop.create_task(runtime.run(), name=f"{name} runtime"),
            loop.create_task(server.serve(), name="API"),
        ]
        probes.watch(running)
        tasks = asyncio.gather(*running)

        async def both() -> None:
            await tasks

        await until_signalled(loop.create_task(both()))
        tasks.cancel()
    finally:
        await bus.stop()
        store.close()
        key.signer.close()
