"""Shadows and line of sight over a DEM, for a source low on the horizon (sun, Earth).

Azimuths are measured in the patch frame: 0° along +x (columns), 90° along +y (rows).
"""

from __future__ import annotations

import numpy as np


def cast_shadows(dem: np.ndarray, dx: float, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Boolean shadow map for a source at (azimuth, elevation), by a row-wise horizon sweep.

    The grid is flipped/transposed so light travels down the rows; each row inherits the
    previous row's horizon height, shifted sideways by the light's lateral drift and
    lowered by one step of the ray's slope. Terrain outside the patch casts nothing.
    """
    a = np.radians(azimuth_deg)
    dr, dc = -np.sin(a), -np.cos(a)
    z = np.asarray(dem, dtype=np.float32)
    transposed = abs(dc) > abs(dr)
    if transposed:
        z, dr, dc = z.T, dc, dr
    flipped = dr < 0
    if flipped:
        z, dr = z[::-1], -dr
    lateral = dc / dr
    drop = np.float32(dx / dr * np.tan(np.radians(max(elevation_deg, 1e-3))))
    k = int(np.floor(lateral))
    f = np.float32(lateral - k)
    n, m = z.shape
    out = np.zeros((n, m), dtype=bool)
    horizon = np.full(m, -np.inf, dtype=np.float32)
    prev = np.empty(m, dtype=np.float32)
    g = np.float32(1.0) - f
    for i in range(1, n):
        np.maximum(horizon, z[i - 1], out=prev)
        horizon.fill(-np.inf)
        if k >= 0:
            if f > 0:
                horizon[k + 1:] = g * prev[1:m - k] + f * prev[:m - k - 1]
            else:
                horizon[k:] = prev[:m - k]
        else:
            if f > 0:
                horizon[:m + k] = g * prev[-k:] + f * prev[-k - 1:m - 1]
            else:
                horizon[:m + k] = prev[-k:]
        horizon -= drop
        np.less(z[i], horizon, out=out[i])
    if flipped:
        out = out[::-1]
    if transposed:
        out = out.T
    return np.ascontiguousarray(out)


def _horizon_tan(dem: np.ndarray, dx: float, x: np.ndarray, y: np.ndarray, azimuth_deg: float, mast_m: float) -> np.ndarray:
    """Tangent of the horizon's elevation seen from a mast at points (x, y) toward an azimuth: one marched ray per point."""
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    n = dem.shape[0]
    a = np.radians(azimuth_deg)
    ux, uy = np.cos(a), np.sin(a)
    steps = np.arange(1, int(n * 1.5)) * dx
    px = x[:, None] + ux * steps[None, :]
    py = y[:, None] + uy * steps[None, :]
    j = (px / dx).astype(int)
    i = (py / dx).astype(int)
    inside = (i >= 0) & (i < n) & (j >= 0) & (j < n)
    h = np.where(inside, dem[np.clip(i, 0, n - 1), np.clip(j, 0, n - 1)], -np.inf)
    i0 = np.clip((y / dx).astype(int), 0, n - 1)
    j0 = np.clip((x / dx).astype(int), 0, n - 1)
    eye = dem[i0, j0] + mast_m
    return np.max((h - eye[:, None]) / steps[None, :], axis=1)


def visible_toward(
    dem: np.ndarray,
    dx: float,
    x: np.ndarray,
    y: np.ndarray,
    azimuth_deg: float,
    elevation_deg: float,
    mast_m: float = 2.0,
) -> np.ndarray:
    """Whether points (x, y) see a source at (azimuth, elevation)."""
    return _horizon_tan(dem, dx, x, y, azimuth_deg, mast_m) < np.tan(np.radians(elevation_deg))


def clearance_deg(
    dem: np.ndarray,
    dx: float,
    x: np.ndarray,
    y: np.ndarray,
    azimuth_deg: float,
    elevation_deg: float,
    mast_m: float = 2.0,
) -> np.ndarray:
    """How far a source at (azimuth, elevation) stands above the local horizon at points (x, y), degrees.

    A source a fraction of a degree up is seen from the site's centre but can hide behind a
    hummock from a touchdown point a few tens of metres away; negative means hidden.
    """
    return elevation_deg - np.degrees(np.arctan(_horizon_tan(dem, dx, x, y, azimuth_deg, mast_m)))
