"""Campaigns: day -> night dream -> day ..., then a held-out evaluation of every playbook version.

Training, validation (gates) and test scenarios are disjoint seed sets from the
workflow. Every mission has a deterministic run id, so `--resume` skips what is
done and an interrupted campaign loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .executors import Executor, Flown, Job, fly, playbooks_payload
from .playbook import Playbook, empty_playbook
from .store import Store
from .versions import active_playbooks, get_playbook
from .workflow import Workflow


REFERENCE_NAME = "reference (hand-written)"


@dataclass(frozen=True)
class CampaignConfig:
    nights: int = 2
    missions: int = 20
    validation: int = 20
    test: int = 50
    seed: int = 0
    executor: Executor = "local"
    workers: int | None = None
    model: str | None = None
    ablation: str | None = None
    token_ceiling: int | None = None
    """No new missions (nor dreams) once the campaign's stored runs sum this many input+output tokens."""

    def campaign_id(self, workflow: str) -> str:
        params: dict[str, Any] = {"w": workflow, "n": self.nights, "m": self.missions, "v": self.validation, "t": self.test, "s": self.seed, "model": self.model, "a": self.ablation}
        if self.token_ceiling is not None:  # only when set, so ids of campaigns without a ceiling do not change
            params["tc"] = self.token_ceiling
        key = json.dumps(params, sort_keys=True)
        return f"{workflow}-s{self.seed}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


@dataclass
class Progress:
    """Callbacks for a progress display; no-ops by default."""

    start: Callable[[str, int], None] = lambda phase, total: None
    advance: Callable[[str, Flown], None] = lambda phase, flown: None
    done: Callable[[str], None] = lambda phase: None


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a success rate."""
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


@dataclass
class Arm:
    """One learning arm (the real one, or the shuffled-verdict ablation) with its own store."""

    name: str
    store: Store
    versions: list[dict[str, int]] = field(default_factory=list)
    nights: list[dict[str, Any]] = field(default_factory=list)


def _flown_ids(store: Store, campaign_id: str) -> set[str]:
    return {r["run_id"] for r in store.db.query("SELECT run_id FROM runs WHERE campaign_id = ? AND status IN ('passed','failed','error')", [campaign_id])}


def campaign_tokens(store: Store, campaign_id: str) -> int:
    """Input + output tokens the campaign spent in this store: its stored runs (all phases) and its dreams' own flights and synthesis."""
    row = store.db.execute("SELECT COALESCE(SUM(input_tokens + output_tokens), 0) FROM runs WHERE campaign_id = ?", [campaign_id]).fetchone()
    return int(row[0]) + sum(c["gate_tokens"] + c["synthesis_tokens"] for c in dream_costs(store, campaign_id))


def dream_costs(store: Store, campaign_id: str) -> list[dict[str, int]]:
    """The recorded cost of each finished dream of the campaign (gate flights are not stored as runs)."""
    rows = store.db.execute("SELECT result FROM dreams WHERE dream_id LIKE ? AND status = 'done' ORDER BY dream_id", [f"{campaign_id}-%"]).fetchall()
    out = []
    for (raw,) in rows:
        cost = (json.loads(raw) if raw else {}).get("cost") or {}
        out.append({k: int(cost.get(k, 0)) for k in ("gate_flights", "gate_tokens", "synthesis_tokens")})
    return out


@dataclass
class TokenBudget:
    """The campaign-level token ceiling: checked before each batch of missions and each dream."""

    ceiling: int | None
    campaign_id: str = ""
    stores: list[Store] = field(default_factory=list)
    used: int = 0
    reached: bool = False
    skipped_missions: int = 0
    skipped_dreams: int = 0

    def exhausted(self) -> bool:
        if self.ceiling is None:
            return False
        self.used = sum(campaign_tokens(s, self.campaign_id) for s in self.stores)  # every arm counts
        self.reached = self.reached or self.used >= self.ceiling
        return self.reached

    def summary(self) -> dict[str, Any] | None:
        if self.ceiling is None:
            return None
        return {"limit": self.ceiling, "used": self.used, "reached": self.reached, "skipped_missions": self.skipped_missions, "skipped_dreams": self.skipped_dreams}


