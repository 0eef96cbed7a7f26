"""The dream job: mine -> induce -> synthesize -> curate -> gate -> promote, under a store lock."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from typing import Any, Callable

from opentelemetry import trace

from .. import tracing as tr
from ..executors import Executor
from ..models.base import Model
from ..playbook import Lesson, Playbook
from ..rules import Rule, flatten
from ..modelcall import metered
from ..store import Store
from ..versions import active_playbooks, active_version, insert_version
from ..workflow import Workflow
from . import steps
from .episodes import Episode
from .gate import compare, gate
from .curate import lesson_id, same_shape
from .mine import mine
from .synthesize import moved_text


PRUNE_MARGIN = 2  # validation scenarios a lesson's removal must win by before leave-one-out drops it
TIGHTEN_MARGIN = 1  # validation scenarios a limit moved in must win by before it replaces the tested one


class DreamBusy(Exception):
    """Another dream holds this workflow's lock."""


def _owner() -> str:
    return f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def shuffle_labels(episodes: list[Episode], seed: int) -> list[Episode]:
    """Ablation: permute run outcomes across runs, keeping each run's episodes together."""
    runs = sorted({e.run_id for e in episodes})
    outcomes = {}
    for e in episodes:
        outcomes.setdefault(e.run_id, (e.passed, e.criteria, e.cause, e.explanation))
    perm = [outcomes[r] for r in runs]
    random.Random(seed).shuffle(perm)
    new = dict(zip(runs, perm))
    return [e.model_copy(update={"passed": new[e.run_id][0], "criteria": new[e.run_id][1], "cause": new[e.run_id][2], "explanation": new[e.run_id][3]}) for e in episodes]


def dream(
    wf: Workflow,
    store: Store,
    *,
    validation_seeds: list[int] | None = None,
    executor: Executor = "local",
    workers: int | None = None,
    model: str | None = None,
    synth_model: Model | str | None = None,
    review: bool = False,
    dream_id: str | None = None,
    shuffle_labels: bool = False,
    seed: int = 0,
    span_source: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None,
    wait: bool = False,
) -> dict[str, Any]:
    """Dream once on the runs not yet dreamed on; returns the dream's figures (JSON-able).

    `synth_model` writes the lesson text: a Model, a model id ('offline' or 'claude-...'), or None for
    $ORCHESTRA_SYNTH_MODEL, else `model` (the gate runs' model); offline means the template synthesis.
    """
    if synth_model is None or isinstance(synth_model, str):
        from ..runner import resolve_synth_model

        synth_model = resolve_synth_model(synth_model, model)
    dream_id = dream_id or f"dream-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    owner = _owner()
    lock = f"dream:{wf.name}"
    while not store.try_lock(lock, owner):
        if not wait:
            raise DreamBusy(f"another dream is running on workflow {wf.name!r} in {store.path}; try again when it finishes")
        time.sleep(0.2)
    try:
        with tr.tracer().start_as_current_span(f"dream {wf.name}", attributes={"orchestra.dream_id": dream_id, "orchestra.workflow": wf.name, tr.OP: "invoke_workflow"}) as span:
            result = _dream(wf, store, dream_id, validation_seeds, executor, workers, model, synth_model, review, shuffle_labels, seed, span_source, span)
            span.set_attribute("orchestra.dream.promoted", bool(result["promoted"]))
            span.set_attribute("orchestra.dream.runs_mined", result["runs_mined"])
            trace_id = tr.hex_trace_id(span)
        store.save_spans(tr.drain(trace_id))
        result["trace_id"] = trace_id
        with store.transaction() as db:
            db.execute("UPDATE dreams SET result = ? WHERE dream_id = ?", [json.dumps({k: v for k, v in result.items() if not k.startswith("_")}, default=str), result["dream_id"]])
        return result
    finally:
        store.unlock(lock, owner)


