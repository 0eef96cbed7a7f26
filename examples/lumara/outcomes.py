"""Outcomes with causes: touchdown limits, root-cause attribution, telemetry a grader can read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .lander import Flight

MAX_VERTICAL_MPS = 2.0
MAX_HORIZONTAL_MPS = 0.5
MAX_SLOPE_DEG = 12.0
CRASH_VERTICAL_MPS = 3.5
MAX_TARGET_DISTANCE_M = 1000.0


@dataclass(frozen=True)
class Classified:
    """Per-run cause and outcome strings plus the failure flags behind them."""

    cause: np.ndarray
    outcome: np.ndarray
    landed_upright: np.ndarray

    @property
    def success(self) -> np.ndarray:
        return self.cause == "none"


def classify(f: Flight) -> Classified:
    """Pick one root cause per run: sensor faults first, then what physically broke, then operations."""
    hard = f.vz > MAX_VERTICAL_MPS
    crash = f.ground_approach | (f.vz > CRASH_VERTICAL_MPS)
    tip = (f.slope > MAX_SLOPE_DEG) | (f.vh > MAX_HORIZONTAL_MPS)
    landing_fail = crash | hard | tip | f.boulder_hit | f.exhausted
    far = f.dist_target > MAX_TARGET_DISTANCE_M
    no_link = np.zeros_like(hard) if f.earth is None else ~f.earth
    no_power = ~f.lit if f.ops_modelled else np.zeros_like(hard)
    conditions = [
        (landing_fail | far) & f.rejected,
        (landing_fail | far) & f.nav_lost,
        f.exhausted,
        f.boulder_hit,
        crash | hard,
        tip,
        far,
        no_link,
        no_power,
    ]
    names = ["altimeter_rejection", "nav_loss_shadow", "fuel_exhaustion", "boulder_strike", "hard_landing",
             "tip_over", "far_from_target", "no_earth_link", "no_power"]
    cause = np.select(conditions, names, default="none")
    upright = ~(crash | tip | f.boulder_hit | f.exhausted)
    outcome = np.where(crash | f.exhausted, "crashed",
                       np.where(tip | f.boulder_hit, "tipped_over",
                                np.where(cause == "none", "landed", "landed_degraded")))
    return Classified(cause=cause, outcome=outcome, landed_upright=upright)


def cause_detail(f: Flight, c: Classified, k: int, rejection_m: float, nav_tolerance: float) -> str:
    """One or two sentences a grader (or a person) can act on."""
    cause = str(c.cause[k])
    where = f"touched down {f.dist_target[k]:.0f} m from the science target"
    if cause == "altimeter_rejection":
        sense = "higher" if f.bias_m[k] < 0 else "lower"
        return (f"The altimeter saw a {abs(f.jump_m):.0f} m jump in terrain relief along the approach, above the "
                f"{rejection_m:.0f} m rejection threshold, and was rejected as faulty; the altitude estimate drifted "
                f"(lander was {abs(f.bias_m[k]):.0f} m {sense} than it believed) and it reached the ground at "
                f"{f.vz[k]:.1f} m/s with {f.fuel_left[k]:.1f} kg of fuel.")
    if cause == "nav_loss_shadow":
        return (f"Optical terrain-relative navigation lost lock: {100 * f.approach_shadow:.0f}% of the approach "
                f"ground track was in shadow (the camera copes with about {100 * nav_tolerance:.0f}%); it {where} "
                f"at {f.vh[k]:.1f} m/s sideways.")
    if cause == "fuel_exhaustion":
        return (f"Propellant ran out {max(f.gate_alt_m[k], 0):.0f} m-gate descent after a {f.divert_m[k]:.0f} m divert; "
                f"the lander fell and hit at {f.vz[k]:.1f} m/s.")
    if cause == "boulder_strike":
        seen = "the hazard map had no safe cell within reach" if not f.hda_found[k] else "the boulder was below the hazard sensor's resolution"
        return f"A {f.boulder_d[k]:.2f} m boulder under a footpad tipped the lander; {seen}."
    if cause == "hard_landing":
        return f"Touched down at {f.vz[k]:.2f} m/s vertical, above the {MAX_VERTICAL_MPS:.0f} m/s limit."
    if cause == "tip_over":
        return (f"Tipped over: local slope {f.slope[k]:.1f}° (limit {MAX_SLOPE_DEG:.0f}°), horizontal speed "
                f"{f.vh[k]:.2f} m/s (limit {MAX_HORIZONTAL_MPS} m/s).")
    if cause == "far_from_target":
        return f"Landed safely but {f.dist_target[k]:.0f} m from the science target (limit {MAX_TARGET_DISTANCE_M:.0f} m)."
    if cause == "no_earth_link":
        return "Landed safely but Earth is below the local horizon at the touchdown point: no direct link."
    if cause == "no_power":
        return "Landed safely but the touchdown point is in shadow: the battery will drain within hours."
    return f"Nominal landing: {where}, {f.vz[k]:.2f} m/s down, {f.vh[k]:.2f} m/s sideways, slope {f.slope[k]:.1f}°."


def telemetry(f: Flight, c: Classified, k: int, rejection_m: float, nav_tolerance: float) -> dict[str, Any]:
    """The executed landing as a flat dict (also what the picture and the grader read)."""
    return {
        "outcome": str(c.outcome[k]),
        "cause": str(c.cause[k]),
        "cause_detail": cause_detail(f, c, k, rejection_m, nav_tolerance),
        "vertical_speed_mps": round(float(f.vz[k]), 3),
        "horizontal_speed_mps": round(float(f.vh[k]), 3),
        "slope_deg": round(float(f.slope[k]), 2),
        "boulder_strike": bool(f.boulder_hit[k]),
        "boulder_diameter_m": round(float(f.boulder_d[k]), 2),
        "fuel_remaining_kg": round(float(f.fuel_left[k]), 2),
        "distance_to_target_m": round(float(f.dist_target[k]), 1),
        "earth_link": bool(True if f.earth is None else f.earth[k]),
        "power_ok": bool(f.lit[k]),
        "landed_upright": bool(c.landed_upright[k]),
        "sensor": f.sensor,
        "divert_m": round(float(f.divert_m[k]), 1),
        "hazard_map_found_safe_cell": bool(f.hda_found[k]),
        "altimeter_rejected": bool(f.rejected[k]),
        "nav_lost": bool(f.nav_lost[k]),
        "touchdown_x_m": round(float(f.td_x[k]), 1),
        "touchdown_y_m": round(float(f.td_y[k]), 1),
    }


def summary(f: Flight, c: Classified) -> dict[str, Any]:
    """Monte Carlo statistics for a planning simulation."""
    runs = int(c.cause.size)
    causes, counts = np.unique(c.cause, return_counts=True)
    hist = {str(k): int(v) for k, v in zip(causes, counts)}
    return {
        "runs": runs,
        "predicted_success": round(float(c.success.mean()), 3),
        "p_tip_over": round(float((c.cause == "tip_over").mean()), 3),
        "p_boulder_strike": round(float((c.cause == "boulder_strike").mean()), 3),
        "p_hard_landing": round(float((c.cause == "hard_landing").mean()), 3),
        "p_fuel_exhaustion": round(float((c.cause == "fuel_exhaustion").mean()), 3),
        "p_nav_loss": round(float((c.cause == "nav_loss_shadow").mean()), 3),
        "fuel_reserve_mean_kg": round(float(f.fuel_left.mean()), 2),
        "fuel_reserve_p5_kg": round(float(np.percentile(f.fuel_left, 5)), 2),
        "vertical_speed_p95_mps": round(float(np.percentile(f.vz, 95)), 2),
        "horizontal_speed_p95_mps": round(float(np.percentile(f.vh, 95)), 2),
        "divert_mean_m": round(float(f.divert_m.mean()), 1),
        "hazard_map_success": round(float(f.hda_found.mean()), 3),
        "cause_counts": hist,
    }
