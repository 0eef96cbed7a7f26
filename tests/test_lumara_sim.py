"""Lumara simulation: physics, terrain statistics, shadows, orbital degradation, causes, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from orchestra.tools import RunContext, ToolError

from lumara.lander import G0, G_MOON, VEHICLE, Plan, World, fly, hover_fuel_rate, integrate
from lumara.mission import Mission, shadow_around
from lumara.orbital import disk, rim_distance
from lumara.outcomes import classify
from lumara.scenarios import build_scenario, scenario_seeds
from lumara.shadows import cast_shadows, clearance_deg, visible_toward
from lumara.terrain import HAZARD_BOULDER_M, TerrainParams, crater_population
from lumara.tools import execute_landing, list_candidate_sites, simulate_landing
from lumara.types import CAUSES

SEED = scenario_seeds("train", 1)[0]


def _state(m0: float, z0: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.array([[0.0, 0.0, z0]]), np.zeros((1, 3)), np.array([m0])


def test_free_fall_matches_kinematics():
    h = 120.0
    r, v, m = _state(400.0, h)
    t = np.sqrt(2 * h / G_MOON)
    steps = 1000
    r, v, m, _ = integrate(r, v, m, lambda *a: np.zeros((1, 3)), t / steps, steps, VEHICLE.exhaust_velocity)
    assert abs(r[0, 2]) < 0.01 * h
    assert v[0, 2] == pytest.approx(-np.sqrt(2 * G_MOON * h), rel=0.01)
    assert m[0] == 400.0


def test_constant_thrust_burn_obeys_rocket_equation():
    m0, thrust, burn_s = 400.0, 2000.0, 60.0
    ve = VEHICLE.exhaust_velocity
    r, v, m = _state(m0)
    accel = lambda r, v, m, t: np.array([[thrust / m[0], 0.0, 0.0]])
    r, v, m, _ = integrate(r, v, m, accel, 0.05, int(burn_s / 0.05), ve, g=0.0)
    fuel_expected = thrust * burn_s / ve
    assert m0 - m[0] == pytest.approx(fuel_expected, rel=0.01)
    assert v[0, 0] == pytest.approx(ve * np.log(m0 / m[0]), rel=0.01)


def test_hover_fuel_rate_is_mg_over_isp_g0():
    m0 = 380.0
    rate = hover_fuel_rate(m0)
    assert rate == pytest.approx(m0 * G_MOON / (VEHICLE.isp_s * G0))
    r, v, m = _state(m0, 50.0)
    hover = lambda r, v, m, t: np.array([[0.0, 0.0, G_MOON]])
    r, v, m, _ = integrate(r, v, m, hover, 0.1, 50, VEHICLE.exhaust_velocity)
    assert (m0 - m[0]) / 5.0 == pytest.approx(rate, rel=0.01)
    assert abs(r[0, 2] - 50.0) < 1e-6


def _mle_alpha(d: np.ndarray, d_min: float) -> float:
    return d.size / np.sum(np.log(d / d_min))


def test_crater_size_distribution_follows_configured_exponents():
    p = TerrainParams(alpha=2.0, fresh_alpha=2.8, crater_density=0.05, fresh_n12=800.0, d_max_m=5000.0)
    c = crater_population(p, np.random.default_rng(7))
    old, fresh = c.d[~c.fresh], c.d[c.fresh]
    assert old.size > 2000 and fresh.size > 2000
    assert _mle_alpha(old, p.d_min_m) == pytest.approx(2.0, abs=0.12)
    assert _mle_alpha(fresh, p.d_min_m) == pytest.approx(2.8, abs=0.15)


def test_boulders_cluster_near_fresh_rims():
    sc = build_scenario(SEED)
    t = sc.terrain
    c = t.craters
    n = t.n
    ys, xs = (np.mgrid[0:n:4, 0:n:4] + 0.5) * t.dx
    fresh = c.fresh & (c.d > 60)
    assert fresh.any()
    dist = np.hypot(xs[..., None] - c.x[fresh], ys[..., None] - c.y[fresh]) / (c.d[fresh] / 2)
    near_rim = np.any(np.abs(dist - 1.0) < 0.15, axis=-1)
    all_fresh = c.fresh & (c.d > 10)
    far = np.all(np.hypot(xs[..., None] - c.x[all_fresh], ys[..., None] - c.y[all_fresh]) > 1.5 * c.d[all_fresh], axis=-1)
    dens = t.boulder_density[::4, ::4]
    haz = (t.boulder_max >= HAZARD_BOULDER_M)[::4, ::4]
    assert dens[near_rim].mean() > 8 * dens[far].mean()
    assert haz[near_rim].mean() > 5 * haz[far].mean()


@pytest.mark.parametrize("elevation", [2.0, 4.0, 7.0])
def test_wall_shadow_length_is_h_over_tan_e(elevation: float):
    dx, h, n = 2.0, 10.0, 400
    dem = np.zeros((n, n), np.float32)
    dem[:, 20] = h
    shadow = cast_shadows(dem, dx, azimuth_deg=180.0, elevation_deg=elevation)
    row = shadow[n // 2, 21:]
    length_px = int(np.argmin(row)) if not row.all() else row.size
    expected_px = h / np.tan(np.radians(elevation)) / dx
    assert abs(length_px - expected_px) <= 2
    assert not shadow[n // 2, :20].any()


def test_earth_line_of_sight_blocked_by_a_ridge():
    dem = np.zeros((100, 100), np.float32)
    dem[:, 60] = 50.0
    x, y = np.array([50.0, 150.0]), np.array([100.0, 100.0])
    vis = visible_toward(dem, 2.0, x, y, azimuth_deg=0.0, elevation_deg=5.0)
    assert list(vis) == [False, True]


def test_earth_clearance_is_its_elevation_over_the_ridge_it_clears():
    """A 50 m ridge 20 m and 120 m away (mast 2 m): Earth at 5 deg is hidden, then clears it by 5 - atan(48/120).

    Past the ridge, flat ground to the map's edge 48 m on lies below the mast: the horizon dips, Earth clears more."""
    dem = np.zeros((100, 100), np.float32)
    dem[:, 60] = 50.0
    x, y = np.array([100.0, 0.0, 150.0]), np.array([100.0, 100.0, 100.0])
    c = clearance_deg(dem, 2.0, x, y, azimuth_deg=0.0, elevation_deg=5.0)
    assert c[0] == pytest.approx(5.0 - np.degrees(np.arctan(48 / 20)), abs=0.3)
    assert c[1] == pytest.approx(5.0 - np.degrees(np.arctan(48 / 120)), abs=0.3)
    assert c[2] == pytest.approx(5.0 + np.degrees(np.arctan(2 / 48)), abs=0.3)
    assert list(c > 0) == list(visible_toward(dem, 2.0, x, y, azimuth_deg=0.0, elevation_deg=5.0))


