"""A picture of one landing: hillshade, shadows, candidates, ground track, touchdown and cause."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .mission import Mission  # noqa: E402


def hillshade(dem: np.ndarray, dx: float, azimuth_deg: float = 315.0, altitude_deg: float = 35.0) -> np.ndarray:
    gy, gx = np.gradient(dem.astype(np.float64), dx)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gy, gx)
    az, alt = np.radians(azimuth_deg), np.radians(altitude_deg)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0.0, 1.0)


def draw_landing(mission: Mission, path: str | Path) -> Path:
    """Render the mission (executed or not) to a PNG at `path`."""
    sc = mission.scenario
    t = sc.terrain
    size = t.size_m
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 6.4), gridspec_kw={"width_ratios": [1.35, 1]})
    extent = (0, size, 0, size)
    ax.imshow(hillshade(t.dem[::2, ::2], t.dx * 2), cmap="gray", origin="lower", extent=extent, vmin=0, vmax=1)
    ax.imshow(np.where(~sc.lit[::2, ::2], 1.0, np.nan), cmap="Blues", alpha=0.45, origin="lower", extent=extent, vmin=0, vmax=1.5)
    big = t.boulder_max >= 1.0
    bi, bj = np.nonzero(big[::2, ::2])
    ax.scatter((bj + 0.5) * t.dx * 2, (bi + 0.5) * t.dx * 2, s=0.3, c="saddlebrown", alpha=0.5, linewidths=0)
    ax.plot(*sc.target, marker="*", ms=16, color="gold", mec="k", label="science target")
    chosen = mission.executed_site
    for s in sc.sites:
        c = "lime" if s.site_id == chosen else "cyan"
        ax.plot(s.x_m, s.y_m, "o", ms=9 if s.site_id == chosen else 6, mfc="none", mec=c, mew=1.8)
        ax.annotate(s.site_id, (s.x_m, s.y_m), xytext=(5, 5), textcoords="offset points", color=c, fontsize=7)
    title = f"Lumara scenario {sc.seed}: sun {sc.sun[1]:.1f}° el, Earth {sc.earth[1]:.1f}° el"
    tel = mission.executed
    f = mission.flight
    if f is not None and f.path:
        track = np.array([p[0] for p in f.path])
        ax.plot(track[:, 0], track[:, 1], "-", color="orange", lw=1.5, label="ground track")
        ax2.plot(np.hypot(track[:, 0] - track[-1, 0], track[:, 1] - track[-1, 1]), track[:, 2] - track[-1, 2] + f.gate_alt_m[0],
                 color="orange", label="approach")
        ax.plot(f.td_x[0], f.td_y[0], "X", ms=12, color="red" if tel and tel["cause"] != "none" else "lime", mec="k", label="touchdown")
    if tel is not None:
        verdict = "SUCCESS" if tel["cause"] == "none" else f"FAILED: {tel['cause']}"
        title += f"\n{chosen}: {tel['outcome']} — {verdict}"
        lines = [f"{k}: {tel[k]}" for k in ("vertical_speed_mps", "horizontal_speed_mps", "slope_deg", "boulder_strike",
                                             "fuel_remaining_kg", "distance_to_target_m", "earth_link", "power_ok", "divert_m")]
        ax2.text(0.02, 0.02, "\n".join(lines), transform=ax2.transAxes, fontsize=8, family="monospace", va="bottom")
        ax2.set_title("\n".join(_wrap(tel["cause_detail"], 70)), fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, size)
    ax.set_ylim(0, size)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.legend(loc="lower left", fontsize=7)
    ax2.set_xlabel("distance to touchdown (m)")
    ax2.set_ylabel("altitude above site (m)")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _wrap(text: str, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if len(cur) + len(w) + 1 > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return lines + [cur] if cur else lines