def _dream(wf: Workflow, store: Store, dream_id: str, validation_seeds: list[int] | None, executor: Executor, workers: int | None, model: str | None, synth_model: Model | None, review: bool, shuffled: bool, seed: int, span_source: Any, span: trace.Span) -> dict[str, Any]:
    t0 = time.perf_counter()
    names = [s.name for s in wf.specialists]
    episodes, run_ids = mine(store, wf.name, span_source=span_source, decisions={s.name: s.decisions for s in wf.specialists})
    # dreams are traces of their own, linked to the runs they read (as attributes: links need live contexts)
    span.set_attribute("orchestra.dream.run_ids", run_ids[:200])
    if shuffled:
        episodes = shuffle_labels(episodes, seed)
    current = active_playbooks(store, names)
    prior_stats = _load_stats(store, wf.name)
    new_stats, induced, signatures = steps.induce_all(prior_stats, episodes, names, seed=seed)
    candidate: dict[str, Playbook] = {}
    applied: dict[str, list[dict[str, Any]]] = {}
    with metered() as synthesis:
        for name in names:
            eps = [e for e in episodes if e.specialist == name]
            cand, deltas = steps.revise(current[name], eps, induced.get(name, []), signatures.get(name, []), dream_id=dream_id, model=synth_model, base_rate=_failure_rate(new_stats, name))
            candidate[name] = cand
            applied[name] = deltas
    gate_costs: list[dict[str, int]] = []
    lessons_changed = {n for n in names if _changed(candidate[n], current[n])}
    gate_result: dict[str, Any] | None = None
    promoted_specs: set[str] = set()
    status_of: dict[str, str] = {}
    if lessons_changed:
        seeds = validation_seeds if validation_seeds is not None else wf.scenario_seeds("validation", 20, 0)
        joint = {n: (candidate[n] if n in lessons_changed else current[n]) for n in names}
        gate_result = gate(wf, current, joint, seeds, executor=executor, workers=workers, model=model, dream_id=dream_id)
        gate_costs.append(gate_result["cost"])
        pruned = _prune(wf, current, joint, gate_result, seeds, executor, workers, model, dream_id)
        gate_costs += pruned["costs"]
        if pruned["dropped"]:
            candidate = {**candidate, **pruned["candidate"]}
            lessons_changed = {n for n in lessons_changed if _changed(candidate[n], current[n])}
            joint = {n: (candidate[n] if n in lessons_changed else current[n]) for n in names}
            applied = {n: [d for d in applied[n] if not (d["op"] == "ADD" and d["lesson_id"] in pruned["dropped"])] for n in names}
            gate_result = dict(pruned["gate"])
        if pruned["rounds"]:
            gate_result["pruned"] = {k: v for k, v in pruned.items() if k not in ("candidate", "gate", "costs")}
        tightened = _tighten(wf, current, joint, gate_result, new_stats, seeds, executor, workers, model, dream_id)
        gate_costs += tightened["costs"]
        if tightened["trials"]:
            # the gate figures become the last kept trial's (already paired with the current playbooks)
            gate_result = {**gate_result, **tightened["gate"], "tightened": tightened["trials"]}
        if tightened["kept"]:
            joint = tightened["candidate"]
            candidate = {**candidate, **{n: joint[n] for n in lessons_changed}}
            swap = tightened["kept"]
            applied = {n: [({**d, "lesson_id": swap[d["lesson_id"]][0], "text": swap[d["lesson_id"]][1]} if d["op"] == "ADD" and d["lesson_id"] in swap else d) for d in applied[n]] for n in names}
        if not lessons_changed:
            gate_result["promote"] = False
        if _new_lessons(joint, current) and gate_result["wins"] <= gate_result["losses"]:
            gate_result["promote"] = False  # a new lesson must win somewhere: a tie cannot show what it costs
            gate_result["reason"] = "new lessons won no more validation scenarios than they lost"
        if gate_result["promote"]:
            promoted_specs = set(lessons_changed)
        elif len(lessons_changed) > 1:
            # the team candidate failed: try each specialist's candidate alone, on the same baseline
            singles = {}
            for n in sorted(lessons_changed):
                alone = {m: (candidate[n] if m == n else current[m]) for m in names}
                g = gate(wf, current, alone, seeds, executor=executor, workers=workers, model=model, dream_id=dream_id, baseline=gate_result["_current_results"])
                gate_costs.append(g["cost"])
                singles[n] = {k: v for k, v in g.items() if not k.startswith("_")}
                if g["promote"] and g["candidate_success"] > g["current_success"]:
                    promoted_specs.add(n)
            gate_result["single"] = singles
    versions: dict[str, int | None] = {n: None for n in names}
    with_gate = {k: v for k, v in (gate_result or {}).items() if not k.startswith("_")}
    with store.transaction() as db:  # the whole team's versions, the runs' dreamed marks and the stats: all or nothing
        for n in names:
            if n in lessons_changed:
                ok = n in promoted_specs
                status = ("pending" if review else "active") if ok else "rejected"
                status_of[n] = status
                versions[n] = insert_version(db, candidate[n].model_copy(update={"version": 0}), parent=current[n].version, status=status, dream_id=dream_id, gate=with_gate, activate=ok and not review)
        active = {n: active_version(store, n) for n in names}  # same connection: sees this transaction's heads
        out = {
            "dream_id": dream_id, "workflow": wf.name, "runs_mined": len(run_ids), "episodes": len(episodes),
            "shuffled_labels": shuffled, "promoted": bool(promoted_specs) and not review, "active_versions": active,
            "gate": with_gate or None, "wall_s": round(time.perf_counter() - t0, 3),
            # failures whose accounts name no decision: only the general family can test them (see steps.unnamed_failures)
            "unnamed_failures": steps.unnamed_failures(new_stats),
            # what the dream itself spent: every validation flight it flew (gate, leave-one-out, singles) and synthesis
            "cost": {"gate_flights": sum(c["flights"] for c in gate_costs), "gate_tokens": sum(c["tokens"] for c in gate_costs),
                     "synthesis_tokens": synthesis.usage.total, "synthesis_calls": synthesis.calls},
            "specialists": {
                n: {"current_version": current[n].version, "candidate_version": versions[n], "promoted": n in promoted_specs and not review,
                    "status": status_of.get(n, "unchanged"), "deltas": applied[n],
                    "induced": [i for i in steps.describe_induced(induced.get(n, []))]}
                for n in names
            },
        }
        # the full result is recorded with the promotion, so a crash before the trace is saved loses no figures
        _finish(db, wf.name, run_ids, new_stats, dream_id, {k: v for k, v in out.items() if not k.startswith("_")})
    return out


