"""Read a run's spans back from Jaeger's query API (`/api/traces/{id}`), for dreaming.

Jaeger returns its documented JSON format (spans with typed tags, CHILD_OF /
FOLLOWS_FROM references, microsecond times); this turns it into the store's
span shape, so mining gives the same episodes. Jaeger flattens OTLP array
attributes into JSON-string tags: Orchestra's array attributes (by name,
`tracing.ARRAY_ATTRIBUTES`) are decoded back, every other string stays a string.
Tags Jaeger synthesises from OTLP fields (span kind, status, scope) are dropped.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

from .tracing import is_array_attribute

# Tags Jaeger adds when translating OTLP; they are span fields, not attributes.
SYNTHETIC_TAGS = frozenset({
    "span.kind", "otel.status_code", "otel.status_description", "otel.scope.name", "otel.scope.version",
    "otel.library.name", "otel.library.version", "w3c.tracestate", "internal.span.format",
    "otel.dropped_attributes_count", "otel.dropped_events_count", "otel.dropped_links_count",
})


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
    if t == "binary":
        return base64.b64decode(v) if isinstance(v, str) else v
    if isinstance(v, str) and is_array_attribute(tag.get("key", "")):
        try:
            decoded = json.loads(v)
        except ValueError:
            return v
        return decoded if isinstance(decoded, list) else v
    return v


def _status(tags: dict[str, Any]) -> str:
    code = str(tags.get("otel.status_code") or "").upper()
    if code in ("ERROR", "OK"):
        return code
    return "ERROR" if tags.get("error") is True else "UNSET"


def span_from_jaeger(s: dict[str, Any]) -> dict[str, Any]:
    """One Jaeger JSON span in the store's shape."""
    tags = {t["key"]: _tag_value(t) for t in s.get("tags") or []}
    status = _status(tags)
    attrs = {k: v for k, v in tags.items() if k not in SYNTHETIC_TAGS and not (k == "error" and v is True)}
    parent = next((r["spanID"] for r in s.get("references") or [] if r.get("refType") == "CHILD_OF"), None)
    start_ns = int(s["startTime"]) * 1000
    return {
        "span_id": s["spanID"].rjust(16, "0"), "trace_id": s["traceID"].rjust(32, "0"),
        "parent_id": parent.rjust(16, "0") if parent else None, "run_id": attrs.get("orchestra.run_id"),
        "name": s["operationName"], "start_ns": start_ns, "end_ns": start_ns + int(s.get("duration") or 0) * 1000,
        "status": status, "attributes": attrs,
    }


def spans_from_jaeger(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """All spans of a `/api/traces/{id}` response, ordered like the store orders them."""
    out = [span_from_jaeger(s) for tr in doc.get("data") or [] for s in tr.get("spans") or []]
    return sorted(out, key=lambda x: (x["start_ns"], x["span_id"]))


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def fetch_trace(base_url: str, trace_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """A trace's spans from Jaeger, or JaegerError (unreachable, unknown trace, bad answer)."""
    url = f"{base_url.rstrip('/')}/api/traces/{urllib.parse.quote(trace_id)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        hint = " (not flushed yet, or outside Jaeger's retention)" if e.code == 404 else ""
        raise JaegerError(_one_line(f"Jaeger at {base_url}: trace {trace_id}: HTTP {e.code} {e.reason}{hint}")) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise JaegerError(_one_line(f"Jaeger at {base_url} is unreachable: {reason}")) from None
    except ValueError as e:
        raise JaegerError(_one_line(f"Jaeger at {base_url}: trace {trace_id}: not JSON ({e})")) from None
    if not isinstance(doc, dict):
        raise JaegerError(f"Jaeger at {base_url}: trace {trace_id}: unexpected answer")
    spans = spans_from_jaeger(doc)
    if not spans:
        errors = "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in doc.get("errors") or [])
        raise JaegerError(_one_line(f"Jaeger at {base_url}: trace {trace_id} has no spans{': ' + errors if errors else ''}"))
    return spans


def jaeger_span_source(base_url: str, timeout: float = 10.0) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    """A span source for `mine`: the run's trace, read from Jaeger instead of the store."""

    def source(run: dict[str, Any]) -> list[dict[str, Any]]:
        if not run.get("trace_id"):
            raise JaegerError(f"run {run['run_id']} has no trace id")
        return fetch_trace(base_url, run["trace_id"], timeout=timeout)

    return source
