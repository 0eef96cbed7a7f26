"""OTLP export: a redacting, counting exporter and a bounded background batch processor.

Configured only by the standard variables (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT,
_PROTOCOL, _HEADERS, _TIMEOUT; OTEL_SDK_DISABLED). The stock exporters resolve
endpoint and headers themselves: for HTTP, OTEL_EXPORTER_OTLP_ENDPOINT gets
`/v1/traces` appended and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from .redact import redact, redact_text

DEFAULT_EXPORT_TIMEOUT_S = 5.0
MAX_EXPORT_TIMEOUT_S = 10.0
MAX_QUEUE = 8192

_log = logging.getLogger(__name__)


def truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def otlp_configured() -> bool:
    """OTLP export is on when an OTLP endpoint is set, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none."""
    if truthy("OTEL_SDK_DISABLED") or os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def otlp_protocol() -> str:
    p = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    if p not in ("grpc", "http/protobuf"):
        _log.warning("OTLP protocol %r is not supported; using http/protobuf", p)
        p = "http/protobuf"
    return p


def export_timeout_s() -> float:
    """Per-export timeout: OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT in seconds (as the Python exporters read it), capped."""
    raw = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        value = float(raw) if raw else DEFAULT_EXPORT_TIMEOUT_S
    except ValueError:
        value = DEFAULT_EXPORT_TIMEOUT_S
    return min(max(value, 0.1), MAX_EXPORT_TIMEOUT_S)


def make_exporter() -> SpanExporter:
    """The stock exporters read endpoint (TRACES_ENDPOINT as is, else ENDPOINT + /v1/traces for HTTP) and headers from env."""
    if otlp_protocol() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(timeout=export_timeout_s())
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(timeout=export_timeout_s())


def _redacted(span: ReadableSpan) -> ReadableSpan:
    """A copy of a finished span with secrets removed from name, attributes, events and status."""
    status = span.status
    if status.description:
        status = Status(status.status_code, redact_text(status.description))
    events = [Event(e.name, redact(dict(e.attributes or {})), e.timestamp) for e in span.events]
    return ReadableSpan(
        name=redact_text(span.name), context=span.context, parent=span.parent, resource=span.resource,
        attributes=redact(dict(span.attributes or {})), events=events, links=span.links, kind=span.kind,
        status=status, start_time=span.start_time, end_time=span.end_time, instrumentation_scope=span.instrumentation_scope,
    )


class OtlpExport(SpanExporter):
    """Redacts spans, hands them to the OTLP exporter, counts what left the process and what failed."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.exported = 0
        self.failed = 0
        self.healthy = True
        self.closed = False
        self._inner_down = False
        self.done = threading.Condition()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        ok = False
        if not self.closed:
            try:
                ok = self.inner.export([_redacted(s) for s in spans]) == SpanExportResult.SUCCESS
            except Exception:  # an exporter bug must never reach a run
                _log.warning("OTLP export raised", exc_info=True)
        with self.done:
            if ok:
                self.exported += len(spans)
            else:
                self.failed += len(spans)
            self.healthy = ok
            self.done.notify_all()
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Fail further exports fast and abort the inner exporter's retries."""
        self.closed = True
        if not self._inner_down:
            self._inner_down = True
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class OtlpProcessor(SpanProcessor):
    """Background OTLP batching with a bounded queue, bounded flush and counts (the SDK's force_flush ignores its timeout)."""

    def __init__(self, inner: SpanExporter, max_queue: int = MAX_QUEUE) -> None:
        self.export = OtlpExport(inner)
        self.batch = BatchSpanProcessor(self.export, max_queue_size=max_queue, schedule_delay_millis=500, max_export_batch_size=512)
        self.max_queue = max_queue
        self.emitted = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._flusher: threading.Thread | None = None

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if not (span.context and span.context.trace_flags.sampled):
            return
        with self._lock:
            if self._pid != os.getpid():  # forked: the batch processor emptied its queue
                self._pid, self.emitted, self.dropped = os.getpid(), 0, 0
                self.export.exported = self.export.failed = 0
            if self.emitted - self.export.exported - self.export.failed >= self.max_queue:
                self.dropped += 1
                return
            self.emitted += 1
        self.batch.on_end(span)

    def stats(self) -> dict[str, int]:
        e = self.export
        return {"exported": e.exported, "failed": e.failed, "dropped": self.dropped, "pending": max(0, self.emitted - e.exported - e.failed)}

    def _kick(self) -> None:
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(target=self.batch.force_flush, name="orchestra-otlp-flush", daemon=True)
            self._flusher.start()

    def flush(self, timeout_s: float) -> None:
        """Start exporting everything queued; wait at most `timeout_s`, and not at all while exports are failing."""
        target = self.emitted
        if target - self.export.exported - self.export.failed <= 0:
            return
        self._kick()
        if not self.export.healthy:
            return
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self.export.done:
            while self.export.exported + self.export.failed < target and self.export.healthy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.export.done.wait(remaining)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flush(timeout_millis / 1000.0)
        return self.stats()["pending"] == 0

    def shutdown(self, timeout_s: float = 2.0) -> None:
        """Flush (bounded), then stop the worker without waiting on a stuck export."""
        self.flush(timeout_s)

        def stop() -> None:
            self.export.shutdown()
            self.batch.shutdown()

        t = threading.Thread(target=stop, name="orchestra-otlp-shutdown", daemon=True)
        t.start()
        t.join(timeout_s)
