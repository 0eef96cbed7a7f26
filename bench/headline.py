"""The README's headline figure, measured: Lumara campaigns at 2 nights x 20 missions on several seeds.

Runs `orchestra campaign graphs/lumara.py --seed S --missions 20 --test 60 --ablation shuffled` for
each seed, exactly as a user would, and prints one JSON document: each seed's row (baseline, each
night, reference, oracle, gap closed, largest criterion drop, ablation) and whether the issue's goal
holds on every seed (gap closed >= 90%, no criterion drop above 2 points). `--markdown` also prints
the README's table on stderr. About 75-95 s per seed on 2 cores.

    .venv/bin/python bench/headline.py [--seeds 1 2 3] [--out DIR] [--markdown] [--bound 300]

`--bound 300` then flies each seed's final playbooks, the reference, baseline and oracle on 300 test
scenarios (about 8 more minutes): the same gap-closed figures with far less test-set noise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GOAL_GAP = 0.90
GOAL_MAX_DROP = 0.02


def campaign(seed: int, out: Path, missions: int, test: int) -> dict[str, Any]:
    """One campaign through the CLI; its --json summary."""
    cmd = [str(Path(sys.executable).parent / "orchestra"), "campaign", str(ROOT / "graphs/lumara.py"), "--seed", str(seed),
           "--missions", str(missions), "--test", str(test), "--ablation", "shuffled", "--executor", "process", "--workers", "2",
           "--db", str(out / f"s{seed}.db"), "--out", str(out / f"s{seed}"), "--json"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"campaign seed {seed} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    summary = json.loads(done.stdout)
    summary["_wall_s"] = round(time.perf_counter() - t0, 1)
    return summary


def row(seed: int, s: dict[str, Any]) -> dict[str, Any]:
    """The figures the README's table shows for one seed."""
    versions = [v for v in s["versions"] if not str(v["name"]).startswith("ablation")]
    ablation = next((v for v in s["versions"] if str(v["name"]).startswith("ablation")), None)
    ref = s.get("reference") or {}
    return {
        "seed": seed,
        "campaign_id": s.get("campaign_id"),
        "versions": {v["name"]: round(v["success_rate"], 6) for v in versions},
        "reference": ref.get("success_rate"),
        "reference_gap_closed": ref.get("gap_closed"),
        "oracle": s["oracle"]["success_rate"],
        "gap_closed": round(s["gap_closed"], 6),
        "reference_gain_reached": s.get("reference_gain_reached"),
        "max_criterion_drop": round(s["max_criterion_drop"], 6),
        "ablation": None if ablation is None else round(ablation["success_rate"], 6),
        "ablation_gain": None if ablation is None else round(ablation["success_rate"] - versions[0]["success_rate"], 6),
        "training_missions": s["training_missions"],
        "validation_flights": ((s.get("cost") or {}).get("dreaming") or {}).get("gate_flights"),
        "wall_s": s["_wall_s"],
        "goal_met": s["gap_closed"] >= GOAL_GAP - 1e-9 and s["max_criterion_drop"] <= GOAL_MAX_DROP + 1e-9,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    names = list(rows[0]["versions"])
    head = ["seed", *names, "reference", "oracle", "gap closed", "reference's gap closed", "largest drop", "ablation"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["seed"]), *(pct(r["versions"][n]) for n in names), pct(r["reference"]), pct(r["oracle"]), pct(r["gap_closed"]),
                 pct(r["reference_gap_closed"]), f"{100 * r['max_criterion_drop']:.1f} pts", pct(r["ablation"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--missions", type=int, default=20)
    ap.add_argument("--test", type=int, default=60)
    ap.add_argument("--out", type=Path, default=None, help="where the campaigns' stores and reports go (default: a temporary folder)")
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown on stderr")
    ap.add_argument("--bound", type=int, default=0, metavar="N",
                    help="also fly each seed's final playbooks, the reference, baseline and oracle on N test scenarios (bench/playbook_bound.py)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="headline-") as tmp:
        out = a.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        rows = [row(seed, campaign(seed, out, a.missions, a.test)) for seed in a.seeds]
        if a.bound > 0:
            import playbook_bound  # noqa: PLC0415 - bench/ is on sys.path when run as a script

            for r in rows:
                arms = playbook_bound.measure(r["seed"], a.bound, out, workers=2)["arms"]
                r["large_test"] = {"test_scenarios": a.bound, **{f"{n}_gap_closed": arms[n]["gap_closed"] for n in ("learned", "reference")},
                                   **{f"{n}_success": arms[n]["success_rate"] for n in arms}}
    doc = {"goal": {"gap_closed_at_least": GOAL_GAP, "max_criterion_drop_at_most": GOAL_MAX_DROP, "nights": 2, "missions_per_night": a.missions},
           "seeds": rows, "goal_met_on": sum(r["goal_met"] for r in rows), "of": len(rows)}
    print(json.dumps(doc, indent=2))
    if a.markdown:
        print(markdown(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
