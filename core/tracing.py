"""W3C trace context across Kafka hops, and the one place the OpenTelemetry SDK is configured.

Why: a transaction's trace must follow it from submission through consensus and execution to
its receipt (operator's guide: Observability), and every hop between those services is a Kafka message. The
producer side writes the current span's context into the message headers as W3C
``traceparent`` (and ``tracestate`` when there is one); the consumer side reads it back and
starts its span as a child of that context.

How::

    headers = inject_headers({"content-type": b"application/json"})   # producer
    ...
    ctx = extract_context(message.headers)                              # consumer
    with tracer(__name__).start_as_current_span("apply block", context=ctx):
        ...

``KafkaEventBus`` and ``MemoryEventBus`` already call :func:`inject_headers` on every
publish, and ``KafkaEventBus`` records a CONSUMER span (:func:`received`) for every traced
message it reads, a child of the producer's span. Work done later for a message continues its
trace with :func:`attached` (one message) or :func:`block_span` (a block of many transactions:
parented to the first traced one, linked to the others). A transaction's ``traceparent`` is
kept from intake (the mempool) to its receipt: while a block executes, :func:`carrying_tx_traces`
holds them and :func:`tx_trace_headers` puts a transaction's own on its receipt.

Only entry points (``traco up``, ``traco serve <svc>``) call :func:`configure_tracing`.
Library code only uses the OpenTelemetry *API*: without a configured SDK, spans are
non-recording, but a context that arrived in a message is still passed on unchanged, so a
trace survives services that do not record it.

Caveats:

* Only the W3C trace-context headers are written, whatever ``OTEL_PROPAGATORS`` says. The
  wire format is part of the topic contract (architecture: Topics), and W3C *baggage* is deliberately
  not propagated: topics are read by other consortium members, and baggage is free-form data
  that must not leak to them by accident.
* A malformed or non-ASCII ``traceparent`` from a foreign producer is ignored (the consumer
  starts a new trace); it never stops a consumer.
* Header names are matched case-insensitively on extraction, exactly on injection.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from traco.core.ports import BusMessage

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "attached",
    "block_span",
    "carrying_tx_traces",
    "configure_tracing",
    "extract_context",
    "inject_headers",
    "received",
    "tracer",
    "tx_trace_headers",
]

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_TRACE_HEADERS = frozenset((TRACEPARENT, TRACESTATE))

_PROPAGATOR = TraceContextTextMapPropagator()

HeadersLike = Mapping[str, bytes] | Iterable[tuple[str, bytes]]
"""A header mapping, or the ``(name, value)`` pairs of ``BusMessage.headers``."""


def inject_headers(headers: Mapping[str, bytes] | None = None, context: Context | None = None) -> dict[str, bytes]:
    """Return a copy of ``headers`` with ``traceparent``/``tracestate`` of the current span.

    ``context`` overrides the current context. If ``headers`` already carries a
    ``traceparent``, it is kept as it is (a message being forwarded keeps its trace). When
    there is no valid span (no SDK, or outside any span) nothing is added.
    """
    out = dict(headers) if headers else {}
    if TRACEPARENT in out:
        return out
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    for name, value in carrier.items():
        # W3C trace-context values are printable ASCII by definition.
        out[name] = value.encode("ascii")
    return out


def extract_context(headers: HeadersLike) -> Context:
    """The OpenTelemetry context carried by a message's headers (empty if none or invalid).

    Accepts a mapping or ``BusMessage.headers`` pairs. The result is meant as the ``context=``
    (parent) of the consumer's span; it never inherits the consumer's current context.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    carrier: dict[str, str] = {}
    for name, value in pairs:
        lowered = name.lower()
        # Kafka allows null header values; a foreign producer may send anything.
        if lowered not in _TRACE_HEADERS or lowered in carrier or not isinstance(value, bytes):
            continue
        try:
            carrier[lowered] = value.decode("ascii")
        except UnicodeDecodeError:
            continue  # garbage: start a new trace rather than fail
    return _PROPAGATOR.extract(carrier, context=Context())


def tracer(name: str) -> trace.Tracer:
    """The tracer for module ``name`` (use ``tracer(__name__)``); no-op until configured."""
    return trace.get_tracer(name)


_own_tracer = tracer(__name__)
_recording = False  # spans leave the process (an exporter is configured): consumer spans are worth creating
MAX_LINKS = 64
"""A block span links to at most this many transactions' traces besides its parent's."""


def received(messages: Iterable[BusMessage]) -> None:
    """Record the receipt of each traced message as a CONSUMER span, a child of the span that
    produced it (so the trace shows every process a message reached, and when). The spans end at
    once; the message's own headers are left as they were, so whatever is done with it later
    (a receipt, a dead letter) still carries the producer's context. Nothing is done unless spans
    are exported (OTLP or console): reading stays as cheap as it was."""
    if not _recording:
        return
    for message in messages:
        parent = extract_context(message.headers)
        if not trace.get_current_span(parent).get_span_context().is_valid:
            continue
        _own_tracer.start_span(
            f"receive {message.topic}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "receive",
                "messaging.destination.name": message.topic,
                "messaging.destination.partition.id": str(message.partition),
                "messaging.kafka.offset": message.offset,
            },
        ).end()


