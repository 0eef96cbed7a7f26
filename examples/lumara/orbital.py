"""Orbital products: what LOLA/LROC-class data tell the planners, and no more.

The truth DEM is averaged to 5 m/px with slope noise; boulders under ~2 m vanish;
craters enter a catalogue only when they span a few orbital pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .shadows import cast_shadows, clearance_deg, visible_toward
from .terrain import Craters, Terrain, fractal_surface, slope_map
from .types import SiteInfo

ORBITAL_FACTOR = 2
CATALOGUE_MIN_D_M = 20.0
VISIBLE_BOULDER_M = 2.0
APPROACH_M = 1000.0
SITE_RADIUS_M = 50.0
SLOPE_RADIUS_M = 25.0
CLIFF_SLOPE_DEG = 30.0


@dataclass(frozen=True)
class Orbital:
    """Orbital maps at `dx` (5 m/px), a crater catalogue and the boulders big enough to see."""

    dem: np.ndarray
    dx: float
    slope_deg: np.ndarray
    lit: np.ndarray
    catalogue: Craters
    boulders: np.ndarray
    slope_noise_deg: float

    @property
    def n(self) -> int:
        return int(self.dem.shape[0])

    def cell(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        j = np.clip((np.asarray(x) / self.dx).astype(int), 0, self.n - 1)
        i = np.clip((np.asarray(y) / self.dx).astype(int), 0, self.n - 1)
        return i, j


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    n = a.shape[0] // f * f
    return a[:n, :n].reshape(n // f, f, n // f, f).mean(axis=(1, 3))


def degrade(truth: Terrain, sun: tuple[float, float], slope_noise_deg: float, rng: np.random.Generator) -> Orbital:
    """Average to orbital resolution, add DEM and slope noise, catalogue resolvable craters."""
    dem = block_mean(truth.dem.astype(np.float64), ORBITAL_FACTOR)
    dem = dem + rng.normal(0.0, 0.3, dem.shape)
    dx = truth.dx * ORBITAL_FACTOR
    noise = fractal_surface(dem.shape[0], 1.0, rng) * slope_noise_deg
    slope = np.abs(slope_map(dem, dx) + noise).astype(np.float32)
    lit = ~cast_shadows(dem, dx, *sun)
    c = truth.craters
    keep = c.d >= CATALOGUE_MIN_D_M
    k = int(keep.sum())
    flip = rng.random(k) < np.where(c.d[keep] < 50.0, 0.15, 0.05)
    catalogue = Craters(
        x=c.x[keep] + rng.normal(0, 2.0, k),
        y=c.y[keep] + rng.normal(0, 2.0, k),
        d=c.d[keep] * rng.normal(1.0, 0.05, k),
        fresh=c.fresh[keep] ^ flip,
        depth=c.depth[keep] * rng.normal(1.0, 0.1, k),
    )
    bi, bj = np.nonzero(truth.boulder_max >= VISIBLE_BOULDER_M)
    boulders = np.stack([(bj + 0.5) * truth.dx, (bi + 0.5) * truth.dx, truth.boulder_max[bi, bj]], axis=1)
    for a in (dem, slope, lit, boulders):
        a.flags.writeable = False
    return Orbital(dem=dem, dx=dx, slope_deg=slope, lit=lit, catalogue=catalogue, boulders=boulders, slope_noise_deg=slope_noise_deg)


def box_mean(a: np.ndarray, i: np.ndarray, j: np.ndarray, half: int) -> np.ndarray:
    """Mean of `a` over (2·half+1)² boxes centred on cells (i, j), via an integral image."""
    n = a.shape[0]
    c = np.zeros((n + 1, n + 1))
    c[1:, 1:] = np.cumsum(np.cumsum(a, axis=0), axis=1)
    i0, i1 = np.clip(i - half, 0, n), np.clip(i + half + 1, 0, n)
    j0, j1 = np.clip(j - half, 0, n), np.clip(j + half + 1, 0, n)
    total = c[i1, j1] - c[i0, j1] - c[i1, j0] + c[i0, j0]
    return total / ((i1 - i0) * (j1 - j0))


def track_points(x: float, y: float, approach_az_deg: float, length: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Ground-track points from the site back up-range along the approach azimuth."""
    s = np.arange(0.0, length + step / 2, step)
    a = np.radians(approach_az_deg)
    return x + s * np.cos(a), y + s * np.sin(a)


