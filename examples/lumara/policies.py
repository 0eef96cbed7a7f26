"""Offline policies: reasonable but naive Lumara engineers who obey their playbook rules.

They read orbital products through the tools, apply simple engineering heuristics, and
bend every decision to satisfy `ctx.rules` over features keyed as dreaming keys them:
`input.*` (the subtask), `tool.<name>.*` (last result of each tool) and `output.*`.
They never see ground truth and nothing in them is tuned to particular scenarios.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orchestra.models.policy import Call, PolicyContext
from orchestra.rules import Rule, choose, constrain, flatten, violations

from .types import AssuranceResult, DescentPlan, SiteChoice

SITE_FIELDS = ("slope_deg", "roughness_m", "shadow_fraction", "approach_shadow_fraction", "rim_distance_m",
               "cliff_distance_m", "relief_m", "earth_visible", "earth_clearance_deg", "distance_to_target_m", "science_value")
PLAN_FIELDS = ("sensor", "hover_altitude_m", "divert_budget_m", "altimeter_rejection_m", "terminal_rate_mps")
MAX_REPLANS = 6


def task_of(ctx: PolicyContext) -> dict[str, Any]:
    t = ctx.task
    if isinstance(t, str):
        try:
            t = json.loads(t)
        except ValueError:
            return {"note": t}
    return t if isinstance(t, dict) else {}


def feedback(ctx: PolicyContext) -> str:
    """Everything a grader or lead said to this specialist, lower-cased, for keyword reactions."""
    parts = [str(task_of(ctx).get("note", ""))] + [n if isinstance(n, str) else json.dumps(n) for n in ctx.notes]
    return " ".join(parts).lower()


def features(ctx: PolicyContext, output: dict[str, Any] | None = None) -> dict[str, Any]:
    """The feature view of this specialist's episode, exactly as dreaming flattens it."""
    feats: dict[str, Any] = dict(flatten(task_of(ctx), "input"))
    seen: set[str] = set()
    for ex in reversed(ctx.exchanges):
        if ex.is_error or ex.name in seen:
            continue
        seen.add(ex.name)
        if isinstance(ex.result, dict):
            feats.update(flatten(ex.result, f"tool.{ex.name}"))
    if output:
        feats.update(flatten(output, "output"))
    return feats


def _attrs(site: dict[str, Any]) -> dict[str, Any]:
    return {k: site[k] for k in SITE_FIELDS}


def site_key(note: str):
    """Naive preference: science near the target, with rough sanity checks against the spec sheet."""
    slope_w = 0.06 if re.search(r"tip|slope", note) else 0.0
    rim_w = 0.4 if "boulder" in note else 0.0
    shadow_w = 0.6 if re.search(r"power|shadow|nav_loss", note) else 0.0
    earth_w = 0.6 if re.search(r"earth|link", note) else 0.2
    far_w = 0.0005 if "far" in note else 0.0

    def key(f: dict[str, Any]) -> float:
        k = f["output.science_value"] - 0.00025 * f["output.distance_to_target_m"]
        k -= 0.5 if f["output.slope_deg"] > 12.0 else 0.0
        k -= 0.3 if f["output.shadow_fraction"] > 0.6 else 0.0
        k -= 0.2 if f["output.cliff_distance_m"] < 20.0 else 0.0
        k -= 0.0 if f["output.earth_visible"] else earth_w
        k -= slope_w * f["output.slope_deg"] + shadow_w * f["output.shadow_fraction"] + far_w * f["output.distance_to_target_m"]
        k += rim_w * min(f["output.rim_distance_m"], 300.0) / 300.0
        return k

    return key


def site_selection(ctx: PolicyContext) -> Any:
    """List the candidates, then choose by science value under the playbook rules."""
    if ctx.last("list_candidate_sites") is None:
        return Call("list_candidate_sites", {})
    data = ctx.last("list_candidate_sites")
    task = task_of(ctx)
    note = feedback(ctx)
    excluded = set(task.get("exclude_sites") or [])
    sites = [s for s in data["sites"] if s["site_id"] not in excluded] or list(data["sites"])
    base = features(ctx)
    cands = [{**base, **flatten(_attrs(s), "output")} for s in sites]
    i = choose(cands, ctx.rules, key=site_key(note), weights=ctx.rule_weights)
    s = sites[i]
    broken = violations(ctx.rules, cands[i])
    why = (f"{s['site_id']}: science value {s['science_value']:.2f} at {s['distance_to_target_m']:.0f} m from the target, "
           f"orbital slope {s['slope_deg']:.1f}°, shadow {s['shadow_fraction']:.2f}")
    if ctx.rules:
        why += f"; satisfies {len(ctx.rules) - len(broken)}/{len(ctx.rules)} playbook rules"
    return SiteChoice(site_id=s["site_id"], rationale=why, **_attrs(s))


