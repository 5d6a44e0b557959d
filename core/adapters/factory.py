"""The one place that turns storage settings into a block store or a state store.

Why: domain code and services depend on the ports (``traco.core.ports``) only; which
technology stores the data is a deployment choice (DESIGN §9). Keeping the choice here means
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

Caveat: a component name becomes a directory and a row key, so it is restricted to letters,
digits, ``_``, ``-`` and ``.``, starting with a letter or digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from traco.core.adapters.memory_store import MemoryBlockStore, MemoryStateStore
from traco.core.adapters.sqlite import SqliteBlockStore, SqliteStateStore
from traco.core.ports import BlockStore, StateStore

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
    from traco.core.adapters.cassandra import hosts_from_env

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
