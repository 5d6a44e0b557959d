"""Entry points of the consensus service's processes: a validator, and the API follower.

``traco serve validator --index I`` and ``traco serve consensus`` call these; so does
``traco up`` through subprocesses, and so would a Kubernetes pod. Only entry points configure
logging and tracing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from traco.core.adapters.factory import (
    SignerConfig,
    StorageConfig,
    open_block_store,
    open_signer,
    open_state_store,
)
from traco.core.adapters.kafka import KafkaEventBus
from traco.core.errors import KeyCustodyError
from traco.core.logs import configure_process
from traco.core.ports import Signer, TopicSpec
from traco.core.probes import Probes
from traco.core.settings import Settings
from traco.core.supervise import run_all
from traco.core.topics import chain_topics
from traco.schemas.genesis import Genesis
from traco.services.consensus import machine as m
from traco.services.consensus import telemetry
from traco.services.consensus.api import ApiState, create_app
from traco.services.consensus.follower import Follower
from traco.services.consensus.genesis import DataDir, load_genesis
from traco.services.consensus.ledger import Ledger
from traco.services.consensus.validator import Validator, ValidatorConfig

log = logging.getLogger(__name__)


def storage_config(settings: Settings) -> StorageConfig:
    return StorageConfig(
        backend=settings.storage,
        data_dir=settings.data_dir,
        cassandra_hosts=settings.cassandra_host_list,
        cassandra_keyspace=settings.cassandra_keyspace,
    )


def open_ledger(settings: Settings, component: str) -> Ledger:
    genesis = load_genesis(DataDir(settings.data_dir).genesis)
    config = storage_config(settings)
    return Ledger(genesis, open_block_store(config, component), open_state_store(config, component))


def bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise SystemExit("TRACO_KAFKA_BOOTSTRAP is not set (traco up sets it for its children)")
    return settings.kafka_bootstrap


def make_bus(settings: Settings, client_id: str) -> KafkaEventBus:
    return KafkaEventBus(
        bootstrap(settings),
        client_id=client_id,
        idempotence=settings.kafka_idempotence,
        linger_ms=settings.kafka_linger_ms,
        fetch_max_wait_ms=settings.kafka_fetch_wait_ms,
        kafka=settings.kafka_config(),  # TLS, SASL, replication, retention (TRACO_KAFKA_*)
    )


async def until_signalled(main: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, main.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await main


def all_topics(settings: Settings, genesis: Genesis) -> list[TopicSpec]:
    """Every topic of the chain and of its registered nodes."""
    nodes = [n.id for n in genesis.node_list()]
    return chain_topics(genesis.chain_id, tx_partitions=settings.tx_partitions, nodes=nodes)


def validator_config(settings: Settings, index: int, signer: Signer) -> ValidatorConfig:
    """A validator's settings: its signer, place (staggers republishing) and the timeouts."""
    return ValidatorConfig(
        index=index,
        signer=signer,
        timing=m.TimingConfig(
            propose_ms=settings.timeout_propose_ms,
            prevote_ms=settings.timeout_prevote_ms,
            precommit_ms=settings.timeout_precommit_ms,
            delta_ms=settings.timeout_delta_ms,
        ),
        publish_grace_s=settings.publish_grace_s,
    )


def open_process_signer(settings: Settings, key_file: Path, label: str) -> Signer:
    """This process's signer (docs/key-custody.md): the key in ``key_file`` (plaintext, or
    encrypted and opened with TRACO_KEY_PASSPHRASE[_FILE] or a prompt), or with
    ``TRACO_SIGNER=pkcs11`` the HSM key labelled ``label``. A key that cannot be opened ends
    the process with one line saying why, not a traceback."""
    try:
        return open_signer(SignerConfig.from_settings(settings), key_file, label)
    except KeyCustodyError as exc:
        raise SystemExit(f"error: {exc}") from None


def validator_port(settings: Settings, index: int) -> int:
    """Where a split-layout validator answers its probes and ``/metrics``: ``TRACO_VALIDATOR_PORT``,
    else the last port of its node's block (``api_port + 10 × index + 9``)."""
    return settings.validator_port if settings.validator_port is not None else settings.api_port + 10 * index + 9


