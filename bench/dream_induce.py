"""Benchmark induction: 1k and 10k runs, 3 specialists, ~40 features each, planted rules.

Prints JSON: for each size, the time to induce from scratch (ingest + search),
the time to fold in 100 more runs and induce again from the kept stats, the
serialised stats size, which planted rules were recovered, and peak RSS.

    .venv/bin/python bench/dream_induce.py [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

from orchestra.dreaming import Episode, InductionStats, induce_from_stats, update

SPECIALISTS = ("site", "nav", "assurance")
CATS = ("lidar", "radar", "camera", "sonar")


def _features(rng: np.random.Generator, spec: str, i: int) -> dict:
    f: dict = {f"input.c{j}": float(rng.random()) for j in range(10)}
    f.update({f"tool.probe{j % 3}.m{j}": float(rng.normal()) for j in range(14)})
    f.update({f"output.x{j}": float(rng.random()) for j in range(10)})
    f.update({f"output.mode{j}": CATS[int(rng.integers(len(CATS)))] for j in range(3)})
    f["output.retry"] = bool(rng.random() < 0.5)
    f["output.count"] = int(rng.integers(0, 12))
    f["output.rationale"] = f"chose option {i} after weighing the {spec} evidence"
    f["input.task_id"] = f"{spec}-{i}"
    return f


def _mechanisms(f: dict, k: int) -> bool:
    """Planted per specialist k: `output.x{k} <= 0.85-0.05k` and
    `when input.c{k} >= 0.8 require output.mode{k} == lidar`."""
    return f[f"output.x{k}"] > 0.85 - 0.05 * k or (f[f"input.c{k}"] > 0.8 and f[f"output.mode{k}"] != "lidar")


def episodes(runs: int, seed: int, start: int = 0) -> list[Episode]:
    rng = np.random.default_rng(seed)
    out: list[Episode] = []
    for r in range(start, start + runs):
        feats = [_features(rng, s, r) for s in SPECIALISTS]
        broke = [_mechanisms(f, k) and rng.random() < 0.5 for k, f in enumerate(feats)]
        failed = any(broke) or rng.random() < 0.05
        for k, (s, f) in enumerate(zip(SPECIALISTS, feats)):
            out.append(Episode(specialist=s, run_id=f"run-{r}", trace_id=f"{r:032x}", features=f, passed=not failed,
                               criteria={"landed": not failed, f"{s}_ok": not broke[k]},
                               cause=("crash" if broke[k] else None)))
    return out


def bench(runs: int, seed: int = 0) -> dict:
    eps = episodes(runs, seed)
    more = episodes(100, seed + 1, start=runs)
    t0 = time.perf_counter()
    stats = update(InductionStats.empty(), eps)
    t1 = time.perf_counter()
    rules = induce_from_stats(stats)
    t2 = time.perf_counter()
    blob = stats.to_bytes()
    t3 = time.perf_counter()
    stats2 = update(InductionStats.from_bytes(blob), more)
    rules2 = induce_from_stats(stats2)
    t4 = time.perf_counter()
    return {
        "runs": runs,
        "episodes": len(eps),
        "features_per_episode": len(eps[0].features),
        "full_ingest_s": round(t1 - t0, 3),
        "full_induce_s": round(t2 - t1, 3),
        "full_total_s": round(t2 - t0, 3),
        "incremental_100_runs_s": round(t4 - t3, 3),
        "stats_bytes": len(blob),
        "rules": [f"{r.specialist}: {r.rule.describe()} (support {r.support}, lift {r.lift:.1f}, q {r.q_value:.1e})" for r in rules],
        "rules_after_increment": len(rules2),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = ap.parse_args(argv)
    results = [bench(n) for n in args.sizes]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
    print(json.dumps({"bench": "dream_induce", "results": results, "peak_rss_mb": round(rss_mb, 1)}, indent=2))


if __name__ == "__main__":
    main()