def _fly_phase(wf: Workflow, store: Store, campaign_id: str, phase: str, seeds: list[int], playbooks: dict[str, Playbook], cfg: CampaignConfig, progress: Progress, prefix: str, persist: bool = True, budget: TokenBudget | None = None) -> list[dict[str, Any]]:
    """Fly the missions of a phase not already stored; return all of the phase's results in seed order.

    Under a token ceiling missions fly in batches (one at a time locally, one per worker otherwise) and
    no batch starts once the campaign's stored runs reach the ceiling; the rest are counted as skipped.
    """
    done = _flown_ids(store, campaign_id)
    jobs = [Job(seed=s, playbooks=playbooks_payload(playbooks), phase=phase, campaign_id=campaign_id, run_id=f"{campaign_id}:{prefix}-{i:04d}") for i, s in enumerate(seeds)]
    todo = [j for j in jobs if j.run_id not in done]
    progress.start(f"{prefix}", len(jobs))
    for _ in range(len(jobs) - len(todo)):
        progress.advance(prefix, None)  # type: ignore[arg-type]
    if budget is None or budget.ceiling is None:
        batches = [todo]
    else:
        size = 1 if cfg.executor == "local" else max(1, cfg.workers or os.cpu_count() or 2)
        batches = [todo[i:i + size] for i in range(0, len(todo), size)]
    for k, batch in enumerate(batches):
        if budget is not None and budget.exhausted():
            budget.skipped_missions += sum(len(b) for b in batches[k:])
            break
        fly(wf, batch, executor=cfg.executor, workers=cfg.workers, model=cfg.model, store=store, on_result=lambda f: progress.advance(prefix, f))
    progress.done(prefix)
    results = []
    for j in jobs:
        run = store.get_run(j.run_id)
        if run is not None:
            results.append(run["result"])
    return results


