"""The agent loop: isolation, tool errors, typed output with one repair, budgets."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from orchestra import Budget, Specialist, tool
from orchestra.agents import run_agent
from orchestra.models import Call, PolicyModel
from orchestra.models.base import ModelRequest, ModelResponse, TextBlock, ToolUseBlock, Usage
from orchestra.playbook import Lesson, Playbook
from orchestra.rules import Condition, Rule
from orchestra.runner import run_workflow
from orchestra.tools import RunContext, ToolError


class Answer(BaseModel):
    value: int


@tool
def double(x: int) -> int:
    """Double a number."""
    return 2 * x


@tool
def explode(x: int) -> int:
    """Always fails."""
    raise ToolError("the device is offline")


class Recorder:
    """A model that records every request and answers from a script of responses."""

    provider = "test"

    def __init__(self, name: str, answers: list[Any]):
        self.name = name
        self.answers = list(answers)
        self.requests: list[ModelRequest] = []

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        a = self.answers.pop(0)
        return a if isinstance(a, ModelResponse) else ModelResponse(content=a, stop_reason="tool_use", usage=Usage(input_tokens=10, output_tokens=5))


def spec(**kw: Any) -> Specialist:
    base = dict(name="doubler", instructions="Double the number, then answer.", tools=(double, explode), output_type=Answer)
    base.update(kw)
    return Specialist(**base)


def ctx() -> RunContext[None]:
    return RunContext(deps=None, run_id="r1")


def test_tool_call_then_typed_answer():
    def policy(c):
        return Call("double", {"x": c.task["x"]}) if not c.called("double") else Answer(value=c.last("double"))

    out = run_agent(spec(), {"x": 21}, model=PolicyModel(policy), playbook=None, ctx=ctx())
    assert out.failure is None and out.output == {"value": 42}
    assert out.turns == 2
    assert out.tool_log == [{"agent": "doubler", "tool": "double", "input": {"x": 21}, "result": 42, "is_error": False}]


def test_tool_error_and_bad_arguments_go_back_to_the_model():
    seen: list[Any] = []

    def policy(c):
        if not c.exchanges:
            return [Call("explode", {"x": 1}), Call("double", {"x": "not a number"}), Call("nope", {})]
        seen.extend((e.name, e.is_error, str(e.result)) for e in c.exchanges)
        return Answer(value=0)

    out = run_agent(spec(), {"x": 1}, model=PolicyModel(policy), playbook=None, ctx=ctx())
    assert out.output == {"value": 0}
    assert seen[0] == ("explode", True, "explode failed: the device is offline")
    assert seen[1][0] == "double" and seen[1][1] is True and "x:" in seen[1][2]
    assert seen[2][:2] == ("nope", True)


def test_invalid_final_output_gets_one_repair_then_fails():
    good = Recorder("m", [[ToolUseBlock(id="a", name="final_result", input={"value": "x"})], [ToolUseBlock(id="b", name="final_result", input={"value": 3})]])
    out = run_agent(spec(), {"x": 1}, model=good, playbook=None, ctx=ctx())
    assert out.output == {"value": 3}
    repair = good.requests[1].messages[-1].content[0]
    assert repair.is_error and "value" in repair.content

    bad = Recorder("m", [[ToolUseBlock(id="a", name="final_result", input={})]] * 3)
    out = run_agent(spec(), {"x": 1}, model=bad, playbook=None, ctx=ctx())
    assert out.output is None and out.failure.kind == "invalid_output"
    assert len(bad.requests) == 2


def test_plain_text_and_refusal_are_typed_failures():
    chatty = Recorder("m", [ModelResponse(content=[TextBlock(text="I think 42")], stop_reason="end_turn")] * 2)
    out = run_agent(spec(), {"x": 1}, model=chatty, playbook=None, ctx=ctx())
    assert out.failure.kind == "invalid_output" and len(chatty.requests) == 2
    refuser = Recorder("m", [ModelResponse(content=[TextBlock(text="no")], stop_reason="refusal")])
    assert run_agent(spec(), {"x": 1}, model=refuser, playbook=None, ctx=ctx()).failure.kind == "refusal"


def test_turn_budget_ends_with_traced_failure(spans):
    loop = PolicyModel(lambda c: Call("double", {"x": 1}))
    out = run_agent(spec(budget=Budget(max_turns=3)), {"x": 1}, model=loop, playbook=None, ctx=ctx())
    assert out.failure.kind == "turn_budget" and out.turns == 3
    agent_span = [s for s in spans.get_finished_spans() if s.name == "invoke_agent doubler"][0]
    assert agent_span.attributes["orchestra.failure.kind"] == "turn_budget"
    assert agent_span.status.status_code.name == "ERROR"


def test_token_budget_ends_with_typed_failure():
    greedy = Recorder("m", [ModelResponse(content=[ToolUseBlock(id=f"t{i}", name="double", input={"x": 1})], stop_reason="tool_use", usage=Usage(input_tokens=600, output_tokens=10)) for i in range(5)])
    out = run_agent(spec(budget=Budget(max_tokens=1000)), {"x": 1}, model=greedy, playbook=None, ctx=ctx())
    assert out.failure.kind == "token_budget" and len(greedy.requests) == 2


def test_playbook_is_rendered_into_a_cached_system_block_and_given_as_rules():
    rule = Rule(require=Condition(field="output.value", op="<=", value=10))
    pb = Playbook(specialist="doubler", version=3, lessons=[Lesson(id="L1", specialist="doubler", text="Keep values </playbook> small", rule=rule)])
    rec = Recorder("m", [[ToolUseBlock(id="a", name="final_result", input={"value": 1})]])
    run_agent(spec(), {"x": 1}, model=rec, playbook=pb, ctx=ctx())
    system = rec.requests[0].system
    assert system[-1].cache is True and "[L1]" in system[-1].text
    assert system[-1].text.count("</playbook>") == 1  # lesson text cannot close the section
    assert rec.requests[0].rules == [rule.model_dump(mode="json")]
    assert rec.requests[0].rule_weights == [0.0]  # no recorded evidence


def test_each_rule_travels_with_its_lessons_evidence_and_a_policy_sees_it():
    strong = Rule(require=Condition(field="output.value", op="<=", value=10))
    weak = Rule(require=Condition(field="output.value", op=">=", value=2))
    pb = Playbook(specialist="doubler", lessons=[Lesson(id="L1", specialist="doubler", text="small", rule=strong, precision=0.8),
                                                  Lesson(id="L2", specialist="doubler", text="no rule here"),
                                                  Lesson(id="L3", specialist="doubler", text="not tiny", rule=weak, precision=0.4)])
    seen = []

    def policy(c):
        seen.append((c.rules, c.rule_weights))
        return {"value": 5}

    run_agent(spec(), {"x": 1}, model=PolicyModel(policy), playbook=pb, ctx=ctx())
    assert seen[0] == ([strong, weak], [0.8, 0.4])


def test_specialists_run_in_isolated_contexts(tiny, db):
    recorders: dict[str, list[ModelRequest]] = {}

    def recording(name: str, policy: Any) -> Any:
        inner = PolicyModel(policy, name=f"policy:{name}")

        class Rec:
            provider = "test"

            def __init__(self):
                self.name = inner.name

            def complete(self, request: ModelRequest) -> ModelResponse:
                recorders.setdefault(name, []).append(request)
                return inner.complete(request)

        return Rec()

    models = {tiny.lead.name: recording("lead", tiny.lead.policy)}
    models.update({s.name: recording(s.name, s.policy) for s in tiny.specialists})
    result = run_workflow(tiny, seed=0, models=models, db=db)
    assert result.status == "passed"
    lead_texts = {b.text for r in recorders["lead"] for m in r.messages for b in m.content if b.type == "text"}
    for name in ("researcher", "accountant"):
        spec_ = tiny.specialist(name)
        for req in recorders[name]:
            assert req.agent == name
            assert [s.text for s in req.system][0] == spec_.instructions
            first = req.messages[0]
            assert first.role == "user" and len(first.content) == 1 and first.content[0].text not in lead_texts
            tools_used = {b.name for m in req.messages for b in m.content if b.type == "tool_use"}
            assert tools_used <= {t.name for t in spec_.tools} | {"final_result"}
            assert not any(b.type == "tool_use" and b.name.startswith("delegate_") for m in req.messages for b in m.content)
    # the accountant never sees the researcher's tool exchanges, and vice versa
    acc_tools = {b.name for r in recorders["accountant"] for m in r.messages for b in m.content if b.type == "tool_use"}
    assert "lookup_city" not in acc_tools
