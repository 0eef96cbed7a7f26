"""Workflow: a lead, specialists and graded stages, compiled to a LangGraph StateGraph.

START -> lead --Send--> specialist.<name> --> lead --final--> grade
grade --pass--> next stage (lead) | dream -> END;  grade --fail--> lead (attempt+1)
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, TypedDict

from langchain_core.runnables import RunnableConfig

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send
from opentelemetry import context as otel_context
from opentelemetry import trace
from pydantic import Field, ValidationError, model_validator

from . import tracing as tr
from .agents import Lead, Specialist, _Definition, chat, final_tool_spec, run_agent, system_blocks, usage_attributes
from .models.base import Message, Model, ModelError, ModelRequest, TextBlock, ToolResultBlock
from .modelcall import metered
from .models.policy import FINAL_TOOL
from .playbook import Playbook, empty_playbook
from .tools import RunContext, dumps, format_validation_error


class Stage(_Definition):
    """A graded step of the job; failing work returns to the lead with feedback."""

    name: str
    rubric: str | Path | None = None
    max_attempts: int | None = Field(None, ge=1)
    brief: str = ""


class Workflow(_Definition):
    """A lead, its specialists and stages; compiles to a real LangGraph graph."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
    lead: Lead
    specialists: tuple[Specialist, ...]
    stages: tuple[Stage, ...] = (Stage(name="main"),)
    job: Callable[[int], dict[str, Any]] | None = None
    deps: Callable[[dict[str, Any]], Any] | None = None
    evidence: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
    outcome: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
    judge_policy: Callable[..., Any] | None = None
    picture: Callable[[Any, Path], None] | None = None
    scenarios: Callable[[str, int, int], list[int]] | None = None
    source: str | None = None
    dream_every: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _unique(self) -> "Workflow":
        names = [s.name for s in self.specialists]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"duplicate specialist names: {sorted(dupes)}")
        if not self.stages:
            raise ValueError("a workflow needs at least one stage")
        return self

    def specialist(self, name: str) -> Specialist:
        for s in self.specialists:
            if s.name == name:
                return s
        raise KeyError(f"unknown specialist {name!r}; this workflow has: {', '.join(s.name for s in self.specialists)}")

    def scenario_seeds(self, split: str, n: int, campaign_seed: int = 0) -> list[int]:
        """Disjoint seeds per split (train / validation / test), reproducible per campaign seed."""
        if self.scenarios is not None:
            return list(self.scenarios(split, n, campaign_seed))
        base = {"train": 0, "validation": 1_000_000, "test": 2_000_000}[split]
        return [base + campaign_seed * 10_000 + i for i in range(n)]

    def make_job(self, seed: int) -> dict[str, Any]:
        return self.job(seed) if self.job else {"seed": seed}

    def compile(self, checkpointer: Any = None) -> Any:
        """A compiled LangGraph `CompiledStateGraph`; LangGraph's own tooling works on it."""
        key = id(self)
        cached = _COMPILED.get(key)
        if cached is None or cached[0] is not self:
            cached = (self, build_graph(self).compile())
            _COMPILED[key] = cached
        graph = cached[1]
        return graph.copy({"checkpointer": checkpointer}) if checkpointer is not None else graph

    def run(self, seed: int = 0, **kwargs: Any) -> Any:
        from .runner import run_workflow

        return run_workflow(self, seed=seed, **kwargs)


_COMPILED: dict[int, tuple[Workflow, Any]] = {}


