"""Crash resume: kill -9 campaigns, dreams and runs at seeded random points; resume loses and repeats nothing.

Kill points are chosen with a seeded RNG inside phases the test can observe
from outside (stored run counts, the dream's lock row, a tool's marker file),
so every kill lands where intended and the test is reproducible.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

from orchestra.campaign import CampaignConfig, run_campaign
from orchestra.dreaming.job import dream
from orchestra.loader import load_workflow
from orchestra.runner import run_workflow
from orchestra.store import Store

PILOT = str(ROOT / "tests/graphs/pilot.py")
FAULTY = str(ROOT / "tests/graphs/faulty.py")
SEED = 20240611
CFG = CampaignConfig(nights=2, missions=10, validation=10, test=10, seed=0, executor="local")  # what the CLI line below asks for
TRAIN = 20  # 2 days x 10 training missions; test missions: 10 per distinct playbook set (v0, after night 1, 2)
FIGURES: dict[str, float] = {}


def spawn(*args: str, env: dict | None = None) -> subprocess.Popen:
    e = {**os.environ, "ORCHESTRA_MODEL": "offline", **(env or {})}
    e.pop("ANTHROPIC_API_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "orchestra.cli", *args], cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def campaign_cmd(db: Path, out: Path, *extra: str) -> list[str]:
    return ["campaign", PILOT, "--nights", "2", "--missions", "10", "--validation", "10", "--test", "10", "--executor", "local", "--db", str(db), "--out", str(out), "--oracle", "", *extra]


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read the store from outside the writer, as a second process would."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # schema not created yet
        return []
    finally:
        conn.close()


def wait_for(pred, proc: subprocess.Popen, timeout: float = 60.0, every: float = 0.002) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(every)
    raise AssertionError("kill point never reached")


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)  # not communicate(): orphaned children would hold its pipes open
    for pipe in (proc.stdout, proc.stderr):
        pipe.close()
    assert proc.returncode == -signal.SIGKILL


def check_store(db: Path) -> None:
    """No half-written state: finished runs only, once each; heads on existing versions; linear versions."""
    runs = query(db, "SELECT run_id, status FROM runs")
    assert all(s in ("passed", "failed", "error") for _, s in runs), "a campaign run was stored half-done"
    assert len({r for r, _ in runs}) == len(runs)
    for spec, version in query(db, "SELECT specialist, version FROM heads"):
        assert version == 0 or query(db, "SELECT 1 FROM playbooks WHERE specialist = ? AND version = ?", (spec, version)), f"head of {spec} points at missing v{version}"
    for (spec,) in query(db, "SELECT DISTINCT specialist FROM playbooks"):
        rows = query(db, "SELECT version, parent_version, dream_id FROM playbooks WHERE specialist = ? ORDER BY version", (spec,))
        assert [v for v, _, _ in rows] == list(range(1, len(rows) + 1)), "playbook versions are not linear"
        for v, parent, dream_id in rows:
            assert parent is not None and 0 <= parent < v
            # a version exists only together with its dream's record: promotion is all or nothing
            assert query(db, "SELECT 1 FROM dreams WHERE dream_id = ? AND status = 'done'", (dream_id,)), f"v{v} without a finished dream"
    for (dream_id, run_list) in query(db, "SELECT dream_id, runs FROM dreams"):
        ids = json.loads(run_list)
        if ids:
            marks = query(db, f"SELECT COUNT(*) FROM runs WHERE dreamed = 1 AND run_id IN ({','.join('?' * len(ids))})", tuple(ids))
            assert marks[0][0] == len(ids), f"dream {dream_id} recorded but its runs not marked"


def figures(summary: dict) -> list:
    return [(v["name"], v["successes"], v["n"], v["playbook_versions"], [(x["id"], x["rule"], x["support"]) for x in v["lessons"]["pilot"]]) for v in summary["versions"]]


def test_campaign_killed_three_times_then_resumed_matches_an_uninterrupted_one(tmp_path):
    rng = random.Random(SEED)
    db, out = tmp_path / "c.db", tmp_path / "report"
    # kill points: during day 1, inside night 1's dream (its lock row is held), during the test phase
    day1 = rng.randint(1, 9)
    in_dream = rng.uniform(0.0, 0.05)
    in_test = rng.randint(TRAIN + 1, TRAIN + 19)
    points = [
        ("day 1", lambda: query(db, "SELECT COUNT(*) FROM runs")[:1] >= [(day1,)], 0.0),
        ("night 1 dream", lambda: bool(query(db, "SELECT 1 FROM locks WHERE name LIKE 'dream:%'")) and not query(db, "SELECT 1 FROM dreams"), in_dream),
        ("test phase", lambda: query(db, "SELECT COUNT(*) FROM runs WHERE phase = 'test'")[:1] >= [(in_test - TRAIN,)], 0.0),
    ]
    resumes = []
    for i, (name, reached, delay) in enumerate(points):
        t0 = time.monotonic()
        proc = spawn(*campaign_cmd(db, out, *(["--resume"] if i else [])))
        assert wait_for(reached, proc), f"campaign finished before the {name} kill point"
        time.sleep(delay)
        kill9(proc)
        resumes.append(time.monotonic() - t0)
        if name == "night 1 dream":  # it died inside the dream: the lock row its `finally` would delete is still there
            assert query(db, "SELECT 1 FROM locks") and not query(db, "SELECT 1 FROM dreams")
        check_store(db)
        assert not (out / "summary.json").exists()
    assert query(db, "SELECT COUNT(*) FROM dreams")[0][0] >= 1  # the in-dream kill did not lose night 1 for good
    t0 = time.monotonic()
    proc = spawn(*campaign_cmd(db, out, "--resume", "--json"))
    stdout, stderr = proc.communicate(timeout=120)
    FIGURES["campaign_final_resume_s"] = round(time.monotonic() - t0, 2)
    assert proc.returncode == 0, stderr
    resumed = json.loads(stdout)
    check_store(db)
    full = run_campaign(load_workflow(PILOT), CFG, db=tmp_path / "full.db", out=tmp_path / "full")
    planned = query(tmp_path / "full.db", "SELECT run_id FROM runs ORDER BY run_id")
    assert query(db, "SELECT run_id FROM runs ORDER BY run_id") == planned  # every planned mission, exactly once
    assert dict(query(db, "SELECT phase, COUNT(*) FROM runs GROUP BY phase"))["train"] == TRAIN
    assert query(db, "SELECT COUNT(*) FROM dreams WHERE status = 'done'")[0][0] == 2
    assert query(db, "SELECT COUNT(*) FROM runs WHERE dreamed = 1")[0][0] == TRAIN  # each day mined once
    assert not query(db, "SELECT 1 FROM locks")
    assert resumed["campaign_id"] == full["campaign_id"]
    assert figures(resumed) == figures(full)
    assert [(n["night"], n["runs_mined"], n["promoted"]) for n in resumed["nights"]] == [(n["night"], n["runs_mined"], n["promoted"]) for n in full["nights"]]
    FIGURES.update(kills=len(points), kill_points=f"day1 run {day1}, dream +{in_dream * 1000:.0f} ms, test run {in_test}", killed_after_s=[round(x, 2) for x in resumes])
    print("FIGURES", FIGURES)


def test_dream_killed_mid_way_leaves_a_consistent_store_and_a_rerun_completes(tmp_path):
    rng = random.Random(SEED + 1)
    wf = load_workflow(PILOT)
    db = tmp_path / "d.db"
    store = Store(db)
    for s in range(40):
        run_workflow(wf, seed=s, store=store, checkpoint=False)
    kills = 0
    for delay in sorted(rng.uniform(0.0, 0.25) for _ in range(2)):
        proc = spawn("dream", PILOT, "--db", str(db), "--validation", "40")
        assert wait_for(lambda: bool(query(db, "SELECT 1 FROM locks")), proc), "dream finished before its kill point"
        time.sleep(delay)
        kill9(proc)
        kills += 1
        check_store(db)
        dreamed = query(db, "SELECT COUNT(*) FROM runs WHERE dreamed = 1")[0][0]
        done = query(db, "SELECT COUNT(*) FROM dreams")[0][0]
        assert (dreamed, done) in ((0, 0), (40, 1))  # all or nothing
        if done:
            break
    assert query(db, "SELECT owner FROM locks"), "the killed dream's lock row stays behind (stale)"
    t0 = time.monotonic()
    doc = dream(wf, Store(db), validation_seeds=wf.scenario_seeds("validation", 20))  # a dead owner's lock does not block it
    FIGURES["dream_rerun_s"] = round(time.monotonic() - t0, 2)
    check_store(db)
    assert query(db, "SELECT COUNT(*) FROM runs WHERE dreamed = 1")[0][0] == 40
    versions = [v for (v,) in query(db, "SELECT version FROM playbooks WHERE specialist = 'pilot' ORDER BY version")]
    assert versions in ([1], [])  # promoted once, by whichever dream committed
    assert doc["runs_mined"] in (0, 40)
    assert not query(db, "SELECT 1 FROM locks")
    FIGURES["dream_kills"] = kills
    print("FIGURES", FIGURES)


def test_run_killed_mid_graph_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    db, log = tmp_path / "r.db", tmp_path / "calls.log"
    proc = spawn("run", FAULTY, "--seed", "1", "--db", str(db), "--model", "offline", env={"FAULTY_LOG": str(log), "FAULTY_BLOCK": "1"})
    blocked = Path(str(log) + ".blocked")
    assert wait_for(blocked.exists, proc, every=0.01), proc.communicate()[1]
    time.sleep(0.2)  # let the asynchronous checkpoint of the researcher's step land, as it would in any real run
    kill9(proc)
    assert log.read_text().split() == ["lookup_city", "convert"]
    (run_id, status), = query(db, "SELECT run_id, status FROM runs")
    assert status == "running"
    monkeypatch.setenv("FAULTY_LOG", str(log))
    monkeypatch.delenv("FAULTY_BLOCK", raising=False)
    t0 = time.monotonic()
    r = run_workflow(load_workflow(FAULTY), seed=1, db=db, run_id=run_id, model="offline")
    FIGURES["run_resume_s"] = round(time.monotonic() - t0, 3)
    assert r.status == "passed", r.error
    assert log.read_text().split() == ["lookup_city", "convert", "convert"]  # the researcher was not repeated
    assert r.results["accountant"]["total_usd"] == pytest.approx(120 * 3 * 1.1)
    stored = Store(db).get_run(run_id)
    assert stored["status"] == "passed" and Store(db).spans_for_run(run_id)
    assert not query(db.with_name("r.checkpoints.sqlite"), "SELECT 1 FROM checkpoints WHERE thread_id = ?", (run_id,))  # finished: no state kept
    print("FIGURES", FIGURES)


def test_dream_killed_between_commit_and_result_update_resumes_with_full_night_figures(tmp_path, monkeypatch):
    """The narrowest window: the dream's promotion is committed, the process dies before writing its trace."""
    from orchestra import campaign as campaign_mod
    from orchestra.dreaming import job

    class Die(BaseException):
        pass

    wf = load_workflow(PILOT)
    cfg = CampaignConfig(nights=1, missions=20, validation=10, test=10, seed=0, executor="local")
    full = run_campaign(wf, cfg, db=tmp_path / "full.db", out=tmp_path / "rf")
    real = job.Store.save_spans

    def die(self, spans):
        raise Die()

    monkeypatch.setattr(job.Store, "save_spans", die)
    with pytest.raises(Die):
        run_campaign(wf, cfg, db=tmp_path / "b.db", out=tmp_path / "rb")
    monkeypatch.setattr(job.Store, "save_spans", real)
    assert campaign_mod._done_dream(Store(tmp_path / "b.db"), f"{cfg.campaign_id(wf.name)}-dreaming-n1") is not None
    resumed = run_campaign(wf, cfg, db=tmp_path / "b.db", out=tmp_path / "rb", resume=True)
    assert figures(resumed) == figures(full)
    keys = ("dream_id", "runs_mined", "episodes", "promoted", "active_versions")
    assert [{k: n.get(k) for k in keys} for n in resumed["nights"]] == [{k: n.get(k) for k in keys} for n in full["nights"]]
    assert resumed["nights"][0]["gate"]["n"] == full["nights"][0]["gate"]["n"] == 10


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find pool workers")
def test_process_pool_campaign_killed_leaves_no_orphan_workers_and_resumes(tmp_path):
    db, out = tmp_path / "c.db", tmp_path / "report"
    cmd = [c if c != "local" else "process" for c in campaign_cmd(db, out)] + ["--workers", "2"]
    proc = spawn(*cmd)
    assert wait_for(lambda: query(db, "SELECT COUNT(*) FROM runs")[:1] >= [(5,)], proc)
    workers = _children(proc.pid)
    assert workers, "no pool workers found"
    kill9(proc)
    end = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < end:
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for w in left:  # do not leak them from the test either
        os.kill(w, signal.SIGKILL)
    assert not left, "pool workers outlived their killed driver"
    check_store(db)
    proc = spawn(*cmd, "--resume", "--json")
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    full = run_campaign(load_workflow(PILOT), CFG, db=tmp_path / "full.db", out=tmp_path / "full")
    assert query(db, "SELECT run_id FROM runs ORDER BY run_id") == query(tmp_path / "full.db", "SELECT run_id FROM runs ORDER BY run_id")
    assert figures(json.loads(stdout)) == figures(full)
