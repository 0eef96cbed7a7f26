"""The pilot workflow (same name, same runs) whose tool can be held: for concurrency tests.

With PILOT_HOLD=<path> in the environment, `read_conditions` first writes
<path>.held and then waits until <path> exists. A dream run with it stops in
its gate, holding the dream lock, until the test releases it.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pilot import pilot as _pilot, workflow as _workflow  # noqa: E402

from orchestra import tool  # noqa: E402
from orchestra.tools import RunContext  # noqa: E402

_inner = _pilot.tools[0]


@tool
def read_conditions(ctx: RunContext[dict]) -> dict:
    """Wind and visibility for this approach."""
    hold = os.environ.get("PILOT_HOLD")
    if hold:
        Path(hold + ".held").write_text(str(os.getpid()))
        end = time.monotonic() + 60
        while not Path(hold).exists() and time.monotonic() < end:
            time.sleep(0.01)
    return _inner.fn(ctx)


workflow = _workflow.model_copy(update={"specialists": (_pilot.model_copy(update={"tools": (read_conditions,)}),)})
