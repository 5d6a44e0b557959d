"""Kafka client and topic settings for real clusters: TLS, SASL, replication, retention.

Why a module of its own: every aiokafka client the bus makes (the producer, each consumer, the
admin client) must carry the *same* security settings, and every topic it creates the same
replication and retention rules. Building those keyword arguments in one pure place means
``kafka.py`` only splices them in where it constructs a client, and a unit test can check that
each ``TRACO_KAFKA_*`` setting lands in the right argument without a broker.

How::

    config = KafkaConfig.from_settings(Settings())      # raises KafkaConfigError listing every problem
    AIOKafkaProducer(bootstrap_servers=..., **config.producer_kwargs())
    AIOKafkaConsumer(bootstrap_servers=..., **config.client_kwargs())
    NewTopic(name, partitions, config.replication_factor, topic_configs=config.topic_configs(name))

Retention per topic (the name's part after ``traco.<chain>.``), and why:

* ``blocks``: infinite. The sealed chain is the source of truth; a node, a service or an
  auditor rebuilds from it, and a new node catches up from it.
* ``node.<id>.receipts``, ``node.<id>.events.<svc>`` (and the chain-wide ``receipts``,
  ``events.<svc>``): infinite. They are the integration surface: auditors and enterprises replay
  them from the start and compare nodes' signed checkpoints.
* ``tx``: ``RETENTION_MS_TX`` (7 days). Pending envelopes only; once sealed they live in blocks.
* ``consensus``: ``RETENTION_MS_CONSENSUS`` (7 days). Votes and proposals matter while a height
  is being decided and for looking into misbehaviour afterwards; sealed blocks carry their
  commits, so nothing older is needed to verify the chain.
* ``dlq``, ``node.<id>.dlq``: ``RETENTION_MS_DLQ`` (30 days): long enough for an operator to
  read what was refused and why; the block store, not the dead letters, is the record.
* any other name: the broker's default.

``-1`` means infinite, as in Kafka. ``min.insync.replicas`` is set on every topic when
configured (with ``acks=all``, a produce fails rather than being held by fewer replicas),
``compression.type`` when a codec is chosen (so the broker keeps the producer's batches), and
``max.message.bytes`` to the bus's largest message (Kafka's own default is about 1 MB, smaller
than a block of a few thousand transactions).

Caveats: aiokafka's idempotent producer fails to start on Tansu (``docs/decisions/0006``),
so ``idempotence`` stays off by default. ``acks`` is always ``all``: a
ledger's transport must not acknowledge what a broker failure can lose. Compression codecs
other than gzip need ``cramjam`` (``pip install 'aiokafka[zstd]'``); asking for one that is
missing is a configuration problem, named at start-up.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

__all__ = [
    "INFINITE",
    "Compression",
    "KafkaConfig",
    "KafkaConfigError",
    "SaslMechanism",
    "SecurityProtocol",
    "retention_class",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
Compression = Literal["none", "gzip", "lz4", "zstd", "snappy"]
RetentionClass = Literal["record", "tx", "consensus", "dlq", "default"]

INFINITE = -1
DAY_MS = 24 * 3600 * 1000
DEFAULT_RETENTION_MS_TX = 7 * DAY_MS
DEFAULT_RETENTION_MS_CONSENSUS = 7 * DAY_MS
DEFAULT_RETENTION_MS_DLQ = 30 * DAY_MS
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class KafkaConfigError(ValueError):
    """The Kafka settings cannot work together; ``problems`` names every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("Kafka settings are invalid:\n" + "\n".join(f"  - {p}" for p in self.problems))


class _SettingsLike(Protocol):
    """The ``kafka_*`` fields of ``traco.core.settings.Settings`` (no import: settings import this)."""

    kafka_security_protocol: SecurityProtocol
    kafka_ssl_cafile: Path | None
    kafka_ssl_certfile: Path | None
    kafka_ssl_keyfile: Path | None
    kafka_sasl_mechanism: SaslMechanism | None
    kafka_sasl_username: str | None
    kafka_sasl_password_file: Path | None
    kafka_replication_factor: int
    kafka_min_insync_replicas: int | None
    kafka_retention_ms_tx: int
    kafka_retention_ms_consensus: int
    kafka_retention_ms_dlq: int
    kafka_compression: Compression
    kafka_idempotence: bool
    kafka_create_topics: bool

    def kafka_sasl_password_value(self) -> str | None: ...


