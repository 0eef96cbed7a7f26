"""The pilot workflow, but handling secrets: for the secret-leak tests.

The pilot's policy passes the Anthropic key from the environment as a tool
argument; the tool echoes it, and the service token, in its result; the
pilot's typed result and the lead's report mention the key too. Nothing of
that may reach the store, reports, cassettes or logs unredacted.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from pydantic import BaseModel

from orchestra import Budget, Call, Lead, PolicyContext, Specialist, Stage, Workflow, tool
from orchestra.rules import constrain, flatten
from orchestra.tools import RunContext

HERE = Path(__file__).resolve().parent


class FlyTask(BaseModel):
    leg: str = "final approach"
    credential: str = ""


class Approach(BaseModel):
    speed_mps: float
    flaps: str
    note: str = ""


class Report(BaseModel):
    speed_mps: float
    summary: str = ""


def _key() -> str:
    return os.environ.get("ANTHROPIC_API_KEY", "")


@tool
def read_conditions(ctx: RunContext[dict], api_key: str) -> dict:
    """Wind and visibility for this approach (an authenticated weather service)."""
    return {
        "wind_mps": ctx.deps["wind"], "visibility": ctx.deps["visibility"],
        "session": f"authorized with {api_key}", "service_token": os.environ.get("MY_SERVICE_TOKEN", ""),
        "debug": f"ANTHROPIC_API_KEY={api_key}",
    }


def pilot_policy(ctx: PolicyContext):
    if not ctx.called("read_conditions"):
        return Call("read_conditions", {"api_key": _key()})
    cond = ctx.last("read_conditions")
    feats = {**flatten(ctx.task, "input"), **flatten(cond, "tool.read_conditions")}
    speed = round(1.0 + 0.5 * cond["wind_mps"], 2)
    speed = constrain(ctx.rules, feats, "output.speed_mps", speed)
    return Approach(speed_mps=speed, flaps="full" if cond["visibility"] > 0.5 else "half", note=f"weather fetched with key {_key()}")


def lead_policy(ctx: PolicyContext):
    done = ctx.last("delegate_pilot")
    if done is None:
        return Call("delegate_pilot", {"leg": "final approach", "credential": _key()})
    return Report(speed_mps=done["speed_mps"], summary=f"token {os.environ.get('MY_SERVICE_TOKEN', '')}")


def deps(job: dict) -> dict:
    rng = random.Random(job["seed"])
    return {"wind": round(rng.uniform(0, 8), 2), "visibility": round(rng.random(), 2)}


pilot = Specialist(name="pilot", description="Flies the approach.", instructions="Read the conditions, choose an approach speed.", tools=(read_conditions,), input_type=FlyTask, output_type=Approach, policy=pilot_policy, budget=Budget(max_turns=4))

workflow = Workflow(
    name="secretive",
    lead=Lead(instructions="Delegate the approach to the pilot and report its speed.", output_type=Report, policy=lead_policy),
    specialists=(pilot,),
    stages=(Stage(name="main", rubric=str(HERE / "pilot_rubric.yaml")),),
    deps=deps,
)
