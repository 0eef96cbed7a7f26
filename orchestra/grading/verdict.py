"""Verdict: per-criterion results, the weighted score, and feedback for the lead.

An unscored criterion (grading itself failed: missing evidence, a judge that
errored or never answered validly) is neither a pass nor a failure: it is left
out of the score's denominator and never counts as a failed gate. A verdict
with nothing scored has score None and does not pass: there is no evidence
the work is good.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field

_EPS = 1e-9


class CriterionResult(BaseModel):
    """One criterion's outcome; `value` is the measured value (or the judge's raw score)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Literal["deterministic", "model"]
    description: str = ""
    score: float | None = Field(None, ge=0, le=1)
    passed: bool | None = None
    unscored: bool = False
    rationale: str = ""
    value: Any = None
    target: str = ""
    weight: float = 1.0
    gate: bool = False
    evidence_ids: list[str] = []


def is_advisory(criterion: Mapping[str, Any]) -> bool:
    """A stored criterion result of weight 0: a near miss, recorded but never part of the score, the pass or a gate."""
    return criterion.get("weight") == 0


class Verdict(BaseModel):
    """The grader's answer for one attempt at one stage."""

    model_config = ConfigDict(frozen=True)

    rubric_id: str
    rubric_version: str | int
    rubric_hash: str = ""
    stage: str = ""
    attempt: int = 1
    pass_threshold: float
    score: float | None
    passed: bool
    criteria: list[CriterionResult]
    unscored: int = 0
    failed_gates: list[str] = []

    @classmethod
    def build(cls, *, rubric_id: str, rubric_version: str | int, rubric_hash: str, stage: str, attempt: int,
              pass_threshold: float, criteria: list[CriterionResult]) -> "Verdict":
        """Aggregate: weighted mean over scored criteria; pass needs the threshold and every scored gate."""
        scored = [c for c in criteria if not c.unscored and c.score is not None]
        total = sum(c.weight for c in scored)
        score = sum(c.weight * c.score for c in scored) / total if scored and total > 0 else None  # type: ignore[operator]
        failed_gates = [c.id for c in scored if c.gate and not c.passed]
        passed = score is not None and score + _EPS >= pass_threshold and not failed_gates
        return cls(
            rubric_id=rubric_id, rubric_version=rubric_version, rubric_hash=rubric_hash, stage=stage,
            attempt=attempt, pass_threshold=pass_threshold, score=score, passed=passed, criteria=criteria,
            unscored=sum(1 for c in criteria if c.unscored), failed_gates=failed_gates,
        )

    def result(self, cid: str) -> CriterionResult:
        for c in self.criteria:
            if c.id == cid:
                return c
        raise KeyError(cid)

    def feedback(self) -> list[dict[str, Any]]:
        """What the lead needs for another attempt: failed criteria (gates first), then unscored ones."""
        failed = [c for c in self.criteria if not c.unscored and not c.passed]
        failed.sort(key=lambda c: (not c.gate, c.score if c.score is not None else 0.0))
        unscored = [c for c in self.criteria if c.unscored]
        return [_feedback_item(c, "failed") for c in failed] + [_feedback_item(c, "unscored") for c in unscored]


def _feedback_item(c: CriterionResult, status: str) -> dict[str, Any]:
    return {
        "criterion": c.id, "status": status, "gate": c.gate, "description": c.description,
        "expected": c.target, "value": c.value, "score": c.score,
        "rationale": c.rationale, "evidence_ids": list(c.evidence_ids),
    }


Attr = str | int | float | bool


def verdict_attributes(verdict: Verdict) -> dict[str, Attr]:
    """OpenTelemetry span attributes for a verdict (`orchestra.verdict.*`); no None values."""
    p = "orchestra.verdict."
    attrs: dict[str, Attr] = {
        p + "rubric_id": verdict.rubric_id,
        p + "rubric_version": str(verdict.rubric_version),
        p + "rubric_hash": verdict.rubric_hash,
        p + "stage": verdict.stage,
        p + "attempt": verdict.attempt,
        p + "passed": verdict.passed,
        p + "unscored": verdict.unscored,
        p + "failed_gates": ",".join(verdict.failed_gates),
        p + "criteria": json.dumps(
            [c.model_dump(mode="json", exclude={"description", "target"}) for c in verdict.criteria],
            separators=(",", ":"), default=str,
        ),
    }
    if verdict.score is not None:
        attrs[p + "score"] = float(verdict.score)
    return attrs
