"""Shared fixtures: no real model requests, an in-memory span exporter, a temp store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orchestra import tracing
from orchestra.models.base import allow_model_requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

allow_model_requests(False)

_exporter = InMemorySpanExporter()
tracing.add_processor(SimpleSpanProcessor(_exporter))


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Finished spans of this test only."""
    _exporter.clear()
    yield _exporter
    _exporter.clear()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "orchestra.db"


@pytest.fixture
def tiny():
    from orchestra.loader import load_workflow

    return load_workflow(str(ROOT / "tests/graphs/tiny.py"))


def tree(finished) -> list[tuple[str, str | None]]:
    """(span name, parent span name) pairs in start order: a whole span tree to assert on."""
    by_id = {s.context.span_id: s for s in finished}
    out = []
    for s in sorted(finished, key=lambda s: s.start_time):
        parent = by_id.get(s.parent.span_id) if s.parent else None
        out.append((s.name, parent.name if parent else None))
    return out