@dataclass(frozen=True)
class KafkaConfig:
    """What every client and every created topic of one process uses.

    Construction checks everything and raises :class:`KafkaConfigError` with every problem at
    once. ``repr`` never shows the SASL password.
    """

    security_protocol: SecurityProtocol = "PLAINTEXT"
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    replication_factor: int = 1
    min_insync_replicas: int | None = None
    retention_ms_tx: int = DEFAULT_RETENTION_MS_TX
    retention_ms_consensus: int = DEFAULT_RETENTION_MS_CONSENSUS
    retention_ms_dlq: int = DEFAULT_RETENTION_MS_DLQ
    compression: Compression = "none"
    idempotence: bool = False
    create_topics: bool = True
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise KafkaConfigError(problems)

    def __repr__(self) -> str:
        password = None if self.sasl_password is None else "***"
        return (
            f"KafkaConfig(security_protocol={self.security_protocol!r}, sasl_mechanism={self.sasl_mechanism!r}, "
            f"sasl_username={self.sasl_username!r}, sasl_password={password}, "
            f"replication_factor={self.replication_factor}, min_insync_replicas={self.min_insync_replicas}, "
            f"compression={self.compression!r}, idempotence={self.idempotence}, create_topics={self.create_topics})"
        )

    @classmethod
    def from_settings(cls, settings: _SettingsLike, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> KafkaConfig:
        """The Kafka part of the process settings (``TRACO_KAFKA_*``)."""
        return cls(
            security_protocol=settings.kafka_security_protocol,
            ssl_cafile=settings.kafka_ssl_cafile,
            ssl_certfile=settings.kafka_ssl_certfile,
            ssl_keyfile=settings.kafka_ssl_keyfile,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password_value(),
            replication_factor=settings.kafka_replication_factor,
            min_insync_replicas=settings.kafka_min_insync_replicas,
            retention_ms_tx=settings.kafka_retention_ms_tx,
            retention_ms_consensus=settings.kafka_retention_ms_consensus,
            retention_ms_dlq=settings.kafka_retention_ms_dlq,
            compression=settings.kafka_compression,
            idempotence=settings.kafka_idempotence,
            create_topics=settings.kafka_create_topics,
            max_message_bytes=max_message_bytes,
        )

    # -- checks ---------------------------------------------------------------------------

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def problems(self) -> list[str]:
        """Every reason these settings cannot work, named by their environment variables."""
        problems: list[str] = []
        files = {
            "TRACO_KAFKA_SSL_CAFILE": self.ssl_cafile,
            "TRACO_KAFKA_SSL_CERTFILE": self.ssl_certfile,
            "TRACO_KAFKA_SSL_KEYFILE": self.ssl_keyfile,
        }
        if not self.uses_tls:
            given = [name for name, path in files.items() if path is not None]
            if given:
                problems.append(
                    f"{', '.join(given)} set but TRACO_KAFKA_SECURITY_PROTOCOL={self.security_protocol} "
                    "does not use TLS (use SSL or SASL_SSL)"
                )
        for name, path in files.items():
            if path is not None and not Path(path).is_file():
                problems.append(f"{name}={path}: no such file")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            problems.append(
                "TRACO_KAFKA_SSL_CERTFILE and TRACO_KAFKA_SSL_KEYFILE go together (a client certificate needs its key)"
            )
        files_ok = not problems
        if self.uses_sasl:
            if self.sasl_mechanism is None:
                problems.append(
                    f"TRACO_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs TRACO_KAFKA_SASL_MECHANISM "
                    "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                )
            if not self.sasl_username:
                problems.append(
                    f"TRACO_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs TRACO_KAFKA_SASL_USERNAME"
                )
            if not self.sasl_password:
                problems.append(
                    f"TRACO_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs TRACO_KAFKA_SASL_PASSWORD "
                    "or TRACO_KAFKA_SASL_PASSWORD_FILE"
                )
        else:
            given = [
                name
                for name, value in (
                    ("TRACO_KAFKA_SASL_MECHANISM", self.sasl_mechanism),
                    ("TRACO_KAFKA_SASL_USERNAME", self.sasl_username),
                    ("TRACO_KAFKA_SASL_PASSWORD(_FILE)", self.sasl_password),
                )
                if value
            ]
            if given:
                problems.append(
                    f"{', '.join(given)} set but TRACO_KAFKA_SECURITY_PROTOCOL={self.security_protocol} "
                    "does not use SASL (use SASL_PLAINTEXT or SASL_SSL)"
                )
        if files_ok and self.uses_tls:
            try:  # a CA that is not PEM, a key that does not match its certificate
                self.ssl_context()
            except (ssl.SSLError, ValueError, OSError) as exc:
                problems.append(f"TRACO_KAFKA_SSL_* files cannot be loaded: {exc}")
        if self.replication_factor < 1:
            problems.append(f"TRACO_KAFKA_REPLICATION_FACTOR must be at least 1, not {self.replication_factor}")
        if self.min_insync_replicas is not None:
            if self.min_insync_replicas < 1:
                problems.append(f"TRACO_KAFKA_MIN_INSYNC_REPLICAS must be at least 1, not {self.min_insync_replicas}")
            elif self.min_insync_replicas > self.replication_factor:
                problems.append(
                    f"TRACO_KAFKA_MIN_INSYNC_REPLICAS={self.min_insync_replicas} exceeds "
                    f"TRACO_KAFKA_REPLICATION_FACTOR={self.replication_factor}: with acks=all every produce would fail"
                )
        for name, value in (
            ("TRACO_KAFKA_RETENTION_MS_TX", self.retention_ms_tx),
            ("TRACO_KAFKA_RETENTION_MS_CONSENSUS", self.retention_ms_consensus),
            ("TRACO_KAFKA_RETENTION_MS_DLQ", self.retention_ms_dlq),
        ):
            if value != INFINITE and value < 60_000:
                problems.append(f"{name} must be -1 (infinite) or at least 60000 ms, not {value}")
        if self.compression != "none" and not _codec_available(self.compression):
            problems.append(
                f"TRACO_KAFKA_COMPRESSION={self.compression}: aiokafka has no {self.compression} codec here "
                f"(pip install 'aiokafka[{self.compression}]')"
            )
        if self.max_message_bytes < 1:
            problems.append(f"max_message_bytes must be positive, not {self.max_message_bytes}")
        return problems

    # -- what clients get -----------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying client context (the CA, or the system's roots; the client certificate
        if configured), or None without TLS. Host names are checked: a broker must present a
        certificate for the address the client dials."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(
            purpose=ssl.Purpose.SERVER_AUTH, cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ssl_certfile is not None and self.ssl_keyfile is not None:
            context.load_cert_chain(certfile=str(self.ssl_certfile), keyfile=str(self.ssl_keyfile))
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """Security arguments every aiokafka client (producer, consumer, admin) takes."""
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs

    def producer_kwargs(self, client: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The security arguments (``client``, or built now) plus what only a producer takes."""
        return {
            **(dict(client) if client is not None else self.client_kwargs()),
            "acks": "all",
            "enable_idempotence": self.idempotence,
            "compression_type": None if self.compression == "none" else self.compression,
        }

    # -- what topics get ------------------------------------------------------------------

    def retention_ms(self, topic: str) -> int | None:
        """The ``retention.ms`` of ``topic`` (-1 = infinite), or None for the broker's default."""
        kind = retention_class(topic)
        if kind == "record":
            return INFINITE
        if kind == "tx":
            return self.retention_ms_tx
        if kind == "consensus":
            return self.retention_ms_consensus
        if kind == "dlq":
            return self.retention_ms_dlq
        return None

    def topic_configs(self, topic: str) -> dict[str, str]:
        """Topic-level configs for creating ``topic`` (values as strings, as Kafka takes them)."""
        configs = {"cleanup.policy": "delete", "max.message.bytes": str(self.max_message_bytes)}
        retention = self.retention_ms(topic)
        if retention is not None:
            configs["retention.ms"] = str(retention)
            if retention == INFINITE:
                configs["retention.bytes"] = "-1"
        if self.min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(self.min_insync_replicas)
        if self.compression != "none":
            configs["compression.type"] = self.compression
        return configs


def retention_class(topic: str) -> RetentionClass:
    """Which retention rule a TRACO topic name (``traco.<chain>.<name>``) falls under."""
    parts = topic.split(".")
    if len(parts) < 3 or parts[0] != "traco":
        return "default"
    rest = parts[2:]
    if rest[0] == "node" and len(rest) >= 3:
        rest = rest[2:]  # node.<id>.<name> is retained like the chain-wide <name>
    name = rest[0]
    if rest == ["blocks"] or name in ("receipts", "events"):
        return "record"
    if rest == ["tx"]:
        return "tx"
    if rest == ["consensus"]:
        return "consensus"
    if rest == ["dlq"]:
        return "dlq"
    return "default"


def _codec_available(codec: str) -> bool:
    from aiokafka import codec as codecs

    check = {
        "gzip": codecs.has_gzip,
        "lz4": codecs.has_lz4,
        "zstd": codecs.has_zstd,
        "snappy": codecs.has_snappy,
    }.get(codec)
    return bool(check and check())
