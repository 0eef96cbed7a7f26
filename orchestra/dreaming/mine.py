"""Mine: stored spans and verdicts of undreamed runs -> per-specialist episodes.

Reads OpenTelemetry spans (from the local store or any span source of the same
shape, e.g. Jaeger), never the agents' conversations: what each specialist was
handed, what its tools returned, what it decided, and how the run was graded.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from ..rules import flatten
from ..store import Store
from .episodes import Episode

MINED_PHASES = (None, "", "train", "day")


def undreamed_runs(store: Store, workflow: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Finished training runs not yet dreamed on (gate and test runs are never mined)."""
    sql = "SELECT run_id, trace_id, status, passed, cause, phase, result FROM runs WHERE workflow = ? AND dreamed = 0 AND status IN ('passed', 'failed') AND (phase IS NULL OR phase IN ('', 'train', 'day')) ORDER BY started"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [dict(r) for r in store.db.query(sql, [workflow])]


def _json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def episodes_from_spans(run: dict[str, Any], spans: Iterable[dict[str, Any]], criteria: dict[str, bool | None]) -> list[Episode]:
    """One episode per specialist invocation in a run's spans."""
    spans = list(spans)
    children: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        if s.get("parent_id"):
            children.setdefault(s["parent_id"], []).append(s)
    out: list[Episode] = []
    for s in spans:
        a = s.get("attributes") or {}
        name = a.get("orchestra.specialist")
        if a.get("gen_ai.operation.name") != "invoke_agent" or not name:
            continue
        feats: dict[str, Any] = {}
        feats.update(flatten(_json(a.get("orchestra.input", "{}")), "input"))
        for c in sorted(children.get(s["span_id"], []), key=lambda x: x.get("start_ns", 0)):
            ca = c.get("attributes") or {}
            if ca.get("gen_ai.operation.name") == "execute_tool" and c.get("status") != "ERROR":
                result = _json(ca.get("orchestra.tool.result"))
                if isinstance(result, dict):
                    tool = ca.get("gen_ai.tool.name")
                    feats = {k: v for k, v in feats.items() if not k.startswith(f"tool.{tool}.")}
                    feats.update(flatten(result, f"tool.{tool}"))
        output = _json(a.get("orchestra.result"))
        if isinstance(output, dict):
            feats.update(flatten(output, "output"))
        out.append(Episode(
            specialist=name, run_id=run["run_id"], trace_id=s.get("trace_id") or run.get("trace_id") or "",
            features=feats, passed=run["status"] == "passed", criteria=criteria, cause=run.get("cause"),
            lesson_ids=list(a.get("orchestra.playbook.lesson_ids") or []),
        ))
    return out


def final_criteria(store: Store, run_id: str) -> dict[str, bool | None]:
    """Per-criterion outcome of the run's last verdict; None where unscored."""
    verdicts = store.verdicts_for_run(run_id)
    if not verdicts:
        return {}
    crit = {}
    for v in verdicts:
        for c in v.get("criteria", []):
            crit[f"{v.get('stage') or 'main'}.{c['id']}"] = None if c.get("unscored") else bool(c.get("passed"))
    return crit


def mine(store: Store, workflow: str, runs: list[dict[str, Any]] | None = None, span_source: Any = None) -> tuple[list[Episode], list[str]]:
    """Episodes of the given (default: undreamed) runs, and the run ids read."""
    runs = undreamed_runs(store, workflow) if runs is None else runs
    episodes: list[Episode] = []
    for run in runs:
        spans = span_source(run) if span_source is not None else store.spans_for_run(run["run_id"])
        episodes.extend(episodes_from_spans(run, spans, final_criteria(store, run["run_id"])))
    return episodes, [r["run_id"] for r in runs]
