"""A traced model call for callers outside an agent loop (the judge, dream synthesis)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace


def traced_complete(model: Any, request: Any) -> Any:
    """`chat {model}` span with usage, under whatever span is current (a grading or a dream)."""
    from .agents import chat

    current = trace.get_current_span()
    run_id = (getattr(current, "attributes", None) or {}).get("orchestra.run_id", "")
    return chat(model, request, run_id=str(run_id or ""))