def test_every_site_lists_earth_clearance_that_agrees_with_its_visibility():
    for seed in (SEED, SEED + 3):
        sites = build_scenario(seed).sites
        assert all((s.earth_clearance_deg > 0) == s.earth_visible for s in sites)
        assert len({s.earth_clearance_deg for s in sites}) > 1


def test_orbital_products_hide_sub_resolution_boulders_and_blur_slopes():
    sc = build_scenario(SEED)
    t, o = sc.terrain, sc.orbital
    assert o.dx == pytest.approx(2 * t.dx)
    truth_small = np.sum((t.boulder_max >= HAZARD_BOULDER_M) & (t.boulder_max < 2.0))
    assert truth_small > 500
    assert len(o.boulders) < 0.05 * truth_small
    assert o.boulders.size == 0 or o.boulders[:, 2].min() >= 2.0
    assert np.percentile(o.slope_deg, 99) < np.percentile(t.slope_deg, 99)
    assert o.catalogue.d.min() >= 15.0


def _world(n: int = 240, **kw) -> World:
    dx = 2.5
    base = dict(
        dem=np.zeros((n, n), np.float32), dx=dx, slope=np.full((n, n), 2.0, np.float32),
        boulder=np.zeros((n, n), np.float32), lit=np.ones((n, n), bool), lit_later=np.ones((n, n), bool),
        lit_hint=np.ones((n, n), bool), slope_noise=np.zeros((n, n), np.float32), target=(300.0, 300.0),
        approach_az_deg=0.0, earth=(180.0, 5.0), nav_tolerance=0.4, altimeter_terrain=True, ops_modelled=True, label="test",
    )
    base.update(kw)
    return World(**base)


NOMINAL = Plan("optical", 80.0, 40.0, 100.0, 1.5)


def _causes(world: World, plan: Plan = NOMINAL, runs: int = 40) -> set[str]:
    f = fly(world, (300.0, 300.0), plan, np.random.default_rng(3), runs)
    return set(classify(f).cause.tolist())


