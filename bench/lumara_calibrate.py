"""Calibration of the Lumara demo: baseline, oracle and naive + an ideal hand-written rule set.

The ideal rules live only here (never in the policies); they show that a handful of
one-condition threshold rules over visible features closes most of the gap to the oracle.
Prints JSON: success rates, cause histograms, and whether the targets hold.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from orchestra.rules import Condition, Rule

# bench/lumara.py would shadow the `lumara` package when a script here runs: drop this folder from the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from lumara.driver import fly_mission
from lumara.oracle import ORACLE_POLICIES
from lumara.policies import POLICIES
from lumara.scenarios import scenario_seeds
from lumara.tools import ORACLE_TOOLS, SPECIALIST_TOOLS


def _r(field: str, op: str, value, when: tuple[str, str, object] | None = None) -> Rule:
    cond = [Condition(field=when[0], op=when[1], value=when[2])] if when else []  # type: ignore[arg-type]
    return Rule(when=cond, require=Condition(field=field, op=op, value=value))  # type: ignore[arg-type]


IDEAL_RULES: dict[str, list[Rule]] = {
    "site_selection": [
        _r("output.slope_deg", "<=", 7.0),
        _r("output.shadow_fraction", "<=", 0.2),
        _r("output.earth_visible", "==", True),
        _r("output.rim_distance_m", ">=", 120.0),
    ],
    "navigation": [
        _r("output.sensor", "==", "lidar", when=("input.site.approach_shadow_fraction", ">", 0.2)),
        _r("output.altimeter_rejection_m", ">=", 300.0, when=("input.site.relief_m", ">", 25.0)),
        _r("output.terminal_rate_mps", "<=", 1.5),
        _r("output.hover_altitude_m", ">=", 70.0),
    ],
    "mission_assurance": [],
}


def _one(args: tuple[str, int]) -> dict:
    mode, seed = args
    t0 = time.perf_counter()
    if mode == "oracle":
        run = fly_mission(seed, policies=ORACLE_POLICIES, tools=ORACLE_TOOLS)
    elif mode == "ideal":
        run = fly_mission(seed, policies=POLICIES, rules=IDEAL_RULES, tools=SPECIALIST_TOOLS)
    else:
        run = fly_mission(seed, policies=POLICIES, tools=SPECIALIST_TOOLS)
    a = run.report.assurance
    cause = a.cause if a and a.executed else "not_executed"
    return {"mode": mode, "seed": seed, "cause": cause, "seconds": time.perf_counter() - t0,
            "site": run.report.site.model_dump() if run.report.site else None,
            "plan": run.report.plan.model_dump() if run.report.plan else None}


def calibrate(n: int, split: str, campaign_seed: int, workers: int) -> dict:
    seeds = scenario_seeds(split, n, campaign_seed)  # type: ignore[arg-type]
    jobs = [(mode, s) for mode in ("baseline", "oracle", "ideal") for s in seeds]
    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(_one, jobs, chunksize=4))
    out: dict = {"split": split, "n": n, "campaign_seed": campaign_seed}
    for mode in ("baseline", "oracle", "ideal"):
        mine = [r for r in rows if r["mode"] == mode]
        out[mode] = {
            "success_rate": round(sum(r["cause"] == "none" for r in mine) / len(mine), 3),
            "causes": dict(Counter(r["cause"] for r in mine).most_common()),
            "mean_mission_s": round(sum(r["seconds"] for r in mine) / len(mine), 3),
        }
    b, o, i = (out[m]["success_rate"] for m in ("baseline", "oracle", "ideal"))
    out["targets"] = {
        "baseline_30_60": 0.30 <= b <= 0.60,
        "oracle_85_100": o >= 0.85,
        "ideal_closes_90pct": i >= b + 0.9 * (o - b),
        "ideal_needed": round(b + 0.9 * (o - b), 3),
    }
    out["ideal_rules"] = {k: [r.describe() for r in v] for k, v in IDEAL_RULES.items()}
    if os.environ.get("LUMARA_CALIBRATE_ROWS"):
        with open(os.environ["LUMARA_CALIBRATE_ROWS"], "w") as f:
            json.dump(rows, f)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--split", default="test", choices=["train", "validation", "test"])
    ap.add_argument("--seed", type=int, default=0, help="campaign seed")
    ap.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    a = ap.parse_args(argv)
    print(json.dumps(calibrate(a.n, a.split, a.seed, a.workers), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
