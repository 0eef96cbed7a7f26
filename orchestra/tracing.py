"""OpenTelemetry set-up: one TracerProvider per process, GenAI attribute names.

Spans are collected in memory per trace and handed to whoever owns the run
(the runner writes them to the SQLite store in one transaction; a worker
process returns them to the driver). When the standard OTEL_EXPORTER_OTLP_*
variables are set they also go over OTLP in the background.
Semantic conventions followed: OpenTelemetry GenAI semconv v1.37 (Development).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Iterable

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .redact import redact

SEMCONV_VERSION = "1.37.0"
TRACER_NAME = "orchestra"

# GenAI semantic-convention attribute names.
OP = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
AGENT_NAME = "gen_ai.agent.name"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
CONVERSATION_ID = "gen_ai.conversation.id"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"


class _Collector(SpanProcessor):
    """Keeps finished spans per trace until their owner drains them."""

    def __init__(self, max_spans: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._spans: dict[str, list[dict[str, Any]]] = {}
        self._count = 0
        self.max_spans = max_spans
        self.dropped = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        row = span_to_dict(span)
        with self._lock:
            if self._count >= self.max_spans:
                self.dropped += 1
                return
            self._spans.setdefault(row["trace_id"], []).append(row)
            self._count += 1

    def drain(self, trace_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._spans.pop(trace_id, [])
            self._count -= len(rows)
            return rows

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _CountingExporter(SpanExporter):
    """Wraps the OTLP exporter to count what failed to leave the process."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.exported = 0
        self.failed = 0

    def export(self, spans: Any) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result == SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_provider: TracerProvider | None = None
_collector: _Collector | None = None
_otlp: _CountingExporter | None = None
_otlp_processor: BatchSpanProcessor | None = None
_init_lock = threading.Lock()


def otlp_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _make_otlp_exporter() -> SpanExporter:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    timeout = float(os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT", "5000")) / 1000.0
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(timeout=min(timeout, 5.0))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(timeout=min(timeout, 5.0))


def setup(force: bool = False) -> TracerProvider:
    """Create the process's TracerProvider once (again if `force`, for tests/env changes)."""
    global _provider, _collector, _otlp, _otlp_processor
    with _init_lock:
        if _provider is not None and not force:
            return _provider
        if _provider is not None:
            shutdown_provider()
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "orchestra")})
        provider = TracerProvider(resource=resource)
        collector = _Collector()
        provider.add_span_processor(collector)
        if otlp_configured():
            _otlp = _CountingExporter(_make_otlp_exporter())
            _otlp_processor = BatchSpanProcessor(_otlp, max_queue_size=8192, schedule_delay_millis=500, export_timeout_millis=5000)
            provider.add_span_processor(_otlp_processor)
        _provider, _collector = provider, collector
        return provider


def shutdown_provider() -> None:
    global _provider, _otlp, _otlp_processor
    if _otlp_processor is not None:
        _otlp_processor.force_flush(5000)
    if _provider is not None:
        _provider.shutdown()
    _provider, _otlp, _otlp_processor = None, None, None


def add_processor(processor: SpanProcessor) -> None:
    """Plug in another processor (an in-memory exporter in tests, a custom sink)."""
    setup().add_span_processor(processor)


def tracer() -> trace.Tracer:
    return setup().get_tracer(TRACER_NAME, schema_url=f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}")


def drain(trace_id: str) -> list[dict[str, Any]]:
    setup()
    assert _collector is not None
    return _collector.drain(trace_id)


def flush(timeout_s: float = 5.0) -> dict[str, int]:
    """Flush OTLP export (bounded) and report what was exported, failed and dropped."""
    stats = {"exported": 0, "failed": 0, "dropped": _collector.dropped if _collector else 0}
    if _otlp_processor is not None and _otlp is not None:
        _otlp_processor.force_flush(int(timeout_s * 1000))
        stats["exported"], stats["failed"] = _otlp.exported, _otlp.failed
    return stats


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    attrs = redact(dict(span.attributes or {}))
    return {
        "span_id": format(ctx.span_id, "016x"),
        "trace_id": format(ctx.trace_id, "032x"),
        "parent_id": format(parent.span_id, "016x") if parent is not None else None,
        "run_id": attrs.get("orchestra.run_id"),
        "name": span.name,
        "start_ns": span.start_time or 0,
        "end_ns": span.end_time or 0,
        "status": span.status.status_code.name,
        "attributes": attrs,
    }


def json_attr(value: Any) -> str:
    """Typed results and verdicts go on spans as JSON strings, redacted."""
    return json.dumps(redact(value), default=str, separators=(",", ":"), sort_keys=True)


def hex_trace_id(span: trace.Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def clean_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    """Drop None values; OTel rejects them."""
    return {k: v for k, v in attrs.items() if v is not None}


def span_tree(spans: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nest spans under their parents (for `traces show`)."""
    spans = sorted(spans, key=lambda s: (s["start_ns"], s["span_id"]))
    by_id = {s["span_id"]: {**s, "children": []} for s in spans}
    roots = []
    for s in by_id.values():
        parent = by_id.get(s.get("parent_id") or "")
        (parent["children"] if parent else roots).append(s)
    return roots
