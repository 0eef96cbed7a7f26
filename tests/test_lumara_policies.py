"""Lumara policies: they read orbital products, obey playbook rules, and fly whole missions offline."""

from __future__ import annotations

import json

import pytest

from orchestra.rules import Condition, Rule

from lumara.driver import fly_mission, run_specialist
from lumara.mission import Mission
from lumara.oracle import ORACLE_POLICIES
from lumara.picture import draw_landing
from lumara.policies import POLICIES
from lumara.scenarios import scenario_seeds
from lumara.tools import ORACLE_TOOLS, SPECIALIST_TOOLS
from lumara.types import AssuranceResult, AssuranceTask, DescentPlan, NavTask, SiteChoice, SiteTask

SEEDS = scenario_seeds("train", 6)
SITE_FIELDS = ("slope_deg", "roughness_m", "shadow_fraction", "approach_shadow_fraction", "rim_distance_m",
               "cliff_distance_m", "relief_m", "earth_visible", "earth_clearance_deg", "distance_to_target_m", "science_value")


def rule(field: str, op: str, value, when: tuple | None = None) -> Rule:
    cond = [Condition(field=when[0], op=when[1], value=when[2])] if when else []
    return Rule(when=cond, require=Condition(field=field, op=op, value=value))


def choose_site(seed: int, rules: list[Rule]) -> SiteChoice:
    e = run_specialist("site_selection", POLICIES["site_selection"], SiteTask(), Mission(seed),
                       SPECIALIST_TOOLS["site_selection"], rules)
    return SiteChoice.model_validate(e.output)


def plan_for(seed: int, site: SiteChoice, rules: list[Rule], note: str = "") -> DescentPlan:
    e = run_specialist("navigation", POLICIES["navigation"], NavTask(site=site, note=note), Mission(seed),
                       SPECIALIST_TOOLS["navigation"], rules)
    return DescentPlan.model_validate(e.output)


def _site_where(pred) -> tuple[int, SiteChoice]:
    for seed in scenario_seeds("train", 40):
        for s in Mission(seed).scenario.sites:
            if pred(s):
                return seed, SiteChoice(site_id=s.site_id, **{k: getattr(s, k) for k in SITE_FIELDS})
    raise AssertionError("no such site in 40 scenarios")


def test_slope_rule_changes_the_chosen_site():
    seed = next(s for s in SEEDS if choose_site(s, []).slope_deg > 5.0 and
                any(x.slope_deg <= 5.0 for x in Mission(s).scenario.sites))
    naive = choose_site(seed, [])
    ruled = choose_site(seed, [rule("output.slope_deg", "<=", 5.0)])
    assert naive.slope_deg > 5.0
    assert ruled.site_id != naive.site_id and ruled.slope_deg <= 5.0
    assert "playbook" in ruled.rationale


def test_sensor_rule_flips_navigation_to_lidar_in_half_light():
    seed, site = _site_where(lambda s: 0.25 < s.approach_shadow_fraction < 0.45 and s.shadow_fraction < 0.6)
    r = rule("output.sensor", "==", "lidar", when=("input.site.approach_shadow_fraction", ">", 0.2))
    assert plan_for(seed, site, []).sensor == "optical"
    assert plan_for(seed, site, [r]).sensor == "lidar"
    unrelated = rule("output.sensor", "==", "lidar", when=("input.site.approach_shadow_fraction", ">", 0.9))
    assert plan_for(seed, site, [unrelated]).sensor == "optical"


def test_navigation_obeys_numeric_rules_and_rules_on_tool_features():
    seed, site = _site_where(lambda s: s.roughness_m < 1.0)
    naive = plan_for(seed, site, [])
    rules = [rule("output.hover_altitude_m", ">=", naive.hover_altitude_m + 40.0),
             rule("output.altimeter_rejection_m", ">=", 400.0, when=("tool.survey_site.local_relief_m", ">=", 0.0)),
             rule("output.terminal_rate_mps", "<=", 1.0)]
    ruled = plan_for(seed, site, rules)
    assert ruled.hover_altitude_m >= naive.hover_altitude_m + 40.0
    assert ruled.altimeter_rejection_m >= 400.0 and ruled.terminal_rate_mps <= 1.0
    reserve = rule("output.predicted_fuel_reserve_kg", ">=", naive.predicted_fuel_reserve_kg + 2.0)
    trimmed = plan_for(seed, site, [reserve])
    assert trimmed.predicted_fuel_reserve_kg >= naive.predicted_fuel_reserve_kg + 2.0
    assert trimmed.divert_budget_m < naive.divert_budget_m


def test_navigation_reacts_to_feedback_notes():
    seed, site = _site_where(lambda s: s.approach_shadow_fraction < 0.3)
    plan = plan_for(seed, site, [], note="Landing failed: hard_landing at 2.4 m/s; also nav_loss_shadow risk.")
    assert plan.terminal_rate_mps <= 1.2 and plan.sensor == "lidar"


def test_assurance_go_rule_blocks_execution():
    seed = SEEDS[0]
    m = Mission(seed)
    site = choose_site(seed, [])
    plan = plan_for(seed, site, [])
    task = AssuranceTask(site=site, plan=plan, execute=True)
    never = rule("output.go", "==", False, when=("tool.simulate_landing.predicted_success", "<=", 1.0))
    e = run_specialist("mission_assurance", POLICIES["mission_assurance"], task, m, SPECIALIST_TOOLS["mission_assurance"], [never])
    res = AssuranceResult.model_validate(e.output)
    assert not res.go and not res.executed and m.executed is None
    assert [x["tool"] for x in e.tool_log] == ["simulate_landing"]


def test_baseline_mission_end_to_end_uses_only_orbital_tools(tmp_path):
    run = fly_mission(SEEDS[1])
    rep = run.report
    assert rep.assurance is not None and rep.assurance.executed
    assert rep.assurance.cause == rep.assurance.telemetry["cause"]
    used = {x["tool"] for e in run.episodes for x in e.tool_log}
    assert used <= {"list_candidate_sites", "survey_site", "plan_descent", "simulate_landing", "execute_landing", "landing_report"}
    assert not any(x["is_error"] for e in run.episodes for x in e.tool_log)
    for e in run.episodes:
        json.dumps(e.output)
    png = draw_landing(run.mission, tmp_path / "landing.png")
    assert png.stat().st_size > 20_000


def test_oracle_uses_ground_truth_and_lands():
    wins = 0
    for seed in SEEDS[:3]:
        run = fly_mission(seed, policies=ORACLE_POLICIES, tools=ORACLE_TOOLS)
        assert any(x["tool"] == "oracle_survey" for e in run.episodes for x in e.tool_log)
        wins += run.report.success
    assert wins >= 2


def test_tool_schemas_are_model_friendly():
    for tools in SPECIALIST_TOOLS.values():
        for t in tools:
            assert t.takes_ctx and "ctx" not in t.input_schema.get("properties", {})
            assert len(t.description) > 40
    sim = next(t for t in SPECIALIST_TOOLS["mission_assurance"] if t.name == "simulate_landing")
    props = sim.input_schema["properties"]
    assert props["sensor"]["enum"] == ["optical", "lidar"]
    assert props["hover_altitude_m"]["minimum"] == 10 and props["runs"]["default"] == 50
    with pytest.raises(Exception):
        sim.validate({"site_id": "S01", "sensor": "radar", "hover_altitude_m": 50, "divert_budget_m": 10,
                      "altimeter_rejection_m": 100, "terminal_rate_mps": 1.0})
