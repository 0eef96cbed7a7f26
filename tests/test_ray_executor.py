"""The Ray executor on a local cluster: job order, figures equal to local, the driver writes the store.

The cluster is started once and left to Ray's exit hook, so the other Ray test
in the session reuses its warm workers.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ray = pytest.importorskip("ray", exc_type=ImportError, reason="ray not installed (pip install 'orchestra[ray]'); the Ray executor is an optional extra")

from conftest import ROOT  # noqa: E402

from orchestra import ray_executor  # noqa: E402
from orchestra.executors import fly  # noqa: E402
from orchestra.loader import load_workflow  # noqa: E402
from orchestra.store import Store  # noqa: E402

from test_executors import figures, jobs  # noqa: E402


@pytest.fixture(scope="module")
def pilot():
    return load_workflow(str(ROOT / "tests/graphs/pilot.py"))


def test_more_jobs_than_the_window_come_back_in_job_order_with_local_figures(pilot, tmp_path):
    js = jobs(70)  # 2 jobs per task, 4 tasks in flight: tasks go out as earlier ones come back
    store = Store(tmp_path / "o.db")
    out = list(ray_executor.fly_ray(pilot, js, workers=2))
    assert [f.job.run_id for f in out] == [j.run_id for j in js]
    assert figures(out) == figures(fly(pilot, js, executor="local"))
    fly(pilot, js[:4], executor="ray", workers=2, store=store)
    assert store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4
    assert store.db.execute("SELECT COUNT(*) FROM spans").fetchone()[0] == sum(len(f.spans) for f in out[:4])


QUIET = """
import sys
sys.path.insert(0, {tests!r})
from orchestra.executors import fly
from orchestra.loader import load_workflow
from test_executors import jobs
wf = load_workflow({graph!r})
out = fly(wf, jobs(4), executor="ray", workers=2)
fly(wf, jobs(2), executor="ray", workers=2)  # the second phase reuses the cluster
print(len(out))
"""


def test_a_local_cluster_starts_quietly_in_a_fresh_process(tmp_path):
    """What a CLI user sees: no Ray banners, usage-stats or auth notices on stdout or stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    code = QUIET.format(tests=str(ROOT / "tests"), graph=str(ROOT / "tests/graphs/pilot.py"))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout == "4\n" and p.stderr == ""


def test_a_workflow_without_a_module_is_refused_at_the_call(pilot):
    with pytest.raises(ValueError, match="graph module"):
        ray_executor.fly_ray(pilot.model_copy(update={"source": None}), jobs(2))


def test_short_missions_are_grouped_per_task():
    assert ray_executor.chunk_size(100, 2) == 3 and ray_executor.chunk_size(10, 2) == 1 and ray_executor.chunk_size(10_000, 2) == 8
