"""Read a run's spans back from Jaeger's query API (`/api/traces/{id}`), for dreaming.

Jaeger returns its documented JSON format (spans with tags and references);
this turns it into the store's span shape, so mining gives the same episodes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Callable


class JaegerError(Exception):
    """The Jaeger query API could not give a trace; one line for the CLI."""


def _tag_value(tag: dict[str, Any]) -> Any:
    v = tag.get("value")
    t = tag.get("type", "string")
    if t == "int64":
        return int(v)
    if t == "float64":
        return float(v)
    if t == "bool":
        return v if isinstance(v, bool) else str(v).lower() == "true"
    if isinstance(v, str) and v.startswith("[") and v.endswith("]"):
        try:
            return json.loads(v)  # OTLP array attributes arrive JSON-encoded
        except ValueError:
            return v
    return v


def spans_from_jaeger(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for tr in doc.get("data", []):
        for s in tr.get("spans", []):
            attrs = {t["key"]: _tag_value(t) for t in s.get("tags", [])}
            parent = next((r["spanID"] for r in s.get("references", []) if r.get("refType") == "CHILD_OF"), None)
            status = "ERROR" if attrs.get("otel.status_code") == "ERROR" or attrs.get("error") is True else "UNSET"
            start_ns = int(s["startTime"]) * 1000
            out.append({
                "span_id": s["spanID"].rjust(16, "0"), "trace_id": s["traceID"].rjust(32, "0"),
                "parent_id": parent.rjust(16, "0") if parent else None, "run_id": attrs.get("orchestra.run_id"),
                "name": s["operationName"], "start_ns": start_ns, "end_ns": start_ns + int(s.get("duration", 0)) * 1000,
                "status": status, "attributes": attrs,
            })
    return sorted(out, key=lambda x: (x["start_ns"], x["span_id"]))


def fetch_trace(base_url: str, trace_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    url = f"{base_url.rstrip('/')}/api/traces/{trace_id}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return spans_from_jaeger(json.loads(resp.read()))
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise JaegerError(f"{url}: {e}") from None


def jaeger_span_source(base_url: str) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    """A span source for `mine`: the run's trace, read from Jaeger instead of the store."""

    def source(run: dict[str, Any]) -> list[dict[str, Any]]:
        if not run.get("trace_id"):
            raise JaegerError(f"run {run['run_id']} has no trace id")
        return fetch_trace(base_url, run["trace_id"])

    return source
