"""Oracle policies: the same team, but with ground truth via `oracle_*` tools; the upper bound."""

from __future__ import annotations

from typing import Any

from orchestra.models.policy import Call, PolicyContext

from .policies import PLAN_FIELDS, _attrs, task_of
from .types import AssuranceResult, DescentPlan, SiteChoice

SHORTLIST = 4


def oracle_plans(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """A few sensible plans for a site whose truth is known; the truth Monte Carlo picks among them."""
    dark = truth["true_approach_shadow_fraction"] > truth["optical_shadow_tolerance"] - 0.12 or truth["true_shadow_fraction"] > 0.5
    rejection = round(abs(truth["true_altimeter_jump_m"]) * 1.3 + 40.0)
    out = []
    for sensor in (("lidar",) if dark else ("optical", "lidar")):
        for hover, divert in ((60.0, 30.0), (90.0, 50.0), (130.0, 70.0)):
            out.append({"sensor": sensor, "hover_altitude_m": hover, "divert_budget_m": divert,
                        "altimeter_rejection_m": float(rejection), "terminal_rate_mps": 1.2})
    return out


def _truth_score(t: dict[str, Any], s: dict[str, Any]) -> float:
    return (t["safe_lit_cell_fraction"] - 2.0 * t["true_steep_fraction"] * (t["safe_lit_cell_fraction"] < 0.2)
            + (1.0 if t["true_earth_visible"] else -3.0) - 2.0 * t["true_shadow_fraction"] + 0.2 * s["science_value"]
            - (3.0 if s["distance_to_target_m"] > 950 else 0.0))


def _best(ctx: PolicyContext, site_ids: list[str]) -> tuple[str, dict[str, Any], float] | None:
    """Best (site, plan) by truth Monte Carlo among those already simulated; None if some are still missing."""
    sims = {(ex.input["site_id"], tuple(ex.input[k] for k in PLAN_FIELDS)): ex.result
            for ex in ctx.exchanges if ex.name == "oracle_simulate" and not ex.is_error}
    truths = {r["site_id"]: r for r in ctx.results("oracle_survey")}
    missing = []
    best: tuple[float, str, dict[str, Any]] | None = None
    for sid in site_ids:
        for plan in oracle_plans(truths[sid]):
            key = (sid, tuple(plan[k] for k in PLAN_FIELDS))
            if key not in sims:
                missing.append(Call("oracle_simulate", {"site_id": sid, **plan, "runs": 40}))
                continue
            score = sims[key]["predicted_success"] + 0.001 * sims[key]["fuel_reserve_mean_kg"]
            if best is None or score > best[0]:
                best = (score, sid, plan)
    if missing:
        return None
    assert best is not None
    return best[1], best[2], best[0]


def _pending(ctx: PolicyContext, site_ids: list[str]) -> list[Call]:
    sims = {(ex.input["site_id"], tuple(ex.input[k] for k in PLAN_FIELDS)) for ex in ctx.exchanges if ex.name == "oracle_simulate"}
    truths = {r["site_id"]: r for r in ctx.results("oracle_survey")}
    out = []
    for sid in site_ids:
        for plan in oracle_plans(truths[sid]):
            if (sid, tuple(plan[k] for k in PLAN_FIELDS)) not in sims:
                out.append(Call("oracle_simulate", {"site_id": sid, **plan, "runs": 40}))
    return out


def oracle_site_selection(ctx: PolicyContext) -> Any:
    data = ctx.last("list_candidate_sites")
    if data is None:
        return Call("list_candidate_sites", {})
    excluded = set(task_of(ctx).get("exclude_sites") or [])
    sites = {s["site_id"]: s for s in data["sites"] if s["site_id"] not in excluded} or {s["site_id"]: s for s in data["sites"]}
    truths = {r["site_id"]: r for r in ctx.results("oracle_survey")}
    todo = [Call("oracle_survey", {"site_id": sid}) for sid in sites if sid not in truths]
    if todo:
        return todo
    shortlist = sorted(sites, key=lambda sid: -_truth_score(truths[sid], sites[sid]))[:SHORTLIST]
    pending = _pending(ctx, shortlist)
    if pending:
        return pending
    best = _best(ctx, shortlist)
    assert best is not None
    sid, _, score = best
    return SiteChoice(site_id=sid, rationale=f"oracle: best ground-truth Monte Carlo ({score:.2f})", **_attrs(sites[sid]))


def oracle_navigation(ctx: PolicyContext) -> Any:
    site = task_of(ctx)["site"]
    sid = site["site_id"]
    if not ctx.results("oracle_survey"):
        return Call("oracle_survey", {"site_id": sid})
    pending = _pending(ctx, [sid])
    if pending:
        return pending
    best = _best(ctx, [sid])
    assert best is not None
    _, plan, _ = best
    checked = ctx.last("plan_descent")
    if checked is None:
        return Call("plan_descent", {"site_id": sid, **plan})
    return DescentPlan(site_id=sid, predicted_fuel_reserve_kg=float(checked["predicted_fuel_reserve_kg"]),
                       rationale="oracle: best plan by ground-truth Monte Carlo", **plan)


def oracle_mission_assurance(ctx: PolicyContext) -> Any:
    task = task_of(ctx)
    plan = task["plan"]
    args = {"site_id": plan["site_id"], **{k: plan[k] for k in PLAN_FIELDS}}
    sim = ctx.last("oracle_simulate")
    if sim is None:
        return Call("oracle_simulate", {**args, "runs": 40})
    p = float(sim["predicted_success"])
    common = dict(go=True, predicted_success=p, predicted_fuel_reserve_kg=float(plan["predicted_fuel_reserve_kg"]), contingencies=[])
    if not task.get("execute"):
        return AssuranceResult(executed=False, rationale="oracle: go", **common)
    tel = ctx.last("execute_landing")
    if tel is None:
        return Call("execute_landing", args)
    return AssuranceResult(executed=True, outcome=tel["outcome"], cause=tel["cause"], telemetry=tel,
                           rationale=f"oracle: executed, {tel['outcome']} ({tel['cause']})", **common)


ORACLE_POLICIES = {"site_selection": oracle_site_selection, "navigation": oracle_navigation,
                   "mission_assurance": oracle_mission_assurance}
