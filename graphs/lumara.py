"""Lumara: plan and fly a Moon landing near the lunar south pole.

A lead hands the mission to three specialists (site selection, navigation,
mission assurance). Stage `plan` is reviewed against the preflight rubric
before anything irreversible happens; stage `land` executes the landing and is
graded against the landing rubric. `oracle` is the same team with ground truth;
`reference` is a hand-written playbook that campaigns fly beside the learned ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lumara import policies
from lumara.oracle import ORACLE_POLICIES
from lumara.mission import Mission
from lumara.picture import draw_landing
from lumara.reference import reference_playbooks
from lumara.scenarios import scenario_seeds
from lumara.tools import ORACLE_TOOLS, SPECIALIST_TOOLS
from lumara.types import AssuranceResult, AssuranceTask, DescentPlan, NavTask, SiteAttributes, SiteChoice, SiteTask
from orchestra import Budget, Call, Lead, PolicyContext, Specialist, Stage, Workflow

ROOT = Path(__file__).resolve().parent.parent


class LeadReport(BaseModel):
    """The lead's report at the end of each stage; `claims` are checked against telemetry by the grader."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    site_id: str | None = None
    go: bool = False
    predicted_success: float | None = None
    predicted_fuel_reserve_kg: float | None = None
    claims: dict[str, Any] = Field(default_factory=dict)
    summary: str = ""


LEAD_INSTRUCTIONS = """You lead a Lumara landing mission near the lunar south pole. You do not fly anything yourself.
Stage `plan`: 1) delegate_site_selection to choose a landing site (pass exclude_sites with sites a review rejected);
2) delegate_navigation with the chosen site to get a descent plan; 3) delegate_mission_assurance with the site,
the plan and execute=false for a go/no-go backed by planning simulations. Then call final_result with stage="plan",
the site_id, go, predicted_success and predicted_fuel_reserve_kg exactly as mission assurance reported them.
If the plan review fails you get per-criterion feedback: re-plan (usually a different site) and report again.
Stage `land`: delegate_mission_assurance with the approved site and plan and execute=true, then call final_result
with stage="land" and `claims` copied from the returned telemetry (outcome, cause, vertical_speed_mps,
horizontal_speed_mps, landed_upright). Never claim what the telemetry does not show."""

SITE_INSTRUCTIONS = """You are Lumara's site-selection engineer. List the candidate sites, survey the promising ones,
and choose one landing site: safe to land on (gentle slope, low roughness, away from fresh crater rims and cliffs),
sunlit (solar power), with Earth above the horizon (direct link), close to the science target, with good science value.
Sites in `exclude_sites` were rejected by a review: do not choose them. Obey every lesson in your playbook.
Return the chosen site's orbital attributes exactly as the tools reported them, and your rationale."""

NAV_INSTRUCTIONS = """You are Lumara's navigation engineer. For the given site, plan the powered descent: navigation sensor
(optical terrain-relative navigation needs light; lidar works in the dark but costs mass), hazard-detection hover
altitude, divert budget, altimeter rejection threshold (jumps larger than this are rejected as faults) and terminal
descent rate. Use survey_site and plan_descent to check feasibility and fuel. Obey every lesson in your playbook."""

MA_INSTRUCTIONS = """You are Lumara's mission-assurance engineer. With execute=false: run simulate_landing on the plan
(Monte Carlo on orbital data: useful but blind to sub-resolution boulders and true slopes), then give a go/no-go with the
predicted success, fuel reserve and contingencies. With execute=true and a GO: call execute_landing exactly once
(irreversible) and report the outcome, cause and telemetry it returns. Obey every lesson in your playbook."""


def _last(ctx: PolicyContext, name: str) -> Any:
    for ex in reversed(ctx.recent):
        if ex.name == name and not ex.is_error:
            return ex.result
    return None


def lead_policy(ctx: PolicyContext) -> Any:
    """An offline lead: the three delegations in order, re-planning on a different site after review feedback."""
    stage = "plan"
    rejected: list[str] = []
    plan_ok: dict[str, Any] = {}
    for note in ctx.notes:
        if isinstance(note, dict) and note.get("stage"):
            stage = note["stage"]
            if note.get("feedback"):
                tried = [ex.input.get("site", {}).get("site_id") for ex in ctx.exchanges if ex.name == "delegate_navigation"]
                rejected = [t for t in tried if t]
    for ex in ctx.exchanges:
        if ex.name == "delegate_mission_assurance" and not ex.is_error and not ex.input.get("execute"):
            plan_ok = ex.input
    if stage == "land":
        result = _last(ctx, "delegate_mission_assurance")
        if result is None:
            return Call("delegate_mission_assurance", {**plan_ok, "execute": True})
        tel = result.get("telemetry") or {}
        claims = {k: tel.get(k) for k in ("outcome", "cause", "vertical_speed_mps", "horizontal_speed_mps", "landed_upright") if k in tel}
        return LeadReport(stage="land", site_id=plan_ok.get("site", {}).get("site_id"), go=True, claims=claims, summary=f"Landing executed: {result.get('outcome')} ({result.get('cause')}).")
    site = _last(ctx, "delegate_site_selection")
    if site is None:
        return Call("delegate_site_selection", {"exclude_sites": rejected})
    plan = _last(ctx, "delegate_navigation")
    if plan is None:
        return Call("delegate_navigation", {"site": site})
    review = _last(ctx, "delegate_mission_assurance")
    if review is None:
        return Call("delegate_mission_assurance", {"site": site, "plan": plan, "execute": False})
    return LeadReport(stage="plan", site_id=site["site_id"], go=review["go"], predicted_success=review["predicted_success"], predicted_fuel_reserve_kg=review["predicted_fuel_reserve_kg"], summary=review.get("rationale", ""))


