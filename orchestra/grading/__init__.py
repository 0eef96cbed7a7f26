"""Outcomes: rubrics, evidence packs, deterministic and model-judged criteria, verdicts."""

from .criteria import (
    Criterion, DeterministicCriterion, ModelCriterion, Op, Scale, Ungradeable, score_deterministic,
)
from .evidence import Evidence, MissingEvidence, parse_path, resolve, subset
from .grader import NO_JUDGE, Grader
from .judge import GRADER_AGENT, GRADER_INSTRUCTIONS, JudgeAnswer, Judgement, build_request, judge
from .rubric import Rubric, RubricError, load_rubric, rubric_hash
from .verdict import CriterionResult, Verdict, verdict_attributes

__all__ = [
    "Criterion", "CriterionResult", "DeterministicCriterion", "Evidence", "GRADER_AGENT", "GRADER_INSTRUCTIONS",
    "Grader", "JudgeAnswer", "Judgement", "MissingEvidence", "ModelCriterion", "NO_JUDGE", "Op", "Rubric",
    "RubricError", "Scale", "Ungradeable", "Verdict", "build_request", "judge", "load_rubric", "parse_path",
    "resolve", "rubric_hash", "score_deterministic", "subset", "verdict_attributes",
]
