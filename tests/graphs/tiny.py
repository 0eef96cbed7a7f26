"""A small two-specialist workflow used by the core tests: a currency trip budget.

The researcher looks a city's daily cost up; the accountant converts it to the
traveller's currency. Real tools, offline policies, one graded stage.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from orchestra import Budget, Lead, Specialist, Stage, Workflow, tool
from orchestra.models import Call, PolicyContext
from orchestra.tools import RunContext, ToolError

CITIES = {"lisbon": {"daily_cost": 120.0, "currency": "EUR"}, "tokyo": {"daily_cost": 18000.0, "currency": "JPY"}, "denver": {"daily_cost": 210.0, "currency": "USD"}}
RATES = {("EUR", "USD"): 1.1, ("JPY", "USD"): 0.0067, ("USD", "USD"): 1.0}


class CityTask(BaseModel):
    city: str


class CityFacts(BaseModel):
    city: str
    daily_cost: float
    currency: str


class ConvertTask(BaseModel):
    amount: float
    currency: str
    days: int


class Budget_(BaseModel):
    total_usd: float
    days: int


class TripReport(BaseModel):
    city: str
    total_usd: float
    summary: str = ""


@tool
def lookup_city(ctx: RunContext[dict], city: str) -> dict:
    """Daily cost of living in a city, in local currency."""
    key = city.lower()
    if key not in CITIES:
        raise ToolError(f"unknown city {city!r}")
    ctx.state.setdefault("lookups", []).append(key)
    return {"city": key, **CITIES[key]}


@tool
def convert(amount: float, currency: str) -> dict:
    """Convert an amount to USD."""
    if (currency, "USD") not in RATES:
        raise ToolError(f"no rate for {currency}")
    return {"usd": round(amount * RATES[(currency, "USD")], 2)}


def researcher_policy(ctx: PolicyContext):
    if not ctx.called("lookup_city"):
        return Call("lookup_city", {"city": ctx.task["city"]})
    facts = ctx.last("lookup_city")
    return CityFacts(city=facts["city"], daily_cost=facts["daily_cost"], currency=facts["currency"])


def accountant_policy(ctx: PolicyContext):
    if not ctx.called("convert"):
        return Call("convert", {"amount": ctx.task["amount"] * ctx.task["days"], "currency": ctx.task["currency"]})
    return Budget_(total_usd=ctx.last("convert")["usd"], days=ctx.task["days"])


def lead_policy(ctx: PolicyContext):
    job = ctx.task["job"]
    done = {ex.name: ex.result for ex in ctx.exchanges if not ex.is_error}
    if "delegate_researcher" not in done:
        return Call("delegate_researcher", {"city": job["city"]})
    if "delegate_accountant" not in done:
        facts = done["delegate_researcher"]
        return Call("delegate_accountant", {"amount": facts["daily_cost"], "currency": facts["currency"], "days": job["days"]})
    return TripReport(city=job["city"], total_usd=done["delegate_accountant"]["total_usd"], summary="budget computed")


def make_job(seed: int) -> dict:
    cities = sorted(CITIES)
    return {"seed": seed, "city": cities[seed % len(cities)], "days": 2 + seed % 5}


researcher = Specialist(name="researcher", description="Finds a city's daily costs.", instructions="Look the city up with lookup_city and report its facts.", tools=(lookup_city,), input_type=CityTask, output_type=CityFacts, policy=researcher_policy, budget=Budget(max_turns=4))
accountant = Specialist(name="accountant", description="Converts costs to USD.", instructions="Convert the total to USD with convert.", tools=(convert,), input_type=ConvertTask, output_type=Budget_, policy=accountant_policy, budget=Budget(max_turns=4))

workflow = Workflow(
    name="tiny_trip",
    lead=Lead(instructions="Plan a trip budget: delegate research, then conversion; report the total in USD.", output_type=TripReport, policy=lead_policy),
    specialists=(researcher, accountant),
    stages=(Stage(name="main", rubric=str(Path(__file__).with_name("tiny_rubric.yaml"))),),
    job=make_job,
    deps=lambda job: {},
)