@contextlib.contextmanager
def attached(headers: HeadersLike) -> Iterator[None]:
    """Make the trace a message arrived with the current one while handling it (no-op without
    a valid ``traceparent``)."""
    parent = extract_context(headers)
    if not trace.get_current_span(parent).get_span_context().is_valid:
        yield
        return
    token = otel_context.attach(parent)
    try:
        yield
    finally:
        otel_context.detach(token)


def _span_contexts(traceparents: Iterable[bytes]) -> list[trace.SpanContext]:
    out = []
    for value in traceparents:
        found = trace.get_current_span(extract_context([(TRACEPARENT, value)])).get_span_context()
        if found.is_valid:
            out.append(found)
    return out


def block_span(
    name: str, traceparents: Sequence[bytes], attributes: Mapping[str, AttributeValue] | None = None
) -> contextlib.AbstractContextManager[Span]:
    """The current span for work on a block of transactions: a child of the first transaction's
    trace (so a lone transaction's trace runs straight through it), linked to the others'
    (at most ``MAX_LINKS``); without any, a child of the current span."""
    contexts = _span_contexts(traceparents)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(contexts[0])) if contexts else None
    links = [Link(c) for c in contexts[1 : MAX_LINKS + 1]]
    return _own_tracer.start_as_current_span(name, context=parent, links=links, attributes=attributes)


_tx_traces: ContextVar[Mapping[str, bytes]] = ContextVar("traco_tx_traces", default={})  # noqa: B039 (never mutated)


@contextlib.contextmanager
def carrying_tx_traces(traces: Mapping[str, bytes]) -> Iterator[None]:
    """While a block executes: each transaction's ``traceparent`` from intake, by ``tx_id``."""
    token = _tx_traces.set(traces)
    try:
        yield
    finally:
        _tx_traces.reset(token)


def tx_trace_headers(tx_id: str) -> dict[str, bytes]:
    """Headers for ``tx_id``'s receipt: the ``traceparent`` it was submitted with, when the block
    being executed carries it (else empty: the current span's context is injected instead)."""
    found = _tx_traces.get().get(tx_id)
    return {TRACEPARENT: found} if found else {}


_configure_lock = threading.Lock()
_configured_as: str | None = None


def configure_tracing(service_name: str) -> None:
    """Install the OpenTelemetry SDK for this process. Entry points only; idempotent.

    * The resource carries ``service.name`` (``OTEL_SERVICE_NAME`` wins if set, so operators
      can rename pods) plus whatever ``OTEL_RESOURCE_ATTRIBUTES`` adds.
    * ``TRACO_OTEL_CONSOLE=1`` prints finished spans to stdout (for debugging).
    * If ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set and an OTLP
      exporter package is installed, spans are exported there; ``OTEL_EXPORTER_OTLP_PROTOCOL``
      chooses ``grpc`` or ``http/protobuf`` (the default). The HTTP exporter comes with the
      optional extra ``otlp`` (``pip install 'traco[otlp]'``); if no exporter is importable a
      warning is logged and spans are recorded but not exported.
    * ``OTEL_SDK_DISABLED=true`` leaves the API no-op.

    A second call in the same process does nothing (OpenTelemetry allows one global provider).
    """
    global _configured_as, _recording
    with _configure_lock:
        if _configured_as is not None:
            if _configured_as != service_name:
                log.warning(
                    "tracing already configured as %r; ignoring configure_tracing(%r)",
                    _configured_as,
                    service_name,
                )
            return
        _configured_as = service_name
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return

        # Imported here so that library code importing this module never loads the SDK.
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
        provider = TracerProvider(resource=Resource.create(attributes))
        exporting = False
        if os.environ.get("TRACO_OTEL_CONSOLE", "").strip() == "1":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
            exporting = True
        otlp = _otlp_exporter()
        if otlp is not None:
            provider.add_span_processor(BatchSpanProcessor(otlp))
            exporting = True
        trace.set_tracer_provider(provider)
        _recording = exporting


def _otlp_exporter() -> SpanExporter | None:
    """An OTLP span exporter if an endpoint is configured and a package is installed."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        return None
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip()
    modules = {
        "grpc": ["opentelemetry.exporter.otlp.proto.grpc.trace_exporter"],
        "http/protobuf": ["opentelemetry.exporter.otlp.proto.http.trace_exporter"],
        # Unset: the spec's default transport first, then whichever is installed.
        "": [
            "opentelemetry.exporter.otlp.proto.http.trace_exporter",
            "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        ],
    }.get(protocol)
    if modules is None:
        log.warning("unsupported OTEL_EXPORTER_OTLP_PROTOCOL %r; spans not exported", protocol)
        return None
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        exporter: SpanExporter = module.OTLPSpanExporter()
        return exporter
    log.warning(
        "OTLP endpoint is set but no OTLP exporter package is installed (tried %s); "
        "install the 'otlp' extra (pip install 'traco[otlp]') to export spans",
        ", ".join(modules),
    )
    return None
