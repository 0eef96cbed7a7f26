"""Mine: stored spans and verdicts of undreamed runs -> per-specialist episodes.

Reads OpenTelemetry spans (from the local store or any span source of the same
shape, e.g. Jaeger), never the agents' conversations: what each specialist was
handed, what its tools returned, what it decided, and how the run was graded.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from ..grading.verdict import is_advisory
from ..rules import flatten
from ..store import Store
from .episodes import CRITERIA_MARK, NEAR_MISS_MARK, Episode, criterion_key, is_advisory_key

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


def episodes_from_spans(run: dict[str, Any], spans: Iterable[dict[str, Any]], criteria: dict[str, bool | None], decisions: dict[str, tuple[str, ...] | None] | None = None, explanation: str | None = None) -> list[Episode]:
    """One episode per specialist and stage: its last invocation there, the one the run went on with.

    Output fields a specialist does not decide (per `decisions`) become `result.*` context features.
    `explanation` defaults to `explain(run)` (no failed criteria).
    """
    spans = list(spans)
    if explanation is None:
        explanation = explain(run)
    children: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        if s.get("parent_id"):
            children.setdefault(s["parent_id"], []).append(s)
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for s in sorted(spans, key=lambda x: x.get("start_ns", 0)):
        a = s.get("attributes") or {}
        if a.get("gen_ai.operation.name") == "invoke_agent" and a.get("orchestra.specialist"):
            last[(a["orchestra.specialist"], str(a.get("orchestra.stage", "")))] = s
    out: list[Episode] = []
    for (name, _stage), s in last.items():
        a = s.get("attributes") or {}
        feats: dict[str, Any] = {}
        feats.update(flatten(_json(a.get("orchestra.input", "{}")), "input"))
        # the last successful dict result of each tool, in the order of those last calls
        last_result: dict[Any, dict[str, Any]] = {}
        for c in sorted(children.get(s["span_id"], []), key=lambda x: x.get("start_ns", 0)):
            ca = c.get("attributes") or {}
            if ca.get("gen_ai.operation.name") == "execute_tool" and c.get("status") != "ERROR":
                result = _json(ca.get("orchestra.tool.result"))
                if isinstance(result, dict):
                    tool = ca.get("gen_ai.tool.name")
                    last_result.pop(tool, None)
                    last_result[tool] = result
        for tool, result in last_result.items():
            feats.update(flatten(result, f"tool.{tool}"))
        output = _json(a.get("orchestra.result"))
        if isinstance(output, dict):
            chosen = (decisions or {}).get(name)
            for k, v in flatten(output, "output").items():
                top = k.split(".", 2)[1]
                feats[k if chosen is None or top in chosen else "result." + k[len("output."):]] = v
        out.append(Episode(
            specialist=name, run_id=run["run_id"], trace_id=s.get("trace_id") or run.get("trace_id") or "",
            features=feats, passed=run["status"] == "passed", criteria=criteria, cause=run.get("cause"),
            explanation=explanation, lesson_ids=list(a.get("orchestra.playbook.lesson_ids") or []),
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


def mine(store: Store, workflow: str, runs: list[dict[str, Any]] | None = None, span_source: Any = None, decisions: dict[str, tuple[str, ...] | None] | None = None) -> tuple[list[Episode], list[str]]:
    """Episodes of the given (default: undreamed) runs, and the run ids read."""
    runs = undreamed_runs(store, workflow) if runs is None else runs
    episodes: list[Episode] = []
    for i in range(0, len(runs), BATCH):
        chunk = runs[i:i + BATCH]
        ids = [r["run_id"] for r in chunk]
        crit, why, near = _final_criteria_batch(store, ids)
        spans = _mined_spans_batch(store, ids) if span_source is None else {}
        for run in chunk:
            s = span_source(run) if span_source is not None else spans.get(run["run_id"], [])
            text = explain(run, why.get(run["run_id"], ""), near.get(run["run_id"], ""))
            episodes.extend(episodes_from_spans(run, s, crit.get(run["run_id"], {}), decisions, text))
    return episodes, [r["run_id"] for r in runs]


# Runs read per query: one query per batch instead of two per run, and only the
# spans and attributes mining reads are decoded (chat spans never leave SQLite).
BATCH = 500
_MINED_ATTRS = ("gen_ai.operation.name", "orchestra.specialist", "orchestra.stage", "orchestra.input", "orchestra.result", "orchestra.playbook.lesson_ids", "gen_ai.tool.name", "orchestra.tool.result")
_JSON_ATTRS = {"orchestra.playbook.lesson_ids"}  # json_extract hands arrays back as JSON text


def _mined_spans_batch(store: Store, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """invoke_agent and execute_tool spans of these runs, with the attributes mining reads, in store order."""
    cols = ", ".join(f"json_extract(attributes, '$.\"{k}\"')" for k in _MINED_ATTRS)
    sql = (f"SELECT run_id, span_id, trace_id, parent_id, start_ns, status, {cols} FROM spans "
           f"WHERE run_id IN ({','.join('?' * len(run_ids))}) "
           "AND json_extract(attributes, '$.\"gen_ai.operation.name\"') IN ('invoke_agent', 'execute_tool') "
           "ORDER BY run_id, start_ns, span_id")
    out: dict[str, list[dict[str, Any]]] = {}
    for row in store.db.execute(sql, run_ids).fetchall():
        attrs = {k: (json.loads(v) if k in _JSON_ATTRS else v) for k, v in zip(_MINED_ATTRS, row[6:]) if v is not None}
        out.setdefault(row[0], []).append({"run_id": row[0], "span_id": row[1], "trace_id": row[2], "parent_id": row[3], "start_ns": row[4], "status": row[5], "attributes": attrs})
    return out


def _final_criteria_batch(store: Store, run_ids: list[str]) -> tuple[dict[str, dict[str, bool | None]], dict[str, str], dict[str, str]]:
    """final_criteria for many runs in one query, and each run's failed criteria as text (id and rationale):
    the scored ones', then the advisory ones' (near misses)."""
    rows = store.db.execute(f"SELECT run_id, verdict FROM verdicts WHERE run_id IN ({','.join('?' * len(run_ids))}) ORDER BY id", run_ids).fetchall()
    out: dict[str, dict[str, bool | None]] = {}
    failed: dict[str, dict[str, str]] = {}
    for run_id, verdict in rows:
        v = json.loads(verdict)
        crit = out.setdefault(run_id, {})
        for c in v.get("criteria", []):
            # an advisory criterion (weight 0) records near misses: its key says so, and dreaming tests it second
            key = criterion_key(v.get("stage") or "main", c["id"], advisory=is_advisory(c))
            crit[key] = None if c.get("unscored") else bool(c.get("passed"))
            if crit[key] is False:
                failed.setdefault(run_id, {})[key] = f"{str(c['id']).replace('_', ' ')}: {c.get('rationale') or ''}"
            else:
                failed.get(run_id, {}).pop(key, None)
    text = {r: " ".join(t for k, t in d.items() if not is_advisory_key(k)) for r, d in failed.items()}
    near = {r: " ".join(t for k, t in d.items() if is_advisory_key(k)) for r, d in failed.items()}
    return out, text, near


def explain(run: dict[str, Any], failed_criteria: str = "", near_misses: str = "") -> str:
    """Why a run came out as it did, as text: the strings of its domain outcome, its failed criteria, its near misses.

    Induction compares these words with feature names to focus on the features a failure's own account
    names; the text never reaches a lesson, so it can inform the search but cannot instruct it.
    Each part keeps its own mark, so a failure's family never hears a near miss (`explanation_words`).
    """
    result = _json(run.get("result"))
    outcome = result.get("outcome") if isinstance(result, dict) else None
    said = " ".join(str(v) for v in flatten(outcome or {}, "").values() if isinstance(v, str))
    text = f"{said}{CRITERIA_MARK}{failed_criteria}" if failed_criteria else said
    return (f"{text}{NEAR_MISS_MARK}{near_misses}" if near_misses else text)[:4000]