def _merge(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    return {**(a or {}), **(b or {})}


def _add_usage(a: dict[str, int] | None, b: dict[str, int] | None) -> dict[str, int]:
    out = dict(a or {})
    for k, v in (b or {}).items():
        out[k] = out.get(k, 0) + int(v)
    return out


class RunState(TypedDict, total=False):
    run_id: str
    job: dict[str, Any]
    stage_index: int
    attempt: int
    lead_messages: list[dict[str, Any]]
    lead_turns: int
    lead_repaired: bool
    results: Annotated[dict[str, Any], _merge]
    outputs: Annotated[dict[str, Any], _merge]
    stage_reports: Annotated[dict[str, Any], _merge]
    evidence: Annotated[dict[str, Any], _merge]
    tool_log: Annotated[list[dict[str, Any]], operator.add]
    verdicts: Annotated[list[dict[str, Any]], operator.add]
    failures: Annotated[list[dict[str, Any]], operator.add]
    usage: Annotated[dict[str, int], _add_usage]
    lead_output: dict[str, Any] | None
    status: str
    error: str | None


@dataclass
class Runtime:
    """Per-run objects that are not graph state (not checkpointed): models, deps, playbooks."""

    run_id: str
    workflow: Workflow
    deps: Any
    models: dict[str, Model]
    playbooks: dict[str, Playbook]
    judge: Model | None
    root: Any = None
    rubrics: dict[str, Any] = field(default_factory=dict)
    token_ceiling: int | None = None
    on_finish: Callable[[dict[str, Any]], None] | None = None

    def parent_context(self) -> Any:
        return trace.set_span_in_context(self.root) if self.root is not None else otel_context.get_current()


def runtime_of(config: Any) -> Runtime:
    return config["configurable"]["orchestra_runtime"]


def _usage_dict(u: Any) -> dict[str, int]:
    return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "cache_read_input_tokens": u.cache_read_input_tokens, "cache_creation_input_tokens": u.cache_creation_input_tokens}


def _over_ceiling(rt: Runtime, state: dict[str, Any]) -> bool:
    if rt.token_ceiling is None:
        return False
    u = state.get("usage") or {}
    return u.get("input_tokens", 0) + u.get("output_tokens", 0) >= rt.token_ceiling


