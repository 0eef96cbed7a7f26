"""Grader: a rubric applied to an evidence pack, producing a Verdict.

The grader sees the evidence pack and nothing else; agent conversations never
reach it. Deterministic criteria are computed; model criteria go to the judge
model, each in its own clean context. Anything that stops a criterion from
being graded (missing evidence, an ungradeable value, no judge, a judge that
fails) leaves that criterion unscored with the reason as its rationale.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..models.base import Model
from .criteria import DeterministicCriterion, ModelCriterion, Ungradeable, score_deterministic
from .evidence import MissingEvidence, normalize, resolve, subset
from .judge import judge as ask_judge
from .rubric import Rubric
from .verdict import CriterionResult, Verdict

NO_JUDGE = "no judge model configured"


class Grader:
    """Grades evidence against one rubric; `judge` answers its model criteria."""

    def __init__(self, rubric: Rubric, judge: Model | None = None):
        self.rubric = rubric
        self.judge = judge
        self._hash = rubric.hash

    def grade(self, evidence: Mapping[str, Any], *, stage: str = "", attempt: int = 1) -> Verdict:
        pack = normalize(evidence)
        results = [
            self._deterministic(c, pack) if isinstance(c, DeterministicCriterion) else self._model(c, pack)
            for c in self.rubric.criteria
        ]
        r = self.rubric
        return Verdict.build(
            rubric_id=r.id, rubric_version=r.version, rubric_hash=self._hash, stage=stage,
            attempt=attempt, pass_threshold=r.pass_threshold, criteria=results,
        )

    def _deterministic(self, c: DeterministicCriterion, pack: dict[str, Any]) -> CriterionResult:
        base = _base(c, [c.path])
        try:
            value = resolve(pack, c.path)
        except MissingEvidence as e:
            return CriterionResult(**base, unscored=True, rationale=str(e))
        try:
            score, passed, why = score_deterministic(c, value)
        except Ungradeable as e:
            return CriterionResult(**base, unscored=True, value=value, rationale=f"ungradeable: {e}")
        return CriterionResult(**base, score=score, passed=passed, value=value, rationale=why)

    def _model(self, c: ModelCriterion, pack: dict[str, Any]) -> CriterionResult:
        base = _base(c, list(c.evidence))
        found, missing = subset(pack, c.evidence)
        if missing:
            why = "; ".join(f"{p}: {reason}" for p, reason in missing.items())
            return CriterionResult(**base, unscored=True, rationale=f"missing evidence {why}")
        if self.judge is None:
            return CriterionResult(**base, unscored=True, rationale=NO_JUDGE)
        j = ask_judge(self.judge, c, found)
        if j.unscored_reason is not None or j.score is None:
            return CriterionResult(**base, unscored=True, rationale=j.unscored_reason or "no score")
        return CriterionResult(
            **{**base, "evidence_ids": j.evidence_ids},
            score=c.scale.normalize(j.score), passed=j.score >= c.scale.pass_at,
            value=j.score, rationale=j.rationale,
        )


def _base(c: DeterministicCriterion | ModelCriterion, evidence_ids: list[str]) -> dict[str, Any]:
    return {
        "id": c.id, "kind": c.kind, "description": c.description, "target": c.target(),
        "weight": c.weight, "gate": c.gate, "evidence_ids": evidence_ids,
    }
