"""Re-grade a stored run against another rubric (version) from its stored evidence pack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .store import Store


def regrade(store: Store, run_id: str, rubric_path: Path, graph: str | None = None) -> dict[str, Any]:
    from .grading import Grader, load_rubric
    from .loader import UserError

    rubric = load_rubric(rubric_path)
    run = store.get_run(run_id)
    if run is None:
        raise UserError(f"no run {run_id!r} in {store.path}")
    result = run.get("result") or {}
    evidence_by_stage: dict[str, Any] = result.get("evidence") or {}
    if not evidence_by_stage:
        raise UserError(f"run {run_id}: no stored evidence to grade")
    stage = None
    for name, v in (result.get("verdicts") or {}).items():
        if v.get("rubric_id") == rubric.id:
            stage = name
    if stage is None or stage not in evidence_by_stage:
        stage = list(evidence_by_stage)[-1]
    judge = None
    if graph:
        from .loader import load_workflow
        from .models.policy import PolicyModel

        wf = load_workflow(graph)
        judge = PolicyModel(wf.judge_policy, name="policy:judge") if wf.judge_policy else None
    verdict = Grader(rubric, judge=judge).grade(evidence_by_stage[stage], stage=stage, attempt=1)
    doc = verdict.model_dump(mode="json")
    doc["run_id"] = run["run_id"]
    return doc
