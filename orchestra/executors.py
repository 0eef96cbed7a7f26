"""Fly many jobs: serially, in a process pool, or on Ray. Workers never write the store.

A worker loads the workflow from its graph module, runs jobs without
persisting, and returns run records and spans; the driver is the one writer.
Results come back in seed order, so figures do not depend on the executor.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal

from .playbook import Playbook
from .runner import RunResult, run_record, run_workflow
from .store import Store
from .workflow import Workflow

Executor = Literal["local", "process", "ray"]


@dataclass
class Job:
    seed: int
    playbooks: dict[str, dict[str, Any]]
    phase: str
    campaign_id: str | None = None
    run_id: str | None = None
    label: str = ""


@dataclass
class Flown:
    """What a worker sends back: the run's JSON view plus everything the store needs."""

    job: Job
    result: dict[str, Any]
    record: dict[str, Any]
    spans: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]
    injections: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return self.result["status"] == "passed"


_WORKER_WF: dict[str, Workflow] = {}


def _workflow(source: str) -> Workflow:
    if source not in _WORKER_WF:
        from .loader import load_workflow

        _WORKER_WF[source] = load_workflow(source)
    return _WORKER_WF[source]


def fly_one(wf: Workflow | str, job: Job, model: str | None = None, rubrics: dict[str, Any] | None = None) -> Flown:
    if isinstance(wf, str):
        wf = _workflow(wf)
    pbs = {k: Playbook.model_validate(v) for k, v in job.playbooks.items()}
    r: RunResult = run_workflow(wf, seed=job.seed, model=model, playbooks=pbs, persist=False, checkpoint=False, run_id=job.run_id, campaign_id=job.campaign_id, phase=job.phase, rubrics=rubrics)
    label = model or "offline"
    return Flown(job, r.to_json(), run_record(r, label, job.campaign_id, job.phase), r.spans, r.verdicts, [{"specialist": k, **v} for k, v in r.playbooks.items()])


def _worker_init() -> None:
    """Pool workers exit without exit handlers: give queued OTLP spans a bounded flush."""
    import multiprocessing.util

    from . import tracing

    multiprocessing.util.Finalize(None, tracing.shutdown_provider, exitpriority=10)
    parent = os.getppid()

    def orphaned() -> None:  # a driver killed with -9 cannot shut its pool down: do not outlive it idle
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=orphaned, name="orchestra-orphan-watch", daemon=True).start()


def _fly_remote(args: tuple[str, Job, str | None]) -> Flown:
    return fly_one(args[0], args[1], args[2])


def fly(
    wf: Workflow,
    jobs: list[Job],
    *,
    executor: Executor = "local",
    workers: int | None = None,
    model: str | None = None,
    store: Store | None = None,
    on_result: Callable[[Flown], None] | None = None,
    ray_address: str | None = None,
) -> list[Flown]:
    """Run jobs; the driver writes each finished run to `store` (if given) as it arrives."""
    out: list[Flown] = []

    def accept(f: Flown) -> None:
        if store is not None:
            store.save_run(f.record, spans=f.spans, verdicts=f.verdicts, injections=f.injections)
        out.append(f)
        if on_result is not None:
            on_result(f)

    if executor == "local" or len(jobs) <= 1:
        from .runner import load_stage_rubrics

        rubrics = load_stage_rubrics(wf)
        for j in jobs:
            accept(fly_one(wf, j, model, rubrics))
    elif executor == "process":
        if wf.source is None:
            raise ValueError("the process executor needs a workflow loaded from a graph module")
        n = workers or os.cpu_count() or 2
        with ProcessPoolExecutor(max_workers=n, initializer=_worker_init) as pool:
            for f in pool.map(_fly_remote, [(wf.source, j, model) for j in jobs], chunksize=1):
                accept(f)
    elif executor == "ray":
        from .ray_executor import fly_ray

        for f in fly_ray(wf, jobs, model=model, workers=workers, address=ray_address):
            accept(f)
    else:
        raise ValueError(f"unknown executor {executor!r}")
    return out


def playbooks_payload(pbs: dict[str, Playbook]) -> dict[str, dict[str, Any]]:
    return {k: v.model_dump(mode="json") for k, v in pbs.items()}


def success_rate(flown: Iterable[Flown]) -> float:
    xs = list(flown)
    return sum(f.passed for f in xs) / len(xs) if xs else 0.0