def test_every_failure_cause_is_reachable():
    n = 240
    dark = np.zeros((n, n), bool)
    step = np.zeros((n, n), np.float32)
    step[:, 125:] = 300.0
    found = {
        "none": _causes(_world()),
        "tip_over": _causes(_world(slope=np.full((n, n), 20.0, np.float32))),
        "hard_landing": _causes(_world(), Plan("optical", 80.0, 40.0, 100.0, 3.0)),
        "boulder_strike": _causes(_world(boulder=np.full((n, n), 1.0, np.float32))),
        "fuel_exhaustion": _causes(_world(), Plan("lidar", 500.0, 300.0, 100.0, 1.0)),
        "nav_loss_shadow": _causes(_world(lit=dark, lit_later=dark, lit_hint=dark)),
        "altimeter_rejection": _causes(_world(dem=step), Plan("optical", 80.0, 40.0, 50.0, 1.5)),
        "far_from_target": _causes(_world(target=(300.0 + 1500.0, 300.0))),
        "no_earth_link": _causes(_world(earth=(180.0, -5.0))),
        "no_power": _causes(_world(lit=dark, lit_later=dark, lit_hint=dark), Plan("lidar", 80.0, 40.0, 100.0, 1.5)),
    }
    assert set(found) == set(CAUSES)
    for cause, seen in found.items():
        assert cause in seen, (cause, seen)
    assert found["none"] == {"none"}


def test_planning_simulation_is_blind_to_approach_terrain():
    n = 240
    step = np.zeros((n, n), np.float32)
    step[:, 125:] = 300.0
    plan = Plan("optical", 80.0, 40.0, 50.0, 1.5)
    assert "altimeter_rejection" in _causes(_world(dem=step), plan)
    assert "altimeter_rejection" not in _causes(_world(dem=step, altimeter_terrain=False), plan)


def test_scenarios_and_missions_are_deterministic():
    a = build_scenario.__wrapped__(SEED)
    b = build_scenario.__wrapped__(SEED)
    assert np.array_equal(a.terrain.dem, b.terrain.dem)
    assert np.array_equal(a.lit, b.lit)
    assert a.sites == b.sites
    plan = {"sensor": "optical", "hover_altitude_m": 80.0, "divert_budget_m": 40.0, "altimeter_rejection_m": 200.0,
            "terminal_rate_mps": 1.5}
    site = a.sites[0].site_id
    t1 = Mission(SEED).execute(site, **plan)
    t2 = Mission(SEED).execute(site, **plan)
    assert t1 == t2
    other = build_scenario(scenario_seeds("train", 2)[1])
    assert not np.array_equal(other.terrain.dem, a.terrain.dem)


def test_scenario_splits_are_disjoint_and_follow_the_campaign_seed():
    sets = {s: scenario_seeds(s, 400) for s in ("train", "validation", "test")}
    assert all(len(set(v)) == 400 for v in sets.values())
    assert not set(sets["train"]) & set(sets["validation"])
    assert not set(sets["train"]) & set(sets["test"])
    assert not set(sets["validation"]) & set(sets["test"])
    assert scenario_seeds("test", 50) == sets["test"][:50]
    assert not set(scenario_seeds("test", 50, campaign_seed=1)) & set(scenario_seeds("test", 50))


def test_execute_landing_runs_once_and_simulation_is_repeatable():
    ctx = RunContext(deps=Mission(SEED))
    site = list_candidate_sites.call({}, ctx)["sites"][0]["site_id"]
    plan = {"site_id": site, "sensor": "lidar", "hover_altitude_m": 90.0, "divert_budget_m": 45.0,
            "altimeter_rejection_m": 300.0, "terminal_rate_mps": 1.2}
    s1 = simulate_landing.call({**plan, "runs": 30}, ctx)
    s2 = simulate_landing.call({**plan, "runs": 30}, ctx)
    assert s1 == s2 and s1["runs"] == 30
    tel = execute_landing.call(plan, ctx)
    assert tel["cause"] in CAUSES and isinstance(tel["cause_detail"], str) and tel["cause_detail"]
    for key in ("vertical_speed_mps", "horizontal_speed_mps", "slope_deg", "boulder_strike", "fuel_remaining_kg",
                "distance_to_target_m", "earth_link", "power_ok", "landed_upright", "outcome"):
        assert key in tel
    with pytest.raises(ToolError):
        execute_landing.call(plan, ctx)
    assert ctx.deps.executed == tel


def test_a_boulder_strike_says_how_far_the_touchdown_was_from_a_fresh_rim():
    """Boulders too small to map cluster on fresh rims, so the failure review reads the touchdown's rim distance off
    the orbital crater catalogue (what any team could check afterwards), not off the hidden boulder map."""
    mission = Mission(SEED)
    truth = mission.truth
    mission.__dict__["truth"] = dataclasses.replace(truth, boulder=np.full(truth.boulder.shape, 1.0, np.float32))
    site = mission.candidates()["sites"][0]["site_id"]
    tel = mission.execute(site, sensor="lidar", hover_altitude_m=90.0, divert_budget_m=45.0, altimeter_rejection_m=300.0, terminal_rate_mps=1.2)
    assert tel["cause"] == "boulder_strike"
    rim = rim_distance(mission.scenario.orbital.catalogue, tel["touchdown_x_m"], tel["touchdown_y_m"])
    assert tel["cause_detail"].endswith(f"It came down {rim:.0f} m from the nearest fresh crater rim in the orbital catalogue.")


