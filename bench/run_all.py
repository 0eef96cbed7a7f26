"""The benchmark suite (`make bench`): writes bench/results.json and prints it.

Figures, each against its goal where the issue sets one:
- orchestration overhead per agent turn, and its ratio to bare LangGraph (bench/overhead.py);
- offline missions per second on one core (pilot; Lumara when graphs/lumara.py loads);
- a 100-mission campaign day on `local`, `process` and `ray` with 1 and 2 workers;
- dreaming time and peak memory at 1k and 10k stored runs (~1M spans), and an
  incremental dream over 100 new runs after the 10k one;
- store bytes per run.

Every timed measurement runs in a fresh subprocess (`--measure ...`), so peak
RSS (ru_maxrss) is that measurement's own and warm caches never leak between
executors. The machine may be shared: the JSON records the load average and
the parallel speed-up a pure CPU burn gets, the ceiling for any executor.

    .venv/bin/python bench/run_all.py [--quick] [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PILOT = str(ROOT / "tests/graphs/pilot.py")
LUMARA = str(ROOT / "graphs/lumara.py")
# bench/ (sys.path[0] when run as a script) stays off sys.path: bench/lumara.py would shadow the `lumara` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

GOALS = {
    "day_speedup_2_workers": 1.7,
    "overhead_ms_per_turn": 1.0,
    "dream_10k_s": 30.0,
    "dream_10k_peak_mb": 1024.0,
    "incremental_dream_100_s": 2.0,
}


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024, 1)


def tree_cpu() -> float | None:
    """CPU seconds of this process and all its descendants, live (from /proc) or reaped: pool
    workers and Ray's raylet, GCS and workers included. None off Linux."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    if not Path("/proc/self/stat").exists():
        return None
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        parent[int(d)] = int(f[1])
        cpu[int(d)] = sum(int(x) for x in f[11:15]) / tick  # utime, stime, cutime, cstime
    me = os.getpid()
    kids: dict[int, list[int]] = {}
    for pid, pp in parent.items():
        kids.setdefault(pp, []).append(pid)
    total, todo = 0.0, list(kids.get(me, []))
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(kids.get(pid, []))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return total + ru.ru_utime + ru.ru_stime + ch.ru_utime + ch.ru_stime


def sub(*args: str, timeout: float = 1800) -> dict[str, Any]:
    """One measurement in a fresh interpreter; its last stdout line is its JSON."""
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


# --- measurements (each runs in its own subprocess) --------------------------------------


