"""Settings from the environment (``TRACO_*``) and an optional ``.env`` file (DESIGN §10).

Every process of the mesh reads the same settings class, so a Kubernetes pod, ``traco up``
and a test configure the same names. Command-line flags override the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    empty_block_interval_s: float = Field(
        default=0.0, ge=0, description="seal an empty block after this long idle; 0 = never"
    )
    publish_grace_s: float = Field(
        default=1.0, gt=0, description="how long others wait for the proposer to publish a block"
    )
    timeout_propose_ms: int = 1000
    timeout_prevote_ms: int = 500
    timeout_precommit_ms: int = 500
    timeout_delta_ms: int = 500
    max_body_bytes: int = Field(default=64 * 1024, description="HTTP request body limit")
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

    @property
    def cassandra_host_list(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.cassandra_hosts.split(",") if h.strip())
