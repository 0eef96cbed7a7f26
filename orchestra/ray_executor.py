"""Fly jobs as Ray tasks: the same worker code as the process pool, on one machine or a cluster.

Workers load the workflow from its graph module (`wf.source`) and run
`executors.fly_one`; they never touch the store. Results come back in job
order, so a campaign's figures are the same whatever the executor. Ray is an
optional extra (`pip install 'orchestra[ray]'`).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any, Iterator

from .executors import Flown, Job, fly_one
from .runner import ConfigError, default_model_spec
from .workflow import Workflow

MISSING = "Ray is not installed: pip install 'orchestra[ray]'"

# Set before Ray starts: no usage-stats prompt or upload, no log deduplication
# chatter, no accelerator-override FutureWarning on a laptop.
QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
}

_task: Any = None
_started_here = False


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(MISSING) from None
    return ray


def require_ray(address: str | None = None) -> None:
    """For the CLI, before any work starts: Ray importable (else ConfigError), and the cluster
    address (`--ray-address`) recorded as $RAY_ADDRESS, which every later phase connects to."""
    _ray()
    if address:
        os.environ["RAY_ADDRESS"] = address


def ensure_ray(workers: int | None = None, address: str | None = None) -> Any:
    """Connect once per process: to `address` (or $RAY_ADDRESS: host:port, 'auto', ray://...),
    else start a quiet local cluster with `workers` CPUs.

    The connection is kept for the life of the process, so a campaign's days,
    gates and test phases reuse warm workers instead of restarting Ray each time.
    """
    global _started_here
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    address = address or os.environ.get("RAY_ADDRESS") or None
    ray = _ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False, "ignore_reinit_error": True}
    if address:
        # The cluster decides auth: with token auth (Ray >= 2.52) the token comes from
        # RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (see docs/scaling.md).
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as e:  # no cluster there, wrong token, bad address
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(f"cannot connect to Ray at {address!r}: {first}") from None
    else:
        # A private cluster on this machine, with Ray's default auth for its version (Ray >= 2.60:
        # token auth, token in ~/.ray/auth_token, made if missing). Only the stderr notice about
        # the auth mode is muted; RAY_AUTH_MODE in the environment is honoured as set.
        log = logging.getLogger("ray._private.authentication.authentication_token_setup")
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 2, **kwargs)
        finally:
            log.setLevel(level)
        _started_here = True
    return ray


def shutdown() -> None:
    """Stop a local cluster this module started (tests, benchmarks); a no-op otherwise."""
    global _started_here, _task
    if _started_here:
        import ray

        ray.shutdown()
        _started_here, _task = False, None


def _remote(ray: Any) -> Any:
    global _task
    if _task is None:
        _task = ray.remote(max_retries=0)(_fly_chunk)
    return _task


def _fly_chunk(source: str, jobs: list[Job], model: str | None) -> list[Flown]:
    return [fly_one(source, j, model) for j in jobs]


def fly_ray(wf: Workflow, jobs: list[Job], *, model: str | None = None, workers: int | None = None, address: str | None = None) -> Iterator[Flown]:
    """Yield each job's Flown in job order. Checks and connects now, so errors surface at the call."""
    if wf.source is None:
        raise ValueError("the ray executor needs a workflow loaded from a graph module")
    ray = ensure_ray(workers, address)
    # Resolve the model here: remote workers do not share the driver's environment.
    model = model or default_model_spec()
    return _in_order(ray, _remote(ray), wf.source, jobs, model, workers)


def chunk_size(n_jobs: int, cpus: int) -> int:
    """Jobs per Ray task: a task costs ~1 ms of scheduling CPU, a pilot mission ~5 ms, so short
    missions go in groups; at least 16 tasks per CPU keep the last ones from idling a worker."""
    return max(1, min(8, n_jobs // (16 * max(1, cpus))))


def _in_order(ray: Any, task: Any, source: str, jobs: list[Job], model: str | None, workers: int | None) -> Iterator[Flown]:
    """A bounded window of tasks in flight (2 per CPU): every worker stays busy while the
    driver writes finished runs, and a long phase never sits whole in the object store."""
    cpus = workers or int(ray.cluster_resources().get("CPU", 1))
    size = chunk_size(len(jobs), cpus)
    chunks = iter([jobs[i:i + size] for i in range(0, len(jobs), size)])
    pending: deque[Any] = deque()
    for c in chunks:
        pending.append(task.remote(source, c, model))
        if len(pending) >= max(4, 2 * cpus):
            break
    while pending:
        done = ray.get(pending.popleft())
        nxt = next(chunks, None)
        if nxt is not None:
            pending.append(task.remote(source, nxt, model))
        yield from done
