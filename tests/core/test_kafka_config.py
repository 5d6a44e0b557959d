"""From ``TRACO_KAFKA_*`` settings to aiokafka client arguments and topic configs.

Offline: every setting is read from the environment as a pod would set it, and must land in
the argument or topic config Kafka reads; impossible combinations fail with one error that
names every problem. The TLS context is built from real certificates (``tls_certs``) and
checked the way a TLS handshake would use it. What a broker does with these is tested in
``tests/integration/test_kafka_cluster.py``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.core.tls_certs import Pki, make_pki
from traco.core.adapters.kafka_config import INFINITE, KafkaConfig, KafkaConfigError, retention_class
from traco.core.settings import Settings

CHAIN = "main"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean environment (no TRACO_* from the caller's shell, no .env picked up)."""
    import os

    for name in list(os.environ):
        if name.startswith("TRACO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def settings_from(env: pytest.MonkeyPatch, **values: str) -> Settings:
    for name, value in values.items():
        env.setenv(f"TRACO_KAFKA_{name}", value)
    return Settings()


def test_defaults_are_a_plaintext_single_broker(env: pytest.MonkeyPatch) -> None:
    config = Settings().kafka_config()
    assert config.client_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert config.producer_kwargs() == {
        "security_protocol": "PLAINTEXT",
        "acks": "all",
        "enable_idempotence": False,
        "compression_type": None,
    }
    assert config.replication_factor == 1 and config.create_topics is True
    assert "min.insync.replicas" not in config.topic_configs(f"traco.{CHAIN}.blocks")


def test_sasl_ssl_settings_land_in_every_client_argument(env: pytest.MonkeyPatch, pki: Pki, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret-from-a-secret\n")
    settings = settings_from(
        env,
        SECURITY_PROTOCOL="SASL_SSL",
        SSL_CAFILE=str(pki.ca),
        SSL_CERTFILE=str(pki.client_cert),
        SSL_KEYFILE=str(pki.client_key),
        SASL_MECHANISM="SCRAM-SHA-512",
        SASL_USERNAME="node-n0",
        SASL_PASSWORD_FILE=str(secret),
        IDEMPOTENCE="true",
        COMPRESSION="gzip",
    )
    config = settings.kafka_config()
    client = config.client_kwargs()
    assert client["security_protocol"] == "SASL_SSL"
    assert client["sasl_mechanism"] == "SCRAM-SHA-512"
    assert client["sasl_plain_username"] == "node-n0"
    assert client["sasl_plain_password"] == "s3cret-from-a-secret"  # trailing newline stripped
    context: ssl.SSLContext = client["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test CA"),),)]
    producer = config.producer_kwargs(client)
    assert producer["ssl_context"] is context  # one context for every client of a bus
    assert producer["enable_idempotence"] is True and producer["acks"] == "all"
    assert producer["compression_type"] == "gzip"
    assert "s3cret" not in repr(config) and "s3cret" not in repr(settings)