def disk(x: float, y: float, radius: float, dx: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid cells of an n×n map (pitch dx) whose centres lie within `radius` of (x, y)."""
    r = int(np.ceil(radius / dx))
    ci, cj = int(y / dx), int(x / dx)
    ii, jj = np.mgrid[ci - r: ci + r + 1, cj - r: cj + r + 1]
    ok = (np.hypot((ii + 0.5) * dx - y, (jj + 0.5) * dx - x) <= radius) & (ii >= 0) & (ii < n) & (jj >= 0) & (jj < n)
    return ii[ok], jj[ok]


def roughness(dem: np.ndarray, dx: float, x: float, y: float, radius: float) -> float:
    """RMS residual of the DEM after a least-squares plane fit within `radius`."""
    i, j = disk(x, y, radius, dx, dem.shape[0])
    if i.size < 4:
        return 0.0
    a = np.stack([np.ones(i.size), i * dx, j * dx], axis=1)
    z = dem[i, j]
    coef, *_ = np.linalg.lstsq(a, z, rcond=None)
    return float(np.sqrt(np.mean((z - a @ coef) ** 2)))


def rim_distance(cat: Craters, x: float, y: float) -> float:
    fresh = cat.fresh
    if not fresh.any():
        return 5000.0
    r = np.hypot(cat.x[fresh] - x, cat.y[fresh] - y)
    return float(np.min(np.abs(r - cat.d[fresh] / 2)))


def cliff_distance(orb: Orbital, x: float, y: float, cliffs: tuple[np.ndarray, np.ndarray]) -> float:
    ci, cj = cliffs
    if ci.size == 0:
        return 5000.0
    return float(np.min(np.hypot((cj + 0.5) * orb.dx - x, (ci + 0.5) * orb.dx - y)))


def science_value(distance_m: float, rim_m: float, shadow: float) -> float:
    """Volatiles and fresh ejecta sit near the target, near fresh rims and at shadow edges."""
    v = 0.3 + 0.45 * np.exp(-distance_m / 600.0) + 0.15 * np.exp(-rim_m / 150.0) + 0.1 * min(1.0, 2.5 * shadow)
    return float(np.clip(v, 0.0, 1.0))


def site_attributes(
    orb: Orbital,
    x: float,
    y: float,
    target: tuple[float, float],
    approach_az_deg: float,
    earth: tuple[float, float],
    cliffs: tuple[np.ndarray, np.ndarray],
) -> dict[str, float | bool]:
    """Orbital attributes of one site, computed only from orbital products."""
    i, j = disk(x, y, SLOPE_RADIUS_M, orb.dx, orb.n)
    slope = float(np.mean(orb.slope_deg[i, j]))
    i, j = disk(x, y, SITE_RADIUS_M, orb.dx, orb.n)
    shadow = float(1.0 - np.mean(orb.lit[i, j]))
    tx, ty = track_points(x, y, approach_az_deg, APPROACH_M, orb.dx)
    ti, tj = orb.cell(tx, ty)
    approach_shadow = float(1.0 - np.mean(orb.lit[ti, tj]))
    si, sj = orb.cell(x, y)
    relief = float(np.max(np.abs(orb.dem[ti, tj] - orb.dem[si, sj])))
    earth_ok = bool(visible_toward(orb.dem, orb.dx, np.array([x]), np.array([y]), *earth)[0])
    earth_clearance = float(clearance_deg(orb.dem, orb.dx, np.array([x]), np.array([y]), *earth)[0])
    dist = float(np.hypot(x - target[0], y - target[1]))
    rim = rim_distance(orb.catalogue, x, y)
    return {
        "slope_deg": round(slope, 2),
        "roughness_m": round(roughness(orb.dem, orb.dx, x, y, SITE_RADIUS_M), 2),
        "shadow_fraction": round(shadow, 3),
        "approach_shadow_fraction": round(approach_shadow, 3),
        "rim_distance_m": round(rim, 1),
        "cliff_distance_m": round(cliff_distance(orb, x, y, cliffs), 1),
        "relief_m": round(relief, 1),
        "earth_visible": earth_ok,
        "earth_clearance_deg": round(earth_clearance, 2),
        "distance_to_target_m": round(dist, 1),
        "science_value": round(science_value(dist, rim, shadow), 3),
    }


def candidate_sites(
    orb: Orbital,
    target: tuple[float, float],
    approach_az_deg: float,
    earth: tuple[float, float],
    rng: np.random.Generator,
    count: int = 10,
    max_distance_m: float = 1000.0,
) -> list[SiteInfo]:
    """The planners' shortlist: spread-out sites, some close to the target, some easy, some random."""
    size = orb.n * orb.dx
    cliffs = np.nonzero(orb.slope_deg > CLIFF_SLOPE_DEG)
    ang = rng.uniform(0, 2 * np.pi, 600)
    rad = max_distance_m * np.sqrt(rng.uniform(0.004, 1.0, 600))
    px, py = target[0] + rad * np.cos(ang), target[1] + rad * np.sin(ang)
    a = np.radians(approach_az_deg)
    ex, ey = px + 0.6 * APPROACH_M * np.cos(a), py + 0.6 * APPROACH_M * np.sin(a)
    margin = 60.0
    inside = (np.minimum(px, py) > margin) & (np.maximum(px, py) < size - margin)
    inside &= (np.minimum(ex, ey) > 0) & (np.maximum(ex, ey) < size)
    px, py = px[inside], py[inside]
    i, j = orb.cell(px, py)
    slope = box_mean(orb.slope_deg, i, j, int(SLOPE_RADIUS_M / orb.dx))
    lit = box_mean(orb.lit.astype(np.float32), i, j, int(0.8 * SITE_RADIUS_M / orb.dx))
    keep = slope < 16.0
    px, py, slope, lit = px[keep], py[keep], slope[keep], lit[keep]
    earth_ok = visible_toward(orb.dem, orb.dx, px, py, *earth)
    fresh = orb.catalogue.fresh
    rim = np.min(np.abs(np.hypot(orb.catalogue.x[fresh][None, :] - px[:, None], orb.catalogue.y[fresh][None, :] - py[:, None])
                        - orb.catalogue.d[fresh][None, :] / 2), axis=1) if fresh.any() else np.full(px.size, 5000.0)
    dist = np.hypot(px - target[0], py - target[1])
    scores = [
        -dist,
        -slope - 25.0 * (1.0 - lit) - 10.0 * ~earth_ok - 0.05 * np.maximum(150.0 - rim, 0.0) + rng.normal(0, 2.0, px.size),
        rng.random(px.size),
    ]
    quotas = [count * 4 // 10, count * 4 // 10, count - 2 * (count * 4 // 10)]
    chosen: list[int] = []
    for score, quota in zip(scores, quotas):
        added = 0
        for k in np.argsort(-score):
            if added >= quota:
                break
            if all(np.hypot(px[k] - px[c], py[k] - py[c]) >= 120.0 for c in chosen):
                chosen.append(int(k))
                added += 1
    sites = []
    for n, k in enumerate(chosen, start=1):
        attrs = site_attributes(orb, float(px[k]), float(py[k]), target, approach_az_deg, earth, cliffs)
        sites.append(SiteInfo(site_id=f"S{n:02d}", x_m=round(float(px[k]), 1), y_m=round(float(py[k]), 1), **attrs))
    return sites
