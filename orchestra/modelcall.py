"""A traced, metered model call for callers outside an agent loop (the judge, dream synthesis)."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from opentelemetry import trace

from .models.base import Usage


@dataclass
class Meter:
    """Tokens of the model calls made through `traced_complete` while it is open (retries included)."""

    usage: Usage = field(default_factory=Usage)
    calls: int = 0


_meters: contextvars.ContextVar[tuple[Meter, ...]] = contextvars.ContextVar("orchestra_meters", default=())


@contextmanager
def metered() -> Iterator[Meter]:
    """Count what grading or a dream spends on models, so it lands in the run's usage or the dream's cost."""
    meter = Meter()
    token = _meters.set(_meters.get() + (meter,))
    try:
        yield meter
    finally:
        _meters.reset(token)


def traced_complete(model: Any, request: Any) -> Any:
    """`chat {model}` span with usage, under whatever span is current (a grading or a dream); every open meter counts it."""
    from .agents import chat

    current = trace.get_current_span()
    run_id = (getattr(current, "attributes", None) or {}).get("orchestra.run_id", "")
    response = chat(model, request, run_id=str(run_id or ""))
    for meter in _meters.get():
        meter.usage = meter.usage + response.usage
        meter.calls += 1
    return response
