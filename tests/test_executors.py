"""Executors: the same jobs give the same per-seed figures serially, in a process pool and on Ray.

Campaign figures must not depend on where missions flew; the driver is the
only writer of the store.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from conftest import ROOT

from orchestra.executors import Flown, Job, fly, playbooks_payload
from orchestra.loader import load_workflow
from orchestra.playbook import Lesson, Playbook
from orchestra.rules import Condition, Rule
from orchestra.runner import ConfigError
from orchestra.store import Store

try:
    import ray  # noqa: F401

    HAS_RAY = True
except ImportError:
    HAS_RAY = False


@pytest.fixture(scope="module")
def pilot():
    return load_workflow(str(ROOT / "tests/graphs/pilot.py"))


def jobs(n: int = 12, lesson: bool = True) -> list[Job]:
    """Half the jobs fly with a learned speed limit, so playbooks travel to the workers too."""
    empty = playbooks_payload({"pilot": Playbook(specialist="pilot")})
    rule = Rule(require=Condition(field="output.speed_mps", op="<=", value=2.9))
    learned = playbooks_payload({"pilot": Playbook(specialist="pilot", version=1, lessons=[Lesson(id="L1", specialist="pilot", text="Keep the approach at or under 2.9 m/s.", rule=rule)])})
    return [Job(seed=s, playbooks=learned if (lesson and s % 2) else empty, phase="train", run_id=f"r-{s:03d}") for s in range(n)]


def figures(flown: list[Flown]) -> list[tuple[Any, ...]]:
    """What a campaign reports per mission: seed, status, verdicts per stage, results, outcome, span shape."""
    return [(f.job.seed, f.result["status"], f.result["verdicts"], f.result["results"], f.result["outcome"], [s["name"] for s in f.spans]) for f in flown]


def test_local_and_process_pool_give_identical_figures(pilot):
    js = jobs()
    local = fly(pilot, js, executor="local")
    proc = fly(pilot, js, executor="process", workers=2)
    assert [f.job.seed for f in proc] == [j.seed for j in js]  # job order, whatever finished first
    assert figures(proc) == figures(local)
    assert {f.result["status"] for f in local} == {"passed", "failed"}  # the comparison is not vacuous
    assert all(f.passed for f in local if f.job.seed % 2)  # the lesson reached the policy


@pytest.mark.skipif(not HAS_RAY, reason="ray not installed (pip install 'orchestra[ray]')")
def test_ray_gives_the_same_figures_as_local(pilot):
    js = jobs()
    assert figures(fly(pilot, js, executor="ray", workers=2)) == figures(fly(pilot, js, executor="local"))


def test_the_driver_is_the_one_writer(pilot, tmp_path):
    """Workers return records; every run, span, verdict and injection lands in the store via the driver."""
    store = Store(tmp_path / "o.db")
    seen: list[str] = []
    out = fly(pilot, jobs(6), executor="process", workers=2, store=store, on_result=lambda f: seen.append(f.job.run_id))
    assert seen == [f"r-{s:03d}" for s in range(6)]
    for f in out:
        run = store.get_run(f.job.run_id)
        assert run is not None and run["status"] == f.result["status"] and run["dreamed"] == 0
        assert len(store.spans_for_run(f.job.run_id)) == len(f.spans) > 0
        assert store.verdicts_for_run(f.job.run_id) == f.verdicts
        assert store.injections_for_run(f.job.run_id)["pilot"]["lesson_ids"] == (["L1"] if f.job.seed % 2 else [])


def test_process_executor_needs_a_graph_module(pilot):
    with pytest.raises(ValueError, match="graph module"):
        fly(pilot.model_copy(update={"source": None}), jobs(2), executor="process", workers=2)


def test_missing_ray_is_one_clear_line(pilot, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"^Ray is not installed: pip install 'orchestra\[ray\]'$"):
        fly(pilot, jobs(2), executor="ray")


def test_cli_ray_errors_are_one_line_before_any_work(tmp_path):
    """Without Ray, `--executor ray` fails at once with the install hint; `--ray-address` needs the ray executor."""
    import os

    from test_cli import cli

    stub = tmp_path / "noray"
    stub.mkdir()
    (stub / "ray.py").write_text("raise ModuleNotFoundError(\"No module named 'ray'\")\n")
    pilot = str(ROOT / "tests/graphs/pilot.py")
    db = tmp_path / "c.db"
    p = cli("campaign", pilot, "--executor", "ray", "--db", str(db), env={"PYTHONPATH": os.pathsep.join([str(stub), os.environ.get("PYTHONPATH", "")])})
    assert p.returncode == 2 and p.stderr.strip() == "Ray is not installed: pip install 'orchestra[ray]'"
    assert not db.exists()
    p = cli("dream", pilot, "--executor", "process", "--ray-address", "auto", "--db", str(db))
    assert p.returncode == 2 and p.stderr.strip() == "--ray-address needs --executor ray"
