"""Concurrency on one store: two dreams at once, a dream beside a stream of runs, writer threads.

A dream is held mid-gate (tests/graphs/held_pilot.py) so the overlap is
certain, not a race the test hopes to win.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import ROOT

from orchestra.dreaming.job import DreamBusy, dream
from orchestra.loader import load_workflow
from orchestra.runner import run_workflow
from orchestra.store import Store
from orchestra.versions import history

HELD = str(ROOT / "tests/graphs/held_pilot.py")


def spawn(args: list[str], env: dict | None = None) -> subprocess.Popen:
    e = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "PILOT_HOLD")}
    e.update({"ORCHESTRA_MODEL": "offline", **(env or {})})
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_file(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.01)


def seed_runs(db: Path, n: int = 40) -> None:
    wf, store = load_workflow(HELD), Store(db)
    for s in range(n):
        run_workflow(wf, seed=s, store=store, checkpoint=False)


def versions_linear(store: Store, spec: str) -> list[int]:
    rows = history(store, spec)
    vs = [r["version"] for r in rows]
    assert vs == list(range(len(vs)))
    assert all(r["parent_version"] is None or r["parent_version"] < r["version"] for r in rows)
    return vs


def test_two_dream_processes_one_wins_the_other_exits_2_with_a_clear_message(tmp_path):
    db, hold = tmp_path / "o.db", tmp_path / "release"
    seed_runs(db)
    a = spawn(["-m", "orchestra.cli", "dream", HELD, "--db", str(db), "--validation", "10", "--json"], env={"PILOT_HOLD": str(hold)})
    wait_file(Path(str(hold) + ".held"), a)  # A is in its gate, holding the lock
    b = spawn(["-m", "orchestra.cli", "dream", HELD, "--db", str(db), "--validation", "10", "--json"])
    b_out, b_err = b.communicate(timeout=120)
    hold.write_text("go")
    a_out, a_err = a.communicate(timeout=120)
    assert a.returncode == 0, a_err
    assert b.returncode == 2 and b_out == ""
    assert "another dream is running" in b_err and "pilot" in b_err and str(db) in b_err
    assert len(b_err.strip().splitlines()) == 1 and "Traceback" not in b_err
    doc = json.loads(a_out)
    assert doc["runs_mined"] == 40 and doc["promoted"]
    store = Store(db)
    assert store.db.execute("SELECT COUNT(*) FROM runs WHERE dreamed = 1").fetchone()[0] == 40
    assert versions_linear(store, "pilot") == [0, 1]
    assert not store.db.execute("SELECT 1 FROM locks").fetchall()
    # the loser can simply run again: nothing left to mine, nothing promoted twice
    again = dream(load_workflow(HELD), store, validation_seeds=list(range(1000, 1010)))
    assert again["runs_mined"] == 0 and not again["promoted"]
    assert versions_linear(store, "pilot") == [0, 1]


STREAM = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
while not Path({held!r}).exists():  # write while the dream, having mined, is held in its gate
    time.sleep(0.01)
from orchestra.loader import load_workflow
from orchestra.runner import run_workflow
from orchestra.store import Store
wf = load_workflow({graph!r})
store = Store({db!r})
for s in range({start}, {start} + {n}):
    run_workflow(wf, seed=s, store=store, run_id=f"stream-{{s:04d}}", phase="train", checkpoint=s % 5 == 0)
print("ok")
"""


def test_a_dream_and_a_stream_of_runs_on_one_store_lose_nothing(tmp_path):
    db, hold = tmp_path / "o.db", tmp_path / "release"
    seed_runs(db)
    d = spawn(["-m", "orchestra.cli", "dream", HELD, "--db", str(db), "--validation", "10", "--json"], env={"PILOT_HOLD": str(hold)})
    held = Path(str(hold) + ".held")
    writers = [spawn(["-c", STREAM.format(tests=str(ROOT / "tests"), held=str(held), graph=str(ROOT / "tests/graphs/pilot.py"), db=str(db), start=100, n=40)])]
    wait_file(held, d)  # mined the 40 runs, now gating
    outs = [w.communicate(timeout=120) for w in writers]
    assert all(w.returncode == 0 for w in writers), [e for _, e in outs]
    hold.write_text("go")
    out, err = d.communicate(timeout=120)
    assert d.returncode == 0, err
    doc = json.loads(out)
    store = Store(db)
    rows = store.db.execute("SELECT run_id, status, dreamed FROM runs").fetchall()
    assert len(rows) == 80 and len({r[0] for r in rows}) == 80  # no lost or doubled runs
    assert all(s in ("passed", "failed") for _, s, _ in rows)
    streamed = {r[0]: r[2] for r in rows if r[0].startswith("stream-")}
    assert len(streamed) == 40 and not any(streamed.values())  # written after mining: left for the next dream
    assert doc["runs_mined"] == 40 and sum(r[2] for r in rows) == 40
    for rid in list(streamed)[:5]:
        assert store.spans_for_run(rid) and store.verdicts_for_run(rid) and store.injections_for_run(rid)
    nxt = dream(load_workflow(HELD), store, validation_seeds=list(range(1000, 1010)))
    assert nxt["runs_mined"] == 40
    assert store.db.execute("SELECT COUNT(*) FROM runs WHERE dreamed = 0").fetchone()[0] == 0
    versions_linear(store, "pilot")


def test_writer_threads_and_dream_threads_share_a_store(tmp_path):
    db = tmp_path / "o.db"
    seed_runs(db)
    wf = load_workflow(str(ROOT / "tests/graphs/pilot.py"))
    errors: list[BaseException] = []
    busy: list[str] = []
    results: list[dict] = []

    def write(start: int) -> None:
        try:
            store = Store(db)
            for s in range(start, start + 10):
                run_workflow(wf, seed=s, store=store, checkpoint=s % 3 == 0)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def dreamer() -> None:
        try:
            results.append(dream(wf, Store(db), validation_seeds=list(range(1000, 1010))))
        except DreamBusy as e:
            busy.append(str(e))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write, args=(200 + 10 * i,)) for i in range(4)] + [threading.Thread(target=dreamer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(results) + len(busy) == 2 and results
    store = Store(db)
    assert store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 80
    mined = sum(r["runs_mined"] for r in results)
    assert store.db.execute("SELECT COUNT(*) FROM runs WHERE dreamed = 1").fetchone()[0] == mined >= 40
    assert store.db.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0
    versions_linear(store, "pilot")
