"""Procedural south-pole terrain: fractal relief, power-law craters, boulder fields, scarps.

Everything here is ground truth; agents only ever see its degraded orbital copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOULDER_MIN_M = 0.2
BOULDER_MAX_M = 3.0
BOULDER_GAMMA = 2.5
HAZARD_BOULDER_M = 0.4


@dataclass(frozen=True)
class TerrainParams:
    """Knobs a scenario turns; defaults are a moderately rough highland patch."""

    n: int = 800
    dx: float = 2.5
    relief_rms_m: float = 12.0
    spectral_beta: float = 3.3
    tilt_deg: float = 2.0
    tilt_azimuth_deg: float = 0.0
    alpha: float = 2.0
    fresh_alpha: float = 2.8
    crater_density: float = 0.02
    fresh_n12: float = 60.0
    d_min_m: float = 6.0
    d_max_m: float = 700.0
    n_scarps: int = 2
    boulder_background: float = 0.004
    boulder_peak: float = 0.9
    slope_roughness: float = 0.12
    feature_craters: tuple[tuple[float, float, float, bool], ...] = ()


@dataclass(frozen=True)
class Craters:
    """Crater list as parallel arrays (metres, patch frame)."""

    x: np.ndarray
    y: np.ndarray
    d: np.ndarray
    fresh: np.ndarray
    depth: np.ndarray

    def __len__(self) -> int:
        return int(self.x.size)


@dataclass(frozen=True)
class Terrain:
    """Ground-truth terrain; `boulder_max` is the largest boulder diameter in each cell (0: none)."""

    dem: np.ndarray
    dx: float
    craters: Craters
    boulder_density: np.ndarray
    boulder_max: np.ndarray
    slope_deg: np.ndarray
    scarps: tuple[tuple[float, float, float, float, float], ...]

    @property
    def n(self) -> int:
        return int(self.dem.shape[0])

    @property
    def size_m(self) -> float:
        return self.n * self.dx

    def cell(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Row/col index of a patch position (x along columns, y along rows), clipped to the grid."""
        j = np.clip((np.asarray(x) / self.dx).astype(int), 0, self.n - 1)
        i = np.clip((np.asarray(y) / self.dx).astype(int), 0, self.n - 1)
        return i, j

    def height(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        i, j = self.cell(x, y)
        return self.dem[i, j]


def fractal_surface(n: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian surface with power spectrum ~ k^-beta (spectral synthesis)."""
    kx = np.fft.fftfreq(n)[:, None]
    ky = np.fft.rfftfreq(n)[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = 1.0
    amp = k ** (-beta / 2.0)
    amp[0, 0] = 0.0
    amp = amp.astype(np.float32)
    spec = amp * (rng.standard_normal(amp.shape, dtype=np.float32) + 1j * rng.standard_normal(amp.shape, dtype=np.float32))
    z = np.fft.irfft2(spec.astype(np.complex64), s=(n, n)).astype(np.float32)
    return z / z.std()


def sample_power_law(rng: np.random.Generator, count: int, d_min: float, d_max: float, alpha: float) -> np.ndarray:
    """Diameters from a truncated cumulative power law N(>D) ∝ D^-alpha (inverse CDF)."""
    u = rng.random(count)
    lo, hi = d_min ** -alpha, d_max ** -alpha
    return (lo - u * (lo - hi)) ** (-1.0 / alpha)


def slope_map(dem: np.ndarray, dx: float) -> np.ndarray:
    gy, gx = np.gradient(np.asarray(dem, dtype=np.float32), np.float32(dx))
    return np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)


def _stamp(field: np.ndarray, dx: float, x: np.ndarray, y: np.ndarray, reach: np.ndarray, profile) -> None:
    """Add `profile(r, k)` around many features: big ones one by one on clipped windows, small ones grouped."""
    n = field.shape[0]
    half = np.ceil(reach / dx).astype(int) + 1
    for k in np.nonzero(half > 24)[0]:
        ci, cj = int(y[k] / dx), int(x[k] / dx)
        i0, i1 = max(ci - half[k], 0), min(ci + half[k] + 1, n)
        j0, j1 = max(cj - half[k], 0), min(cj + half[k] + 1, n)
        if i0 >= i1 or j0 >= j1:
            continue
        ii = (np.arange(i0, i1) + 0.5) * dx - y[k]
        jj = (np.arange(j0, j1) + 0.5) * dx - x[k]
        r = np.hypot(ii[:, None], jj[None, :]).reshape(1, -1)
        field[i0:i1, j0:j1] += profile(r, np.array([k]))[0].reshape(i1 - i0, j1 - j0).astype(field.dtype)
    flat = field.reshape(-1)
    small = half <= 24
    groups = np.where(half <= 6, 6, np.where(half <= 12, 12, 24))
    for h in (6, 12, 24):
        idx = np.nonzero(small & (groups == h))[0]
        if idx.size == 0:
            continue
        off = np.arange(-h, h + 1)
        oi, oj = np.meshgrid(off, off, indexing="ij")
        oi, oj = oi.ravel(), oj.ravel()
        ci = (y[idx] / dx).astype(np.int32)[:, None] + oi[None, :].astype(np.int32)
        cj = (x[idx] / dx).astype(np.int32)[:, None] + oj[None, :].astype(np.int32)
        r = np.hypot(((ci + 0.5) * dx - y[idx, None]).astype(np.float32), ((cj + 0.5) * dx - x[idx, None]).astype(np.float32))
        val = profile(r, idx)
        ok = (ci >= 0) & (ci < n) & (cj >= 0) & (cj < n) & (val != 0)
        flat += np.bincount((ci * n + cj)[ok], weights=val[ok], minlength=n * n).astype(flat.dtype)


def crater_population(p: TerrainParams, rng: np.random.Generator) -> Craters:
    """Degraded (equilibrium, alpha) and fresh (production, fresh_alpha) craters plus scenario features."""
    area = (p.n * p.dx) ** 2
    n_old = rng.poisson(p.crater_density * area * p.d_min_m ** -p.alpha)
    n_fresh = rng.poisson(p.fresh_n12 * (p.d_min_m / 12.0) ** -p.fresh_alpha)
    d_old = sample_power_law(rng, n_old, p.d_min_m, p.d_max_m, p.alpha)
    d_fresh = sample_power_law(rng, n_fresh, p.d_min_m, p.d_max_m / 2, p.fresh_alpha)
    fx = np.array([f[0] for f in p.feature_craters])
    fy = np.array([f[1] for f in p.feature_craters])
    fd = np.array([f[2] for f in p.feature_craters])
    ff = np.array([f[3] for f in p.feature_craters], dtype=bool)
    size = p.n * p.dx
    d = np.concatenate([d_old, d_fresh, fd])
    x = np.concatenate([rng.random(n_old + n_fresh) * size, fx])
    y = np.concatenate([rng.random(n_old + n_fresh) * size, fy])
    fresh = np.concatenate([np.zeros(n_old, bool), np.ones(n_fresh, bool), ff])
    degradation = np.where(fresh, 1.0, rng.uniform(0.15, 0.7, d.size))
    depth = 0.2 * d * degradation
    return Craters(x=x, y=y, d=d, fresh=fresh, depth=depth)


def _crater_profile(c: Craters):
    def profile(r: np.ndarray, k: np.ndarray) -> np.ndarray:
        radius = (c.d[k] / 2)[:, None]
        depth = c.depth[k][:, None]
        rim = np.where(c.fresh[k], 0.04, 0.04 * c.depth[k] / (0.2 * c.d[k]))[:, None] * c.d[k][:, None]
        q = r / radius
        inside = rim + (depth + rim) * (q ** 2 - 1.0)
        outside = rim * (np.maximum(q, 1.0) ** -3 - 1.0 / 27.0)
        return np.where(q < 1.0, inside, np.where(q < 3.0, outside, 0.0))

    return profile


def _boulder_profile(c: Craters, peak: float):
    def profile(r: np.ndarray, k: np.ndarray) -> np.ndarray:
        radius = (c.d[k] / 2)[:, None]
        scale = peak * np.clip((c.d[k] - 10.0) / 90.0, 0.0, 1.0)[:, None]
        q = r / radius
        wall = 0.15 + 0.85 * q ** 6
        apron = np.maximum(q, 1.0) ** -3 - 2.5 ** -3
        return np.where(q < 1.0, scale * wall, np.where(q < 2.5, scale * apron, 0.0))

    return profile


def scarps(p: TerrainParams, rng: np.random.Generator) -> tuple[tuple[float, float, float, float, float], ...]:
    """A few lobate scarps/ridges: (x, y, azimuth_rad, length_m, height_m)."""
    size = p.n * p.dx
    out = []
    for _ in range(p.n_scarps):
        out.append((rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size, rng.uniform(0, np.pi),
                    rng.uniform(300, 900), rng.uniform(15, 60) * rng.choice([-1, 1])))
    return tuple(out)


def _add_scarps(dem: np.ndarray, dx: float, items) -> None:
    """Each scarp is a steep step that relaxes back over ~150 m behind it, tapered along its length."""
    n = dem.shape[0]
    decay = 150.0
    for x0, y0, az, length, height in items:
        half = max(0.75 * length, 4.0 * decay) + 20.0
        i0, i1 = max(int((y0 - half) / dx), 0), min(int((y0 + half) / dx) + 1, n)
        j0, j1 = max(int((x0 - half) / dx), 0), min(int((x0 + half) / dx) + 1, n)
        if i0 >= i1 or j0 >= j1:
            continue
        ys = ((np.arange(i0, i1, dtype=np.float32) + 0.5) * dx - y0)[:, None]
        xs = ((np.arange(j0, j1, dtype=np.float32) + 0.5) * dx - x0)[None, :]
        along = xs * np.float32(np.cos(az)) + ys * np.float32(np.sin(az))
        across = -xs * np.float32(np.sin(az)) + ys * np.float32(np.cos(az))
        taper = np.clip(1.5 - np.abs(along) / np.float32(length / 2), 0.0, 1.0)
        step = 0.5 * (1 + np.tanh(across / np.float32(6.0))) * np.exp(-np.maximum(across, 0.0) / np.float32(decay))
        dem[i0:i1, j0:j1] += (np.float32(height) * step * taper).astype(np.float32)


def boulder_cells(density: np.ndarray, dx: float, rng: np.random.Generator) -> np.ndarray:
    """Largest boulder per cell. Boulders >= d are Poisson with mean λ(d/0.2)^-γ, so the maximum
    has CDF exp(-λ(d/0.2)^-γ): one uniform per cell inverts it; truncated at 3 m."""
    lam = np.maximum(density, 1e-12).astype(np.float32) * np.float32(dx * dx)
    u = rng.random(density.shape, dtype=np.float32)
    with np.errstate(divide="ignore", over="ignore"):
        d = BOULDER_MIN_M * (-np.log(np.maximum(u, 1e-30)) / lam) ** np.float32(-1.0 / BOULDER_GAMMA)
    return np.where(u > np.exp(-lam), np.minimum(d, BOULDER_MAX_M), 0.0).astype(np.float32)


def slope_roughness(dem: np.ndarray, dx: float, gain: float, rng: np.random.Generator) -> np.ndarray:
    """Metre-scale relief that grows with regional slope (mass wasting): invisible at orbital resolution."""
    n = dem.shape[0]
    f = 8
    coarse = dem[: n // f * f, : n // f * f].reshape(n // f, f, n // f, f).mean(axis=(1, 3))
    regional = np.repeat(np.repeat(slope_map(coarse, dx * f), f, axis=0), f, axis=1)
    pad = np.zeros((n, n), np.float32)
    pad[: regional.shape[0], : regional.shape[1]] = regional
    noise = fractal_surface(n, 2.2, rng)
    smooth = noise[: n // 2 * 2, : n // 2 * 2].reshape(n // 2, 2, n // 2, 2).mean(axis=(1, 3))
    high = noise - np.repeat(np.repeat(smooth, 2, axis=0), 2, axis=1)
    return (np.float32(gain) * pad * high).astype(np.float32)


def generate_terrain(p: TerrainParams, rng: np.random.Generator) -> Terrain:
    """Build one ground-truth patch; deterministic for a given generator state."""
    size = p.n * p.dx
    dem = fractal_surface(p.n, p.spectral_beta, rng) * np.float32(p.relief_rms_m)
    ys, xs = np.mgrid[0:p.n, 0:p.n].astype(np.float32) * p.dx
    t = np.tan(np.radians(p.tilt_deg))
    az = np.radians(p.tilt_azimuth_deg)
    dem += (t * ((xs - size / 2) * np.cos(az) + (ys - size / 2) * np.sin(az))).astype(np.float32)
    sc = scarps(p, rng)
    _add_scarps(dem, p.dx, sc)
    craters = crater_population(p, rng)
    _stamp(dem, p.dx, craters.x, craters.y, 1.5 * craters.d, _crater_profile(craters))
    dem += slope_roughness(dem, p.dx, p.slope_roughness, rng)
    density = np.full((p.n, p.n), p.boulder_background, np.float32)
    big = np.nonzero(craters.fresh & (craters.d > 10.0))[0]
    sub = Craters(*(getattr(craters, f)[big] for f in ("x", "y", "d", "fresh", "depth")))
    _stamp(density, p.dx, sub.x, sub.y, 1.25 * sub.d, _boulder_profile(sub, p.boulder_peak))
    bmax = boulder_cells(density, p.dx, rng)
    for a in (dem, density, bmax):
        a.flags.writeable = False
    slope = slope_map(dem, p.dx)
    slope.flags.writeable = False
    return Terrain(dem=dem, dx=p.dx, craters=craters, boulder_density=density, boulder_max=bmax, slope_deg=slope, scarps=sc)
