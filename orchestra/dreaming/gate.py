"""Gate: candidate vs current playbooks on the same held-out validation scenarios (paired).

Promote only if the candidate is not worse overall and no criterion's pass
rate regresses beyond noise (net paired losses above one standard deviation
of the discordant-pair count, and at least two scenarios). Advisory criteria
(weight 0, near misses) are compared and shown but never hold a candidate back.
"""

from __future__ import annotations

import math
from typing import Any

from ..executors import Executor, Job, fly, playbooks_payload
from ..grading.verdict import is_advisory
from ..playbook import Playbook
from ..workflow import Workflow


def criteria_of(result: dict[str, Any]) -> dict[str, bool]:
    """Scored criteria of every stage's final verdict: 'stage.criterion' -> passed."""
    out: dict[str, bool] = {}
    for stage, v in (result.get("verdicts") or {}).items():
        for c in v.get("criteria", []):
            if not c.get("unscored"):
                out[f"{stage}.{c['id']}"] = bool(c.get("passed"))
    return out


def advisory_of(results: list[dict[str, Any]]) -> set[str]:
    """Advisory criteria ('stage.criterion', weight 0) in these results' verdicts: near misses, never a gate."""
    return {f"{stage}.{c['id']}" for r in results for stage, v in (r.get("verdicts") or {}).items()
            for c in v.get("criteria", []) if is_advisory(c)}


def compare(current: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> dict[str, Any]:
    """Paired comparison of two result lists over the same scenarios."""
    n = len(current)
    cur_ok = [r["status"] == "passed" for r in current]
    cand_ok = [r["status"] == "passed" for r in candidate]
    crit_cur = [criteria_of(r) for r in current]
    crit_cand = [criteria_of(r) for r in candidate]
    names = sorted({k for d in crit_cur + crit_cand for k in d})
    advisory = advisory_of(current + candidate)
    criteria: dict[str, Any] = {}
    regressions = []
    for name in names:
        # a criterion never reached (e.g. a later stage skipped) counts as not passed
        a = [d.get(name, False) for d in crit_cur]
        b = [d.get(name, False) for d in crit_cand]
        lost = sum(x and not y for x, y in zip(a, b))
        won = sum(y and not x for x, y in zip(a, b))
        noise = max(2.0, math.sqrt(lost + won))
        # a near miss is evidence for dreaming, not a promise of the rubric: it is shown, never a regression
        regressed = (lost - won) > noise and name not in advisory
        criteria[name] = {"current": sum(a) / n, "candidate": sum(b) / n, "lost": lost, "won": won, "regressed": regressed}
        if name in advisory:
            criteria[name]["advisory"] = True
        if regressed:
            regressions.append(name)
    cur_rate, cand_rate = sum(cur_ok) / n, sum(cand_ok) / n
    return {
        "n": n, "current_success": cur_rate, "candidate_success": cand_rate,
        "wins": sum(b and not a for a, b in zip(cur_ok, cand_ok)), "losses": sum(a and not b for a, b in zip(cur_ok, cand_ok)),
        "criteria": criteria, "regressions": regressions,
        "promote": cand_rate >= cur_rate and not regressions,
    }


def gate(
    wf: Workflow,
    current: dict[str, Playbook],
    candidate: dict[str, Playbook],
    seeds: list[int],
    *,
    executor: Executor = "local",
    workers: int | None = None,
    model: str | None = None,
    dream_id: str = "",
    baseline: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Fly both playbook sets on `seeds`; `baseline` reuses already-flown current results."""
    flown: list[dict[str, Any]] = []
    if baseline is None:
        jobs = [Job(seed=s, playbooks=playbooks_payload(current), phase="gate", label=f"{dream_id}:current") for s in seeds]
        baseline = [f.result for f in fly(wf, jobs, executor=executor, workers=workers, model=model)]
        flown += baseline
    jobs = [Job(seed=s, playbooks=playbooks_payload(candidate), phase="gate", label=f"{dream_id}:candidate") for s in seeds]
    cand = [f.result for f in fly(wf, jobs, executor=executor, workers=workers, model=model)]
    flown += cand
    out = compare(baseline, cand)
    out["seeds"] = list(seeds)
    out["cost"] = flight_cost(flown)
    out["_current_results"] = baseline
    out["_candidate_results"] = cand
    return out


def flown_tokens(results: list[dict[str, Any]]) -> int:
    """Input + output tokens of flown results (their grading included)."""
    return int(sum((r.get("usage") or {}).get("input_tokens", 0) + (r.get("usage") or {}).get("output_tokens", 0) for r in results))


def flight_cost(results: list[dict[str, Any]]) -> dict[str, int]:
    """Flights and their tokens: gate flights are not stored as runs, so this is their only record."""
    return {"flights": len(results), "tokens": flown_tokens(results)}