@pytest.mark.parametrize("lit", [False, True])
def test_a_landing_reports_how_much_ground_around_it_is_in_shadow(lit: bool):
    """`shadow_within_30m` (what the lander's cameras and a local illumination model show after touchdown) is the
    share of ground within 30 m dark now or later: the shadow near miss reads it, beside the touchdown's own power."""
    mission = Mission(SEED)
    sc = mission.scenario
    light = np.full(sc.lit.shape, lit)
    mission.__dict__["scenario"] = dataclasses.replace(sc, lit=light, lit_later=light)
    mission.__dict__["truth"] = dataclasses.replace(mission.truth, lit=light, lit_later=light, lit_hint=light)
    site = mission.candidates()["sites"][0]["site_id"]
    tel = mission.execute(site, sensor="lidar", hover_altitude_m=90.0, divert_budget_m=45.0, altimeter_rejection_m=300.0, terminal_rate_mps=1.2)
    assert tel["shadow_within_30m"] == (0.0 if lit else 1.0)
    if tel["landed_upright"]:
        assert tel["power_ok"] is lit


def test_the_shadow_around_a_real_touchdown_counts_the_later_sun_too():
    mission = Mission(SEED)
    sc = mission.scenario
    site = mission.candidates()["sites"][0]["site_id"]
    tel = mission.execute(site, sensor="lidar", hover_altitude_m=90.0, divert_budget_m=45.0, altimeter_rejection_m=300.0, terminal_rate_mps=1.2)
    near = disk(tel["touchdown_x_m"], tel["touchdown_y_m"], 30.0, sc.terrain.dx, sc.terrain.n)
    dark_now, dark_ever = 1.0 - sc.lit[near].mean(), 1.0 - (sc.lit & sc.lit_later)[near].mean()
    assert dark_now < dark_ever and tel["shadow_within_30m"] == pytest.approx(dark_ever, abs=0.01)  # the touchdown point is reported to 0.1 m


def test_a_touchdown_off_the_map_reads_the_shadow_at_its_edge():
    """A lander that drifts off the mapped terrain still reports a number (the edge's), never NaN."""
    sc = build_scenario(SEED)
    assert shadow_around(sc, -900.0, -900.0, 30.0) == shadow_around(sc, 0.0, 0.0, 30.0)
    far = sc.terrain.n * sc.terrain.dx + 900.0
    assert 0.0 <= shadow_around(sc, far, far, 30.0) <= 1.0


@pytest.mark.parametrize("times_jump", [0.5, 1.3, 3.0])
def test_a_landing_logs_its_altimeter_gate_over_the_jump_it_saw(times_jump: float):
    """`altimeter_margin` is the rejection gate over the terrain jump the altimeter saw (the true jump
    with its 3% reading noise): below 1 exactly when the altimeter was rejected; the altimeter near miss reads it."""
    mission = Mission(SEED)
    site = mission.candidates()["sites"][0]["site_id"]
    jump = abs(mission.oracle(site)["true_altimeter_jump_m"])
    assert jump > 5.0
    gate = times_jump * jump
    tel = mission.execute(site, sensor="lidar", hover_altitude_m=90.0, divert_budget_m=45.0, altimeter_rejection_m=gate, terminal_rate_mps=1.2)
    assert tel["altimeter_margin"] == pytest.approx(times_jump, rel=0.15)
    assert (tel["altimeter_margin"] < 1.0) is tel["altimeter_rejected"]


@pytest.mark.parametrize("elevation", [-3.0, None, 30.0])
def test_a_landing_logs_how_far_earth_stands_above_its_horizon(elevation: float | None):
    """`earth_margin_deg` is Earth's elevation above the true local horizon at the touchdown point (the radio's
    mast, 2 m): positive exactly when the link holds; the Earth near miss reads it."""
    mission = Mission(SEED)
    sc = mission.scenario
    if elevation is not None:
        earth = (sc.earth[0], elevation)
        mission.__dict__["scenario"] = dataclasses.replace(sc, earth=earth)
        mission.__dict__["truth"] = dataclasses.replace(mission.truth, earth=earth)
    site = mission.candidates()["sites"][0]["site_id"]
    tel = mission.execute(site, sensor="lidar", hover_altitude_m=90.0, divert_budget_m=45.0, altimeter_rejection_m=300.0, terminal_rate_mps=1.2)
    assert (tel["earth_margin_deg"] > 0) is tel["earth_link"]
    if elevation is not None:
        assert tel["earth_margin_deg"] < elevation + 3.0 and (tel["earth_margin_deg"] > 20.0) is (elevation > 0)
