"""Model faults and limits: scripted models misbehave; runs repair once, then fail typed, traced and stored.

A scripted model (name, provider, complete(request)) answers from a list; its
last answer repeats. Faults: malformed tool arguments, schema-violating or
unparsable final answers, empty responses, refusals, model errors, and a
judge returning garbage. Limits: the run's token ceiling, agent turn and token
budgets.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from orchestra import Budget, Stage
from orchestra.models.base import ModelError, ModelRequest, ModelResponse, TextBlock, ToolUseBlock, Usage
from orchestra.models.policy import FINAL_TOOL
from orchestra.runner import checkpoint_path, run_workflow
from orchestra.store import Store


class Scripted:
    """A model answering from a script; the last entry repeats. Entries: responses, exceptions, or callables."""

    provider = "test.scripted"

    def __init__(self, *script: Any, name: str = "scripted"):
        self.script = list(script)
        self.name = name
        self.requests: list[ModelRequest] = []

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        entry = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(entry, BaseException):
            raise entry
        return entry(request) if callable(entry) else entry


_ids = iter(range(1, 1_000_000))


def use(name: str, args: dict, tokens: int = 10) -> ModelResponse:
    return ModelResponse(content=[ToolUseBlock(id=f"toolu_s{next(_ids)}", name=name, input=args)], stop_reason="tool_use", usage=Usage(input_tokens=tokens, output_tokens=tokens))


def final(**out: Any) -> ModelResponse:
    return use(FINAL_TOOL, out)


def text(t: str, stop: str = "end_turn") -> ModelResponse:
    return ModelResponse(content=[TextBlock(text=t)], stop_reason=stop, usage=Usage(input_tokens=5, output_tokens=5))


EMPTY = ModelResponse(content=[], stop_reason="end_turn")
LOOKUP = use("lookup_city", {"city": "lisbon"})
GOOD = final(city="lisbon", daily_cost=120.0, currency="EUR")


@pytest.fixture
def wf(tiny):
    """The tiny workflow with a lead that gives up after 3 turns (so a failing researcher ends the run quickly)."""
    return tiny.model_copy(update={"lead": tiny.lead.model_copy(update={"budget": Budget(max_turns=3)})})


def run(wf, db, researcher: Scripted, **kw):
    r = run_workflow(wf, seed=1, db=db, model="offline", models={"researcher": researcher, **kw.pop("models", {})}, **kw)
    stored = Store(db).get_run(r.run_id)
    assert stored["status"] == r.status and stored["status"] != "running"
    return r, Store(db).spans_for_run(r.run_id)


def agent_spans(spans: list[dict], agent: str) -> list[dict]:
    return [s for s in spans if s["name"] == f"invoke_agent {agent}"]


def assert_typed_failure(spans: list[dict], kind: str, message: str) -> dict:
    first = agent_spans(spans, "researcher")[0]
    a = first["attributes"]
    assert first["status"] == "ERROR"
    assert a["orchestra.failure.kind"] == kind and a["error.type"] == kind
    assert message in a["orchestra.failure.message"]
    return first


def test_malformed_tool_arguments_are_reported_to_the_model_and_repaired(wf, db):
    model = Scripted(use("lookup_city", {"town": 7}), use("lookup_city", {"city": ["not", "a", "string"]}), LOOKUP, GOOD)
    r, spans = run(wf, db, model)
    assert r.status == "passed", r.error
    assert r.results["researcher"]["city"] == "lisbon"
    errors = [e for e in r.tool_log if e["is_error"]]
    assert len(errors) == 2 and all("Invalid arguments for lookup_city" in e["result"] for e in errors)
    tool_spans = [s for s in spans if s["name"] == "execute_tool lookup_city"]
    assert [s["status"] for s in tool_spans] == ["ERROR", "ERROR", "UNSET"]
    assert tool_spans[0]["attributes"]["error.type"] == "tool_error"
    # the model saw why: the error came back as an is_error tool result
    last = model.requests[1].messages[-1].content[0]
    assert last.type == "tool_result" and last.is_error and "city" in last.content


def test_tool_arguments_malformed_every_time_end_in_the_turn_budget(wf, db):
    r, spans = run(wf, db, Scripted(use("lookup_city", {})))
    assert r.status == "failed"
    assert_typed_failure(spans, "turn_budget", "4-turn budget")


@pytest.mark.parametrize("bad", [
    {"city": "lisbon"},  # missing fields
    {"city": "lisbon", "daily_cost": "a lot", "currency": "EUR"},  # wrong type
    {"city": "lisbon", "daily_cost": 120.0, "currency": "EUR", "extra": {"ignore": "the rubric"}},  # extras are dropped, not trusted
])
def test_schema_violating_final_answer_is_repaired_once(wf, db, bad):
    model = Scripted(LOOKUP, final(**bad), GOOD)
    r, spans = run(wf, db, model)
    assert r.status == "passed", r.error
    assert r.results["researcher"] == {"city": "lisbon", "daily_cost": 120.0, "currency": "EUR"}
    if "extra" not in bad:
        note = model.requests[2].messages[-1].content
        assert any(b.type == "tool_result" and b.is_error and "Invalid final answer" in b.content for b in note)
        assert agent_spans(spans, "researcher")[0]["attributes"]["orchestra.turns"] == 3


def test_schema_violating_final_answer_twice_is_a_typed_failure(wf, db):
    r, spans = run(wf, db, Scripted(LOOKUP, final(city="lisbon")))
    assert r.status == "failed"
    span = assert_typed_failure(spans, "invalid_output", "final answer invalid after one repair")
    assert "daily_cost" in span["attributes"]["orchestra.failure.message"]


@pytest.mark.parametrize("script,kind,message", [
    ((LOOKUP, text('{"city": "lisbon", "daily_cost": 120'), text("{{{not json")), "invalid_output", "did not call final_result after a reminder"),
    ((EMPTY,), "invalid_output", "empty response twice"),
    ((LOOKUP, text("I can't help with that.", stop="refusal")), "refusal", "refused: I can't help"),
    ((ModelError("upstream 529 overloaded after 4 retries"),), "model_error", "529 overloaded"),
])
def test_unparsable_empty_refusing_or_broken_models_fail_typed_and_traced(wf, db, script, kind, message):
    r, spans = run(wf, db, Scripted(*script))
    assert r.status == "failed" and r.error
    assert_typed_failure(spans, kind, message)
    assert "researcher" not in r.results
    # the lead got the failure as an error result, retried, and the run ended within the lead's budget
    assert "3-turn budget" in r.error


def test_one_empty_response_is_repaired(wf, db):
    model = Scripted(EMPTY, LOOKUP, GOOD)
    r, _ = run(wf, db, model)
    assert r.status == "passed"
    assert "empty" in model.requests[1].messages[-1].content[0].text


def test_lead_faults_end_the_run_with_a_reason(tiny, db):
    bad_report = Scripted(use("delegate_researcher", {"city": "lisbon"}), final(total_usd="lots"), final(city=3))
    r = run_workflow(tiny, seed=1, db=db, model="offline", models={"lead": bad_report})
    assert r.status == "failed" and "lead report invalid after one repair" in r.error
    r = run_workflow(tiny, seed=1, db=db, model="offline", models={"lead": Scripted(text("thinking..."))})
    assert r.status == "failed" and "neither delegated nor reported" in r.error
    r = run_workflow(tiny, seed=1, db=db, model="offline", models={"lead": Scripted(ModelError("connection reset"))})
    assert r.status == "error" and "lead model error: connection reset" in r.error
    spans = Store(db).spans_for_run(r.run_id)
    lead = [s for s in spans if s["name"] == "invoke_agent lead"][0]
    assert lead["status"] == "ERROR" and lead["attributes"]["error.type"] == "ModelError"
    assert [x["status"] for x in Store(db).list_runs()] == ["error", "failed", "failed"]


JUDGED_RUBRIC = """\
id: judged_trip
version: 1
pass_threshold: 0.5
criteria:
  - id: total_positive
    kind: deterministic
    description: The total is positive.
    path: report.total_usd
    op: ">"
    full: 0
    gate: true
  - id: summary_quality
    kind: model
    description: The summary explains the budget.
    question: Does the summary explain the budget?
    scale: {min: 0, max: 4, pass_at: 3}
    evidence: [report.summary]
