"""The dream's middle steps, glued: induce over kept statistics, then synthesize and curate per specialist."""

from __future__ import annotations

from typing import Any, Sequence

from ..models.base import Model
from ..playbook import Playbook
from .curate import Delta, curate, update_counts
from .episodes import Episode, FailureSignature
from .induce import InducedRule, induce_from_stats
from .stats import InductionStats, failure_signatures, update
from .synthesize import synthesize_offline, synthesize_with_model

MIN_SUPPORT = 4
ALPHA = 0.05
MAX_RULES = 5
MAX_LESSONS = 12
MAX_TOKENS = 1500


def induce_all(prior: InductionStats | None, episodes: Sequence[Episode], names: Sequence[str], *, seed: int = 0) -> tuple[InductionStats, dict[str, list[InducedRule]], dict[str, list[FailureSignature]]]:
    """Fold new episodes into the kept statistics and induce from them: old spans are never re-read."""
    stats = update(prior or InductionStats.empty(), episodes)
    rules = induce_from_stats(stats, min_support=MIN_SUPPORT, alpha=ALPHA, max_rules=MAX_RULES, seed=seed)
    by_spec: dict[str, list[InducedRule]] = {n: [] for n in names}
    for r in rules:
        by_spec.setdefault(r.specialist, []).append(r)
    sigs: dict[str, list[FailureSignature]] = {n: [] for n in names}
    for s in failure_signatures(stats):
        sigs.setdefault(s.specialist, []).append(s)
    return stats, by_spec, sigs


def revise(current: Playbook, episodes: Sequence[Episode], induced: Sequence[InducedRule], signatures: Sequence[FailureSignature], *, dream_id: str, model: Model | None = None) -> tuple[Playbook, list[dict[str, Any]]]:
    """Count how the current lessons did, write deltas from the induced rules, and curate under budget."""
    counted = update_counts(current, episodes)
    if model is not None:
        deltas: list[Delta] = synthesize_with_model(model, induced, signatures, specialist=current.specialist, dream_id=dream_id, episodes=episodes, playbook=counted)
    else:
        deltas = synthesize_offline(induced, dream_id=dream_id)
    known = {lesson.id for lesson in counted.lessons}
    fresh = [d for d in deltas if not (d.op == "ADD" and d.lesson_id in known)]
    candidate, applied = curate(counted, fresh, max_lessons=MAX_LESSONS, max_tokens=MAX_TOKENS)
    return candidate, [{"op": d.op, "lesson_id": d.lesson_id, "reason": d.reason, "text": d.lesson.text if d.lesson else None} for d in applied]


def describe_induced(rules: Sequence[InducedRule]) -> list[dict[str, Any]]:
    return [{"rule": r.rule.describe(), "support": r.support, "runs": r.runs, "precision": round(r.precision, 3), "baseline_failure_rate": round(r.baseline_failure_rate, 3), "lift": round(r.lift, 2), "p_value": r.p_value, "q_value": r.q_value} for r in rules]


def load_stats(blob: bytes) -> InductionStats:
    return InductionStats.from_bytes(bytes(blob))


def dump_stats(stats: InductionStats) -> bytes:
    return stats.to_bytes()
