"""Mission: the per-run deps object tools receive as `ctx.deps`.

It builds its scenario lazily, answers orbital queries, runs planning simulations on
orbital data and flies the one irreversible landing on ground truth.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from orchestra.tools import ToolError

from .hazards import detection_size_m
from .lander import VEHICLE, Flight, Plan, World, approach_profile, fly, nominal_fuel
from .orbital import APPROACH_M, SITE_RADIUS_M, SLOPE_RADIUS_M, disk, rim_distance, track_points
from .outcomes import Classified, classify, summary, telemetry
from .scenarios import Scenario, build_scenario
from .shadows import clearance_deg, visible_toward
from .terrain import HAZARD_BOULDER_M
from .types import SiteInfo

OPTICAL_SPEC_SHADOW = 0.5
OPTICAL_TRUE_SHADOW = 0.4


def shadow_around(sc: Scenario, x: float, y: float, radius: float) -> float:
    """Share of the ground within `radius` of (x, y) dark now or later; a point off the map reads the map's edge,
    as the flight's own cell lookups do."""
    t = sc.terrain
    edge = t.n * t.dx - 1e-6
    i, j = disk(min(max(x, 0.0), edge), min(max(y, 0.0), edge), radius, t.dx, t.n)
    return float(1.0 - (sc.lit & sc.lit_later)[i, j].mean())


