"""A one-specialist workflow with a graded risk, for dreaming tests.

Each approach meets a hidden gust limit, different every scenario (uniform between 1 and 3.5 m/s); the
approach holds only if its speed stays under it. The faster the pilot flies, the likelier it fails, and
there is no speed where failures stop: induction finds a limit where the evidence is sharpest, and
failures stay common just inside it.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pilot import HERE, FlyTask, Report, lead_policy  # noqa: E402  the same task, lead and report as the sharp-limit pilot

from orchestra import Budget, Call, Lead, PolicyContext, Specialist, Stage, Workflow, tool  # noqa: E402
from orchestra.rules import constrain, flatten  # noqa: E402
from orchestra.tools import RunContext  # noqa: E402


class Approach(BaseModel):
    speed_mps: float
    held: bool


@tool
def read_wind(ctx: RunContext[dict]) -> dict:
    """The wind on this approach."""
    return {"wind_mps": ctx.deps["wind"]}


@tool
def fly_approach(ctx: RunContext[dict], speed_mps: float) -> dict:
    """Fly the approach at this speed: whether it held against the gusts."""
    return {"speed_mps": speed_mps, "held": speed_mps <= ctx.deps["gust_limit"]}


def pilot_policy(ctx: PolicyContext):
    if not ctx.called("read_wind"):
        return Call("read_wind")
    if not ctx.called("fly_approach"):
        cond = ctx.last("read_wind")
        feats = {**flatten(ctx.task, "input"), **flatten(cond, "tool.read_wind")}
        speed = constrain(ctx.rules, feats, "output.speed_mps", round(1.0 + 0.5 * cond["wind_mps"], 2))
        return Call("fly_approach", {"speed_mps": speed})
    flown = ctx.last("fly_approach")
    return Approach(speed_mps=flown["speed_mps"], held=bool(flown["held"]))



def deps(job: dict) -> dict:
    rng = random.Random(job["seed"])
    return {"wind": round(rng.uniform(0, 8), 2), "gust_limit": round(rng.uniform(1.0, 3.5), 2)}


pilot = Specialist(name="pilot", description="Flies the approach.", instructions="Read the wind, choose an approach speed, fly it.",
                   tools=(read_wind, fly_approach), input_type=FlyTask, output_type=Approach, policy=pilot_policy,
                   budget=Budget(max_turns=5), decisions=("speed_mps",))

workflow = Workflow(
    name="graded_pilot",
    lead=Lead(instructions="Delegate the approach to the pilot and report its speed.", output_type=Report, policy=lead_policy),
    specialists=(pilot,),
    stages=(Stage(name="main", rubric=str(HERE / "graded_pilot_rubric.yaml")),),
    deps=deps,
)
