"""Point-mass powered descent: approach guidance, hover, hazard-detection divert, terminal descent.

Vectorised over Monte Carlo runs. The same engine flies the planning simulation on
orbital maps and the real landing on ground truth; only the `World` differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .hazards import detection_size_m, footprint_boulders, select_landing_cell
from .shadows import visible_toward

G_MOON = 1.62
G0 = 9.80665
APPROACH_TRACK_M = 1000.0


@dataclass(frozen=True)
class Vehicle:
    """A small robotic lander; lidar displaces fuel because launch mass is fixed."""

    dry_mass_kg: float = 330.0
    tank_kg: float = 46.0
    lidar_mass_kg: float = 8.0
    isp_s: float = 315.0
    max_thrust_n: float = 2600.0
    start_altitude_m: float = 2000.0
    start_range_m: float = 3200.0
    start_speed_mps: float = 70.0
    start_sink_mps: float = 15.0
    approach_time_s: float = 90.0
    scan_time_s: float = 8.0
    divert_accel_mps2: float = 1.0
    descent_rate_mps: float = 4.0
    terminal_gate_m: float = 15.0
    hda_half_fov_deg: float = 30.0

    @property
    def exhaust_velocity(self) -> float:
        return self.isp_s * G0

    def fuel_kg(self, sensor: str) -> float:
        return self.tank_kg - (self.lidar_mass_kg if sensor == "lidar" else 0.0)

    def empty_mass_kg(self, sensor: str) -> float:
        return self.dry_mass_kg + (self.lidar_mass_kg if sensor == "lidar" else 0.0)

    def hda_reach_m(self, altitude_m: np.ndarray | float) -> np.ndarray:
        """Radius of ground the hazard map covers from a hover altitude."""
        return np.maximum(np.asarray(altitude_m, dtype=float), 0.0) * np.tan(np.radians(self.hda_half_fov_deg))


VEHICLE = Vehicle()


def hover_fuel_rate(mass_kg: float, vehicle: Vehicle = VEHICLE, g: float = G_MOON) -> float:
    """Propellant flow to hover: thrust m·g over exhaust velocity Isp·g0."""
    return mass_kg * g / vehicle.exhaust_velocity


def integrate(
    r: np.ndarray,
    v: np.ndarray,
    m: np.ndarray,
    accel: Callable[[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray],
    dt: float,
    steps: int,
    exhaust_velocity: float | np.ndarray,
    g: float = G_MOON,
    max_accel: Callable[[np.ndarray], np.ndarray] | None = None,
    record: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Step r (K,3), v (K,3), m (K,) under a commanded thrust acceleration plus gravity.

    Mass follows the rocket equation exactly within a step (|a| held constant).
    """
    gvec = np.array([0.0, 0.0, -g])
    path = [r.copy()] if record else []
    for k in range(steps):
        a = accel(r, v, m, k * dt)
        if max_accel is not None:
            mag = np.linalg.norm(a, axis=1)
            lim = max_accel(m)
            a = a * np.minimum(1.0, lim / np.maximum(mag, 1e-12))[:, None]
        mag = np.linalg.norm(a, axis=1)
        v_new = v + (a + gvec) * dt
        r = r + 0.5 * (v + v_new) * dt
        v = v_new
        m = m * np.exp(-mag * dt / exhaust_velocity)
        if record:
            path.append(r.copy())
    return r, v, m, path


def zem_zev(rf: np.ndarray, vf: np.ndarray, t_total: float, g: float = G_MOON):
    """Energy-optimal ZEM/ZEV guidance to (rf, vf) at t_total; returns the accel command function."""
    gvec = np.array([0.0, 0.0, -g])

    def accel(r: np.ndarray, v: np.ndarray, m: np.ndarray, t: float) -> np.ndarray:
        tgo = max(t_total - t, 1e-3)
        zem = rf - (r + v * tgo + 0.5 * gvec * tgo * tgo)
        zev = vf - (v + gvec * tgo)
        return 6.0 * zem / tgo ** 2 - 2.0 * zev / tgo

    return accel


