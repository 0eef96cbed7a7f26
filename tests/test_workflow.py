"""The workflow graph: a real LangGraph graph, stages with retries, durable resume."""

from __future__ import annotations

import pytest
from langgraph.graph.state import CompiledStateGraph

from orchestra import Specialist, tool
from orchestra.models import PolicyModel
from orchestra.runner import run_workflow
from orchestra.store import Store
from orchestra.tools import ToolError


def test_compiles_to_a_langgraph_graph(tiny):
    g = tiny.compile()
    assert isinstance(g, CompiledStateGraph)
    assert {"lead", "specialist.researcher", "specialist.accountant", "grade", "dream"} <= set(g.get_graph().nodes)


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_run_passes_under_each_durability_mode(tiny, db, durability):
    r = run_workflow(tiny, seed=1, model="offline", db=db, durability=durability)
    assert r.status == "passed", r.error
    assert r.results["researcher"] == {"city": "lisbon", "daily_cost": 120.0, "currency": "EUR"}
    assert r.results["accountant"]["total_usd"] == pytest.approx(120 * 3 * 1.1)
    assert r.verdict["passed"] is True and r.verdict["attempt"] == 1
    stored = Store(db).get_run(r.run_id)
    assert stored["status"] == "passed" and stored["trace_id"] == r.trace_id


def test_failing_verdict_returns_to_the_lead_until_max_attempts(tiny, db):
    expensive = tiny.model_copy(update={"job": lambda seed: {"seed": seed, "city": "denver", "days": 30}})
    lead_notes = []
    inner = expensive.lead.policy

    def lead(ctx):
        lead_notes.append(list(ctx.notes))
        return inner(ctx)

    r = run_workflow(expensive, seed=0, db=db, models={"lead": PolicyModel(lead)})
    assert r.status == "failed"
    assert [v["attempt"] for v in r.verdicts] == [1, 2]  # tiny rubric: max_attempts 2
    assert all(not v["passed"] for v in r.verdicts)
    feedback = [n for notes in lead_notes for n in notes if isinstance(n, dict) and "feedback" in n]
    assert feedback and feedback[0]["attempt"] == 2
    assert any(f["criterion"] == "affordable" for f in feedback[0]["feedback"])
    assert len(Store(db).verdicts_for_run(r.run_id)) == 2


class Crash(BaseException):
    """Stands in for the process dying mid-run."""


@pytest.mark.parametrize("durability", ["sync", "async"])
def test_interrupted_run_resumes_from_its_checkpoint(tiny, db, durability):
    state = {"calls": 0, "lookups": 0}

    @tool
    def convert(amount: float, currency: str) -> dict:
        """Convert to USD (crashes the first time)."""
        state["calls"] += 1
        if state["calls"] == 1:
            raise Crash()
        return {"usd": round(amount * 1.1, 2)}

    researcher = tiny.specialist("researcher")
    inner_lookup = researcher.tools[0]

    @tool
    def lookup_city(city: str) -> dict:
        """Count lookups."""
        state["lookups"] += 1
        return inner_lookup.fn(type("C", (), {"state": {}})(), city)

    wf = tiny.model_copy(update={"specialists": (researcher.model_copy(update={"tools": (lookup_city,)}), tiny.specialist("accountant").model_copy(update={"tools": (convert,)}))})
    with pytest.raises(Crash):
        run_workflow(wf, seed=1, db=db, run_id="run-crash-1", durability=durability)
    assert Store(db).get_run("run-crash-1")["status"] == "running"
    r = run_workflow(wf, seed=1, db=db, run_id="run-crash-1", durability=durability)
    assert r.status == "passed"
    assert state["lookups"] == 1  # the researcher's finished step was not repeated
    assert state["calls"] == 2
    assert Store(db).get_run("run-crash-1")["status"] == "passed"


def test_unknown_delegate_and_bad_subtask_are_reported_to_the_lead(tiny, db):
    from orchestra.models import Call

    seen = []

    def lead(ctx):
        if not ctx.exchanges:
            return [Call("delegate_nobody", {}), Call("delegate_researcher", {"town": "x"})]
        seen.extend((e.name, e.is_error, str(e.result)) for e in ctx.exchanges)
        return tiny.lead.output_type(city="x", total_usd=1.0)

    r = run_workflow(tiny, seed=0, db=db, models={"lead": PolicyModel(lead)})
    assert r.status == "passed"
    assert seen[0][0] == "delegate_nobody" and seen[0][1]
    assert seen[1][0] == "delegate_researcher" and seen[1][1] and "city" in seen[1][2]


def test_lead_turn_budget_fails_the_run(tiny, db):
    from orchestra import Budget
    from orchestra.models import Call

    looping = tiny.model_copy(update={"lead": tiny.lead.model_copy(update={"budget": Budget(max_turns=3), "policy": lambda c: Call("delegate_researcher", {"city": "lisbon"})})})
    r = run_workflow(looping, seed=0, model="offline", db=db)
    assert r.status == "failed" and "3-turn budget" in r.error


def test_token_ceiling_stops_a_run_cleanly(tiny, db):
    r = run_workflow(tiny, seed=0, model="offline", db=db, token_ceiling=50)
    assert r.status == "failed" and "token ceiling" in r.error
    assert Store(db).get_run(r.run_id)["status"] == "failed"