def judge_policy(ctx: PolicyContext) -> Any:
    """Offline judge for `report_consistent`: compares each structured claim with the telemetry field it names."""
    ev = ctx.task.get("evidence", {}) if isinstance(ctx.task, dict) else {}
    claims = ev.get("report.claims") or {}
    tel = ev.get("telemetry") or {}
    wrong = []
    for k, v in claims.items():
        t = tel.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and isinstance(t, (int, float)):
            if abs(v - t) > 0.05 * max(1.0, abs(t)):
                wrong.append(k)
        elif v != t:
            wrong.append(k)
    if not claims:
        return {"score": 1, "rationale": "The report makes no claims to check against the telemetry.", "evidence_ids": ["report.claims"]}
    score = 4 if not wrong else (0 if {"outcome", "cause", "landed_upright"} & set(wrong) else 2)
    why = "Every claim matches the telemetry." if not wrong else f"Claims disagree with telemetry: {', '.join(sorted(wrong))}."
    return {"score": score, "rationale": why, "evidence_ids": ["report.claims", "telemetry"]}


def evidence(state: dict[str, Any], mission: Mission) -> dict[str, Any]:
    """Telemetry from the simulator and a few cross-checks; never the agents' conversations."""
    res = state.get("outputs", {})
    site = res.get("site_selection") or {}
    plan = res.get("navigation") or {}
    ma = res.get("mission_assurance") or {}
    report = state.get("lead_output") or {}
    return {
        "telemetry": mission.telemetry or {},
        "checks": {
            "plan_matches_site": bool(site) and plan.get("site_id") == site.get("site_id"),
            "go_consistent": bool(ma) and report.get("go") == ma.get("go"),
        },
    }


def outcome(state: dict[str, Any], mission: Mission) -> dict[str, Any]:
    """The run's domain outcome for the runs table and reports: landed or not, and why."""
    tel = mission.telemetry
    if tel is None:
        return {"executed": False, "cause": "scrubbed" if state.get("status") == "failed" else state.get("status")}
    return {"executed": True, "outcome": tel.get("outcome"), "cause": tel.get("cause"), "cause_detail": tel.get("cause_detail")}


def make_job(seed: int) -> dict[str, Any]:
    return {"seed": seed, "mission": "land near the science target at the lunar south pole"}


def _team(oracle: bool) -> tuple[Specialist, ...]:
    tools = ORACLE_TOOLS if oracle else SPECIALIST_TOOLS
    pol = ORACLE_POLICIES if oracle else policies.POLICIES
    return (
        Specialist(name="site_selection", description="Chooses the landing site from orbital products.", instructions=SITE_INSTRUCTIONS, tools=tuple(tools["site_selection"]), input_type=SiteTask, output_type=SiteChoice, policy=pol["site_selection"], decisions=tuple(SiteAttributes.model_fields), budget=Budget(max_turns=20, max_tokens=400_000)),
        Specialist(name="navigation", description="Plans the powered descent for a site.", instructions=NAV_INSTRUCTIONS, tools=tuple(tools["navigation"]), input_type=NavTask, output_type=DescentPlan, policy=pol["navigation"], decisions=("sensor", "hover_altitude_m", "divert_budget_m", "altimeter_rejection_m", "terminal_rate_mps"), budget=Budget(max_turns=12, max_tokens=300_000)),
        Specialist(name="mission_assurance", description="Go/no-go from planning simulations; executes the landing.", instructions=MA_INSTRUCTIONS, tools=tuple(tools["mission_assurance"]), input_type=AssuranceTask, output_type=AssuranceResult, policy=pol["mission_assurance"], decisions=("go",), budget=Budget(max_turns=12, max_tokens=300_000)),
    )


def _workflow(name: str, oracle: bool) -> Workflow:
    return Workflow(
        name=name,
        lead=Lead(instructions=LEAD_INSTRUCTIONS, output_type=LeadReport, policy=lead_policy, budget=Budget(max_turns=30, max_tokens=600_000)),
        specialists=_team(oracle),
        stages=(
            Stage(name="plan", rubric=str(ROOT / "rubrics/lumara_preflight.yaml"), brief="Choose a site, plan the descent, get a go/no-go. Nothing irreversible."),
            Stage(name="land", rubric=str(ROOT / "rubrics/lumara_landing.yaml"), brief="Execute the approved plan (once) and report what the telemetry shows."),
        ),
        job=make_job,
        deps=lambda job: Mission(job["seed"]),
        evidence=evidence,
        outcome=outcome,
        judge_policy=judge_policy,
        picture=draw_landing,
        scenarios=scenario_seeds,
    )


workflow = _workflow("lumara", oracle=False)
oracle = _workflow("lumara_oracle", oracle=True)
reference = reference_playbooks
