"""A real mesh for integration tests: validator and API processes on the real Tansu broker.

Processes are started exactly as ``traco up`` starts them (``python -m traco.cli.main serve
...``), so the tests exercise the same code paths an operator runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from traco.cli.client import Client
from traco.cli.up import create_topics
from traco.core.broker import free_port_block
from traco.schemas.genesis import Genesis
from traco.services.consensus.genesis import DataDir


class MeshProcesses:
    def __init__(self, data_dir: Path, bootstrap: str, api_port: int | None = None, **env: str) -> None:
        self.data_dir = data_dir
        self.bootstrap = bootstrap
        self.api_port = api_port or free_port_block(64)  # node i: api_port + 10 i + 0..2
        self.extra_env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._client: Client | None = None
        DataDir(data_dir).logs.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def client(self) -> Client:
        """One shared client, closed by ``stop_all``."""
        if self._client is None:
            self._client = Client(self.url)
        return self._client

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            TRACO_KAFKA_BOOTSTRAP=self.bootstrap,
            TRACO_DATA_DIR=str(self.data_dir),
            TRACO_API_PORT=str(self.api_port),
            TRACO_API_HOST="127.0.0.1",
            TRACO_PUBLISH_GRACE_S="0.5",
            TRACO_TIMEOUT_PROPOSE_MS="800",
        )
        env.update(self.extra_env)
        return env

    def start(self, name: str, *args: str, module: str = "traco.cli.main", **env: str) -> None:
        with (DataDir(self.data_dir).logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", module, "serve", *args],
                env={**self.env(), **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_validator(self, index: int) -> None:
        self.start(f"validator-{index}", "validator", "--index", str(index))

    def start_service(self, name: str) -> None:
        """An executing service (party, doc) as ``traco serve NAME`` runs it."""
        self.start(name, name)

    def start_node(self, node_id: str, module: str = "traco.cli.main", **env: str) -> None:
        """A node (validator and service replicas in one process) as ``traco up`` starts it;
        ``module`` may name a test wrapper around the CLI (e.g. one that injects a fault)."""
        self.start(f"node-{node_id}", "node", "--node", node_id, module=module, **env)

    def start_api(self) -> None:
        self.start("consensus-api", "consensus")
        self.wait_for_api("consensus-api")

    def wait_for_api(self, name: str) -> None:
        """Until the consensus API of process ``name`` answers on ``self.url``."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log(name)[-3000:]}")
            try:
                if httpx.get(f"{self.url}/status", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("API did not come up")

    def kill(self, name: str) -> None:
        """SIGKILL: a crash, not a clean stop."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        if self._client is not None:
            self._client.close()
            self._client = None

    def log(self, name: str) -> str:
        path = DataDir(self.data_dir).logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None


@contextlib.contextmanager
def running_nodes(
    data_dir: Path,
    bootstrap: str,
    genesis: Genesis,
    modules: Mapping[str, str] | None = None,
    node_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[MeshProcesses]:
    """Every node of the genesis, each one process, as ``traco up`` starts them; node 0's APIs
    answer on the mesh's ``url`` (and the next ports). ``modules`` and ``node_env`` change how
    given nodes start (a fault-injecting wrapper, a hash seed). All stopped afterwards."""
    nodes = [n.id for n in genesis.node_list()]
    asyncio.run(create_topics(bootstrap, genesis.chain_id, 4, nodes))
    processes = MeshProcesses(data_dir, bootstrap)
    try:  # a mesh that fails to start is stopped too: no process outlives its test
        for node_id in nodes:
            module = (modules or {}).get(node_id, "traco.cli.main")
            processes.start_node(node_id, module, **(node_env or {}).get(node_id, {}))
        processes.wait_for_api(f"node-{nodes[0]}")
        yield processes
    finally:
        processes.stop_all()


@contextlib.contextmanager
def running_mesh(
    data_dir: Path, bootstrap: str, genesis: Genesis, validators: int, env: Mapping[str, str] | None = None
) -> Iterator[MeshProcesses]:
    """The split layout: each node's validator, service replicas and node 0's API as processes
    of their own (``traco serve validator|party|doc|consensus``), as an operator may run them
    as separate pods, every one with ``env`` added to its environment; all stopped afterwards."""
    asyncio.run(create_topics(bootstrap, genesis.chain_id, 4, [n.id for n in genesis.node_list()]))
    processes = MeshProcesses(data_dir, bootstrap, None, **(env or {}))
    try:  # a mesh that fails to start is stopped too: no process outlives its test
        for i in range(validators):
            for service in genesis.params.services:  # each validator's node has its own replicas
                processes.start(f"{service}-n{i}", service, "--node", f"n{i}")
            processes.start_validator(i)
        processes.start_api()
        yield processes
    finally:
        processes.stop_all()