def _new_lessons(candidate: dict[str, Playbook], current: dict[str, Playbook]) -> list[tuple[str, str]]:
    """(specialist, lesson id) of each lesson the candidate has and the current playbooks do not."""
    known = {n: set(pb.lesson_ids) for n, pb in current.items()}
    return [(n, lesson.id) for n, pb in candidate.items() for lesson in pb.lessons if lesson.id not in known[n]]


def _changed(a: Playbook, b: Playbook) -> bool:
    return [x.id for x in a.lessons] != [x.id for x in b.lessons] or [x.rule for x in a.lessons] != [x.rule for x in b.lessons]


def _prune(wf: Workflow, current: dict[str, Playbook], joint: dict[str, Playbook], first: dict[str, Any], seeds: list[int],
           executor: Executor, workers: int | None, model: str | None, dream_id: str) -> dict[str, Any]:
    """Backward elimination on the validation scenarios: drop, one at a time, the new lesson the team does best without.

    Induction judges a rule by the runs that happened to break it; only flying without it shows whether
    obeying it costs more elsewhere (a rule that narrows every choice can undo the others). Each round
    flies the candidate without each remaining new lesson; the lesson whose removal raises the success
    rate most, by at least two scenarios (the gate's noise floor), goes, and the next round starts from
    there. The last candidate flown is already paired with the current playbooks: it is the gate result.
    """
    new = _new_lessons(joint, current)
    out: dict[str, Any] = {"dropped": [], "rounds": [], "candidate": {}, "gate": first, "costs": []}
    cand, base, margin = joint, first["candidate_success"], PRUNE_MARGIN / max(len(seeds), 1)
    while len(new) >= 2:
        trials = []
        for n, lid in new:
            without = {**cand, n: cand[n].model_copy(update={"lessons": [x for x in cand[n].lessons if x.id != lid]})}
            g = gate(wf, current, without, seeds, executor=executor, workers=workers, model=model, dream_id=f"{dream_id}:without-{lid}", baseline=first["_current_results"])
            out["costs"].append(g["cost"])
            trials.append((g["candidate_success"], lid, n, without, g))
        out["rounds"].append({"success_with": base, "success_without": {lid: rate for rate, lid, *_ in trials}})
        rate, lid, n, without, g = max(trials, key=lambda t: t[0])
        if rate - base < margin - 1e-9:
            break
        out["dropped"].append(lid)
        cand, base, out["gate"] = without, rate, g
        new = [(m, x) for m, x in new if x != lid]
    if out["dropped"]:
        out["candidate"] = cand
    return out


