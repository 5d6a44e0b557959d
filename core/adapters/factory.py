"""The one place that turns settings into a block store, a state store or a signer.

Why: domain code and services depend on the ports (``traco.core.ports``) only; which
technology stores the data is a deployment choice (decision 0007). Keeping the choice here means
no service imports an adapter, and a test can swap SQLite for memory with one setting.

How::

    config = StorageConfig.from_settings(Settings())        # or StorageConfig("sqlite", path)
    blocks = open_block_store(config, "consensus")
    state = open_state_store(config, "consensus")
    api_view = open_state_store(config, "consensus", readonly=True)   # another process

Layout per backend:

* ``sqlite``: ``<data_dir>/<component>/blocks.sqlite`` and ``.../state.sqlite`` (directories
  are created; ``readonly=True`` needs the writer to have created the files first).
* ``cassandra``: keyspace ``cassandra_keyspace`` on ``cassandra_hosts`` (or, when empty,
  ``TRACO_CASSANDRA_HOSTS``); the component names the rows. Each component gets its own copy
  of the chain, as with SQLite files. ``readonly`` changes nothing there (Cassandra readers
  need no special mode). The driver is imported only when this backend is chosen.
* ``memory``: a new, empty store on every call; for tests only (nothing is durable).

Signers: ``open_signer(SignerConfig.from_settings(settings), key_file, node_id)`` is the key
in ``key_file`` (``TRACO_SIGNER=file``) or the HSM key labelled with the node id
(``TRACO_SIGNER=pkcs11``); see docs/key-custody.md.

Caveat: a component name becomes a directory and a row key, so it is restricted to letters,
digits, ``_``, ``-`` and ``.``, starting with a letter or digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pydantic import SecretStr

from traco.core.adapters.memory_store import MemoryBlockStore, MemoryStateStore
from traco.core.adapters.signer_file import open_key_file
from traco.core.adapters.sqlite import SqliteBlockStore, SqliteStateStore
from traco.core.errors import SignerError
from traco.core.keyfile import PassphraseSource
from traco.core.ports import BlockStore, Signer, StateStore

Backend = Literal["sqlite", "cassandra", "memory"]

_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _SettingsLike(Protocol):
    """The storage fields of ``traco.core.settings.Settings``."""

    @property
    def storage(self) -> Backend: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def cassandra_host_list(self) -> tuple[str, ...]: ...

    @property
    def cassandra_keyspace(self) -> str: ...


@dataclass(frozen=True)
class StorageConfig:
    """Which storage backend to use and where its data lives."""

    backend: Backend
    data_dir: Path
    cassandra_hosts: tuple[str, ...] = ()
    cassandra_keyspace: str = "traco"

    @classmethod
    def from_settings(cls, settings: _SettingsLike) -> StorageConfig:
        """The storage part of the process settings (``TRACO_STORAGE``, ``TRACO_DATA_DIR``...)."""
        return cls(
            backend=settings.storage,
            data_dir=Path(settings.data_dir),
            cassandra_hosts=tuple(settings.cassandra_host_list),
            cassandra_keyspace=settings.cassandra_keyspace,
        )


def _component_dir(config: StorageConfig, component: str) -> Path:
    return Path(config.data_dir) / _check_component(component)


def _check_component(component: str) -> str:
    if not _COMPONENT.match(component):
        raise ValueError(f"component names are letters, digits, '_', '-' and '.', not {component!r}")
    return component


def _cassandra_hosts(config: StorageConfig) -> tuple[str, ...]:
    from traco.core.adapters.cassandra_cql import hosts_from_env

    return config.cassandra_hosts or hosts_from_env()


def open_block_store(config: StorageConfig, component: str, readonly: bool = False) -> BlockStore:
    """The block store of ``component`` on the configured backend."""
    _check_component(component)
    if config.backend == "sqlite":
        return SqliteBlockStore(_component_dir(config, component) / "blocks.sqlite", readonly)
    if config.backend == "cassandra":
        from traco.core.adapters.cassandra import CassandraBlockStore

        return CassandraBlockStore(_cassandra_hosts(config), config.cassandra_keyspace, component)
    if config.backend == "memory":
        return MemoryBlockStore()
    raise ValueError(f"unknown storage backend {config.backend!r}")


def open_state_store(config: StorageConfig, component: str, readonly: bool = False) -> StateStore:
    """The state store of ``component`` on the configured backend."""
    _check_component(component)
    if config.backend == "sqlite":
        return SqliteStateStore(_component_dir(config, component) / "state.sqlite", readonly)
    if config.backend == "cassandra":
        from traco.core.adapters.cassandra import CassandraStateStore

        return CassandraStateStore(_cassandra_hosts(config), config.cassandra_keyspace, component)
    if config.backend == "memory":
        return MemoryStateStore()
    raise ValueError(f"unknown storage backend {config.backend!r}")


# --------------------------------------------------------------------------- signers


class _SignerSettingsLike(Protocol):
    """The key-custody fields of ``traco.core.settings.Settings``."""

    @property
    def signer(self) -> Literal["file", "pkcs11"]: ...

    @property
    def key_passphrase(self) -> SecretStr | None: ...

    @property
    def key_passphrase_file(self) -> Path | None: ...

    @property
    def pkcs11_module(self) -> Path | None: ...

    @property
    def pkcs11_token_label(self) -> str | None: ...

    @property
    def pkcs11_pin(self) -> SecretStr | None: ...

    @property
    def pkcs11_pin_file(self) -> Path | None: ...


@dataclass(frozen=True)
class SignerConfig:
    """How a process signs: a key file (``TRACO_SIGNER=file``, the default) or an HSM
    (``TRACO_SIGNER=pkcs11`` with ``TRACO_PKCS11_MODULE``, ``TRACO_PKCS11_TOKEN_LABEL`` and
    ``TRACO_PKCS11_PIN`` or ``TRACO_PKCS11_PIN_FILE``)."""

    kind: Literal["file", "pkcs11"] = "file"
    passphrase: PassphraseSource = field(default_factory=PassphraseSource)
    pkcs11_module: Path | None = None
    pkcs11_token_label: str | None = None
    pkcs11_pin: str | None = None
    pkcs11_pin_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: _SignerSettingsLike) -> SignerConfig:
        pin = settings.pkcs11_pin
        return cls(
            kind=settings.signer,
            passphrase=PassphraseSource.from_settings(settings),
            pkcs11_module=settings.pkcs11_module,
            pkcs11_token_label=settings.pkcs11_token_label,
            pkcs11_pin=pin.get_secret_value() if pin else None,
            pkcs11_pin_file=settings.pkcs11_pin_file,
        )

    def pkcs11_target(self) -> tuple[Path, str, str]:
        """``(module, token label, PIN)``; ``SignerError`` naming every missing setting."""
        missing = [
            name for name, v in [("MODULE", self.pkcs11_module), ("TOKEN_LABEL", self.pkcs11_token_label)] if not v
        ]
        pin = self.pkcs11_pin
        if not pin and self.pkcs11_pin_file is not None:
            try:
                pin = self.pkcs11_pin_file.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
            except OSError as exc:
                raise SignerError(f"TRACO_PKCS11_PIN_FILE names {self.pkcs11_pin_file}: {exc.strerror}") from None
        if not pin:
            missing.append("PIN (or TRACO_PKCS11_PIN_FILE)")
        if missing:
            raise SignerError("TRACO_SIGNER=pkcs11 needs " + ", ".join(f"TRACO_PKCS11_{m}" for m in missing))
        assert self.pkcs11_module is not None and self.pkcs11_token_label is not None and pin
        return self.pkcs11_module, self.pkcs11_token_label, pin


def open_signer(config: SignerConfig, key_file: Path, key_label: str) -> Signer:
    """The signer a process uses: the key in ``key_file`` (plaintext or encrypted), or, with
    ``pkcs11``, the HSM key labelled ``key_label`` (the node id) and no file at all."""
    if config.kind == "file":
        return open_key_file(key_file, config.passphrase)
    if config.kind == "pkcs11":
        from traco.core.adapters.signer_pkcs11 import Pkcs11Signer

        return Pkcs11Signer(*config.pkcs11_target(), key_label)
    raise ValueError(f"unknown signer {config.kind!r} (TRACO_SIGNER is file or pkcs11)")
