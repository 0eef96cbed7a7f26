"""A fake Jaeger query service over real HTTP on 127.0.0.1.

It serves `GET /api/traces/{traceID}` in Jaeger's documented JSON format, built
from the spans a local store holds, translated the way Jaeger translates OTLP:
typed tags, OTLP arrays as JSON-list strings, span kind / status / scope as
extra tags, the parent as the first CHILD_OF reference, microsecond times and
trace IDs without leading zeros. Unknown traces get Jaeger's 404 body.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


def jaeger_trace_id(trace_id: str) -> str:
    """Jaeger's TraceID.String(): high and low 64-bit halves, leading zeros dropped."""
    hi, lo = int(trace_id[:16], 16), int(trace_id[16:], 16)
    return f"{hi:x}{lo:016x}" if hi else f"{lo:x}"


def tag(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, (list, tuple)):
        return {"key": key, "type": "string", "value": json.dumps(list(value), separators=(",", ":"))}
    return {"key": key, "type": "string", "value": str(value)}


def to_jaeger_span(s: dict[str, Any], process_id: str = "p1") -> dict[str, Any]:
    """A store span as Jaeger's query API returns an OTLP-ingested span."""
    tags = [tag("otel.scope.name", "orchestra"), tag("otel.scope.version", "0.1.0")]
    tags += [tag(k, v) for k, v in (s.get("attributes") or {}).items()]
    if (s.get("attributes") or {}).get("gen_ai.operation.name") == "chat":
        tags.append(tag("span.kind", "client"))
    if s.get("status") in ("ERROR", "OK"):
        tags.append(tag("otel.status_code", s["status"]))
    if s.get("status") == "ERROR":
        tags.append(tag("error", True))
    tid = jaeger_trace_id(s["trace_id"])
    refs = [{"refType": "CHILD_OF", "traceID": tid, "spanID": s["parent_id"]}] if s.get("parent_id") else []
    return {
        "traceID": tid, "spanID": s["span_id"], "flags": 1, "operationName": s["name"], "references": refs,
        "startTime": s["start_ns"] // 1000, "duration": (s["end_ns"] - s["start_ns"]) // 1000, "tags": tags,
        "logs": [], "processID": process_id, "warnings": None,
    }


def trace_document(trace_id: str, spans: list[dict[str, Any]], service: str = "orchestra") -> dict[str, Any]:
    data = [{
        "traceID": jaeger_trace_id(trace_id), "spans": [to_jaeger_span(s) for s in spans],
        "processes": {"p1": {"serviceName": service, "tags": [tag("telemetry.sdk.language", "python")]}}, "warnings": None,
    }]
    return {"data": data, "total": 0, "limit": 0, "offset": 0, "errors": None}


NOT_FOUND = {"data": None, "total": 0, "limit": 0, "offset": 0, "errors": [{"code": 404, "msg": "trace not found"}]}


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        prefix = "/api/traces/"
        spans = self.server.lookup(self.path[len(prefix):].lower().rjust(32, "0")) if self.path.startswith(prefix) else []
        if not spans:
            self._send(404, NOT_FOUND)
            return
        self._send(200, trace_document(spans[0]["trace_id"], spans))

    def _send(self, status: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    lookup: Callable[[str], list[dict[str, Any]]]
    paths: list[str]


class FakeJaeger:
    """Serves the traces `lookup(trace_id)` returns (e.g. a Store's spans for that trace)."""

    def __init__(self, lookup: Callable[[str], list[dict[str, Any]]]) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.lookup, self._server.paths = lookup, []
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "FakeJaeger":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def paths(self) -> list[str]:
        return list(self._server.paths)


def store_lookup(store: Any) -> Callable[[str], list[dict[str, Any]]]:
    """Spans of one trace from an Orchestra store, in the store's shape."""

    def lookup(trace_id: str) -> list[dict[str, Any]]:
        rows = store.db.query("SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ns, span_id", [trace_id])
        return [{**r, "attributes": json.loads(r["attributes"] or "{}")} for r in rows]

    return lookup
