"""Scenarios: one seed gives one terrain, sun, Earth, science target and candidate list.

Seeds are split into disjoint training / validation / test sets; the campaign seed
reshuffles every set. Difficulty comes from the terrain and the sun: relief,
fresh-crater density, sun elevation and where the science target sits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from .orbital import Orbital, candidate_sites, degrade
from .shadows import cast_shadows
from .terrain import Terrain, TerrainParams, generate_terrain
from .types import SiteInfo

Split = Literal["train", "validation", "test"]
_SPLIT_CODE = {"train": 0, "validation": 1, "test": 2}
SUN_DRIFT_DEG = 4.0


def scenario_seeds(split: Split, n: int, campaign_seed: int = 0) -> list[int]:
    """`n` deterministic scenario seeds; the residue mod 3 encodes the split, so splits never overlap."""
    code = _SPLIT_CODE[split]
    out: list[int] = []
    seen: set[int] = set()
    i = 0
    while len(out) < n:
        h = hashlib.blake2b(f"lumara:{campaign_seed}:{split}:{i}".encode(), digest_size=8).digest()
        s = (int.from_bytes(h, "big") % 700_000_000) * 3 + code
        if s not in seen:
            seen.add(s)
            out.append(s)
        i += 1
    return out


def split_of(seed: int) -> Split:
    return ("train", "validation", "test")[seed % 3]  # type: ignore[return-value]


@dataclass(frozen=True)
class Scenario:
    """Ground truth plus orbital products for one seed; treat every array as read-only."""

    seed: int
    terrain: Terrain
    lit: np.ndarray
    lit_later: np.ndarray
    slope_noise: np.ndarray
    sun: tuple[float, float]
    earth: tuple[float, float]
    approach_az_deg: float
    target: tuple[float, float]
    orbital: Orbital
    sites: tuple[SiteInfo, ...]
    difficulty: dict[str, float]

    def site(self, site_id: str) -> SiteInfo:
        for s in self.sites:
            if s.site_id == site_id:
                return s
        raise KeyError(site_id)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32, stream]))


def scenario_params(seed: int) -> tuple[TerrainParams, dict[str, float]]:
    """Terrain and sun knobs for a seed, plus the target and its feature craters."""
    r = _rng(seed, 0)
    n, dx = 800, 2.5
    size = n * dx
    target = (size / 2 + r.uniform(-200, 200), size / 2 + r.uniform(-200, 200))
    features = []
    fresh_d = r.uniform(80, 240)
    ang = r.uniform(0, 2 * np.pi)
    off = fresh_d / 2 * r.uniform(0.9, 1.4)
    features.append((target[0] + off * np.cos(ang), target[1] + off * np.sin(ang), fresh_d, True))
    if r.random() < 0.6:
        d = r.uniform(250, 550)
        ang2 = ang + np.pi + r.uniform(-1.0, 1.0)
        off2 = d / 2 * r.uniform(0.8, 1.3)
        features.append((target[0] + off2 * np.cos(ang2), target[1] + off2 * np.sin(ang2), d, False))
    params = TerrainParams(
        n=n,
        dx=dx,
        relief_rms_m=float(r.uniform(10.0, 28.0)),
        spectral_beta=float(r.uniform(4.2, 4.6)),
        tilt_deg=float(r.uniform(0.0, 4.0)),
        tilt_azimuth_deg=float(r.uniform(0, 360)),
        crater_density=float(r.uniform(0.01, 0.03)),
        fresh_n12=float(r.uniform(8, 40)),
        n_scarps=int(r.integers(1, 4)),
        boulder_peak=float(r.uniform(1.0, 3.0)),
        feature_craters=tuple(features),
    )
    env = {
        "sun_azimuth_deg": float(r.uniform(0, 360)),
        "sun_elevation_deg": float(r.uniform(1.5, 6.5)),
        "earth_azimuth_deg": float(r.uniform(0, 360)),
        "earth_elevation_deg": float(r.uniform(1.5, 6.5)),
        "approach_azimuth_deg": float(r.uniform(0, 360)),
        "slope_noise_deg": float(r.uniform(1.5, 2.5)),
        "sun_elevation_drift_deg": float(r.uniform(-0.3, 0.3)),
        "target_x_m": float(target[0]),
        "target_y_m": float(target[1]),
    }
    return params, env


@lru_cache(maxsize=8)
def build_scenario(seed: int) -> Scenario:
    """Generate (once per process, cached) the full scenario for a seed."""
    params, env = scenario_params(seed)
    terrain = generate_terrain(params, _rng(seed, 1))
    sun = (env["sun_azimuth_deg"], env["sun_elevation_deg"])
    earth = (env["earth_azimuth_deg"], env["earth_elevation_deg"])
    lit = ~cast_shadows(terrain.dem, terrain.dx, *sun)
    later = (sun[0] + SUN_DRIFT_DEG, sun[1] + env["sun_elevation_drift_deg"])
    lit_later = ~cast_shadows(terrain.dem, terrain.dx, *later)
    lit.flags.writeable = False
    lit_later.flags.writeable = False
    orbital = degrade(terrain, sun, env["slope_noise_deg"], _rng(seed, 2))
    target = (env["target_x_m"], env["target_y_m"])
    sites = candidate_sites(orbital, target, env["approach_azimuth_deg"], earth, _rng(seed, 3))
    difficulty = {
        "sun_elevation_deg": sun[1],
        "relief_rms_m": params.relief_rms_m,
        "fresh_n12": params.fresh_n12,
        "shadowed_fraction": float(1.0 - lit.mean()),
    }
    return Scenario(
        seed=seed,
        terrain=terrain,
        lit=lit,
        lit_later=lit_later,
        slope_noise=_rng(seed, 4).standard_normal(terrain.dem.shape).astype(np.float32),
        sun=sun,
        earth=earth,
        approach_az_deg=env["approach_azimuth_deg"],
        target=target,
        orbital=orbital,
        sites=tuple(sites),
        difficulty=difficulty,
    )
