"""How much of the baseline-to-oracle gap can playbooks close? Measured on a large held-out test set.

A campaign's 60 test scenarios leave each gap-closed figure about 7 points of noise. This flies the
empty-playbook baseline, the hand-written reference, the oracle and, with `--campaigns DIR`, the final
playbooks of the campaigns `bench/headline.py --out DIR` stored there (`DIR/s<seed>.db`) on the first
`--test` test scenarios of each campaign seed (a campaign's own 60 are the first 60 of these), and
prints one JSON document: each arm's success rate, its gap closed and failure causes, per seed.
About 30 s per arm and 300 scenarios on 2 cores.

    .venv/bin/python bench/playbook_bound.py [--seeds 1 2 3] [--test 300] [--campaigns DIR] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# bench/ (sys.path[0] when run as a script) stays off sys.path: bench/lumara.py would shadow the `lumara` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]

from orchestra.campaign import wilson  # noqa: E402
from orchestra.executors import Job, fly, playbooks_payload  # noqa: E402
from orchestra.loader import load_reference, load_workflow  # noqa: E402
from orchestra.playbook import Playbook, empty_playbook  # noqa: E402
from orchestra.store import Store  # noqa: E402
from orchestra.versions import active_playbooks  # noqa: E402
from orchestra.workflow import Workflow  # noqa: E402

GRAPH = str(ROOT / "graphs/lumara.py")


def fly_arm(wf: Workflow, seeds: list[int], playbooks: dict[str, Playbook], workers: int) -> dict[str, Any]:
    """One arm on the test scenarios: success rate with its 95% interval, and the failure causes."""
    jobs = [Job(seed=s, playbooks=playbooks_payload(playbooks), phase="test") for s in seeds]
    flown = fly(wf, jobs, executor="process", workers=workers)
    passed = sum(f.passed for f in flown)
    causes = Counter(str(f.record.get("cause")) for f in flown if not f.passed)
    return {"success_rate": round(passed / len(flown), 4), "ci95": [round(x, 4) for x in wilson(passed, len(flown))],
            "landings": passed, "failures": dict(causes.most_common())}


def measure(seed: int, test: int, campaigns: Path | None, workers: int) -> dict[str, Any]:
    wf, oracle = load_workflow(GRAPH), load_workflow(f"{GRAPH}:oracle")
    names = [s.name for s in wf.specialists]
    empty = {n: empty_playbook(n) for n in names}
    reference = {**empty, **(load_reference(GRAPH, "reference", wf) or {})}
    seeds = wf.scenario_seeds("test", test, seed)
    t0 = time.perf_counter()
    arms = {
        "baseline": fly_arm(wf, seeds, empty, workers),
        "reference": fly_arm(wf, seeds, reference, workers),
        "oracle": fly_arm(oracle, seeds, {s.name: empty_playbook(s.name) for s in oracle.specialists}, workers),
    }
    if campaigns is not None:
        db = campaigns / f"s{seed}.db"
        if not db.is_file():
            raise SystemExit(f"{db}: no campaign store for seed {seed} (run bench/headline.py --out {campaigns} first)")
        arms["learned"] = fly_arm(wf, seeds, {**empty, **active_playbooks(Store(db), names)}, workers)
    # from landing counts, not the rounded rates: a figure is rounded once, where it is shown
    base, top = arms["baseline"]["landings"], arms["oracle"]["landings"]
    for arm in arms.values():
        arm["gap_closed"] = round((arm["landings"] - base) / (top - base), 6) if top > base else None
    return {"seed": seed, "test_scenarios": test, "arms": arms, "wall_s": round(time.perf_counter() - t0, 1)}


def markdown(rows: list[dict[str, Any]]) -> str:
    arms = [a for a in ("baseline", "reference", "learned", "oracle") if a in rows[0]["arms"]]
    head = ["seed", *arms, *(f"{a}'s gap closed" for a in arms if a in ("reference", "learned"))]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        a = r["arms"]
        cells = [str(r["seed"]), *(f"{100 * a[n]['success_rate']:.1f}%" for n in arms),
                 *(f"{100 * a[n]['gap_closed']:.1f}%" for n in arms if n in ("reference", "learned"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--test", type=int, default=300, help="test scenarios per seed")
    ap.add_argument("--campaigns", type=Path, default=None, help="bench/headline.py --out folder: also fly each seed's final playbooks")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--markdown", action="store_true", help="also print a Markdown table on stderr")
    a = ap.parse_args()
    rows = [measure(seed, a.test, a.campaigns, a.workers) for seed in a.seeds]
    print(json.dumps({"seeds": rows}, indent=2))
    if a.markdown:
        print(markdown(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
