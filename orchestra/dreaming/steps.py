"""The dream's middle steps, glued: induce over kept statistics, then synthesize and curate per specialist."""

from __future__ import annotations

from typing import Any, Sequence

from ..models.base import Model
from ..playbook import Playbook
from .curate import Delta, curate, update_counts
from .episodes import Episode, FailureSignature
import dataclasses
import math

import numpy as np

from .induce import InducedRule, NullSearch, induce_from_stats
from .stats import InductionStats, Table, failure_signatures, update
from .synthesize import synthesize_offline, synthesize_with_model

MIN_SUPPORT = 3
ALPHA = 0.05
MAX_RULES = 5
MAX_LESSONS = 12
MAX_TOKENS = 1500
PERMUTATIONS = 200
PERMUTATION_MAX_ROWS = 6000


Outcome = tuple[bool, "str | None", dict]
Label = "tuple[str, str] | None"


def _outcomes(tables: list[Table]) -> dict[str, Outcome]:
    """Each run's outcome: passed, root cause, and which criteria failed (the same for all its episodes)."""
    out: dict[str, Outcome] = {}
    for t in tables:
        for j, (run, ok, code) in enumerate(zip(t.run_ids, t.passed, t.cause)):
            if str(run) not in out:
                failed = {c: bool(t.C[i, j] == 0) for i, c in enumerate(t.criteria)} if t.C.size else {}
                out[str(run)] = (bool(ok), t.causes[code] if code >= 0 else None, failed)
    return out


def _relabel(t: Table, outcome: dict[str, Outcome], label: Label) -> Table:
    """The table with run outcomes from `outcome`; a label narrows 'failed' to one cause or one criterion."""
    runs = [str(r) for r in t.run_ids]
    if label is None:
        passed = [outcome[r][0] for r in runs]
    elif label[0] == "cause":
        passed = [outcome[r][1] != label[1] for r in runs]
    else:
        passed = [not outcome[r][2].get(label[1], False) for r in runs]
    return dataclasses.replace(t, passed=np.array(passed, bool))


def _failed(outcome: Outcome, label: Label) -> bool:
    if label is None:
        return not outcome[0]
    if label[0] == "cause":
        return outcome[1] == label[1]
    return bool(outcome[2].get(label[1], False))


def _variants(stats: InductionStats) -> list[tuple[str, Label]]:
    """(specialist, label) pairs to test: overall pass/fail, each recurring cause, each often-failed criterion."""
    out: list[tuple[str, Label]] = []
    real = _outcomes(list(stats.tables.values()))
    causes: dict[str, int] = {}
    crits: dict[str, int] = {}
    for ok, cause, failed in real.values():
        if not ok and cause and cause != "none":
            causes[cause] = causes.get(cause, 0) + 1
        for c, f in failed.items():
            crits[c] = crits.get(c, 0) + int(f)
    labels: list[Label] = [None]
    labels += [("cause", c) for c, n in sorted(causes.items()) if n >= MIN_SUPPORT]
    labels += [("criterion", c) for c, n in sorted(crits.items()) if n >= MIN_SUPPORT]
    # the same failing runs under two names is one hypothesis, not two: keep the first name
    runs = sorted(real)
    unique: list[Label] = []
    seen: set[tuple[bool, ...]] = set()
    for lab in labels:
        key = tuple(_failed(real[r], lab) for r in runs)
        if key not in seen:
            seen.add(key)
            unique.append(lab)
    for spec in sorted(stats.tables):
        out += [(spec, lab) for lab in unique]
    return out