def _tighten(wf: Workflow, current: dict[str, Playbook], joint: dict[str, Playbook], first: dict[str, Any], stats: Any, seeds: list[int],
             executor: Executor, workers: int | None, model: str | None, dream_id: str) -> dict[str, Any]:
    """Try each new unconditional limit moved in to where passed runs typically chose (`steps.moved_in`).

    A limit placed at the edge of significance still lets the team fly where a graded risk fails often;
    the moved limit was never tested, so the validation scenarios decide: it is kept only if the team
    wins at least TIGHTEN_MARGIN more of them with it and no criterion regresses. One lesson at a time,
    each trial paired with the current playbooks' flights.
    """
    out: dict[str, Any] = {"trials": [], "kept": {}, "candidate": joint, "gate": first, "costs": []}
    tables = getattr(stats, "tables", {})
    cand, base, margin = joint, first["candidate_success"], TIGHTEN_MARGIN / max(len(seeds), 1)
    flown: list[dict[str, Any]] | None = first.get("_candidate_results")
    for n, lid in _new_lessons(joint, current):
        if base + margin > 1.0 + 1e-9:
            break  # every validation scenario already lands: no trial can win one
        lesson = next(x for x in cand[n].lessons if x.id == lid)
        moved = steps.moved_in(lesson.rule, tables[n]) if lesson.rule is not None and n in tables else None
        if moved is None:
            continue
        trial_row = {"lesson_id": lid, "rule": lesson.rule.describe(), "moved": moved.describe(), "success_with": base}
        if not lesson.near_miss and _near_miss_inside(lesson, cand[n]):
            out["trials"].append({**trial_row, "success_moved": None, "kept": False, "skipped": "a near-miss limit on the same decision stands inside it"})
            continue
        if not _could_win(moved, n, flown):
            out["trials"].append({**trial_row, "success_moved": None, "kept": False, "skipped": "no failed validation run breaks the moved limit"})
            continue
        tight = lesson.model_copy(update={"id": lesson_id(n, moved), "rule": moved, "text": moved_text(lesson, moved), "moved_from": round(float(lesson.rule.require.value), 6)})
        trial = {**cand, n: cand[n].model_copy(update={"lessons": [tight if x.id == lid else x for x in cand[n].lessons]})}
        g = gate(wf, current, trial, seeds, executor=executor, workers=workers, model=model, dream_id=f"{dream_id}:tighten-{lid}", baseline=first["_current_results"])
        out["costs"].append(g["cost"])
        keep = g["candidate_success"] - base >= margin - 1e-9 and not g["regressions"]
        out["trials"].append({**trial_row, "success_moved": g["candidate_success"], "kept": keep, **_versus_tested(flown, g)})
        if keep:
            out["kept"][lid] = (tight.id, tight.text)
            cand, base, out["gate"], flown = trial, g["candidate_success"], g, g.get("_candidate_results")
    out["candidate"] = cand
    return out


