"""OpenTelemetry metrics, exposed for Prometheus on every process's ``GET /metrics`` (operator's guide: Observability).

Why OpenTelemetry and not hand-written text: one SDK gives counters, histograms and gauges that
an operator can also push over OTLP, and the Prometheus exposition (names, ``_total``, units,
escaping) is generated, not typed by hand. Why pull and not a second port: Kubernetes and the
probes already reach each process on its API port; the route renders this process's own
``prometheus_client`` registry (``render``), so nothing is global to the interpreter.

How::

    metrics.SEALED_TXS.add(len(block.txs), {"chain": chain_id})         # instruments: anywhere
    metrics.BLOCK_HEIGHT.watch(ledger, lambda l: [(l.height, {...})])   # gauges: read at scrape
    configure_metrics("traco-node-n0")                                  # entry points only
    body, content_type = metrics.render()                               # GET /metrics

Library code only touches the OpenTelemetry *API*: instruments created before
:func:`configure_metrics` are proxies that start recording once it runs; without it they record
nothing and ``render`` says so.

Caveats:

* Gauges are read when scraped: ``watch`` keeps its owner weakly (an owner that is gone stops
  reporting), and ``read`` must take the owner as its argument rather than capture it, or the
  owner would never be collected. A ``read`` that raises is logged and skipped.
* OpenTelemetry names become Prometheus names with the unit and ``_total`` appended:
  ``traco_commit_latency`` (unit ``s``) is ``traco_commit_latency_seconds``, the counter
  ``traco_dead_letters`` is ``traco_dead_letters_total``. The dashboard and the operator's guide
  use the Prometheus names.
* Label values must stay few: validators, services, topics and reason *kinds*
  (:func:`reason_kind`), never transaction ids or free text.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "BLOCKS_COMMITTED",
    "BLOCK_HEIGHT",
    "COMMIT_LATENCY",
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "DIVERGENCES",
    "HANDLER_FAILURES",
    "MEMPOOL_SIZE",
    "MISSED_VOTES",
    "NODE_EXECUTING",
    "RESULTS_DIVERGED",
    "ROUNDS_PER_HEIGHT",
    "SEALED_TXS",
    "SERVICE_CPU",
    "SERVICE_HEIGHT",
    "configure_metrics",
    "dead_letter",
    "reason_kind",
    "render",
]

log = logging.getLogger(__name__)

Labels = Mapping[str, str]
Reading = Iterable[tuple[float, Labels]]

_meter = metrics.get_meter("traco")


class Watched:
    """An observable instrument whose values are read from live objects at each scrape."""

    def __init__(self, kind: str, name: str, description: str, unit: str = "") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._sources: weakref.WeakKeyDictionary[Any, list[Callable[[Any], Reading]]] = weakref.WeakKeyDictionary()
        create = {
            "gauge": _meter.create_observable_gauge,
            "counter": _meter.create_observable_counter,
        }[kind]
        create(name, callbacks=[self._observe], unit=unit, description=description)

    def watch(self, owner: Any, read: Callable[[Any], Reading]) -> None:
        """Report ``read(owner)`` (``(value, labels)`` pairs) at each scrape while ``owner`` lives."""
        with self._lock:
            self._sources.setdefault(owner, []).append(read)

    def _observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            sources = [(owner, list(reads)) for owner, reads in self._sources.items()]
        out: list[Observation] = []
        for owner, reads in sources:
            for read in reads:
                try:
                    out += [Observation(value, dict(labels)) for value, labels in read(owner)]
                except Exception:  # a gauge must never break the scrape of the others
                    log.exception("reading metric %s failed", self.name)
        return out


# -- the chain -------------------------------------------------------------------------------

BLOCK_HEIGHT = Watched("gauge", "traco_block_height", "Height of the last block this process holds", "{block}")
SEALED_TXS = _meter.create_counter(
    "traco_sealed_transactions", "{transaction}", "Transactions in blocks this process committed (rate = tx/s)"
)
BLOCKS_COMMITTED = _meter.create_counter("traco_blocks_committed", "{block}", "Blocks this process committed")
COMMIT_LATENCY = _meter.create_histogram(
    "traco_commit_latency",
    unit="s",
    description="From a block's proposal (its header time) to this validator deciding it",
    explicit_bucket_boundaries_advisory=[0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 60],
)
ROUNDS_PER_HEIGHT = _meter.create_histogram(
    "traco_rounds_per_height",
    unit="{round}",
    description="Rounds a height took to commit (1 = decided in its first round)",
    explicit_bucket_boundaries_advisory=[1, 2, 3, 4, 6, 8, 12, 16],
)
MISSED_VOTES = _meter.create_counter(
    "traco_missed_votes", "{vote}", "Validators of a height's set whose precommit is not in the block's commit"
)
MEMPOOL_SIZE = Watched("gauge", "traco_mempool_size", "Transactions waiting in this validator's mempool", "{tx}")
HANDLER_FAILURES = Watched(
    "counter", "traco_handler_failures", "Inputs whose handling raised (logged and dead-lettered)", "{failure}"
)

# -- results and execution -------------------------------------------------------------------

RESULTS_DIVERGED = Watched("gauge", "traco_results_diverged", "1 when this node's results differ from the chain's")
DIVERGENCES = _meter.create_counter(
    "traco_results_divergences", "{divergence}", "Sealed blocks committing to other results than this node computed"
)
NODE_EXECUTING = Watched("gauge", "traco_node_executing", "1 while this node executes blocks, 0 once it stopped")
SERVICE_HEIGHT = Watched("gauge", "traco_service_height", "Height a service executed", "{block}")
SERVICE_CPU = Watched(
    "counter",
    "traco_service_cpu",
    "CPU time a service replica spent executing blocks and encoding its outputs, and the chain's own "
    'kinds executed and committed in the validator (service="chain") (thread time; the Kafka '
    "client's sending is the process's remainder)",
    "s",
)
CONSUMER_LAG = Watched(
    "gauge", "traco_consumer_lag_heights", "Highest sealed height seen minus the height a service reached", "{block}"
)

# -- dead letters ----------------------------------------------------------------------------

DEAD_LETTERS = _meter.create_counter(
    "traco_dead_letters", "{message}", "Messages written to a dead-letter topic, by source topic and reason kind"
)

_CODE = re.compile(r"^([A-Z][A-Z_]{2,40}):")
_INVALID = re.compile(r"^invalid ([a-z][a-z ]{0,30}?):")


def reason_kind(reason: str) -> str:
    """A dead letter's free-text reason as a short, bounded label (``malformed``,
    ``invalid_block``, ``too_large``, ``results_diverge``, ``internal_error``, …)."""
    if (code := _CODE.match(reason)) is not None:
        return code.group(1).lower()
    if (invalid := _INVALID.match(reason)) is not None:
        return "invalid_" + invalid.group(1).replace(" ", "_")
    lowered = reason.lower()
    for needle, kind in (
        ("results diverge", "results_diverge"),
        ("internal error", "internal_error"),
        ("the limit is", "too_large"),
        ("no canonical json", "not_canonical"),
        ("not bytes", "not_bytes"),
    ):
        if needle in lowered:
            return kind
    return "other"


def dead_letter(source_topic: str, reason: str) -> None:
    """Count one dead letter written for a message of ``source_topic``."""
    DEAD_LETTERS.add(1, {"topic": source_topic, "reason": reason_kind(reason)})


# -- the SDK: entry points only --------------------------------------------------------------

_configure_lock = threading.Lock()
_registry: CollectorRegistry | None = None


def configure_metrics(service_name: str) -> None:
    """Install the OpenTelemetry metrics SDK with a Prometheus reader on a registry of this
    process's own. Entry points only; a second call does nothing. ``OTEL_SDK_DISABLED=true``
    leaves the API no-op (``render`` then says metrics are off)."""
    global _registry
    import os

    with _configure_lock:
        if _registry is not None or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return
        # Imported here so that library code importing this module never loads the SDK.
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry(auto_describe=True)
        # No otel_scope_* labels: every instrument here has one scope, and they would only
        # make each series longer.
        reader = PrometheusMetricReader(registry=registry, scope_info_enabled=False)
        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
        metrics.set_meter_provider(MeterProvider(resource=Resource.create(attributes), metric_readers=[reader]))
        _registry = registry


def render() -> tuple[bytes, str]:
    """This process's metrics in the Prometheus text format, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    if _registry is None:
        return b"# metrics are not configured in this process\n", CONTENT_TYPE_LATEST
    return generate_latest(_registry), CONTENT_TYPE_LATEST
