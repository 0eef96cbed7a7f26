"""The pilot workflow with a fixed amount of extra CPU work per mission, for the executor curves.

A pilot mission costs ~5 ms, so a 100-mission pilot day is dominated by fixed
costs (pool start, the driver's writes). Real missions cost more (a physics
simulation, model calls). `read_conditions` here first burns a fixed number
of loop iterations (CPU, not wall time, so contention does not change the
work), then answers exactly as the pilot's: same seeds, same figures.

    bench/heavy_pilot.py:workflow_20ms   (also workflow_5ms, workflow_50ms)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from orchestra import tool
from orchestra.tools import RunContext

ITERS_PER_MS = 30_000  # ~1 ms of CPU for this loop on a 2.6 GHz EPYC core (CPython 3.11)

_spec = importlib.util.spec_from_file_location("_bench_pilot", Path(__file__).resolve().parent.parent / "tests/graphs/pilot.py")
assert _spec and _spec.loader
pilot_mod = importlib.util.module_from_spec(_spec)
sys.modules["_bench_pilot"] = pilot_mod
_spec.loader.exec_module(pilot_mod)


def _burn(iters: int) -> int:
    s = 0
    for i in range(iters):
        s += i & 7
    return s


def heavy(ms: int):
    """The pilot workflow whose read_conditions first does ~`ms` ms of CPU work."""

    @tool(name="read_conditions")
    def read_conditions(ctx: RunContext[dict]) -> dict:
        """Wind and visibility for this approach."""
        _burn(ms * ITERS_PER_MS)
        return pilot_mod.read_conditions.fn(ctx)

    spec = pilot_mod.pilot.model_copy(update={"tools": (read_conditions,)})
    return pilot_mod.workflow.model_copy(update={"name": f"pilot_{ms}ms", "specialists": (spec,)})


workflow_5ms = heavy(5)
workflow_20ms = heavy(20)
workflow_50ms = heavy(50)