def _near_miss_inside(lesson: Lesson, playbook: Playbook) -> bool:
    """Whether a near-miss limit of the same shape stands at or inside a failure limit.

    Near misses already show where a graded risk stops; a failure limit moved to the median of passed
    runs would either change nothing (short of the near-miss limit) or overrule that evidence (past it).
    """
    if lesson.rule is None or lesson.rule.when or lesson.rule.require.op not in ("<=", ">="):
        return False
    req = lesson.rule.require
    for x in playbook.lessons:
        if not x.near_miss or x.rule is None or not same_shape(lesson.rule, x.rule):
            continue
        other = float(x.rule.require.value)
        if (req.op == "<=" and other <= float(req.value)) or (req.op == ">=" and other >= float(req.value)):
            return True
    return False


def _versus_tested(before: list[dict[str, Any]] | None, trial: dict[str, Any]) -> dict[str, Any]:
    """The trial's validation flights against the tested limit's, paired, for the report: a tie is a trade or no change.

    Only a win keeps a move; keeping the ties that changed nothing was measured and not adopted (docs/dreaming.md).
    """
    if before is None:
        return {}
    versus = compare(before, trial["_candidate_results"])
    return {"versus_tested": {"wins": versus["wins"], "losses": versus["losses"]}}


def _could_win(moved: Rule, specialist: str, flown: list[dict[str, Any]] | None) -> bool:
    """Whether a moved limit could turn any failed validation run of the candidate into a pass.

    A run whose final decisions already keep the moved limit is flown the same way again (the
    limit never binds), so a trial only pays where some failed run breaks it. When the run record
    cannot tell (no record, a ratio to an input the record does not hold), the trial is flown.
    """
    if flown is None:
        return True
    for r in flown:
        if r.get("status") == "passed":
            continue
        out = (r.get("results") or {}).get(specialist)
        held = moved.require.holds(flatten(out, "output")) if isinstance(out, dict) else None
        if held is not True:
            return True
    return False


def _failure_rate(stats: Any, specialist: str) -> float | None:
    """The specialist's failure rate over its kept episodes, which a lesson's followers are tested against.

    (The default, pooled over lesson followers only, cannot flag a lesson that every counted run followed.)
    """
    t = getattr(stats, "tables", {}).get(specialist)
    return float(1.0 - t.passed.mean()) if t is not None and t.n else None


def _load_stats(store: Store, workflow: str) -> Any:
    row = store.db.execute("SELECT stats FROM dream_state WHERE workflow = ?", [workflow]).fetchone()
    return steps.load_stats(row[0]) if row and row[0] else None


def _finish(db: Any, workflow: str, run_ids: list[str], stats: Any, dream_id: str, result: dict[str, Any]) -> None:
    """Mark runs dreamed and keep the compact statistics (inside the dream's transaction)."""
    for i in range(0, len(run_ids), 500):
        chunk = run_ids[i:i + 500]
        db.execute(f"UPDATE runs SET dreamed = 1 WHERE run_id IN ({','.join('?' * len(chunk))})", chunk)
    db.execute("INSERT OR REPLACE INTO dream_state(workflow, stats, updated) VALUES (?, ?, ?)", [workflow, steps.dump_stats(stats), time.time()])
    db.execute("INSERT OR REPLACE INTO dreams(dream_id, workflow, status, started, ended, runs, result) VALUES (?, ?, 'done', ?, ?, ?, ?)", [dream_id, workflow, time.time(), time.time(), json.dumps(run_ids), json.dumps(result, default=str)])
