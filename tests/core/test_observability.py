"""Logs, probes, dead-letter reason kinds and trace helpers, without a broker.

The end-to-end checks (real processes, real broker, an OTLP receiver) are in
``tests/integration/test_observability.py``; these pin the small rules they rely on.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from traco.core import tracing
from traco.core.logs import JsonFormatter, TextFormatter
from traco.core.metrics import reason_kind
from traco.core.probes import Health, Probes

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def sdk_tracer() -> Iterator[trace.Tracer]:
    """A recording tracer of a provider of this test's own (the global one is left alone)."""
    provider = TracerProvider()
    yield provider.get_tracer("test")
    provider.shutdown()


def record(logger: logging.Logger, formatter: logging.Formatter, message: str, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    try:
        logger.warning(message, extra=extra)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().strip()


def test_json_logs_carry_the_active_spans_trace_and_span_id(sdk_tracer: trace.Tracer) -> None:
    logger = logging.getLogger("traco.test.json")
    outside = json.loads(record(logger, JsonFormatter(), "idle"))
    assert "trace_id" not in outside and outside["message"] == "idle" and outside["level"] == "WARNING"
    assert outside["time"].endswith("Z")
    with sdk_tracer.start_as_current_span("work") as span:
        line = json.loads(record(logger, JsonFormatter(), "sealed %d", height=7))
        context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["height"] == 7  # extra= fields are kept


def test_text_logs_name_the_trace_only_inside_a_span(sdk_tracer: trace.Tracer) -> None:
    logger = logging.getLogger("traco.test.text")
    assert "[trace=" not in record(logger, TextFormatter(), "idle")
    with sdk_tracer.start_as_current_span("work") as span:
        line = record(logger, TextFormatter(), "busy")
    assert line.endswith(f"busy [trace={format(span.get_span_context().trace_id, '032x')}]")


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("MALFORMED: not JSON", "malformed"),
        ("INVALID_SIGNATURE: bad", "invalid_signature"),
        ("invalid block: header: field required", "invalid_block"),
        ("invalid consensus message: kind: bad", "invalid_consensus_message"),
        ("block is 40000000 bytes; the limit is 33554432", "too_large"),
        ("results diverge: block 5, sealed by the validators, ...", "results_diverge"),
        ("internal error handling block: KeyError: 'x'", "internal_error"),
        ("tx: no canonical JSON form: integer beyond 2^53", "not_canonical"),
        ("something nobody foresaw " + "x" * 500, "other"),
    ],
)
def test_dead_letter_reasons_become_few_label_values(reason: str, kind: str) -> None:
    assert reason_kind(reason) == kind


async def call(app: FastAPI, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
        return await client.get(path)


async def test_readyz_names_every_height_that_lags_and_every_problem() -> None:
    health = Health(10, {"consensus": 10, "party": 9, "doc": 7})
    app = FastAPI()
    probes = Probes(lambda: health, ready_lag_heights=2)
    app.include_router(probes.router())
    answer = await call(app, "/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["ready"] is False and body["highest_seen"] == 10
    assert len(body["reasons"]) == 1 and body["reasons"][0].startswith("doc is at height 7, 3 behind")

    health = Health(10, {"consensus": 10, "doc": 8}, ["node n0 stopped executing: diverged"])
    answer = await call(app, "/readyz")
    assert answer.status_code == 503 and answer.json()["reasons"] == ["node n0 stopped executing: diverged"]

    health = Health(10, {"consensus": 10, "doc": 8})  # 2 behind is within the allowed lag
    answer = await call(app, "/readyz")
    assert answer.status_code == 200 and answer.json()["ready"] is True


async def test_livez_fails_once_a_watched_task_has_ended() -> None:
    app = FastAPI()
    probes = Probes(lambda: Health(0, {}))
    app.include_router(probes.router())

    async def fails() -> None:
        raise RuntimeError("reader gave up")

    forever = asyncio.create_task(asyncio.sleep(3600), name="validator")
    doomed = asyncio.create_task(fails(), name="blocks reader")
    probes.watch([forever])
    assert (await call(app, "/livez")).status_code == 200
    probes.watch([doomed])
    await asyncio.sleep(0)
    answer = await call(app, "/livez")
    assert answer.status_code == 503
    assert answer.json()["reasons"] == ["task blocks reader failed: RuntimeError('reader gave up')"]
    forever.cancel()
    metrics = await call(app, "/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")


def test_a_block_span_continues_the_first_transactions_trace_and_links_the_others(
    sdk_tracer: trace.Tracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracing, "_own_tracer", sdk_tracer)
    other = b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"
    with tracing.block_span("commit 5", [TRACEPARENT, b"garbage", other]) as span:
        context = span.get_span_context()
        assert format(context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"  # type: ignore[attr-defined]
        assert [format(link.context.trace_id, "032x") for link in span.links] == ["1" * 32]  # type: ignore[attr-defined]


def test_receipts_carry_their_own_transactions_traceparent_while_a_block_executes() -> None:
    assert tracing.tx_trace_headers("a") == {}
    with tracing.carrying_tx_traces({"a": TRACEPARENT}):
        assert tracing.tx_trace_headers("a") == {"traceparent": TRACEPARENT}
        assert tracing.tx_trace_headers("b") == {}
    assert tracing.tx_trace_headers("a") == {}
