"""Lumara tools: typed functions over `ctx.deps` (a Mission) that agents call.

Orbital tools see only what orbit can see; `execute_landing` flies ground truth once;
the `oracle_*` tools exist only for the oracle upper bound.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from orchestra.tools import RunContext, tool

from .mission import Mission
from .types import Sensor

# Constraints ride on the defaults (Field(...)) so they survive any type-hint resolution.
SITE = Field(..., description="candidate site id, e.g. 'S03'")
SENSOR = Field(..., description="navigation and hazard sensor: 'optical' (camera, needs light) or 'lidar' (works in the dark, costs 8 kg of propellant)")
HOVER = Field(..., ge=10, le=500, description="hover altitude for the hazard-detection scan, metres above the site")
DIVERT = Field(..., ge=0, le=300, description="largest lateral divert the lander may fly after the scan, metres")
REJECTION = Field(..., ge=5, le=2000, description="altimeter readings differing from the estimate by more than this are rejected as faults, metres")
TERMINAL = Field(..., gt=0, le=5, description="vertical speed during the last 15 m of descent, m/s")


def _plan(sensor: str, hover_altitude_m: float, divert_budget_m: float, altimeter_rejection_m: float, terminal_rate_mps: float) -> dict[str, Any]:
    return {"sensor": sensor, "hover_altitude_m": hover_altitude_m, "divert_budget_m": divert_budget_m,
            "altimeter_rejection_m": altimeter_rejection_m, "terminal_rate_mps": terminal_rate_mps}


@tool
def list_candidate_sites(ctx: RunContext[Mission]) -> dict[str, Any]:
    """List the candidate landing sites with their orbital attributes, plus sun, Earth, approach azimuth and the science target.

    Site attributes: slope_deg (orbital, ~5 m/px, error ~2°), roughness_m, shadow_fraction (site, at the landing sun),
    approach_shadow_fraction (last 1 km of approach ground track), rim_distance_m (nearest fresh crater rim),
    cliff_distance_m, relief_m (largest height difference from the site along the last 1 km of approach),
    earth_visible, earth_clearance_deg (how far Earth stands above the local horizon, degrees),
    distance_to_target_m, science_value (0..1).
    """
    return ctx.deps.candidates()


@tool
def survey_site(ctx: RunContext[Mission], site_id: str = SITE) -> dict[str, Any]:
    """Orbital-resolution survey of one site and its approach: the site attributes plus local relief, slope spread,
    boulders big enough to see from orbit (>= ~2 m), nearby fresh craters, and the approach height/light profile
    (every 50 m, from the site back up-range). Orbital data cannot show boulders under ~2 m or slopes below ~5 m scale.
    """
    return ctx.deps.survey(site_id)


@tool
def plan_descent(
    ctx: RunContext[Mission],
    site_id: str = SITE,
    sensor: Sensor = SENSOR,
    hover_altitude_m: float = HOVER,
    divert_budget_m: float = DIVERT,
    altimeter_rejection_m: float = REJECTION,
    terminal_rate_mps: float = TERMINAL,
) -> dict[str, Any]:
    """Check a descent plan: nominal propellant by phase with the full divert budget spent, the predicted fuel
    reserve (kg), feasibility, hazard-map reach and smallest detectable boulder at the hover altitude, and warnings.
    """
    return ctx.deps.plan(site_id, **_plan(sensor, hover_altitude_m, divert_budget_m, altimeter_rejection_m, terminal_rate_mps))


@tool
def simulate_landing(
    ctx: RunContext[Mission],
    site_id: str = SITE,
    sensor: Sensor = SENSOR,
    hover_altitude_m: float = HOVER,
    divert_budget_m: float = DIVERT,
    altimeter_rejection_m: float = REJECTION,
    terminal_rate_mps: float = TERMINAL,
    runs: int = Field(50, ge=1, le=200, description="number of Monte Carlo runs"),
) -> dict[str, Any]:
    """Monte Carlo of the descent on ORBITAL data with dispersions (thrust, navigation, sensor noise): predicted
    success rate, failure probabilities by cause, fuel reserve statistics, touchdown speeds. Useful but biased:
    it cannot see boulders under ~2 m or true local slopes, assumes flat terrain along the approach for the
    altimeter, uses the camera's spec shadow tolerance, and does not model Earth link or power after landing.
    """
    return ctx.deps.simulate(site_id, runs=runs, **_plan(sensor, hover_altitude_m, divert_budget_m, altimeter_rejection_m, terminal_rate_mps))


@tool
def execute_landing(
    ctx: RunContext[Mission],
    site_id: str = SITE,
    sensor: Sensor = SENSOR,
    hover_altitude_m: float = HOVER,
    divert_budget_m: float = DIVERT,
    altimeter_rejection_m: float = REJECTION,
    terminal_rate_mps: float = TERMINAL,
) -> dict[str, Any]:
    """IRREVERSIBLE: fly the real landing with this plan. Allowed once per mission. Returns touchdown telemetry:
    outcome, cause (none, tip_over, hard_landing, boulder_strike, fuel_exhaustion, nav_loss_shadow,
    altimeter_rejection, far_from_target, no_earth_link, no_power), cause_detail, speeds, slope, fuel, link, power.
    """
    return ctx.deps.execute(site_id, **_plan(sensor, hover_altitude_m, divert_budget_m, altimeter_rejection_m, terminal_rate_mps))


@tool
def landing_report(ctx: RunContext[Mission]) -> dict[str, Any]:
    """Telemetry of the landing already executed in this mission (error if none was executed)."""
    return ctx.deps.report()


@tool
def oracle_survey(ctx: RunContext[Mission], site_id: str = SITE) -> dict[str, Any]:
    """ORACLE ONLY: ground truth around a site (true slopes, boulder hazards, light, Earth line of sight, altimeter jump)."""
    return ctx.deps.oracle(site_id)


@tool
def oracle_simulate(
    ctx: RunContext[Mission],
    site_id: str = SITE,
    sensor: Sensor = SENSOR,
    hover_altitude_m: float = HOVER,
    divert_budget_m: float = DIVERT,
    altimeter_rejection_m: float = REJECTION,
    terminal_rate_mps: float = TERMINAL,
    runs: int = Field(40, ge=1, le=200, description="number of Monte Carlo runs"),
) -> dict[str, Any]:
    """ORACLE ONLY: Monte Carlo of the descent on ground truth, including link and power."""
    return ctx.deps.oracle_simulate(site_id, runs=runs, **_plan(sensor, hover_altitude_m, divert_budget_m, altimeter_rejection_m, terminal_rate_mps))


SPECIALIST_TOOLS = {
    "site_selection": [list_candidate_sites, survey_site],
    "navigation": [survey_site, plan_descent, simulate_landing],
    "mission_assurance": [plan_descent, simulate_landing, execute_landing, landing_report],
}

ORACLE_TOOLS = {
    "site_selection": [list_candidate_sites, survey_site, oracle_survey, oracle_simulate],
    "navigation": [survey_site, plan_descent, oracle_survey, oracle_simulate],
    "mission_assurance": [plan_descent, simulate_landing, oracle_simulate, execute_landing, landing_report],
}

ALL_TOOLS = [list_candidate_sites, survey_site, plan_descent, simulate_landing, execute_landing, landing_report,
             oracle_survey, oracle_simulate]
