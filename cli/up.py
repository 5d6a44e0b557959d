"""``traco up``: the whole mesh on one machine, as child processes of one command.

Starts the embedded Tansu broker (unless ``TRACO_KAFKA_BOOTSTRAP`` names a real Kafka),
creates every topic explicitly (decision 0006: auto-created topics lose messages on Tansu), then
one process per node (its validator, its service replicas and their APIs), each exactly as a
Kubernetes pod would run it (``traco serve node``). Ctrl-C stops them all, children first, broker last. Logs go to
``<data-dir>/logs/``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape

from traco.core.adapters.kafka import KafkaEventBus
from traco.core.adapters.kafka_config import KafkaConfig
from traco.core.broker import EMBEDDED_MISSING, TansuBroker, embedded_broker_installed
from traco.core.settings import Settings
from traco.core.topics import chain_topics
from traco.services import registry
from traco.services.consensus.genesis import DataDir, init_chain
from traco.services.serve import service_port

console = Console(soft_wrap=True)  # a banner line is never broken inside a URL, a path or JSON


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def create_topics(
    bootstrap: str, chain_id: str, tx_partitions: int, nodes: Sequence[str] = (), kafka: KafkaConfig | None = None
) -> None:
    bus = KafkaEventBus(bootstrap, client_id="traco-up", kafka=kafka)
    await bus.start()
    try:
        await bus.ensure_topics(chain_topics(chain_id, tx_partitions=tx_partitions, nodes=nodes))
    finally:
        await bus.stop()


@dataclass
class Mesh:
    """The running children of ``traco up``."""

    settings: Settings
    broker: TansuBroker | None = None
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    bootstrap: str = ""

    def start(self, validators: int) -> str:
        settings = self.settings
        if not settings.kafka_bootstrap and not embedded_broker_installed():
            raise SystemExit(EMBEDDED_MISSING)  # before anything is written: one line, no traceback
        paths = DataDir(settings.data_dir)
        genesis = init_chain(settings.data_dir, settings.chain_id, validators)
        if len(genesis.validators) != validators:
            console.print(
                f"[yellow]genesis has {len(genesis.validators)} validators; "
                f"starting those (--validators only applies to a new data dir)[/]"
            )
        paths.logs.mkdir(parents=True, exist_ok=True)
        if settings.kafka_bootstrap:
            self.bootstrap = settings.kafka_bootstrap
        else:
            port = settings.broker_port if port_free("127.0.0.1", settings.broker_port) else None
            self.broker = TansuBroker(port=port, log_path=paths.logs / "broker.log")
            self.broker.start()
            self.bootstrap = self.broker.bootstrap
        nodes = [n.id for n in genesis.node_list()]
        asyncio.run(
            create_topics(self.bootstrap, genesis.chain_id, settings.tx_partitions, nodes, settings.kafka_config())
        )
        if not port_free(settings.api_host, settings.api_port):
            raise SystemExit(f"port {settings.api_port} is in use; set TRACO_API_PORT or stop what holds it")
        for node_id in nodes:
            self._spawn(f"node-{node_id}", ["serve", "node", "--node", node_id])
        url = f"http://{settings.api_host}:{settings.api_port}"
        self._wait_for_api(url, first=f"node-{nodes[0]}")
        return url

    def _spawn(self, name: str, args: list[str]) -> None:
        env = dict(os.environ)
        env["TRACO_KAFKA_BOOTSTRAP"] = self.bootstrap
        env["TRACO_DATA_DIR"] = str(self.settings.data_dir.resolve())
        env["TRACO_API_HOST"] = self.settings.api_host
        env["TRACO_API_PORT"] = str(self.settings.api_port)
        with (DataDir(self.settings.data_dir).logs / f"{name}.log").open("ab") as log:
            self.children[name] = subprocess.Popen(
                [sys.executable, "-m", "traco.cli.main", *args],
                env=env,
                stdin=subprocess.DEVNULL,  # never a prompt (e.g. for a passphrase) on the shared terminal
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_for_api(self, url: str, first: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = self.dead()
            if first in dead:
                raise SystemExit(f"{first} exited; see {DataDir(self.settings.data_dir).logs}/{first}.log")
            try:
                if httpx.get(f"{url}/status", timeout=1.0).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the consensus API did not answer at {url} within {timeout:.0f}s")

    def dead(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.children.items() if p.poll() is not None}

    def stop(self) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.broker is not None:
            self.broker.stop()


def show_banner(settings: Settings, bootstrap: str, nodes: list[str], url: str) -> None:
    """What is running and where, then commands a person can paste as they are: each on its
    own line, the example's JSON whole and with a real digest (so it is accepted, once)."""
    data = Path(settings.data_dir)
    console.print("[bold green]TRACO mesh is up[/]")
    console.print(f"  broker     {bootstrap}{'' if settings.kafka_bootstrap else ' (embedded Tansu)'}", highlight=False)
    console.print(f"  nodes      {', '.join(nodes)} (one process each)", highlight=False)
    console.print(f"  API        {url}   (node {nodes[0] if nodes else 'n0'}; OpenAPI docs: {url}/docs)")
    for service in registry.ORDER:
        console.print(f"  {service:<10} http://{settings.api_host}:{service_port(settings, service)}")
    console.print(f"  data dir   {data.resolve()}   logs: {DataDir(data).logs.resolve()}", highlight=False)
    data_flag = "" if data.resolve() == (Path.cwd() / "traco-data").resolve() else f" --data-dir {data.resolve()}"
    digest = hashlib.sha256(f"hello from traco up {time.time_ns()}".encode()).hexdigest()
    payload = json.dumps({"digest": digest, "label": "hello"})
    console.print("Try, in another terminal (after `source .venv/bin/activate`):")
    for command in (
        f"traco chain status{data_flag}",
        f"traco tx send --kind chain.anchor --payload '{payload}'{data_flag}",
    ):
        console.print(f"  {escape(command)}", highlight=False)
    console.print("Ctrl-C stops everything.")
    sys.stdout.flush()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_up(settings: Settings, validators: int) -> None:
    mesh = Mesh(settings)
    # SIGTERM/SIGHUP stop the mesh as Ctrl-C does: children must never outlive `traco up`.
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (e.g. `&`)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        url = mesh.start(validators)
        nodes = [n.removeprefix("node-") for n in mesh.children]
        show_banner(settings, mesh.bootstrap, nodes, url)
        reported: set[str] = set()
        while True:
            time.sleep(0.5)
            for name, code in mesh.dead().items():
                if name not in reported:
                    reported.add(name)
                    console.print(f"[red]{name} exited with code {code}; see its log[/]")
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        mesh.stop()