def build_graph(wf: Workflow) -> StateGraph:
    names = [s.name for s in wf.specialists]
    delegates = {f"delegate_{s.name}": s for s in wf.specialists}

    def lead_node(state: RunState, config: RunnableConfig) -> Command:
        rt = runtime_of(config)
        msgs = [Message.model_validate(m) for m in state.get("lead_messages", [])]
        if not msgs:
            stage = wf.stages[0]
            msgs = [Message.user(dumps({"job": state["job"], "stage": stage.name, "brief": stage.brief, "stages": [s.name for s in wf.stages]}))]
        last = msgs[-1]
        if last.role == "assistant":
            blocks = []
            for use in [b for b in last.content if b.type == "tool_use"]:
                res = state.get("results", {}).get(use.id)
                if res is None:
                    blocks.append(ToolResultBlock(tool_use_id=use.id, content="no result", is_error=True))
                elif res.get("failure"):
                    blocks.append(ToolResultBlock(tool_use_id=use.id, content=f"{res['specialist']} failed ({res['failure']['kind']}): {res['failure']['message']}", is_error=True))
                else:
                    blocks.append(ToolResultBlock(tool_use_id=use.id, content=dumps(res["output"])))
            msgs.append(Message(role="user", content=blocks))
        turns = state.get("lead_turns", 0) + 1
        if turns > wf.lead.budget.max_turns:
            return Command(goto="dream", update={"status": "failed", "error": f"lead reached its {wf.lead.budget.max_turns}-turn budget"})
        if _over_ceiling(rt, state):
            return Command(goto="dream", update={"status": "failed", "error": f"run token ceiling {rt.token_ceiling} reached"})
        tools = [s.delegate_spec() for s in wf.specialists] + [final_tool_spec(wf.lead.output_type)]
        request = ModelRequest(agent=wf.lead.name, system=system_blocks(wf.lead.instructions, None), messages=msgs, tools=tools)
        model = rt.models[wf.lead.name]
        attrs = {tr.OP: "invoke_agent", tr.AGENT_NAME: wf.lead.name, tr.PROVIDER: model.provider, tr.REQUEST_MODEL: model.name, tr.CONVERSATION_ID: rt.run_id, "orchestra.run_id": rt.run_id, "orchestra.lead.turn": turns, "orchestra.stage": wf.stages[state.get("stage_index", 0)].name}
        with tr.tracer().start_as_current_span(f"invoke_agent {wf.lead.name}", context=rt.parent_context(), kind=trace.SpanKind.INTERNAL, attributes=attrs) as span:
            try:
                response = chat(model, request, run_id=rt.run_id)
            except ModelError as e:
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(e)))
                span.set_attribute(tr.ERROR_TYPE, type(e).__name__)
                return Command(goto="dream", update={"status": "error", "error": f"lead model error: {e}", "lead_turns": turns})
            span.set_attributes(usage_attributes(response.usage))
        update: dict[str, Any] = {"lead_turns": turns, "usage": _usage_dict(response.usage)}
        msgs.append(Message(role="assistant", content=list(response.content) or [TextBlock(text="(empty)")]))
        uses = response.tool_uses
        finals = [u for u in uses if u.name == FINAL_TOOL]
        sends, immediate = [], []
        for use in uses:
            if use.name in delegates:
                sends.append(Send(f"specialist.{delegates[use.name].name}", {"tool_use_id": use.id, "task": dict(use.input), "specialist": delegates[use.name].name, "stage": wf.stages[state.get("stage_index", 0)].name}))
            elif use.name != FINAL_TOOL:
                immediate.append(ToolResultBlock(tool_use_id=use.id, content=f"Unknown tool {use.name!r}; delegate with one of: {', '.join(delegates)}.", is_error=True))
        if finals and not sends:
            try:
                out = wf.lead.output_type.model_validate(finals[0].input).model_dump(mode="json")
            except ValidationError as e:
                if state.get("lead_repaired"):
                    return Command(goto="dream", update={**update, "status": "failed", "error": f"lead report invalid after one repair: {format_validation_error(e)}", "lead_messages": [m.model_dump(mode="json") for m in msgs]})
                msgs.append(Message(role="user", content=[ToolResultBlock(tool_use_id=finals[0].id, content=f"Invalid report: {format_validation_error(e)}", is_error=True)]))
                return Command(goto="lead", update={**update, "lead_repaired": True, "lead_messages": [m.model_dump(mode="json") for m in msgs]})
            stage = wf.stages[state.get("stage_index", 0)].name
            msgs.append(Message(role="user", content=[ToolResultBlock(tool_use_id=finals[0].id, content="report received; grading")]))
            return Command(goto="grade", update={**update, "lead_output": out, "stage_reports": {stage: out}, "lead_messages": [m.model_dump(mode="json") for m in msgs]})
        if sends:
            # A final answer mixed with delegations is premature: answer it after the results.
            update["results"] = {u.id: {"specialist": "lead", "failure": {"kind": "invalid_output", "message": "final answer given before delegated results returned"}} for u in finals}
            update["results"].update({b.tool_use_id: {"specialist": "?", "failure": {"kind": "invalid_output", "message": b.content}} for b in immediate})
            return Command(goto=sends, update={**update, "lead_messages": [m.model_dump(mode="json") for m in msgs]})
        if immediate:
            msgs.append(Message(role="user", content=immediate))
        elif not state.get("lead_repaired"):
            msgs.append(Message.user(f"Delegate with the delegate_* tools or call {FINAL_TOOL} with your report."))
            update["lead_repaired"] = True
        else:
            return Command(goto="dream", update={**update, "status": "failed", "error": "lead neither delegated nor reported after a reminder", "lead_messages": [m.model_dump(mode="json") for m in msgs]})
        return Command(goto="lead", update={**update, "lead_messages": [m.model_dump(mode="json") for m in msgs]})

    def make_specialist_node(spec: Specialist) -> Callable[..., dict[str, Any]]:
        def node(payload: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
            rt = runtime_of(config)
            task: Any = payload["task"]
            if spec.input_type is not None:
                try:
                    task = spec.input_type.model_validate(task)
                except ValidationError as e:
                    failure = {"kind": "invalid_output", "message": f"invalid subtask for {spec.name}: {format_validation_error(e)}"}
                    return {"results": {payload["tool_use_id"]: {"specialist": spec.name, "failure": failure}}, "failures": [{"agent": spec.name, **failure}]}
            token = otel_context.attach(rt.parent_context())
            try:
                outcome = run_agent(spec, task, model=rt.models[spec.name], playbook=rt.playbooks.get(spec.name), ctx=RunContext(deps=rt.deps, run_id=rt.run_id, agent=spec.name), attributes={"orchestra.stage": payload.get("stage", "")})
            finally:
                otel_context.detach(token)
            res: dict[str, Any] = {"specialist": spec.name, "output": outcome.output, "failure": outcome.failure.model_dump() if outcome.failure else None, "turns": outcome.turns}
            update: dict[str, Any] = {"results": {payload["tool_use_id"]: res}, "tool_log": outcome.tool_log, "usage": _usage_dict(outcome.usage)}
            if outcome.output is not None:
                update["outputs"] = {spec.name: outcome.output}
            if outcome.failure is not None:
                update["failures"] = [{"agent": spec.name, **outcome.failure.model_dump()}]
            return update

        return node

    def grade_node(state: RunState, config: RunnableConfig) -> Command:
        rt = runtime_of(config)
        idx = state.get("stage_index", 0)
        stage = wf.stages[idx]
        attempt = state.get("attempt", 1)
        rubric = rt.rubrics.get(stage.name)
        msgs = list(state.get("lead_messages", []))
        if rubric is None:
            verdict: dict[str, Any] | None = None
            passed = True
            max_attempts = 1
        else:
            from .grading import Grader, verdict_attributes

            evidence = build_evidence(wf, state, rt.deps)
            with tr.tracer().start_as_current_span(f"grade {rubric.id}", context=rt.parent_context(), attributes={"orchestra.run_id": rt.run_id, "orchestra.stage": stage.name, tr.CONVERSATION_ID: rt.run_id}) as span:
                with metered() as meter:
                    v = Grader(rubric, judge=rt.judge).grade(evidence, stage=stage.name, attempt=attempt)
                span.set_attributes(verdict_attributes(v))
            verdict = v.model_dump(mode="json")
            passed = bool(v.passed)
            max_attempts = stage.max_attempts or getattr(rubric, "max_attempts", 1) or 1
        update: dict[str, Any] = {"verdicts": [verdict] if verdict else []}
        if rubric is not None:
            update["evidence"] = {stage.name: evidence}
            update["usage"] = _usage_dict(meter.usage)  # the judge's tokens are the run's cost too
        if passed:
            if idx + 1 < len(wf.stages):
                nxt = wf.stages[idx + 1]
                msgs.append(Message.user(dumps({"stage": nxt.name, "brief": nxt.brief, "previous_stage": stage.name, "previous_passed": True})).model_dump(mode="json"))
                return Command(goto="lead", update={**update, "stage_index": idx + 1, "attempt": 1, "lead_messages": msgs, "lead_repaired": False})
            return Command(goto="dream", update={**update, "status": "passed"})
        if attempt < max_attempts:
            feedback = v.feedback() if rubric is not None else []
            msgs.append(Message.user(dumps({"stage": stage.name, "attempt": attempt + 1, "feedback": feedback})).model_dump(mode="json"))
            return Command(goto="lead", update={**update, "attempt": attempt + 1, "lead_messages": msgs, "lead_repaired": False})
        return Command(goto="dream", update={**update, "status": "failed", "error": f"stage {stage.name!r} failed after {attempt} attempt(s)"})

    def dream_node(state: RunState, config: RunnableConfig) -> dict[str, Any]:
        rt = runtime_of(config)
        if rt.on_finish is not None:
            rt.on_finish(dict(state))
        return {}

    g = StateGraph(RunState)
    g.add_node("lead", lead_node, destinations=tuple(["grade", "dream", "lead"] + [f"specialist.{n}" for n in names]))
    for spec in wf.specialists:
        g.add_node(f"specialist.{spec.name}", make_specialist_node(spec))
        g.add_edge(f"specialist.{spec.name}", "lead")
    g.add_node("grade", grade_node, destinations=("lead", "dream"))
    g.add_node("dream", dream_node)
    g.add_edge(START, "lead")
    g.add_edge("dream", END)
    return g


def last_tool_results(tool_log: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in tool_log:
        if not entry.get("is_error"):
            out[entry["tool"]] = entry["result"]
    return out


def build_evidence(wf: Workflow, state: dict[str, Any], deps: Any) -> dict[str, Any]:
    """The grader's evidence pack: typed results, tool results, reports — never conversations."""
    base = {
        "job": state.get("job", {}),
        "results": state.get("outputs", {}),
        "tools": last_tool_results(state.get("tool_log", [])),
        "report": state.get("lead_output") or {},
        "reports": state.get("stage_reports", {}),
        "failures": state.get("failures", []),
    }
    if wf.evidence is not None:
        base.update(wf.evidence(state, deps))
    return base


def initial_state(wf: Workflow, run_id: str, job: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": run_id, "job": job, "stage_index": 0, "attempt": 1, "lead_messages": [], "lead_turns": 0, "status": "running", "error": None, "lead_output": None}


def default_playbooks(wf: Workflow) -> dict[str, Playbook]:
    return {s.name: empty_playbook(s.name) for s in wf.specialists}