def _initial_plan(site: dict[str, Any], survey: dict[str, Any], note: str) -> dict[str, Any]:
    """Naive heuristics: camera unless the approach is mostly dark, hover higher over rough ground."""
    dark = max(site["approach_shadow_fraction"], 0.0)
    sensor = "lidar" if dark > 0.5 or site["shadow_fraction"] > 0.7 or "nav_loss" in note else "optical"
    hover = min(max(20.0 + 40.0 * site["roughness_m"], 30.0), 220.0)
    if "boulder" in note:
        hover = max(hover, 100.0)
    divert = 0.6 * hover
    rejection = min(max(4.0 * survey.get("local_relief_m", 10.0), 30.0), 200.0)
    if "altimeter" in note:
        rejection = max(rejection, 2.0 * site["relief_m"])
    terminal = 1.2 if "hard_landing" in note else 1.5
    return {"sensor": sensor, "hover_altitude_m": round(hover / 5) * 5.0, "divert_budget_m": round(divert / 5) * 5.0,
            "altimeter_rejection_m": round(rejection / 5) * 5.0, "terminal_rate_mps": terminal}


def _obey(ctx: PolicyContext, plan: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Move every decision field just enough to satisfy the rules (two passes for cross-field rules)."""
    plan = dict(plan)
    for _ in range(2):
        for name in PLAN_FIELDS:
            feats = features(ctx, {**plan, **(extra or {})})
            plan[name] = constrain(ctx.rules, feats, f"output.{name}", plan[name])
    plan["hover_altitude_m"] = float(min(max(plan["hover_altitude_m"], 10.0), 500.0))
    plan["divert_budget_m"] = float(min(max(plan["divert_budget_m"], 0.0), 300.0))
    plan["altimeter_rejection_m"] = float(min(max(plan["altimeter_rejection_m"], 5.0), 2000.0))
    plan["terminal_rate_mps"] = float(min(max(plan["terminal_rate_mps"], 0.2), 5.0))
    if plan["sensor"] not in ("optical", "lidar"):
        plan["sensor"] = "optical"
    return plan


def _reserve_rules(rules: list[Rule]) -> list[Rule]:
    return [r for r in rules if r.require.field == "output.predicted_fuel_reserve_kg"]


def _revise(ctx: PolicyContext, plan: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """React to a plan check: save fuel if the reserve is short, by the naive's own margin or by a rule."""
    reserve = float(result.get("predicted_fuel_reserve_kg", 0.0))
    out = dict(plan)
    feats = features(ctx, {**plan, "predicted_fuel_reserve_kg": reserve})
    short = reserve < 0 or bool(violations(_reserve_rules(ctx.rules), feats))
    if short:
        if out["divert_budget_m"] > 10.0:
            out["divert_budget_m"] = max(10.0, round(out["divert_budget_m"] * 0.6 / 5) * 5.0)
        else:
            out["hover_altitude_m"] = max(20.0, round(out["hover_altitude_m"] * 0.75 / 5) * 5.0)
    elif reserve < 5.0 and "hard_landing" not in feedback(ctx):
        out["terminal_rate_mps"] = 2.0
    return _obey(ctx, out, {"predicted_fuel_reserve_kg": reserve})


def navigation(ctx: PolicyContext) -> Any:
    """Survey the site, draft a plan by rule of thumb, check it with plan_descent, trim it until it fits."""
    task = task_of(ctx)
    site = task["site"]
    sid = site["site_id"]
    survey = ctx.last("survey_site")
    if survey is None:
        return Call("survey_site", {"site_id": sid})
    plan = _obey(ctx, _initial_plan(site, survey, feedback(ctx)))
    results = ctx.results("plan_descent")
    planned = [ex.input for ex in ctx.exchanges if ex.name == "plan_descent" and not ex.is_error]
    for args, res in zip(planned, results):
        if {k: args[k] for k in PLAN_FIELDS} != plan:
            continue
        revised = _revise(ctx, plan, res)
        if revised == plan or len(results) >= MAX_REPLANS:
            reserve = float(res["predicted_fuel_reserve_kg"])
            why = (f"{plan['sensor']} navigation (approach shadow {site['approach_shadow_fraction']:.2f}), hazard scan from "
                   f"{plan['hover_altitude_m']:.0f} m with {plan['divert_budget_m']:.0f} m divert, altimeter gate "
                   f"{plan['altimeter_rejection_m']:.0f} m, terminal {plan['terminal_rate_mps']:.1f} m/s; reserve {reserve:.1f} kg")
            return DescentPlan(site_id=sid, predicted_fuel_reserve_kg=reserve, rationale=why, **plan)
        plan = revised
    return Call("plan_descent", {"site_id": sid, **plan})


GO_THRESHOLD = 0.7


def _contingencies(sim: dict[str, Any]) -> list[str]:
    out = []
    if sim.get("p_tip_over", 0) > 0.05:
        out.append("tip-over risk on local slopes: widen divert if the hazard map shows no flat cell")
    if sim.get("p_fuel_exhaustion", 0) > 0:
        out.append("propellant margin thin: abort divert and land in place if reserve falls below 3 kg")
    if sim.get("p_nav_loss", 0) > 0:
        out.append("optical navigation degraded in shadow: hold hover and re-acquire before descent")
    if sim.get("p_hard_landing", 0) > 0.05:
        out.append("touchdown speed near the limit: slow the terminal descent")
    out.append("if the link is lost after touchdown, wait for the relay pass")
    return out


def mission_assurance(ctx: PolicyContext) -> Any:
    """Run the planning simulation, decide go/no-go by a naive threshold, execute when authorised."""
    task = task_of(ctx)
    site, plan = task["site"], task["plan"]
    args = {"site_id": plan["site_id"], **{k: plan[k] for k in PLAN_FIELDS}}
    sims = [ex.result for ex in ctx.exchanges if ex.name == "simulate_landing" and not ex.is_error
            and all(ex.input.get(k) == v for k, v in args.items())]
    if not sims:
        return Call("simulate_landing", {**args, "runs": 50})
    sim = sims[-1]
    threshold = GO_THRESHOLD + (0.15 if re.search(r"fail|crash|tip", feedback(ctx)) else 0.0)
    p = float(sim["predicted_success"])
    reserve = float(plan.get("predicted_fuel_reserve_kg", sim.get("fuel_reserve_mean_kg", 0.0)))
    go = p >= threshold and reserve >= 0.0
    out = {"go": go, "predicted_success": p, "predicted_fuel_reserve_kg": reserve}
    go = bool(constrain(ctx.rules, features(ctx, out), "output.go", go))
    risks = ", ".join(f"{k} {v}/{sim['runs']}" for k, v in sorted(sim.get("cause_counts", {}).items(), key=lambda kv: -kv[1]) if k != "none")
    why = f"planning Monte Carlo on orbital data: {p:.0%} success over {sim['runs']} runs, reserve {reserve:.1f} kg" + (f" (predicted failures: {risks})" if risks else "")
    common = dict(go=go, predicted_success=p, predicted_fuel_reserve_kg=reserve, contingencies=_contingencies(sim))
    if not (go and task.get("execute")):
        return AssuranceResult(executed=False, rationale=("GO (not authorised to execute): " if go else "NO-GO: ") + why, **common)
    tel = ctx.last("execute_landing") or ctx.last("landing_report")
    if tel is None:
        if ctx.called("execute_landing"):
            return Call("landing_report", {})
        return Call("execute_landing", args)
    return AssuranceResult(executed=True, outcome=tel["outcome"], cause=tel["cause"], telemetry=tel,
                           rationale=f"GO: {why}. Executed: {tel['outcome']} ({tel['cause']}). {tel['cause_detail']}", **common)


POLICIES = {"site_selection": site_selection, "navigation": navigation, "mission_assurance": mission_assurance}
