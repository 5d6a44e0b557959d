"""Process logging: readable text for a person at a terminal, JSON lines for a log pipeline.

Why: ``traco up`` is read by a person, so its children log one readable line per record; in
Kubernetes logs are shipped and queried, so each record is one JSON object carrying the
``trace_id`` and ``span_id`` of the span active when it was written — a log line then leads to
its trace and back (operator's guide: Observability). ``TRACO_LOG_FORMAT`` chooses (``text`` by default, ``json`` in
the Kubernetes manifests).

How: entry points call ``configure_process(name, settings.log_format)`` (logging, tracing and
metrics) once; library code only uses ``logging.getLogger(__name__)``.

Caveats: the span is read when the record is formatted, which is when it is written (handlers
here are synchronous); a record passed to another thread's handler would lose it. Values given
as ``extra=`` appear under their own names in JSON (text shows only the message).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal

import orjson
from opentelemetry import trace

__all__ = ["JsonFormatter", "LogFormat", "TextFormatter", "configure_logging", "configure_process"]

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _trace_ids() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601 UTC), level, logger, message, trace ids when a
    span is active, the exception when there is one, and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        data: dict[str, Any] = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_trace_ids(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in data:
                data[key] = value
        return orjson.dumps(data, default=repr).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``, with ``[trace=…]`` appended while a span is active."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = _trace_ids()
        return f"{line} [trace={ids['trace_id']}]" if ids else line


def configure_logging(log_format: LogFormat = "text", level: int = logging.INFO) -> None:
    """Send this process's records to stderr in ``log_format``, replacing the root logger's
    handlers (entry points own the root logger; a CLI's ``basicConfig`` before it is undone)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def configure_process(service_name: str, log_format: LogFormat) -> None:
    """Logging, tracing and metrics of a process, as its entry point sets them up."""
    from traco.core.metrics import configure_metrics
    from traco.core.tracing import configure_tracing

    configure_logging(log_format)
    configure_tracing(service_name)
    configure_metrics(service_name)
