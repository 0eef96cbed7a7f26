"""Lumara benchmark: baseline (empty playbooks) and oracle success on test scenarios, and mission wall time.

One mission = scenario generation + every tool call (incl. a 50-run planning Monte Carlo)
+ the executed landing, on one core. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

# bench/lumara.py would shadow the `lumara` package when a script here runs: drop this folder from the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from lumara.driver import fly_mission
from lumara.oracle import ORACLE_POLICIES
from lumara.scenarios import build_scenario, scenario_seeds
from lumara.tools import ORACLE_TOOLS


def run(n: int, campaign_seed: int) -> dict:
    seeds = scenario_seeds("test", n, campaign_seed)
    out: dict = {"split": "test", "n": n, "campaign_seed": campaign_seed}
    for mode in ("baseline", "oracle"):
        build_scenario.cache_clear()
        causes: Counter[str] = Counter()
        times = []
        for seed in seeds:
            t0 = time.perf_counter()
            r = fly_mission(seed) if mode == "baseline" else fly_mission(seed, policies=ORACLE_POLICIES, tools=ORACLE_TOOLS)
            times.append(time.perf_counter() - t0)
            a = r.report.assurance
            causes[a.cause if a and a.executed else "not_executed"] += 1
        out[mode] = {
            "success_rate": round(causes["none"] / n, 3),
            "causes": dict(causes.most_common()),
            "mission_s_mean": round(float(np.mean(times)), 3),
            "mission_s_p95": round(float(np.percentile(times, 95)), 3),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="campaign seed")
    a = ap.parse_args(argv)
    print(json.dumps(run(a.n, a.seed), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