def _burn(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def m_ceiling() -> dict[str, Any]:
    """How much faster 2 processes burn CPU than 1 right now: the ceiling for any executor here."""
    from concurrent.futures import ProcessPoolExecutor

    out = {}
    for w in (1, 2):
        with ProcessPoolExecutor(w) as pool:
            list(pool.map(_burn, [10_000] * w))
            t = time.perf_counter()
            list(pool.map(_burn, [2_000_000] * 8))
            out[w] = time.perf_counter() - t
    return {"burn_1_s": round(out[1], 3), "burn_2_s": round(out[2], 3), "parallel_ceiling_2": round(out[1] / out[2], 2)}


def _day_jobs(wf: Any, n: int, start: int = 0) -> list[Any]:
    from orchestra.executors import Job, playbooks_payload
    from orchestra.workflow import default_playbooks

    pb = playbooks_payload(default_playbooks(wf))
    seeds = wf.scenario_seeds("train", start + n, 0)[start:]
    return [Job(seed=s, playbooks=pb, phase="train", run_id=f"day-{i:04d}") for i, s in enumerate(seeds)]


def m_throughput(graph: str, n: str) -> dict[str, Any]:
    """Offline missions per second in one process (one core), after a warm-up mission."""
    from orchestra.executors import fly
    from orchestra.loader import load_workflow

    wf = load_workflow(graph)
    fly(wf, _day_jobs(wf, 1, start=10_000))
    jobs = _day_jobs(wf, int(n))
    t = time.perf_counter()
    out = fly(wf, jobs, executor="local")
    dt = time.perf_counter() - t
    return {"workflow": wf.name, "missions": len(jobs), "wall_s": round(dt, 3), "missions_per_s_per_core": round(len(jobs) / dt, 2), "ms_per_mission": round(dt * 1e3 / len(jobs), 2), "success_rate": sum(f.passed for f in out) / len(out)}


def m_day(graph: str, executor: str, workers: str, n: str, reps: str) -> dict[str, Any]:
    """A campaign day: n missions through executors.fly with the driver writing a store.

    local warms its caches first; process includes starting its pool (fly does, once
    per phase); ray starts its cluster and warms its workers once (a campaign keeps
    them for every phase), and that cold start is reported on its own.
    """
    from orchestra.executors import fly
    from orchestra.loader import load_workflow
    from orchestra.store import Store

    wf = load_workflow(graph)
    w = int(workers)
    cold: dict[str, Any] = {}
    if executor == "ray":
        from orchestra import ray_executor

        t = time.perf_counter()
        ray_executor.ensure_ray(w)
        cold["ray_init_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        fly(wf, _day_jobs(wf, 2 * w, start=10_000), executor="ray", workers=w)
        cold["ray_first_tasks_s"] = round(time.perf_counter() - t, 2)
    else:
        fly(wf, _day_jobs(wf, 1, start=10_000))
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as d:
        for r in range(int(reps)):
            store = Store(Path(d) / f"day{r}.db")
            jobs = _day_jobs(wf, int(n))
            c, t = tree_cpu(), time.perf_counter()
            out = fly(wf, jobs, executor=executor, workers=w, store=store)  # type: ignore[arg-type]
            walls.append(time.perf_counter() - t)
            c2 = tree_cpu()
            cpus.append(None if c is None or c2 is None else c2 - c)
            store.close()
    best = min(walls)
    cpu = min((x for x in cpus if x is not None), default=None)
    return {"workflow": wf.name, "executor": executor, "workers": w, "missions": len(out), "wall_s": round(best, 3), "walls_s": [round(x, 3) for x in walls],
            "missions_per_s": round(len(out) / best, 1), "cpu_s": None if cpu is None else round(cpu, 3),
            "statuses": "".join("P" if f.passed else "F" for f in out), **cold}


def m_dream(db: str, validation: str) -> dict[str, Any]:
    """One dream over the store's undreamed runs, timed per step, with this process's peak RSS."""
    from orchestra.dreaming import job
    from orchestra.loader import load_workflow
    from orchestra.store import Store

    times: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrap(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - t
        return wrap

    job.mine = timed("mine_s", job.mine)  # type: ignore[assignment]
    job.steps.induce_all = timed("induce_s", job.steps.induce_all)  # type: ignore[assignment]
    job.gate = timed("gate_s", job.gate)  # type: ignore[assignment]
    wf = load_workflow(PILOT)
    store = Store(db)
    rss0 = peak_rss_mb()
    t = time.perf_counter()
    r = job.dream(wf, store, validation_seeds=wf.scenario_seeds("validation", int(validation), 0))
    total = time.perf_counter() - t
    lessons = [d["text"] for d in r["specialists"]["pilot"]["deltas"] if d.get("text")]
    return {"runs_mined": r["runs_mined"], "episodes": r["episodes"], "dream_s": round(total, 2), **{k: round(v, 2) for k, v in times.items()},
            "promoted": r["promoted"], "lessons": lessons, "rss_before_dream_mb": rss0, "peak_rss_mb": peak_rss_mb()}


def m_synth(db: str, start: str, n: str) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("bench_synth_store", BENCH / "synth_store.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {**mod.write_runs(Path(db), int(start), int(n)), "bytes": Path(db).stat().st_size}


def m_store_real(n: str) -> dict[str, Any]:
    """Bytes per run of real pilot runs as the driver writes them."""
    from orchestra.executors import fly
    from orchestra.loader import load_workflow
    from orchestra.store import Store

    wf = load_workflow(PILOT)
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "o.db")
        base = store.path.stat().st_size
        fly(wf, _day_jobs(wf, int(n)), store=store)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = store.path.stat().st_size
        spans = store.db.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
    return {"workflow": "pilot", "runs": int(n), "spans_per_run": spans / int(n), "bytes_per_run": round((size - base) / int(n))}


MEASURES: dict[str, Callable[..., dict[str, Any]]] = {
    "ceiling": m_ceiling, "throughput": m_throughput, "day": m_day, "dream": m_dream, "synth": m_synth, "store_real": m_store_real,
}


# --- the suite ----------------------------------------------------------------------------


def lumara_loads() -> str | None:
    """None if graphs/lumara.py loads (it is built alongside), else why not."""
    p = subprocess.run([sys.executable, "-c", f"from orchestra.loader import load_workflow; load_workflow({LUMARA!r})"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    return None if p.returncode == 0 else (p.stderr.strip().splitlines() or ["failed"])[-1]


def overhead() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("bench_overhead", BENCH / "overhead.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(200)


def days(graph: str, n: int, reps: int, ray: bool, which: tuple[tuple[str, tuple[int, ...]], ...] = (("local", (1,)), ("process", (1, 2)), ("ray", (1, 2)))) -> dict[str, Any]:
    """One day per executor and worker count, each in a fresh process.

    speedup_over_local is wall-clock; on a shared machine it is capped by
    machine.parallel_ceiling_2. cpu_bound_speedup_2_cores is what the CPU the
    executor spent allows on 2 idle cores: 2 * local CPU / executor CPU (max 2).
    """
    runs: dict[str, Any] = {}
    ceiling = sub("ceiling").get("parallel_ceiling_2")
    for ex, ws in which:
        if ex == "ray" and not ray:
            continue
        for w in ws:
            runs[f"{ex}_{w}"] = sub("day", graph, ex, str(w), str(n), str(reps))
    base = runs["local_1"]
    statuses = base.get("statuses")
    out: dict[str, Any] = {"workflow": base.get("workflow"), "missions": n, "parallel_ceiling_2_before": ceiling, "runs": runs, "speedup_over_local": {}, "cpu_bound_speedup_2_cores": {}}
    for k, v in runs.items():
        if "wall_s" in v and "wall_s" in base:
            out["speedup_over_local"][k] = round(base["wall_s"] / v["wall_s"], 2)
            v["same_statuses_as_local"] = v.pop("statuses") == statuses
            if v.get("cpu_s") and base.get("cpu_s") and v["workers"] == 2:
                out["cpu_bound_speedup_2_cores"][k] = round(min(2.0, 2 * base["cpu_s"] / v["cpu_s"]), 2)
    return out


def curve(n: int, ray: bool) -> dict[str, Any]:
    """Speed-up on 2 workers as missions get heavier: where fixed costs stop mattering."""
    out = {}
    for ms in (5, 20, 50):
        d = days(f"{BENCH / 'heavy_pilot.py'}:workflow_{ms}ms", n, 1, ray, (("local", (1,)), ("process", (2,)), ("ray", (2,))))
        out[f"plus_{ms}ms_cpu_per_mission"] = {"local_ms_per_mission": round(d["runs"]["local_1"].get("wall_s", 0) * 1e3 / n, 1), "speedup_over_local": d["speedup_over_local"], "cpu_bound_speedup_2_cores": d["cpu_bound_speedup_2_cores"]}
    return out


def dreaming(tmp: Path, sizes: list[int], validation: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        db = tmp / f"synth{n}.db"
        synth = sub("synth", str(db), "0", str(n))
        d = sub("dream", str(db), str(validation))
        out[f"{n}_runs"] = {"synthetic_store": {**synth, "bytes_per_run": round(synth.get("bytes", 0) / n), "spans_per_run": synth.get("spans", 0) / n}, "dream": d}
        if n == max(sizes):
            more = sub("synth", str(db), str(n), "100")
            out[f"{n}_runs"]["incremental_100"] = {"write_s": more.get("write_s"), "dream": sub("dream", str(db), str(validation))}
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
    return out


def goals(r: dict[str, Any]) -> dict[str, Any]:
    """Each goal: the figure, the target, met or not (None when not measured)."""
    def g(value: Any, target: float, higher: bool = False) -> dict[str, Any]:
        met = None if value is None else (value >= target if higher else value <= target)
        return {"value": value, "goal": (">= " if higher else "<= ") + str(target), "met": met}

    day = r["campaign_day"]["speedup_over_local"]
    big = r["dreaming"].get("10000_runs", {})
    return {
        "process_2_workers_speedup": g(day.get("process_2"), GOALS["day_speedup_2_workers"], True),
        "ray_2_workers_speedup": g(day.get("ray_2"), GOALS["day_speedup_2_workers"], True),
        "overhead_ms_per_turn": g(r["overhead"].get("overhead_ms_per_turn"), GOALS["overhead_ms_per_turn"]),
        "dream_10k_runs_s": g(big.get("dream", {}).get("dream_s"), GOALS["dream_10k_s"]),
        "dream_10k_runs_peak_mb": g(big.get("dream", {}).get("peak_rss_mb"), GOALS["dream_10k_peak_mb"]),
        "incremental_dream_100_runs_s": g(big.get("incremental_100", {}).get("dream", {}).get("dream_s"), GOALS["incremental_dream_100_s"]),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=BENCH / "results.json")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (1k dream only, fewer repeats): a smoke run, not the figures")
    ap.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        print(json.dumps(MEASURES[args.measure[0]](*args.measure[1:])))
        return {}
    t0 = time.perf_counter()
    has_ray = importlib.util.find_spec("ray") is not None
    r: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()], "python": sys.version.split()[0],
                    "ray": _version("ray") if has_ray else None, **sub("ceiling")},
    }
    r["overhead"] = overhead()
    lumara_err = lumara_loads()
    r["throughput"] = {"pilot": sub("throughput", PILOT, "100" if args.quick else "300")}
    r["throughput"]["lumara"] = sub("throughput", LUMARA, "5" if args.quick else "20") if lumara_err is None else {"skipped": lumara_err}
    reps = 1 if args.quick else 3
    r["campaign_day"] = {**days(PILOT, 100, reps, has_ray), "ray": "measured" if has_ray else "skipped: ray not installed"}
    r["campaign_day_by_mission_cost"] = curve(100, has_ray) if not args.quick else {}
    lum = r["throughput"]["lumara"]
    if lumara_err is None and "ms_per_mission" in lum and lum["ms_per_mission"] * 100 < 120_000:
        r["campaign_day_lumara"] = days(LUMARA, 100, 1, has_ray)
    with tempfile.TemporaryDirectory(prefix="orchestra-bench-") as d:
        r["dreaming"] = dreaming(Path(d), [1000] if args.quick else [1000, 10000], validation=20)
    r["store"] = {"pilot_real": sub("store_real", "100"), "synthetic_100_spans": {k: v["synthetic_store"]["bytes_per_run"] for k, v in r["dreaming"].items()}}
    r["goals"] = goals(r) if not args.quick else {}
    r["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    r["wall_s"] = round(time.perf_counter() - t0, 1)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    print(json.dumps(r, indent=2))
    return r


def _version(pkg: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