def node_of_key(genesis: Genesis, public_key: str) -> str | None:
    """The registered node that runs under ``public_key`` (None if none does)."""
    return next((n.id for n in genesis.node_list() if n.public_key == public_key), None)


async def serve_validator(settings: Settings, index: int) -> None:
    """Validator INDEX as a process of its own: its node's services run as other processes
    (``traco serve party|doc --node``), and it takes their results only from checkpoints its
    node key signed."""
    configure_process(f"traco-validator-{index}", settings.log_format)
    paths = DataDir(settings.data_dir)
    ledger = open_ledger(settings, f"validator-{index}")
    genesis_key = ledger.genesis.validators[index].public_key if index < len(ledger.genesis.validators) else ""
    label = node_of_key(ledger.genesis, genesis_key) or f"validator-{index}"  # an HSM key's label
    signer = open_process_signer(settings, settings.node_key_file or paths.validator_key(index), label)
    public_key = signer.public_key.hex()
    node_id = node_of_key(ledger.genesis, public_key)
    if node_id is not None:
        ledger.trust_node(node_id, public_key)
    bus = make_bus(settings, f"validator-{index}")
    await bus.start()
    try:
        await bus.ensure_topics(all_topics(settings, ledger.genesis))
        validator = Validator(
            ledger.genesis,
            ledger,
            bus,
            validator_config(settings, index, signer),
            node_id=node_id,
        )
        port = validator_port(settings, index)
        log.info("validator %d (%s…) of node %s at height %d", index, validator.me[:16], node_id, ledger.height)
        app = FastAPI(title=f"TRACO validator {index}", version="0.1.0")
        probes = Probes(lambda: telemetry.validator_health(validator), settings.ready_lag_heights)
        app.include_router(probes.router())  # /livez, /readyz, /metrics
        server = uvicorn.Server(
            uvicorn.Config(app, host=settings.api_host, port=port, log_level="warning", lifespan="off")
        )
        loop = asyncio.get_running_loop()
        running = [loop.create_task(validator.run(), name="validator"), loop.create_task(server.serve(), name="API")]
        probes.watch(running)

        async def everything() -> None:
            await run_all(running)

        await until_signalled(loop.create_task(everything()))
    finally:
        await bus.stop()
        ledger.close()
        signer.close()


async def serve_consensus_api(settings: Settings, node_id: str = "n0") -> None:
    """The consensus API of node ``node_id`` as a process of its own: it trusts only results
    that node signed."""
    configure_process("traco-consensus-api", settings.log_format)
    paths = DataDir(settings.data_dir)
    ledger = open_ledger(settings, "consensus")
    node = ledger.genesis.node(node_id)
    ledger.trust_node(node.id, node.public_key)
    written: list[Path] = []
    bus = make_bus(settings, "consensus-api")
    await bus.start()
    try:
        await bus.ensure_topics(all_topics(settings, ledger.genesis))
        follower = Follower(ledger, bus, name="consensus-api", node_id=node.id)
        index = [n.id for n in ledger.genesis.node_list()].index(node.id)
        port = settings.api_port + 10 * index
        app = create_app(ApiState(follower, bus, settings.max_body_bytes))
        probes = Probes(lambda: telemetry.follower_health(follower), settings.ready_lag_heights)
        app.include_router(probes.router())  # /livez, /readyz, /metrics
        telemetry.watch_follower(follower, node.id)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.api_host,
                port=port,
                log_level="warning",
                lifespan="off",
            )
        )
        url = f"http://{settings.api_host}:{port}"
        own = paths.root / "nodes" / node.id
        own.mkdir(parents=True, exist_ok=True)
        first = ledger.genesis.node_list()[0].id == node.id
        for target in [own / "api.json"] + ([paths.api_file] if first else []):
            target.write_text(json.dumps({"url": url, "pid": os.getpid(), "node": node.id}) + "\n")
            written.append(target)
        loop = asyncio.get_running_loop()
        running = [loop.create_task(follower.run(), name="follower"), loop.create_task(server.serve(), name="API")]
        probes.watch(running)
        tasks = asyncio.gather(*running)

        async def both() -> None:
            await tasks

        main = loop.create_task(both())
        await until_signalled(main)
        tasks.cancel()
    finally:
        for target in written:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
        await bus.stop()
        ledger.close()