def permutation_threshold(stats: InductionStats, variants: list[tuple[str, Label]], *, alpha: float = ALPHA, permutations: int = PERMUTATIONS, seed: int = 0) -> float | None:
    """Westfall-Young: the alpha-quantile of the family-wide best log p when run outcomes are shuffled.

    Controls the family-wise error over every specialist, label and candidate at once, without
    Bonferroni's penalty for the thousands of near-identical candidates. None when too large to permute.
    """
    tables = list(stats.tables.values())
    if not tables or sum(t.n for t in tables) > PERMUTATION_MAX_ROWS:
        return None
    real = _outcomes(tables)
    runs = sorted(real)
    searches = {spec: NullSearch(t, MIN_SUPPORT) for spec, t in stats.tables.items()}
    run_index = {spec: np.array([runs.index(str(r)) for r in t.run_ids], int) for spec, t in stats.tables.items()}
    labels = sorted({lab for _, lab in variants}, key=str)
    # failed[label][run] under the real outcomes; a permutation reorders runs
    failed = {lab: np.array([_failed(real[r], lab) for r in runs], bool) for lab in labels}
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(len(runs)) for _ in range(permutations)], axis=1)  # runs x P
    best = np.zeros(permutations)
    for spec, lab in variants:
        cols = failed[lab][perms][run_index[spec]]  # episodes x P
        best = np.minimum(best, searches[spec].min_logp(cols))
    null = best.tolist()
    null.sort()
    k = max(0, int(math.floor(alpha * permutations)) - 1)
    return float(null[k])


def induce_all(prior: InductionStats | None, episodes: Sequence[Episode], names: Sequence[str], *, seed: int = 0) -> tuple[InductionStats, dict[str, list[InducedRule]], dict[str, list[FailureSignature]]]:
    """Fold new episodes into the kept statistics and induce from them: old spans are never re-read."""
    stats = update(prior or InductionStats.empty(), episodes)
    variants = _variants(stats)
    threshold = permutation_threshold(stats, variants, seed=seed)
    real = _outcomes(list(stats.tables.values()))
    by_spec: dict[str, list[InducedRule]] = {n: [] for n in names}
    seen: set[tuple[str, str, str]] = set()
    found: list[InducedRule] = []
    for spec, cause in variants:
        view = InductionStats({spec: _relabel(stats.tables[spec], real, cause)}, stats.max_episodes, stats.max_features, stats.max_categories)
        found += induce_from_stats(view, min_support=MIN_SUPPORT, alpha=ALPHA, max_rules=MAX_RULES, seed=seed, log_threshold=threshold)
    for r in sorted(found, key=lambda r: r.p_value):
        key = (r.specialist, r.rule.require.field, r.rule.require.op)
        if key in seen or len(by_spec.setdefault(r.specialist, [])) >= MAX_RULES:
            continue
        seen.add(key)
        by_spec[r.specialist].append(r)
    sigs: dict[str, list[FailureSignature]] = {n: [] for n in names}
    for s in failure_signatures(stats):
        sigs.setdefault(s.specialist, []).append(s)
    return stats, by_spec, sigs


def revise(current: Playbook, episodes: Sequence[Episode], induced: Sequence[InducedRule], signatures: Sequence[FailureSignature], *, dream_id: str, model: Model | None = None, base_rate: float | None = None) -> tuple[Playbook, list[dict[str, Any]]]:
    """Count how the current lessons did, write deltas from the induced rules, and curate under budget."""
    counted = update_counts(current, episodes)
    if model is not None:
        deltas: list[Delta] = synthesize_with_model(model, induced, signatures, specialist=current.specialist, dream_id=dream_id, episodes=episodes, playbook=counted)
    else:
        deltas = synthesize_offline(induced, dream_id=dream_id)
    known = {lesson.id for lesson in counted.lessons}
    fresh = [d for d in deltas if not (d.op == "ADD" and d.lesson_id in known)]
    candidate, applied = curate(counted, fresh, max_lessons=MAX_LESSONS, max_tokens=MAX_TOKENS, base_rate=base_rate)
    return candidate, [{"op": d.op, "lesson_id": d.lesson_id, "reason": d.reason, "text": d.lesson.text if d.lesson else None} for d in applied]


def describe_induced(rules: Sequence[InducedRule]) -> list[dict[str, Any]]:
    return [{"rule": r.rule.describe(), "support": r.support, "runs": r.runs, "precision": round(r.precision, 3), "baseline_failure_rate": round(r.baseline_failure_rate, 3), "lift": round(r.lift, 2), "p_value": r.p_value, "q_value": r.q_value} for r in rules]


def load_stats(blob: bytes) -> InductionStats:
    return InductionStats.from_bytes(bytes(blob))


def dump_stats(stats: InductionStats) -> bytes:
    return stats.to_bytes()