def test_the_client_certificate_is_presented(pki: Pki) -> None:
    """The context built from the settings completes a mutual-TLS handshake with a server that
    requires a client certificate from the same CA (in memory, no sockets)."""
    config = KafkaConfig(
        security_protocol="SSL", ssl_cafile=pki.ca, ssl_certfile=pki.client_cert, ssl_keyfile=pki.client_key
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    server.load_verify_locations(pki.ca)
    server.verify_mode = ssl.CERT_REQUIRED
    assert _handshake(config.ssl_context(), server) == "node-n0"
    without_cert = KafkaConfig(security_protocol="SSL", ssl_cafile=pki.ca).ssl_context()
    with pytest.raises(ssl.SSLError):
        _handshake(without_cert, server)


def test_a_broker_certificate_from_another_ca_is_refused(pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", prefix="other ")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(other.server_cert, other.server_key)
    client = KafkaConfig(security_protocol="SSL", ssl_cafile=pki.ca).ssl_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(client, server)


def _handshake(client_context: ssl.SSLContext | None, server_context: ssl.SSLContext) -> str | None:
    """Run a TLS handshake between two contexts over memory BIOs; the client's certificate CN."""
    assert client_context is not None
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
    server = server_context.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    client.write(b"ping")  # TLS 1.3: the server learns of a refused client certificate here
    s_in.write(c_out.read())
    assert server.read(4) == b"ping"
    peer = server.getpeercert()
    if not peer:
        return None
    subject: tuple[tuple[tuple[str, str], ...], ...] = peer["subject"]  # type: ignore[assignment]
    return dict(entry[0] for entry in subject)["commonName"]


@pytest.mark.parametrize(
    ("setting", "value", "topic", "config", "expected"),
    [
        ("REPLICATION_FACTOR", "3", None, None, None),
        ("MIN_INSYNC_REPLICAS", "2", "traco.main.tx", "min.insync.replicas", "2"),
        ("MIN_INSYNC_REPLICAS", "2", "traco.main.node.n1.events.doc", "min.insync.replicas", "2"),
        ("RETENTION_MS_TX", "3600000", "traco.main.tx", "retention.ms", "3600000"),
        ("RETENTION_MS_CONSENSUS", "7200000", "traco.main.consensus", "retention.ms", "7200000"),
        ("RETENTION_MS_DLQ", "-1", "traco.main.node.n2.dlq", "retention.ms", "-1"),
        ("RETENTION_MS_DLQ", "600000", "traco.main.dlq", "retention.ms", "600000"),
        ("COMPRESSION", "gzip", "traco.main.blocks", "compression.type", "gzip"),
    ],
)
def test_each_topic_setting_lands_in_the_topic_config(
    env: pytest.MonkeyPatch, setting: str, value: str, topic: str | None, config: str | None, expected: str | None
) -> None:
    extra = {"REPLICATION_FACTOR": "3"} if setting == "MIN_INSYNC_REPLICAS" else {}
    kafka = settings_from(env, **{setting: value, **extra}).kafka_config()
    if setting == "REPLICATION_FACTOR":
        assert kafka.replication_factor == 3
        return
    assert topic is not None and config is not None
    assert kafka.topic_configs(topic)[config] == expected


def test_retention_by_topic_blocks_and_node_records_forever() -> None:
    kafka = KafkaConfig(retention_ms_tx=111_111, retention_ms_consensus=222_222, retention_ms_dlq=333_333)
    expected: dict[str, Any] = {
        "traco.main.blocks": INFINITE,
        "traco.main.node.n0.receipts": INFINITE,
        "traco.main.node.n0.events.party": INFINITE,
        "traco.main.receipts": INFINITE,
        "traco.main.events.doc": INFINITE,
        "traco.main.tx": 111_111,
        "traco.main.consensus": 222_222,
        "traco.main.dlq": 333_333,
        "traco.main.node.n3.dlq": 333_333,
        "traco.main.something-else": None,
        "other.topic": None,
    }
    assert {name: kafka.retention_ms(name) for name in expected} == expected
    assert kafka.topic_configs("traco.main.blocks")["retention.bytes"] == "-1"
    assert "retention.ms" not in kafka.topic_configs("other.topic")
    assert retention_class("traco.main.node.n0.blocks") == "record"


def test_every_problem_is_named_at_once(env: pytest.MonkeyPatch, pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        settings_from(
            env,
            SECURITY_PROTOCOL="SASL_SSL",
            SSL_CAFILE=str(tmp_path / "missing-ca.pem"),
            SSL_CERTFILE=str(pki.client_cert),  # without its key
            REPLICATION_FACTOR="2",
            MIN_INSYNC_REPLICAS="3",
            RETENTION_MS_TX="5",
            COMPRESSION="snappy" if not _has("snappy") else "gzip",
        )
    message = str(caught.value)
    for problem in (
        "TRACO_KAFKA_SSL_CAFILE=",
        "no such file",
        "TRACO_KAFKA_SSL_CERTFILE and TRACO_KAFKA_SSL_KEYFILE go together",
        "needs TRACO_KAFKA_SASL_MECHANISM",
        "needs TRACO_KAFKA_SASL_USERNAME",
        "needs TRACO_KAFKA_SASL_PASSWORD or TRACO_KAFKA_SASL_PASSWORD_FILE",
        "TRACO_KAFKA_MIN_INSYNC_REPLICAS=3 exceeds TRACO_KAFKA_REPLICATION_FACTOR=2",
        "TRACO_KAFKA_RETENTION_MS_TX must be -1",
    ):
        assert problem in message, (problem, message)
    if not _has("snappy"):
        assert "TRACO_KAFKA_COMPRESSION=snappy" in message


def test_settings_that_the_protocol_would_ignore_are_refused(env: pytest.MonkeyPatch, pki: Pki) -> None:
    with pytest.raises(ValidationError) as caught:
        settings_from(env, SSL_CAFILE=str(pki.ca), SASL_USERNAME="n0", SASL_PASSWORD="x")
    message = str(caught.value)
    assert "TRACO_KAFKA_SSL_CAFILE set but TRACO_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS" in message
    assert "does not use SASL" in message


def test_password_and_password_file_together_are_refused(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("x")
    with pytest.raises(ValidationError, match="not both"):
        settings_from(
            env,
            SECURITY_PROTOCOL="SASL_SSL",
            SASL_MECHANISM="SCRAM-SHA-256",
            SASL_USERNAME="n0",
            SASL_PASSWORD="y",
            SASL_PASSWORD_FILE=str(secret),
        )


def test_a_key_that_does_not_match_its_certificate_is_refused(pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", prefix="x ")
    with pytest.raises(KafkaConfigError, match="cannot be loaded"):
        KafkaConfig(security_protocol="SSL", ssl_certfile=pki.client_cert, ssl_keyfile=other.client_key)


def test_unknown_protocol_or_mechanism_is_refused_by_name(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as caught:
        settings_from(env, SECURITY_PROTOCOL="TLS", SASL_MECHANISM="GSSAPI", COMPRESSION="brotli")
    message = str(caught.value)
    assert "kafka_security_protocol" in message and "kafka_sasl_mechanism" in message
    assert "kafka_compression" in message


def test_create_topics_false_is_carried(env: pytest.MonkeyPatch) -> None:
    assert settings_from(env, CREATE_TOPICS="false").kafka_config().create_topics is False


def _has(codec: str) -> bool:
    from aiokafka import codec as codecs

    return bool(getattr(codecs, f"has_{codec}")())