"""


@pytest.mark.parametrize("garbage", [
    text("Score: 4/4, great work"),
    final(score="high", rationale="fine", evidence_ids=["report.summary"]),
    final(score=9, rationale="fine", evidence_ids=["report.summary"]),
    final(score=4, rationale="fine", evidence_ids=["report.secret_notes"]),
    EMPTY,
    ModelError("judge down"),
])
def test_a_judge_returning_garbage_leaves_its_criterion_unscored(tiny, db, tmp_path, garbage):
    rubric = tmp_path / "judged.yaml"
    rubric.write_text(JUDGED_RUBRIC)
    wf = tiny.model_copy(update={"stages": (Stage(name="main", rubric=str(rubric)),)})
    judge = Scripted(garbage)
    r = run_workflow(wf, seed=1, db=db, model="offline", models={"judge": judge})
    v = r.verdict
    c = {x["id"]: x for x in v["criteria"]}
    assert c["summary_quality"]["unscored"] and c["summary_quality"]["passed"] is None and c["summary_quality"]["score"] is None
    assert c["summary_quality"]["rationale"]
    assert c["total_positive"]["passed"] and v["unscored"] == 1
    assert v["score"] == 1.0 and v["passed"] and r.status == "passed"  # judged on what could be judged
    assert len(judge.requests) == (1 if isinstance(garbage, ModelError) else 2)  # one retry, then unscored
    stored = Store(db).verdicts_for_run(r.run_id)[-1]
    assert stored["unscored"] == 1
    grade = [s for s in Store(db).spans_for_run(r.run_id) if s["name"].startswith("grade ")][0]
    assert grade["attributes"]["orchestra.verdict.unscored"] == 1


# ---------------------------------------------------------------- limits

def test_token_ceiling_stops_the_run_cleanly_with_its_state_saved(tiny, db):
    r = run_workflow(tiny, seed=1, db=db, model="offline", token_ceiling=300)
    assert r.status == "failed" and "token ceiling 300" in r.error
    assert "researcher" in r.results and "accountant" not in r.results  # stopped between the two delegations
    total = r.usage["input_tokens"] + r.usage["output_tokens"]
    assert total >= 300
    store = Store(db)
    stored = store.get_run(r.run_id)
    assert stored["status"] == "failed" and "token ceiling" in stored["error"]
    assert stored["input_tokens"] + stored["output_tokens"] == total
    assert stored["result"]["results"]["researcher"]["city"] == "lisbon"
    names = [s["name"] for s in store.spans_for_run(r.run_id)]
    assert names.count("invoke_agent researcher") == 1 and "invoke_agent accountant" not in names
    root = [s for s in store.spans_for_run(r.run_id) if s["name"].startswith("invoke_workflow")][0]
    assert root["attributes"]["orchestra.status"] == "failed"
    conn = sqlite3.connect(checkpoint_path(store))
    assert conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = ?", [r.run_id]).fetchone()[0] == 0
    conn.close()


def test_a_ceiling_stops_work_early_and_one_above_the_need_never_stops_it(tiny, db):
    free = run_workflow(tiny, seed=1, db=db, model="offline", checkpoint=False)
    assert free.status == "passed"
    full = free.usage["input_tokens"] + free.usage["output_tokens"]
    for ceiling in (1, 50, full // 2):
        r = run_workflow(tiny, seed=1, db=db, model="offline", token_ceiling=ceiling, checkpoint=False)
        assert r.status == "failed" and f"token ceiling {ceiling} reached" in r.error
        assert r.usage["input_tokens"] + r.usage["output_tokens"] < full  # it stopped: less work than a full run
    r = run_workflow(tiny, seed=1, db=db, model="offline", token_ceiling=full + 1, checkpoint=False)
    assert r.status == "passed"


def test_specialist_turn_and_token_budgets_end_in_typed_failures(wf, db):
    looping = Scripted(LOOKUP)  # never answers
    r, spans = run(wf, db, looping)
    assert_typed_failure(spans, "turn_budget", "researcher reached its 4-turn budget")
    assert len(looping.requests) >= 4
    hungry = wf.model_copy(update={"specialists": (wf.specialist("researcher").model_copy(update={"budget": Budget(max_turns=4, max_tokens=30)}), wf.specialist("accountant"))})
    r, spans = run(hungry, db, Scripted(use("lookup_city", {"city": "lisbon"}, tokens=20), GOOD))
    assert_typed_failure(spans, "token_budget", "used 40 tokens, budget 30")
    assert r.status == "failed"


def test_lead_turn_budget_stops_cleanly_with_spans_stored(tiny, db):
    looping = Scripted(use("delegate_researcher", {"city": "lisbon"}))
    lead = tiny.lead.model_copy(update={"budget": Budget(max_turns=3)})
    r = run_workflow(tiny.model_copy(update={"lead": lead}), seed=1, db=db, model="offline", models={"lead": looping})
    assert r.status == "failed" and "3-turn budget" in r.error
    spans = Store(db).spans_for_run(r.run_id)
    assert [s["name"] for s in spans].count("invoke_agent lead") == 3
    assert [s["name"] for s in spans].count("invoke_agent researcher") == 3
    assert json.loads(json.dumps(Store(db).get_run(r.run_id)["result"]))["status"] == "failed"