class Mission:
    """One landing attempt in one scenario; `execute` may run once."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.executed: dict[str, Any] | None = None
        self.flight: Flight | None = None
        self.executed_site: str | None = None
        self.executed_plan: Plan | None = None

    @property
    def telemetry(self) -> dict[str, Any] | None:
        """Telemetry of the executed landing, or None before execution."""
        return self.executed

    @cached_property
    def scenario(self) -> Scenario:
        return build_scenario(self.seed)

    @cached_property
    def truth(self) -> World:
        sc = self.scenario
        t = sc.terrain
        return World(dem=t.dem, dx=t.dx, slope=t.slope_deg, boulder=t.boulder_max, lit=sc.lit, lit_later=sc.lit_later,
                     lit_hint=sc.lit, slope_noise=sc.slope_noise, target=sc.target, approach_az_deg=sc.approach_az_deg, earth=sc.earth,
                     nav_tolerance=OPTICAL_TRUE_SHADOW, altimeter_terrain=True, ops_modelled=True, label="truth")

    @cached_property
    def orbital_world(self) -> World:
        o = self.scenario.orbital
        boulder = np.zeros(o.dem.shape, np.float32)
        if len(o.boulders):
            i, j = o.cell(o.boulders[:, 0], o.boulders[:, 1])
            np.maximum.at(boulder, (i, j), o.boulders[:, 2].astype(np.float32))
        return World(dem=o.dem, dx=o.dx, slope=o.slope_deg, boulder=boulder, lit=o.lit, lit_later=o.lit, lit_hint=o.lit,
                     slope_noise=np.zeros(o.dem.shape, np.float32),
                     target=self.scenario.target, approach_az_deg=self.scenario.approach_az_deg, earth=None,
                     nav_tolerance=OPTICAL_SPEC_SHADOW, altimeter_terrain=False, ops_modelled=False, label="orbital")

    def site(self, site_id: str) -> SiteInfo:
        try:
            return self.scenario.site(site_id)
        except KeyError:
            ids = ", ".join(s.site_id for s in self.scenario.sites)
            raise ToolError(f"unknown site {site_id!r}; candidates are {ids}") from None

    def candidates(self) -> dict[str, Any]:
        sc = self.scenario
        return {
            "sun_azimuth_deg": round(sc.sun[0], 1),
            "sun_elevation_deg": round(sc.sun[1], 2),
            "earth_azimuth_deg": round(sc.earth[0], 1),
            "earth_elevation_deg": round(sc.earth[1], 2),
            "approach_azimuth_deg": round(sc.approach_az_deg, 1),
            "target_x_m": round(sc.target[0], 1),
            "target_y_m": round(sc.target[1], 1),
            "site_count": len(sc.sites),
            "sites": [s.model_dump() for s in sc.sites],
        }

    def survey(self, site_id: str) -> dict[str, Any]:
        """Orbital-resolution detail around one site and along its approach."""
        s = self.site(site_id)
        o = self.scenario.orbital
        i, j = disk(s.x_m, s.y_m, 100.0, o.dx, o.n)
        si, sj = o.cell(s.x_m, s.y_m)
        h0 = float(o.dem[si, sj])
        near = disk(s.x_m, s.y_m, SITE_RADIUS_M, o.dx, o.n)
        tx, ty = track_points(s.x_m, s.y_m, self.scenario.approach_az_deg, APPROACH_M, 50.0)
        ti, tj = o.cell(tx, ty)
        b = o.boulders
        nb = int(np.sum(np.hypot(b[:, 0] - s.x_m, b[:, 1] - s.y_m) <= 100.0)) if len(b) else 0
        cat = o.catalogue
        dist = np.hypot(cat.x - s.x_m, cat.y - s.y_m)
        fresh_near = cat.fresh & (dist <= 300.0)
        out = s.model_dump()
        out.update({
            "local_relief_m": round(float(np.max(np.abs(o.dem[i, j] - h0))), 1),
            "max_slope_deg": round(float(np.max(o.slope_deg[near])), 1),
            "slope_p90_deg": round(float(np.percentile(o.slope_deg[near], 90)), 1),
            "visible_boulders_100m": nb,
            "fresh_craters_300m": int(fresh_near.sum()),
            "largest_fresh_crater_300m_m": round(float(cat.d[fresh_near].max()), 1) if fresh_near.any() else 0.0,
            "approach_azimuth_deg": round(self.scenario.approach_az_deg, 1),
            "approach_heights_m": [round(float(v - h0), 1) for v in o.dem[ti, tj]],
            "approach_lit": [bool(v) for v in o.lit[ti, tj]],
            "sun_elevation_deg": round(self.scenario.sun[1], 2),
            "orbital_resolution_m": o.dx,
            "slope_noise_deg": round(o.slope_noise_deg, 2),
            "notes": "Orbital data: ~5 m/px, slope error ~2°, boulders under ~2 m are not visible.",
        })
        return out

    def _plan(self, site_id: str, sensor: str, hover_altitude_m: float, divert_budget_m: float,
              altimeter_rejection_m: float, terminal_rate_mps: float) -> Plan:
        self.site(site_id)
        return Plan(sensor=sensor, hover_altitude_m=float(hover_altitude_m), divert_budget_m=float(divert_budget_m),
                    altimeter_rejection_m=float(altimeter_rejection_m), terminal_rate_mps=float(terminal_rate_mps))

    def plan(self, site_id: str, **plan: Any) -> dict[str, Any]:
        """Nominal fuel budget and engineering checks of a plan (orbital data, no dispersions)."""
        p = self._plan(site_id, **plan)
        s = self.site(site_id)
        fuel = nominal_fuel(p, (s.x_m, s.y_m), self.scenario.target, self.scenario.approach_az_deg)
        warnings = []
        if p.terminal_rate_mps > 2.0:
            warnings.append("terminal rate exceeds the 2 m/s touchdown limit")
        if p.sensor == "optical" and s.approach_shadow_fraction > OPTICAL_SPEC_SHADOW:
            warnings.append(f"optical navigation: approach shadow {s.approach_shadow_fraction:.2f} exceeds the camera spec ({OPTICAL_SPEC_SHADOW})")
        reach = float(VEHICLE.hda_reach_m(p.hover_altitude_m))
        if reach < p.divert_budget_m:
            warnings.append(f"hazard map reach {reach:.0f} m is smaller than the divert budget")
        if fuel["reserve_kg"] < 0:
            warnings.append("infeasible: the plan needs more propellant than loaded")
        return {
            "site_id": site_id,
            "sensor": p.sensor,
            "feasible": fuel["reserve_kg"] >= 0,
            "predicted_fuel_reserve_kg": fuel["reserve_kg"],
            "fuel_loaded_kg": fuel["fuel_loaded_kg"],
            "fuel_approach_kg": fuel["approach_kg"],
            "fuel_scan_kg": fuel["scan_kg"],
            "fuel_divert_kg": fuel["divert_kg"],
            "fuel_descent_kg": fuel["descent_kg"],
            "hazard_map_reach_m": round(reach, 1),
            "hazard_detection_size_m": round(float(detection_size_m(p.hover_altitude_m)), 2),
            "descent_time_s": round(max(p.hover_altitude_m - VEHICLE.terminal_gate_m, 0) / VEHICLE.descent_rate_mps
                                    + min(p.hover_altitude_m, VEHICLE.terminal_gate_m) / p.terminal_rate_mps, 1),
            "warnings": warnings,
        }

    def _fly(self, world: World, site_id: str, p: Plan, stream: int, runs: int, record: bool = False) -> tuple[Flight, Classified]:
        s = self.site(site_id)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed & 0xFFFFFFFF, self.seed >> 32, stream]))
        f = fly(world, (s.x_m, s.y_m), p, rng, runs, record=record)
        return f, classify(f)

    def simulate(self, site_id: str, runs: int = 50, **plan: Any) -> dict[str, Any]:
        """Planning Monte Carlo on orbital maps: landing dynamics only, blind to what orbit cannot see."""
        p = self._plan(site_id, **plan)
        f, c = self._fly(self.orbital_world, site_id, p, 11, runs)
        out = {"site_id": site_id, "sensor": p.sensor, **summary(f, c)}
        out["not_modelled"] = ["boulders under ~2 m", "slopes below orbital resolution", "terrain along the approach (altimeter)",
                               "Earth link", "power after landing"]
        return out

    def execute(self, site_id: str, **plan: Any) -> dict[str, Any]:
        """Fly the real landing once, on ground truth."""
        if self.executed is not None:
            raise ToolError(f"the landing was already executed at {self.executed_site} (outcome {self.executed['outcome']}, "
                            f"cause {self.executed['cause']}); it cannot be repeated. Use landing_report for its telemetry.")
        p = self._plan(site_id, **plan)
        f, c = self._fly(self.truth, site_id, p, 12, 1, record=True)
        tel = telemetry(f, c, 0, p.altimeter_rejection_m, self.truth.nav_tolerance)
        if tel["cause"] == "boulder_strike":
            # what a failure review reads off the orbital map: boulders too small to see cluster on fresh rims
            rim = rim_distance(self.scenario.orbital.catalogue, float(f.td_x[0]), float(f.td_y[0]))
            tel["cause_detail"] += f" It came down {rim:.0f} m from the nearest fresh crater rim in the orbital catalogue."
        # what the lander's own cameras and a local illumination model show around it after touchdown
        tel["shadow_within_30m"] = round(shadow_around(self.scenario, float(f.td_x[0]), float(f.td_y[0]), 30.0), 3)
        # what the altimeter logged: its rejection gate over the largest jump in terrain relief it saw on the approach
        tel["altimeter_margin"] = round(min(p.altimeter_rejection_m / max(float(f.jump_seen_m[0]), 1e-9), 99.0), 3)
        # what the radio sees after touchdown: how far Earth stands above the local horizon
        t = self.scenario.terrain
        tel["earth_margin_deg"] = round(float(clearance_deg(t.dem, t.dx, f.td_x[:1], f.td_y[:1], *self.scenario.earth)[0]), 2)
        tel = {"site_id": site_id, **tel}
        self.flight, self.executed, self.executed_site, self.executed_plan = f, tel, site_id, p
        return tel

    def report(self) -> dict[str, Any]:
        if self.executed is None:
            raise ToolError("no landing has been executed in this mission yet")
        return dict(self.executed)

    def oracle(self, site_id: str) -> dict[str, Any]:
        """Ground truth around a site: true slopes, boulders, light, Earth line of sight, approach jump."""
        s = self.site(site_id)
        w = self.truth
        t = self.scenario.terrain
        i, j = disk(s.x_m, s.y_m, SLOPE_RADIUS_M, t.dx, t.n)
        slope = t.slope_deg[i, j]
        i3, j3 = disk(s.x_m, s.y_m, 30.0, t.dx, t.n)
        hazard = t.boulder_max[i3, j3] >= HAZARD_BOULDER_M
        powered = self.scenario.lit & self.scenario.lit_later
        safe = ~hazard & (t.slope_deg[i3, j3] <= 10.0) & powered[i3, j3]
        i5, j5 = disk(s.x_m, s.y_m, SITE_RADIUS_M, t.dx, t.n)
        asf, jump = approach_profile(w, s.x_m, s.y_m)
        earth = visible_toward(t.dem, t.dx, np.array([s.x_m]), np.array([s.y_m]), *self.scenario.earth)[0]
        return {
            "site_id": site_id,
            "true_slope_mean_deg": round(float(slope.mean()), 2),
            "true_steep_fraction": round(float(np.mean(slope > 12.0)), 3),
            "hazard_cell_fraction": round(float(hazard.mean()), 3),
            "boulder_density_per_m2": round(float(t.boulder_density[i3, j3].mean()), 4),
            "safe_lit_cell_fraction": round(float(safe.mean()), 3),
            "true_shadow_fraction": round(float(1.0 - powered[i5, j5].mean()), 3),
            "true_approach_shadow_fraction": round(asf, 3),
            "optical_shadow_tolerance": OPTICAL_TRUE_SHADOW,
            "true_altimeter_jump_m": round(jump, 1),
            "true_earth_visible": bool(earth),
            "distance_to_target_m": s.distance_to_target_m,
        }

    def oracle_simulate(self, site_id: str, runs: int = 50, **plan: Any) -> dict[str, Any]:
        """Monte Carlo on ground truth (oracle only)."""
        p = self._plan(site_id, **plan)
        f, c = self._fly(self.truth, site_id, p, 13, runs)
        return {"site_id": site_id, "sensor": p.sensor, **summary(f, c)}