def run_campaign(
    wf: Workflow,
    cfg: CampaignConfig,
    *,
    db: str | Path | None = None,
    oracle: Workflow | None = None,
    reference: dict[str, Playbook] | None = None,
    out: Path | None = None,
    progress: Progress | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """The whole campaign; returns the summary (also written with the report to `out`)."""
    from .dreaming.job import dream
    from .report import write_report

    progress = progress or Progress()
    t0 = time.perf_counter()
    cid = cfg.campaign_id(wf.name)
    base = Path(db) if db else Path(".orchestra/campaigns") / f"{cid}.db"
    ablation_db = base.with_name(base.stem + "-ablation.db")
    if base.exists() and not resume:
        # a fresh campaign replaces its own stores (and their SQLite journals), nothing else beside them
        for store_path in (base, ablation_db):
            for suffix in ("", "-wal", "-shm"):
                companion = Path(str(store_path) + suffix)
                if companion.is_file():
                    companion.unlink()
    arms = [Arm("dreaming", Store(base))]
    if cfg.ablation == "shuffled":
        arms.append(Arm("ablation_shuffled", Store(ablation_db)))
    train = wf.scenario_seeds("train", cfg.nights * cfg.missions, cfg.seed)
    val = wf.scenario_seeds("validation", cfg.validation, cfg.seed)
    test = wf.scenario_seeds("test", cfg.test, cfg.seed)
    names = [s.name for s in wf.specialists]
    budget = TokenBudget(cfg.token_ceiling, cid, [arm.store for arm in arms])
    for arm in arms:
        _save_campaign(arm.store, cid, cfg, "running")
        arm.versions = [{n: 0 for n in names}]
        for night in range(1, cfg.nights + 1):
            pbs = active_playbooks(arm.store, names)
            day_seeds = train[(night - 1) * cfg.missions: night * cfg.missions]
            _fly_phase(wf, arm.store, cid, "train", day_seeds, pbs, cfg, progress, f"{arm.name}-day{night}", budget=budget)
            progress.start(f"{arm.name}-night{night}", 1)
            dream_id = f"{cid}-{arm.name}-n{night}"
            result = _done_dream(arm.store, dream_id)
            if result is None and budget.exhausted():  # a dream's gate flies missions too
                budget.skipped_dreams += 1
                progress.done(f"{arm.name}-night{night}")
                continue
            if result is None:
                result = dream(wf, arm.store, validation_seeds=val, executor=cfg.executor, workers=cfg.workers, model=cfg.model, dream_id=dream_id, shuffle_labels=(arm.name != "dreaming"), seed=cfg.seed + night, wait=True)
            progress.done(f"{arm.name}-night{night}")
            arm.nights.append(result)
            arm.versions.append(dict(result.get("active_versions") or {n: active_playbooks(arm.store, [n])[n].version for n in names}))
    # evaluation on the held-out test set: every version of the real arm, the ablation's final, baseline, oracle
    evals: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for arm in arms:
        for i, vs in enumerate(arm.versions):
            if arm.name != "dreaming" and i != len(arm.versions) - 1:
                continue
            key = json.dumps(vs, sort_keys=True) + (arm.name if i else "")
            name = "v0 (empty)" if i == 0 else (f"after night {i}" if arm.name == "dreaming" else "ablation: shuffled verdicts")
            if i == 0 and arm.name != "dreaming":
                continue
            pbs = {n: get_playbook(arm.store, n, v) for n, v in vs.items()}
            prefix = f"{arm.name}-test-v{i}"
            if key in seen:
                results = _reuse(arms[0].store, f"{cid}:{seen[key]}")
            else:
                results = _fly_phase(wf, arm.store, cid, "test", test, pbs, cfg, progress, prefix, budget=budget)
                seen[key] = prefix
            evals.append({"name": name, "arm": arm.name, "night": i, "playbook_versions": vs, "results": results, "lessons": {n: [l.model_dump(mode="json") for l in pbs[n].lessons] for n in names}})
    oracle_eval = None
    if oracle is not None:
        results = _fly_phase(oracle, arms[0].store, cid, "test", test, {n: empty_playbook(n) for n in [s.name for s in oracle.specialists]}, cfg, progress, "oracle-test", budget=budget)
        oracle_eval = {"name": "oracle", "results": results}
    reference_eval = None
    if reference is not None:  # hand-written playbooks: what any playbook over the same products can reach
        results = _fly_phase(wf, arms[0].store, cid, "test", test, reference, cfg, progress, "reference-test", budget=budget)
        reference_eval = {"name": REFERENCE_NAME, "results": results, "lessons": {n: [les.model_dump(mode="json") for les in pb.lessons] for n, pb in reference.items()}}
    summary = summarize(wf, cfg, cid, evals, oracle_eval, arms, time.perf_counter() - t0, reference_eval)
    budget.exhausted()  # the final figure
    summary["token_ceiling"] = budget.summary()
    from . import tracing

    summary["otlp"] = tracing.flush(timeout_s=5.0)
    for arm in arms:
        _save_campaign(arm.store, cid, cfg, "done")
    out = out or Path("reports") / cid
    summary["report"] = str(write_report(summary, out, wf, evals, oracle_eval, test))
    return summary


def _done_dream(store: Store, dream_id: str) -> dict[str, Any] | None:
    """A night already dreamed (resume): its recorded result, so it is neither repeated nor re-mined."""
    row = store.db.execute("SELECT result FROM dreams WHERE dream_id = ? AND status = 'done'", [dream_id]).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def _reuse(store: Store, prefix: str) -> list[dict[str, Any]]:
    rows = store.db.query("SELECT result FROM runs WHERE run_id LIKE ? ORDER BY run_id", [prefix + "-%"])
    return [json.loads(r["result"]) for r in rows]


def _save_campaign(store: Store, cid: str, cfg: CampaignConfig, status: str) -> None:
    with store.transaction() as db:
        db["campaigns"].upsert({"campaign_id": cid, "params": json.dumps(cfg.__dict__, default=str), "status": status, "updated": time.time(), "started": time.time()}, pk="campaign_id")


def _rates(results: list[dict[str, Any]]) -> dict[str, Any]:
    from .dreaming.gate import advisory_of, criteria_of, flown_tokens

    n = len(results)
    k = sum(r["status"] == "passed" for r in results)
    crit: dict[str, list[bool]] = {}
    for r in results:
        for name, ok in criteria_of(r).items():
            crit.setdefault(name, []).append(ok)
    causes: dict[str, int] = {}
    for r in results:
        c = (r.get("outcome") or {}).get("cause") or ("none" if r["status"] == "passed" else r["status"])
        causes[c] = causes.get(c, 0) + 1
    tokens = flown_tokens(results)
    return {
        "n": n, "successes": k, "success_rate": k / n if n else 0.0, "ci95": list(wilson(k, n)),
        "errors": sum(r["status"] == "error" for r in results),
        # a criterion a run never reached counts as not passed, over all runs
        "criteria": {name: sum(v) / n for name, v in sorted(crit.items())},
        "advisory_criteria": sorted(advisory_of(results)),
        "causes": dict(sorted(causes.items(), key=lambda kv: -kv[1])), "tokens": tokens,
        "cache_read_tokens": sum((r.get("usage") or {}).get("cache_read_input_tokens", 0) for r in results),
        "cache_write_tokens": sum((r.get("usage") or {}).get("cache_creation_input_tokens", 0) for r in results),
        "wall_s": sum(r.get("wall_s", 0.0) for r in results),
    }


def criterion_drops(baseline: dict[str, Any], final: dict[str, Any]) -> dict[str, float]:
    """How far each criterion's pass rate fell from baseline to final; advisory ones (near misses) are in no pass, so none."""
    advisory = set(baseline.get("advisory_criteria", [])) | set(final.get("advisory_criteria", []))
    return {c: baseline["criteria"].get(c, 0.0) - final["criteria"].get(c, 0.0) for c in baseline["criteria"] if c not in advisory}


def summarize(wf: Workflow, cfg: CampaignConfig, cid: str, evals: list[dict[str, Any]], oracle_eval: dict[str, Any] | None, arms: list[Arm], wall_s: float,
              reference_eval: dict[str, Any] | None = None) -> dict[str, Any]:
    versions = []
    for e in evals:
        versions.append({"name": e["name"], "arm": e["arm"], "night": e["night"], "playbook_versions": e["playbook_versions"], **_rates(e["results"]), "lessons": e["lessons"]})
    real = [v for v in versions if v["arm"] == "dreaming"]
    baseline = real[0]
    oracle = {"name": "oracle", **_rates(oracle_eval["results"])} if oracle_eval else None
    reference = {"name": REFERENCE_NAME, **_rates(reference_eval["results"]), "lessons": reference_eval["lessons"]} if reference_eval else None
    final = real[-1]
    gap = None
    if oracle is not None:
        denom = oracle["success_rate"] - baseline["success_rate"]
        for v in versions + ([reference] if reference else []):
            v["gap_closed"] = (v["success_rate"] - baseline["success_rate"]) / denom if denom > 0 else None
        gap = final.get("gap_closed")
    reached = None
    if reference is not None and reference["success_rate"] > baseline["success_rate"]:
        reached = (final["success_rate"] - baseline["success_rate"]) / (reference["success_rate"] - baseline["success_rate"])
    drops = criterion_drops(baseline, final)
    nights = []
    for arm in arms:
        for i, n in enumerate(arm.nights, 1):
            nights.append({"arm": arm.name, "night": i, **{k: v for k, v in n.items() if not k.startswith("_")}})
    row = arms[0].store.db.execute("SELECT COALESCE(SUM(input_tokens + output_tokens), 0), COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0) FROM runs WHERE campaign_id = ?", [cid]).fetchone()
    campaign_tokens_total = {"tokens": int(row[0]), "cache_read_tokens": int(row[1]), "cache_write_tokens": int(row[2])}
    # what learning cost, arm by arm: the day's missions, and each night's validation flights and synthesis
    cost: dict[str, Any] = {}
    for arm in arms:
        dreams = dream_costs(arm.store, cid)
        phases = {p: (int(k), int(t)) for p, k, t in arm.store.db.execute("SELECT phase, COUNT(*), COALESCE(SUM(input_tokens + output_tokens), 0) FROM runs WHERE campaign_id = ? GROUP BY phase", [cid]).fetchall()}
        train, test = phases.get("train", (0, 0)), phases.get("test", (0, 0))
        c = {"training_missions": train[0], "training_tokens": train[1],
             "gate_flights": sum(d["gate_flights"] for d in dreams), "gate_tokens": sum(d["gate_tokens"] for d in dreams),
             "synthesis_tokens": sum(d["synthesis_tokens"] for d in dreams), "test_flights": test[0], "test_tokens": test[1]}
        c["learning_tokens"] = c["training_tokens"] + c["gate_tokens"] + c["synthesis_tokens"]
        c["total_tokens"] = c["learning_tokens"] + c["test_tokens"]
        cost[arm.name] = c
    # runs that could not finish (a model that failed for good, a crash): the campaign went on without them
    failed_runs = [r for arm in arms for r in arm.store.db.query("SELECT run_id, phase, error FROM runs WHERE campaign_id = ? AND status = 'error' ORDER BY run_id", [cid])]
    return {
        "campaign_id": cid, "workflow": wf.name, "config": {k: v for k, v in cfg.__dict__.items()},
        "training_missions": cfg.nights * cfg.missions, "validation_missions": cfg.validation, "test_missions": cfg.test,
        "versions": versions, "baseline": {k: baseline[k] for k in ("name", "success_rate", "ci95", "criteria", "causes")},
        "oracle": oracle, "gap_closed": gap, "reference": reference, "reference_gain_reached": reached, "criterion_drops": drops, "max_criterion_drop": max(drops.values()) if drops else 0.0,
        "nights": nights, "training_tokens": cost[arms[0].name]["training_tokens"], "stored_run_tokens": campaign_tokens_total, "cost": cost, "wall_s": round(wall_s, 2),
        "errors": len(failed_runs), "error_runs": failed_runs[:20],
    }
