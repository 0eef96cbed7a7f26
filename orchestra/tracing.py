"""OpenTelemetry set-up: one TracerProvider per process, GenAI attribute names.

Spans are collected in memory per trace and handed to whoever owns the run
(the runner writes them to the SQLite store in one transaction; a worker
process returns them to the driver). When the standard OTEL_EXPORTER_OTLP_*
variables are set they also go over OTLP (HTTP/protobuf or gRPC), redacted,
in the background; a dead or slow endpoint costs a run at most one bounded
flush. Semantic conventions followed: OpenTelemetry GenAI v1.41.0
(Development); see docs/observability.md.
"""

from __future__ import annotations

import atexit
import fnmatch
import functools
import json
import logging
import threading
from importlib import metadata
from typing import Any, Iterable

from opentelemetry import trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from .otlp import OtlpProcessor, export_timeout_s, make_exporter, otlp_configured, truthy
from .redact import redact

SEMCONV_VERSION = "1.41.0"
SCHEMA_URL = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
TRACER_NAME = "orchestra"
DEFAULT_SERVICE_NAME = "orchestra"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

# GenAI semantic-convention attribute names.
OP = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
AGENT_NAME = "gen_ai.agent.name"
AGENT_DESCRIPTION = "gen_ai.agent.description"
WORKFLOW_NAME = "gen_ai.workflow.name"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_DESCRIPTION = "gen_ai.tool.description"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
CONVERSATION_ID = "gen_ai.conversation.id"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_CREATION_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
ERROR_TYPE = "error.type"
# Opt-in content attributes (only with capture_content()).
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"

# Attributes Orchestra records as OTLP arrays (fnmatch patterns); every other
# JSON-looking string attribute is a JSON string and stays one when read back.
ARRAY_ATTRIBUTES: tuple[str, ...] = (FINISH_REASONS, "gen_ai.request.stop_sequences", "*.lesson_ids", "*.run_ids")

_log = logging.getLogger(__name__)


def is_array_attribute(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in ARRAY_ATTRIBUTES)


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


_init_lock = threading.RLock()
_collector = _Collector()
_extra: list[SpanProcessor] = []
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None
_otlp: OtlpProcessor | None = None


@functools.lru_cache(maxsize=1)
def _version() -> str:
    try:
        return metadata.version("orchestra")
    except metadata.PackageNotFoundError:
        return "0"


def resource() -> Resource:
    """service.name defaults to "orchestra"; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override."""
    detected = dict(OTELResourceDetector().detect().attributes)
    return Resource.create({"service.name": DEFAULT_SERVICE_NAME, "service.version": _version(), **detected})


def setup(force: bool = False) -> TracerProvider:
    """Create the process's TracerProvider once (again if `force`, after env changes), keeping added processors."""
    global _provider, _tracer, _otlp
    with _init_lock:
        if _provider is not None and not force:
            return _provider
        old = _otlp
        provider = TracerProvider(resource=resource(), sampler=ALWAYS_ON, shutdown_on_exit=False)
        provider._disabled = False  # OTEL_SDK_DISABLED stops OTLP export only; the local store always records
        provider.add_span_processor(_collector)
        for p in _extra:
            provider.add_span_processor(p)
        _otlp = None
        if otlp_configured():
            try:
                _otlp = OtlpProcessor(make_exporter())
                provider.add_span_processor(_otlp)
            except Exception as e:  # a bad OTLP config must not stop runs; the store still records
                _log.warning("OTLP export disabled: %s", e)
        _provider, _tracer = provider, None
    if old is not None:
        old.shutdown(timeout_s=2.0)
    return provider


def shutdown_provider(timeout_s: float = 2.0) -> None:
    """Stop OTLP export (bounded); processors added with add_processor stay alive for the next setup."""
    global _provider, _tracer, _otlp
    with _init_lock:
        old, _provider, _tracer, _otlp = _otlp, None, None, None
    if old is not None:
        old.shutdown(timeout_s)


atexit.register(lambda: _otlp.shutdown(min(export_timeout_s() + 1.0, 5.0)) if _otlp is not None else None)


def add_processor(processor: SpanProcessor) -> None:
    """Plug in another processor (an in-memory exporter in tests, a custom sink); it survives setup(force=True)."""
    with _init_lock:
        _extra.append(processor)
        if _provider is not None:
            _provider.add_span_processor(processor)


def tracer() -> trace.Tracer:
    global _tracer
    t = _tracer
    if t is None:
        with _init_lock:
            t = _tracer = setup().get_tracer(TRACER_NAME, _version(), schema_url=SCHEMA_URL)
    return t


def drain(trace_id: str) -> list[dict[str, Any]]:
    return _collector.drain(trace_id)


def flush(timeout_s: float = 5.0) -> dict[str, int]:
    """Bounded OTLP flush; counts since setup: exported, failed, dropped (queue full), pending, store_dropped."""
    stats = {"exported": 0, "failed": 0, "dropped": 0, "pending": 0, "store_dropped": _collector.dropped}
    p = _otlp
    if p is not None:
        p.flush(timeout_s)
        stats.update(p.stats())
    return stats


def capture_content() -> bool:
    """Message and tool-call content on spans is opt-in (GenAI semconv); off unless the env switch is "true"."""
    return truthy(CAPTURE_CONTENT_ENV)


_FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "tool_use": "tool_call", "max_tokens": "length", "refusal": "content_filter"}


def _parts(blocks: Iterable[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for b in blocks:
        kind = getattr(b, "type", None)
        if kind == "text":
            out.append({"type": "text", "content": b.text})
        elif kind == "tool_use":
            out.append({"type": "tool_call", "id": b.id, "name": b.name, "arguments": b.input})
        elif kind == "tool_result":
            out.append({"type": "tool_call_response", "id": b.tool_use_id, "response": b.content})
        else:
            out.append({"type": str(kind)})
    return out


def _role(message: Any) -> str:
    blocks = list(message.content)
    return "tool" if blocks and all(getattr(b, "type", None) == "tool_result" for b in blocks) else message.role


def chat_content_attributes(request: Any, response: Any = None) -> dict[str, str]:
    """Opt-in system instructions, input and output messages of a `chat` span (GenAI JSON schemas, redacted)."""
    if not capture_content():
        return {}
    attrs = {
        SYSTEM_INSTRUCTIONS: json_attr([{"type": "text", "content": s.text} for s in request.system]),
        INPUT_MESSAGES: json_attr([{"role": _role(m), "parts": _parts(m.content)} for m in request.messages]),
    }
    if response is not None:
        finish = _FINISH_REASONS.get(response.stop_reason, response.stop_reason)
        attrs[OUTPUT_MESSAGES] = json_attr([{"role": "assistant", "parts": _parts(response.content), "finish_reason": finish}])
    return attrs


def tool_content_attributes(arguments: Any, result: Any = None) -> dict[str, str]:
    """Opt-in `gen_ai.tool.call.arguments` / `.result` of an `execute_tool` span (redacted)."""
    if not capture_content():
        return {}
    attrs = {TOOL_CALL_ARGUMENTS: json_attr(arguments)}
    if result is not None:
        attrs[TOOL_CALL_RESULT] = json_attr(_maybe_json(result))
    return attrs


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


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


def span_tree(spans: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nest spans under their parents (for `traces show`)."""
    spans = sorted(spans, key=lambda s: (s["start_ns"], s["span_id"]))
    by_id = {s["span_id"]: {**s, "children": []} for s in spans}
    roots = []
    for s in by_id.values():
        parent = by_id.get(s.get("parent_id") or "")
        (parent["children"] if parent else roots).append(s)
    return roots