@dataclass(frozen=True)
class World:
    """The terrain a flight happens on: ground truth, or orbital maps for planning."""

    dem: np.ndarray
    dx: float
    slope: np.ndarray
    boulder: np.ndarray
    lit: np.ndarray
    lit_later: np.ndarray
    lit_hint: np.ndarray
    slope_noise: np.ndarray
    target: tuple[float, float]
    approach_az_deg: float
    earth: tuple[float, float] | None
    nav_tolerance: float
    altimeter_terrain: bool
    ops_modelled: bool
    label: str

    def cell(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.dem.shape[0]
        return (np.clip((np.asarray(y) / self.dx).astype(int), 0, n - 1),
                np.clip((np.asarray(x) / self.dx).astype(int), 0, n - 1))


@dataclass(frozen=True)
class Plan:
    sensor: str
    hover_altitude_m: float
    divert_budget_m: float
    altimeter_rejection_m: float
    terminal_rate_mps: float


@dataclass
class Flight:
    """Per-run arrays of what happened; outcomes.py turns them into causes."""

    sensor: str
    site: tuple[float, float]
    approach_shadow: float
    jump_m: float
    jump_seen_m: np.ndarray
    nav_lost: np.ndarray
    rejected: np.ndarray
    bias_m: np.ndarray
    gate_alt_m: np.ndarray
    hda_found: np.ndarray
    divert_m: np.ndarray
    td_x: np.ndarray
    td_y: np.ndarray
    vz: np.ndarray
    vh: np.ndarray
    slope: np.ndarray
    boulder_d: np.ndarray
    boulder_hit: np.ndarray
    fuel_left: np.ndarray
    exhausted: np.ndarray
    ground_approach: np.ndarray
    dist_target: np.ndarray
    earth: np.ndarray | None
    lit: np.ndarray
    ops_modelled: bool
    path: list[np.ndarray] = field(default_factory=list)


def approach_profile(world: World, x: float, y: float) -> tuple[float, float]:
    """Shadowed fraction of the last km of ground track, and the signed largest height jump vs the site."""
    s = np.arange(0.0, APPROACH_TRACK_M + world.dx / 2, world.dx)
    a = np.radians(world.approach_az_deg)
    i, j = world.cell(x + s * np.cos(a), y + s * np.sin(a))
    si, sj = world.cell(np.array(x), np.array(y))
    dh = world.dem[i, j] - world.dem[si, sj]
    k = int(np.argmax(np.abs(dh)))
    return float(1.0 - world.lit[i, j].mean()), float(dh[k])


def fly(world: World, site: tuple[float, float], plan: Plan, rng: np.random.Generator, runs: int,
        vehicle: Vehicle = VEHICLE, record: bool = False) -> Flight:
    """Fly `runs` dispersed descents to `site` with `plan`; common random numbers across plans."""
    K = runs
    ve = vehicle.exhaust_velocity
    sx, sy = site
    si, sj = world.cell(np.array(sx), np.array(sy))
    z_site = float(world.dem[si, sj])
    thrust = rng.normal(1.0, 0.015, K)
    isp = rng.normal(1.0, 0.004, K)
    start_err = rng.normal(0.0, 1.0, (K, 3)) * np.array([60.0, 60.0, 15.0])
    start_verr = rng.normal(0.0, 1.0, (K, 3)) * np.array([1.0, 1.0, 0.5])
    u_nav = rng.normal(0.0, 1.0, K)
    kappa = rng.uniform(0.5, 1.0, K)
    drift = rng.normal(0.0, 4.0, K)
    jump_noise = rng.normal(0.0, 0.03, K)
    gate_err = rng.normal(0.0, 1.0, (K, 2))
    td_err = rng.normal(0.0, 1.5, (K, 2))
    vz_noise = rng.normal(0.0, 1.0, K)
    vh_noise = rng.normal(0.0, 1.0, (K, 2))
    slope_noise = rng.normal(0.0, 1.0, K)
    hit_u = rng.random(K)

    optical = plan.sensor == "optical"
    H = plan.hover_altitude_m
    asf, jump = approach_profile(world, sx, sy)
    nav_lost = np.zeros(K, bool)
    if optical:
        nav_lost = asf + 0.04 * u_nav > world.nav_tolerance
    jump_seen = np.abs(jump) * (1.0 + jump_noise)  # what the altimeter reads, beside what the gate rejects
    rejected = np.zeros(K, bool)
    if world.altimeter_terrain:
        rejected = jump_seen > plan.altimeter_rejection_m
    bias = np.where(rejected, -kappa * jump + drift, 0.0)

    a = np.radians(world.approach_az_deg)
    u = np.array([np.cos(a), np.sin(a)])
    tx, ty = world.target
    start = np.array([tx - sx, ty - sy]) + vehicle.start_range_m * u
    r0 = np.tile([start[0], start[1], vehicle.start_altitude_m], (K, 1)) + start_err
    v0 = np.tile([-vehicle.start_speed_mps * u[0], -vehicle.start_speed_mps * u[1], -vehicle.start_sink_mps], (K, 1)) + start_verr
    m0 = np.full(K, vehicle.empty_mass_kg(plan.sensor) + vehicle.fuel_kg(plan.sensor))
    dt = 1.0
    steps = int(vehicle.approach_time_s / dt)
    guide = zem_zev(np.array([0.0, 0.0, H]), np.zeros(3), vehicle.approach_time_s)
    r, v, m, path = integrate(r0, v0, m0, guide, dt, steps, ve * isp,
                              max_accel=lambda mm: vehicle.max_thrust_n * thrust / mm, record=record)
    empty = vehicle.empty_mass_kg(plan.sensor)
    gate_alt = H - bias
    ground_approach = gate_alt <= 1.0

    sigma_nav = np.where(nav_lost, 220.0, 4.0 if optical else 5.0)
    gx = sx + gate_err[:, 0] * sigma_nav
    gy = sy + gate_err[:, 1] * sigma_nav
    hda_ok = ~nav_lost & ~ground_approach
    reach = np.where(hda_ok, np.minimum(vehicle.hda_reach_m(gate_alt), plan.divert_budget_m), 0.0)
    cx, cy, found = select_landing_cell(world, gx, gy, reach, gate_alt, optical, site)
    divert = np.hypot(cx - gx, cy - gy)

    fuel_v = ve * isp
    mass = m.copy()
    exhausted = mass <= empty
    def burn(dv: np.ndarray) -> np.ndarray:
        return mass * np.exp(-dv / fuel_v)
    mass = burn(G_MOON * vehicle.scan_time_s)
    t_div = 2.0 * np.sqrt(divert / vehicle.divert_accel_mps2)
    mass = burn(G_MOON * t_div + 2.0 * np.sqrt(vehicle.divert_accel_mps2 * divert))
    ex_gate = mass <= empty
    vd = vehicle.descent_rate_mps
    vt = plan.terminal_rate_mps
    gate_t = vehicle.terminal_gate_m
    h_true = np.maximum(gate_alt, 0.0)
    t1_plan = max(H - gate_t, 0.0) / vd
    h_after1 = h_true - vd * t1_plan
    early = h_after1 <= 0.0
    t1 = np.where(early, h_true / vd, t1_plan)
    t2 = np.where(early, 0.0, np.maximum(h_after1, 0.0) / vt)
    t_total = t1 + t2
    t_avail = np.maximum(fuel_v / G_MOON * np.log(np.maximum(mass, 1e-9) / empty), 0.0)
    ex_desc = (t_avail < t_total) & ~ex_gate
    mass = np.maximum(burn(G_MOON * t_total + vd + vt), empty)
    exhausted = exhausted | ex_gate | ex_desc | (mass <= empty)

    alt_ex = np.where(ex_gate, h_true,
                      np.where(t_avail < t1, h_true - vd * t_avail, np.maximum(h_after1, 0.0) - vt * np.maximum(t_avail - t1, 0.0)))
    v_ex = np.where(t_avail < t1, vd, vt)
    impact = np.sqrt(v_ex ** 2 + 2.0 * G_MOON * np.maximum(alt_ex, 0.0))

    sig_vz = 0.12 + 0.0001 * plan.altimeter_rejection_m
    vz = np.where(early, vd, vt * (2.0 - thrust)) + vz_noise * np.where(rejected, 0.6, sig_vz)
    vz = np.where(exhausted, np.maximum(impact, vz), vz)
    vz = np.where(ground_approach, 8.0 + np.abs(vz_noise), vz)
    sig_h = np.where(nav_lost, 1.0, (0.07 + 0.25 * asf ** 2) if optical else 0.08)
    vh = np.hypot(vh_noise[:, 0], vh_noise[:, 1]) * sig_h
    vh = np.where(ground_approach, 3.0 + np.abs(vh), vh)

    td_x = cx + td_err[:, 0]
    td_y = cy + td_err[:, 1]
    ti, tj = world.cell(td_x, td_y)
    slope = np.maximum(world.slope[ti, tj] + slope_noise, 0.0)
    bd, p_hit = footprint_boulders(world, ti, tj)
    hit = hit_u < p_hit
    lit = world.lit[ti, tj] & world.lit_later[ti, tj]
    earth = None
    if world.earth is not None and world.ops_modelled:
        earth = visible_toward(world.dem, world.dx, td_x, td_y, *world.earth)
    traj = []
    if record:
        traj = [p + np.array([sx, sy, z_site]) for p in path]
    return Flight(
        sensor=plan.sensor, site=site, approach_shadow=asf, jump_m=jump, jump_seen_m=jump_seen, nav_lost=nav_lost, rejected=rejected,
        bias_m=bias, gate_alt_m=gate_alt, hda_found=found, divert_m=divert, td_x=td_x, td_y=td_y, vz=vz, vh=vh,
        slope=slope, boulder_d=bd, boulder_hit=hit, fuel_left=np.maximum(mass - empty, 0.0), exhausted=exhausted,
        ground_approach=ground_approach, dist_target=np.hypot(td_x - world.target[0], td_y - world.target[1]),
        earth=earth, lit=lit, ops_modelled=world.ops_modelled, path=traj,
    )


def nominal_fuel(plan: Plan, site: tuple[float, float], target: tuple[float, float], approach_az_deg: float,
                 vehicle: Vehicle = VEHICLE) -> dict[str, float]:
    """Undispersed fuel by phase, with the full divert budget spent: what a planner budgets."""
    ve = vehicle.exhaust_velocity
    a = np.radians(approach_az_deg)
    u = np.array([np.cos(a), np.sin(a)])
    start = np.array([target[0] - site[0], target[1] - site[1]]) + vehicle.start_range_m * u
    r0 = np.array([[start[0], start[1], vehicle.start_altitude_m]])
    v0 = np.array([[-vehicle.start_speed_mps * u[0], -vehicle.start_speed_mps * u[1], -vehicle.start_sink_mps]])
    fuel = vehicle.fuel_kg(plan.sensor)
    empty = vehicle.empty_mass_kg(plan.sensor)
    m0 = np.array([empty + fuel])
    guide = zem_zev(np.array([0.0, 0.0, plan.hover_altitude_m]), np.zeros(3), vehicle.approach_time_s)
    _, _, m, _ = integrate(r0, v0, m0, guide, 1.0, int(vehicle.approach_time_s), ve,
                           max_accel=lambda mm: vehicle.max_thrust_n / mm)
    out = {"approach_kg": float(m0[0] - m[0])}
    mass = float(m[0])
    d = plan.divert_budget_m
    t_div = 2.0 * np.sqrt(d / vehicle.divert_accel_mps2)
    phases = {
        "scan_kg": G_MOON * vehicle.scan_time_s,
        "divert_kg": G_MOON * t_div + 2.0 * np.sqrt(vehicle.divert_accel_mps2 * d),
        "descent_kg": G_MOON * (max(plan.hover_altitude_m - vehicle.terminal_gate_m, 0.0) / vehicle.descent_rate_mps
                                + min(plan.hover_altitude_m, vehicle.terminal_gate_m) / plan.terminal_rate_mps)
        + vehicle.descent_rate_mps + plan.terminal_rate_mps,
    }
    for name, dv in phases.items():
        new = mass * float(np.exp(-dv / ve))
        out[name] = mass - new
        mass = new
    out["fuel_loaded_kg"] = fuel
    out["reserve_kg"] = mass - empty
    return {k: round(float(v), 2) for k, v in out.items()}
