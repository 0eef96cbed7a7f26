"""The tiny trip workflow with instrumented, controllable tools: for crash and fault tests.

Environment switches (read when a tool runs, so a resumed run can behave differently):
- FAULTY_LOG: a file each tool call appends its name to (counts calls across processes).
- FAULTY_BLOCK: when set, `convert` writes FAULTY_LOG + ".blocked" and then hangs, so a
  test can kill -9 the process in the middle of the graph (after the researcher's step).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny import CITIES, RATES, workflow as _tiny  # noqa: E402

from orchestra import tool  # noqa: E402
from orchestra.tools import RunContext, ToolError  # noqa: E402


def _log(name: str) -> None:
    path = os.environ.get("FAULTY_LOG")
    if path:
        with open(path, "a") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())


@tool
def lookup_city(ctx: RunContext[dict], city: str) -> dict:
    """Daily cost of living in a city, in local currency."""
    _log("lookup_city")
    key = city.lower()
    if key not in CITIES:
        raise ToolError(f"unknown city {city!r}")
    return {"city": key, **CITIES[key]}


@tool
def convert(amount: float, currency: str) -> dict:
    """Convert an amount to USD."""
    _log("convert")
    if os.environ.get("FAULTY_BLOCK"):
        Path(os.environ["FAULTY_LOG"] + ".blocked").write_text(str(os.getpid()))
        time.sleep(120)
    if (currency, "USD") not in RATES:
        raise ToolError(f"no rate for {currency}")
    return {"usd": round(amount * RATES[(currency, "USD")], 2)}


workflow = _tiny.model_copy(update={
    "name": "faulty_trip",
    "specialists": (
        _tiny.specialist("researcher").model_copy(update={"tools": (lookup_city,)}),
        _tiny.specialist("accountant").model_copy(update={"tools": (convert,)}),
    ),
})
