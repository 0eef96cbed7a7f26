"""Hazard detection and avoidance: what the lander's hazard map sees from hover, and where it sets down."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .terrain import HAZARD_BOULDER_M

if TYPE_CHECKING:
    from .lander import World

HDA_SLOPE_LIMIT_DEG = 10.0


def detection_size_m(altitude_m: np.ndarray | float) -> np.ndarray:
    """Smallest boulder the hazard sensor resolves from a given altitude."""
    return 0.1 + 0.002 * np.maximum(np.asarray(altitude_m, dtype=float), 0.0)


def slope_error_deg(altitude_m: float) -> float:
    """Hazard-map slope error grows with range."""
    return 2.0 + 0.03 * max(altitude_m, 0.0)


def erode(mask: np.ndarray) -> np.ndarray:
    """3×3 binary erosion (edges count as unsafe)."""
    out = mask.copy()
    out[1:, :] &= mask[:-1, :]
    out[:-1, :] &= mask[1:, :]
    tmp = out.copy()
    out[:, 1:] &= tmp[:, :-1]
    out[:, :-1] &= tmp[:, 1:]
    out[0, :] = out[-1, :] = False
    out[:, 0] = out[:, -1] = False
    return out


def select_landing_cell(world: World, gx: np.ndarray, gy: np.ndarray, reach: np.ndarray, alt: np.ndarray, optical: bool, site: tuple[float, float]):
    """Pick where to land from the hazard map: the nearest cell centring a clear, sunlit 5×5 area (footprint
    plus dispersion margin), else a clear sunlit 3×3 or cell, else the same in the dark. Returns x, y, found-5×5."""
    found = np.zeros(gx.size, bool)
    ox, oy = gx.copy(), gy.copy()
    active = reach > 0
    if not active.any():
        return ox, oy, found
    rad = float(np.max(np.hypot(gx[active] - site[0], gy[active] - site[1]) + reach[active])) + 3 * world.dx
    c = int(np.ceil(min(rad, 260.0) / world.dx))
    n = world.dem.shape[0]
    ci, cj = int(site[1] / world.dx), int(site[0] / world.dx)
    i0, i1, j0, j1 = max(ci - c, 0), min(ci + c + 1, n), max(cj - c, 0), min(cj + c + 1, n)
    boulder = world.boulder[i0:i1, j0:j1]
    seen_slope = world.slope[i0:i1, j0:j1] + world.slope_noise[i0:i1, j0:j1] * slope_error_deg(float(np.median(alt[active])))
    base = seen_slope <= HDA_SLOPE_LIMIT_DEG
    if optical:
        base = base & world.lit[i0:i1, j0:j1]
    hint = world.lit_hint[i0:i1, j0:j1]
    idx = np.nonzero(active)[0]
    dmin = detection_size_m(alt)
    for k_group in groups(dmin[idx]):
        sel = idx[k_group]
        thresh = max(HAZARD_BOULDER_M, float(dmin[sel[0]]))
        safe = base & (boulder < thresh)
        good = safe & hint
        ci_, cj_ = np.nonzero(safe)
        if ci_.size == 0:
            continue
        tiers = [erode(erode(good)), erode(good), good, erode(erode(safe)), erode(safe)]
        level = np.full(ci_.size, len(tiers), dtype=float)
        for t, mask in reversed(list(enumerate(tiers))):
            level = np.where(mask[ci_, cj_], t, level)
        penalty = 1000.0 * level
        roomy = (level == 0) | (level == 3)
        cx, cy = (cj_ + j0 + 0.5) * world.dx, (ci_ + i0 + 0.5) * world.dx
        d = np.hypot(cx[None, :] - gx[sel, None], cy[None, :] - gy[sel, None])
        cost = np.where(d <= reach[sel, None], d + penalty[None, :], np.inf)
        best = np.argmin(cost, axis=1)
        ok = np.isfinite(cost[np.arange(sel.size), best])
        found[sel] = ok & roomy[best]
        ox[sel] = np.where(ok, cx[best], gx[sel])
        oy[sel] = np.where(ok, cy[best], gy[sel])
    return ox, oy, found


def footprint_boulders(world: World, ti: np.ndarray, tj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest hazardous boulder under the footprint and the chance one meets a footpad or the belly."""
    n = world.dem.shape[0]
    big = np.zeros(ti.size)
    miss = np.ones(ti.size)
    for di, dj, p in ((0, 0, 0.75), (1, 0, 0.2), (-1, 0, 0.2), (0, 1, 0.2), (0, -1, 0.2)):
        b = world.boulder[np.clip(ti + di, 0, n - 1), np.clip(tj + dj, 0, n - 1)].astype(float)
        haz = b >= HAZARD_BOULDER_M
        big = np.maximum(big, np.where(haz, b, 0.0))
        miss *= 1.0 - p * haz
    return big, 1.0 - miss


def groups(dmin: np.ndarray) -> list[np.ndarray]:
    """Runs sharing the same effective detection threshold share one hazard map."""
    eff = np.round(np.maximum(dmin, HAZARD_BOULDER_M), 2)
    return [np.nonzero(eff == v)[0] for v in np.unique(eff)]
