"""Settings from the environment (``TRACO_*``) and an optional ``.env`` file (operator's guide).

Every process of the mesh reads the same settings class, so a Kubernetes pod, ``traco up``
and a test configure the same names. Command-line flags override the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from traco.core.adapters.kafka_config import (
    DEFAULT_RETENTION_MS_CONSENSUS,
    DEFAULT_RETENTION_MS_DLQ,
    DEFAULT_RETENTION_MS_TX,
    Compression,
    KafkaConfig,
    KafkaConfigError,
    SaslMechanism,
    SecurityProtocol,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACO_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("traco-data"), description="where keys, genesis and stores live")
    chain_id: str = Field(default="main", description="used by `traco init` for a new chain")
    kafka_bootstrap: str | None = Field(
        default=None, description="a real Kafka; unset, `traco up` starts the embedded Tansu broker"
    )
    kafka_idempotence: bool = Field(
        default=False, description="idempotent producers; on only where the broker supports them"
    )
    # Kafka for real clusters (mapped to aiokafka arguments and topic configs in
    # traco.core.adapters.kafka_config; checked together below, every problem named at once).
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, for every client"
    )
    kafka_ssl_cafile: Path | None = Field(default=None, description="PEM CA bundle the brokers' certificates chain to")
    kafka_ssl_certfile: Path | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="PEM key of the client certificate")
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; needed by the SASL_* protocols"
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password (or _FILE)")
    kafka_sasl_password_file: Path | None = Field(
        default=None, description="file holding the SASL password (a mounted Secret); trailing newline stripped"
    )
    kafka_replication_factor: int = Field(default=1, ge=1, description="replicas of every topic this mesh creates")
    kafka_min_insync_replicas: int | None = Field(
        default=None, ge=1, description="min.insync.replicas of created topics; unset = the broker's default"
    )
    kafka_retention_ms_tx: int = Field(default=DEFAULT_RETENTION_MS_TX, description="retention of tx; -1 = infinite")
    kafka_retention_ms_consensus: int = Field(
        default=DEFAULT_RETENTION_MS_CONSENSUS, description="retention of consensus; -1 = infinite"
    )
    kafka_retention_ms_dlq: int = Field(
        default=DEFAULT_RETENTION_MS_DLQ, description="retention of the dead-letter topics; -1 = infinite"
    )
    kafka_compression: Compression = Field(default="none", description="none, gzip, lz4, zstd or snappy")
    kafka_create_topics: bool = Field(
        default=True, description="create missing topics at start; false: only check they exist (operator-made)"
    )
    kafka_fetch_wait_ms: int = Field(
        default=10, ge=1, description="Tansu holds idle fetches this long: the latency of each hop"
    )
    kafka_linger_ms: int = Field(default=1, ge=0)
    broker_port: int = Field(default=9092, description="port of the embedded broker")
    storage: Literal["sqlite", "cassandra", "memory"] = "sqlite"
    cassandra_hosts: str = ""
    cassandra_keyspace: str = "traco"
    api_host: str = "127.0.0.1"
    api_port: int = 8700
    validators: int = Field(default=4, ge=1, le=64)
    tx_partitions: int = Field(default=4, ge=1)
    publish_grace_s: float = Field(
        default=1.0, gt=0, description="how long others wait for the proposer to publish a block"
    )
    timeout_propose_ms: int = 1000
    timeout_prevote_ms: int = 500
    timeout_precommit_ms: int = 500
    timeout_delta_ms: int = 500
    max_body_bytes: int = Field(default=64 * 1024, description="HTTP request body limit")
    gc_thresholds: tuple[int, int, int] = Field(
        default=(50_000, 20, 10),
        description="cycle collector thresholds of serving and auditing processes (core/gc_policy.py); JSON list",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text for a terminal (`traco up`); json lines with trace ids for a log pipeline"
    )
    ready_lag_heights: int = Field(
        default=2, ge=0, description="GET /readyz is 200 while within this many heights of the highest seen"
    )
    validator_port: int | None = Field(
        default=None, description="HTTP port of a split-layout validator (probes, /metrics); unset: api_port+10i+9"
    )
    # Key custody (docs/key-custody.md): where the node's key is and how it is opened.
    node_key_file: Path | None = Field(
        default=None, description="the node's key file (e.g. a read-only Secret mount) instead of the data dir's"
    )
    key_passphrase: SecretStr | None = Field(default=None, description="opens encrypted key files")
    key_passphrase_file: Path | None = Field(
        default=None, description="a file holding the passphrase (trailing newline stripped)"
    )
    signer: Literal["file", "pkcs11"] = Field(
        default="file", description="sign with a key file, or with an HSM's key through PKCS#11"
    )
    pkcs11_module: Path | None = Field(default=None, description="the HSM vendor's PKCS#11 library (.so)")
    pkcs11_token_label: str | None = Field(default=None, description="the token holding the keys")
    pkcs11_pin: SecretStr | None = Field(default=None, description="the token's user PIN")
    pkcs11_pin_file: Path | None = Field(default=None, description="a file holding the user PIN")

    @model_validator(mode="after")
    def _check_kafka(self) -> Settings:
        """Every Kafka problem at once, at start-up, rather than one per failed connection."""
        problems: list[str] = []
        if self.kafka_sasl_password is not None and self.kafka_sasl_password_file is not None:
            problems.append("set TRACO_KAFKA_SASL_PASSWORD or TRACO_KAFKA_SASL_PASSWORD_FILE, not both")
        password = None
        try:
            password = self.kafka_sasl_password_value()
        except OSError as exc:
            problems.append(f"TRACO_KAFKA_SASL_PASSWORD_FILE={self.kafka_sasl_password_file}: {exc.strerror}")
        # The file was read above (or could not be): check the rest with the password in hand.
        readable = self.model_copy(
            update={
                "kafka_sasl_password_file": None,
                "kafka_sasl_password": None if password is None else SecretStr(password),
            }
        )
        try:
            KafkaConfig.from_settings(readable)
        except KafkaConfigError as exc:
            problems.extend(exc.problems)
        if problems:
            raise KafkaConfigError(problems)
        return self

    def kafka_sasl_password_value(self) -> str | None:
        """The SASL password, from TRACO_KAFKA_SASL_PASSWORD or the file TRACO_KAFKA_SASL_PASSWORD_FILE."""
        if self.kafka_sasl_password_file is not None:
            return self.kafka_sasl_password_file.read_text().rstrip("\r\n")
        return None if self.kafka_sasl_password is None else self.kafka_sasl_password.get_secret_value()

    def kafka_config(self) -> KafkaConfig:
        """The Kafka client and topic settings of this process (raises KafkaConfigError)."""
        return KafkaConfig.from_settings(self)

    @property
    def cassandra_host_list(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.cassandra_hosts.split(",") if h.strip())
