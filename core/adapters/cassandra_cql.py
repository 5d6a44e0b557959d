"""Cassandra's side of the storage adapter that needs no driver: the settings from the
environment, identifiers, the schema (``cassandra.cql``), every CQL statement, and the rows a
block or a state batch becomes. ``cassandra.py`` holds the connection and the stores; keeping
these apart lets the tests check the statements and rows without a cluster.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Final

from traco.core.adapters.memory_store import split_writes
from traco.core.errors import StorageError
from traco.core.ports import StateBatch
from traco.schemas.block import SealedBlock

SCHEMA_VERSION: Final = 1
SCHEMA_FILE: Final = Path(__file__).with_name("cassandra.cql")
DEFAULT_PORT: Final = 9042
DEFAULT_KEYSPACE: Final = "traco"
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,47}$")  # unquoted CQL folds case: lower only
_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS \$\{keyspace\}\.(\w+)")


# --------------------------------------------------------------------------- pure helpers


def hosts_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``TRACO_CASSANDRA_HOSTS`` split on commas, blanks dropped; () when unset."""
    raw = (os.environ if environ is None else environ).get("TRACO_CASSANDRA_HOSTS", "")
    return tuple(h.strip() for h in raw.split(",") if h.strip())


def keyspace_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``TRACO_CASSANDRA_KEYSPACE``, default ``traco``."""
    env = os.environ if environ is None else environ
    return env.get("TRACO_CASSANDRA_KEYSPACE", "") or DEFAULT_KEYSPACE


def replication_factor_from_env(environ: Mapping[str, str] | None = None) -> int:
    """``TRACO_CASSANDRA_REPLICATION_FACTOR``, default 1."""
    env = os.environ if environ is None else environ
    return int(env.get("TRACO_CASSANDRA_REPLICATION_FACTOR", "") or 1)


def parse_hosts(hosts: Sequence[str]) -> list[tuple[str, int]]:
    """``["a", "b:9043", "[::1]:9044"]`` -> ``[("a", 9042), ("b", 9043), ("::1", 9044)]``."""
    parsed: list[tuple[str, int]] = []
    for entry in hosts:
        entry = entry.strip()
        if entry.startswith("["):  # [ipv6]:port
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
        elif entry.count(":") == 1:
            host, _, port_text = entry.partition(":")
            port = int(port_text)
        else:  # a name, an IPv4 address, or a bare IPv6 address
            host, port = entry, DEFAULT_PORT
        if not host:
            raise ValueError(f"empty Cassandra host in {entry!r}")
        parsed.append((host, port))
    return parsed


def check_identifier(keyspace: str) -> str:
    """A keyspace name safe to put into CQL text (it cannot be a bound parameter)."""
    if not _IDENTIFIER.match(keyspace):
        raise ValueError(f"not a valid keyspace name: {keyspace!r}")
    return keyspace


def check_component(component: str) -> str:
    if not _COMPONENT.match(component):
        raise ValueError(f"not a valid component name: {component!r}")
    return component


def replication_map(replication_factor: int, datacenter: str | None = None) -> str:
    """The CQL replication map of the keyspace."""
    if replication_factor < 1:
        raise ValueError(f"replication factor must be >= 1, not {replication_factor}")
    if datacenter is None:
        return f"{{'class': 'SimpleStrategy', 'replication_factor': {replication_factor}}}"
    if not re.match(r"^[A-Za-z0-9_.-]+$", datacenter):
        raise ValueError(f"not a valid data centre name: {datacenter!r}")
    return f"{{'class': 'NetworkTopologyStrategy', '{datacenter}': {replication_factor}}}"


def schema_statements(keyspace: str, replication: str) -> list[str]:
    """The statements of ``cassandra.cql`` for ``keyspace``, comments removed, in order."""
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    filled = Template("\n".join(lines)).substitute(keyspace=check_identifier(keyspace), replication=replication)
    return [" ".join(s.split()) for s in filled.split(";") if s.strip()]


def schema_tables() -> list[str]:
    """The tables ``cassandra.cql`` creates."""
    return _CREATE_TABLE.findall(SCHEMA_FILE.read_text(encoding="utf-8"))


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """``(low, high)`` such that ``key.startswith(prefix)`` iff ``low <= key < high``.

    Cassandra compares ``text`` clustering keys as UTF-8 bytes, which is code point order.
    ``high`` is the prefix with its last character incremented, after dropping trailing
    U+10FFFF (which cannot be incremented); None means "no upper bound" (the prefix is
    empty or all U+10FFFF). Surrogates never occur in UTF-8, so U+D7FF is followed by U+E000.
    """
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return prefix, None
    following = ord(stem[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:
        following = 0xE000
    return prefix, stem[:-1] + chr(following)


def write_timestamp(height: int) -> int:
    """The Cassandra write timestamp of every row a state batch at ``height`` writes."""
    return height


def block_row(block: SealedBlock) -> tuple[int, str, str, str]:
    """``(height, hash, header JSON, block JSON)`` of a block row."""
    return block.height, block.block_hash(), block.header.json_bytes.decode(), block.json_bytes.decode()


def tx_index_rows(component: str, block: SealedBlock) -> list[tuple[str, str, int, int]]:
    return [(component, tx.tx_id, block.height, i) for i, tx in enumerate(block.txs)]


def column(row: Any, name: str) -> Any:
    """A column of a result row, whether the session makes named tuples or dicts."""
    if isinstance(row, Mapping):
        return row[name]
    try:
        return getattr(row, name)
    except AttributeError:
        raise StorageError(
            f"the Cassandra session must return named-tuple or dict rows (row factory), got {type(row).__name__}"
        ) from None


@dataclass(frozen=True)
class Statements:
    """Every CQL statement the stores prepare, for one keyspace. Pure text: testable offline."""

    keyspace: str

    def _q(self, template: str) -> str:
        return template.replace("{ks}", check_identifier(self.keyspace))

    # -- heights
    @property
    def select_height(self) -> str:
        return self._q("SELECT height FROM {ks}.component_heights WHERE component = ? AND kind = ?")

    @property
    def insert_first_height(self) -> str:
        return self._q("INSERT INTO {ks}.component_heights (component, kind, height) VALUES (?, ?, ?) IF NOT EXISTS")

    @property
    def advance_height(self) -> str:
        return self._q("UPDATE {ks}.component_heights SET height = ? WHERE component = ? AND kind = ? IF height = ?")

    # -- blocks
    @property
    def insert_block(self) -> str:
        return self._q(
            "INSERT INTO {ks}.blocks (component, height, hash, header, block) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
        )

    @property
    def select_block_hash(self) -> str:
        return self._q("SELECT hash FROM {ks}.blocks WHERE component = ? AND height = ?")

    @property
    def select_block(self) -> str:
        return self._q("SELECT block FROM {ks}.blocks WHERE component = ? AND height = ?")

    @property
    def select_header(self) -> str:
        return self._q("SELECT header FROM {ks}.blocks WHERE component = ? AND height = ?")

    @property
    def insert_tx_index(self) -> str:
        return self._q("INSERT INTO {ks}.tx_index (component, tx_id, height, idx) VALUES (?, ?, ?, ?)")

    @property
    def select_tx_location(self) -> str:
        return self._q("SELECT height, idx FROM {ks}.tx_index WHERE component = ? AND tx_id = ? LIMIT 1")

    # -- state
    @property
    def select_value(self) -> str:
        return self._q("SELECT value FROM {ks}.state WHERE component = ? AND key = ?")

    @property
    def scan_bounded(self) -> str:
        return self._q("SELECT key, value FROM {ks}.state WHERE component = ? AND key >= ? AND key < ?")

    @property
    def scan_unbounded(self) -> str:
        return self._q("SELECT key, value FROM {ks}.state WHERE component = ? AND key >= ?")

    @property
    def upsert_value(self) -> str:
        return self._q("INSERT INTO {ks}.state (component, key, value) VALUES (?, ?, ?) USING TIMESTAMP ?")

    @property
    def delete_value(self) -> str:
        return self._q("DELETE FROM {ks}.state USING TIMESTAMP ? WHERE component = ? AND key = ?")

    @property
    def claim_digest(self) -> str:
        return self._q("INSERT INTO {ks}.digests (component, height, state_digest) VALUES (?, ?, ?) IF NOT EXISTS")

    @property
    def select_digest(self) -> str:
        return self._q("SELECT state_digest FROM {ks}.digests WHERE component = ? AND height = ?")

    @property
    def insert_receipt(self) -> str:
        return self._q(
            "INSERT INTO {ks}.receipts (component, height, idx, tx_id, receipt) "
            "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )

    @property
    def insert_receipt_by_tx(self) -> str:
        return self._q(
            "INSERT INTO {ks}.receipts_by_tx (component, tx_id, height, idx, receipt) "
            "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )

    @property
    def select_receipts(self) -> str:
        return self._q("SELECT receipt FROM {ks}.receipts WHERE component = ? AND height = ?")

    @property
    def select_receipts_by_tx(self) -> str:
        return self._q("SELECT height, receipt FROM {ks}.receipts_by_tx WHERE component = ? AND tx_id = ?")

    @property
    def upsert_rejection(self) -> str:
        return self._q("INSERT INTO {ks}.rejections (component, tx_id, receipt) VALUES (?, ?, ?)")

    @property
    def select_rejection(self) -> str:
        return self._q("SELECT receipt FROM {ks}.rejections WHERE component = ? AND tx_id = ?")

    @property
    def insert_event(self) -> str:
        return self._q("INSERT INTO {ks}.events (component, height, seq, event) VALUES (?, ?, ?, ?) USING TIMESTAMP ?")

    @property
    def select_events(self) -> str:
        return self._q("SELECT event FROM {ks}.events WHERE component = ? AND height = ?")

    @property
    def upsert_meta(self) -> str:
        return self._q("INSERT INTO {ks}.meta (component, key, value) VALUES (?, ?, ?)")

    @property
    def select_meta(self) -> str:
        return self._q("SELECT value FROM {ks}.meta WHERE component = ? AND key = ?")

    @property
    def insert_schema_version(self) -> str:
        return self._q("INSERT INTO {ks}.schema_version (name, version) VALUES ('traco', ?) IF NOT EXISTS")

    @property
    def select_schema_version(self) -> str:
        return self._q("SELECT version FROM {ks}.schema_version WHERE name = 'traco'")

    def all(self) -> dict[str, str]:
        """Every statement by name."""
        return {name: getattr(self, name) for name, value in vars(type(self)).items() if isinstance(value, property)}


def state_batch_rows(component: str, batch: StateBatch) -> dict[str, list[tuple[object, ...]]]:
    """The parameters of every statement of a commit, by statement name (see ``Statements``).

    Raises ``TypeError`` (from ``split_writes``) before anything is sent for a wrong type.
    """
    ts = write_timestamp(batch.height)
    puts, deletes = split_writes(batch.writes)
    receipts = [(n, r.tx_id, r.json_bytes.decode()) for n, r in enumerate(batch.receipts)]
    return {
        "upsert_value": [(component, key, value, ts) for key, value in puts],
        "delete_value": [(ts, component, key) for key in deletes],
        "insert_receipt": [(component, batch.height, idx, tx_id, raw, ts) for idx, tx_id, raw in receipts],
        "insert_receipt_by_tx": [(component, tx_id, batch.height, idx, raw, ts) for idx, tx_id, raw in receipts],
        "insert_event": [
            (component, batch.height, seq, e.json_bytes.decode(), ts) for seq, e in enumerate(batch.events)
        ],
    }
