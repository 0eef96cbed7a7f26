"""Specialist and Lead definitions, and the agent loop that runs a specialist.

A specialist is a small declarative object; `run_agent` runs it in an isolated
context: its instructions, its playbook, the subtask and its own tool
exchanges, nothing else.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import tracing as tr
from .models.base import (
    Message,
    Model,
    ModelError,
    ModelRequest,
    SystemBlock,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    Usage,
)
from .models.policy import FINAL_TOOL
from .playbook import Playbook
from .tools import RunContext, Tool, ToolError, dumps, format_validation_error, to_jsonable


class Budget(BaseModel):
    """Per-agent limits; exceeding one ends the agent with a typed failure."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_turns: int = Field(12, ge=1)
    max_tokens: int = Field(200_000, ge=1)


class _Definition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class Specialist(_Definition):
    """A specialist agent: instructions, tools, typed input/output, budget, offline policy."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    instructions: str
    tools: tuple[Tool, ...] = ()
    output_type: type[BaseModel]
    input_type: type[BaseModel] | None = None
    budget: Budget = Budget()
    policy: Callable[..., Any] | None = None
    decisions: tuple[str, ...] | None = None
    """Output fields this specialist decides (rules may require them); the rest are reported facts."""

    def delegate_spec(self) -> ToolSpec:
        """How the lead sees this specialist: one delegate tool."""
        return _delegate_spec(self.name, self.description, self.input_type)


@functools.lru_cache(maxsize=256)
def _delegate_spec(name: str, description: str, input_type: type[BaseModel] | None) -> ToolSpec:
    if input_type is not None:
        schema = input_type.model_json_schema()
    else:
        schema = {"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]}
    return ToolSpec(name=f"delegate_{name}", description=f"Hand a subtask to the {name} specialist. {description}".strip(), input_schema=schema)


class Lead(_Definition):
    """The lead agent: splits the job, delegates, reports per stage."""

    name: str = "lead"
    instructions: str
    output_type: type[BaseModel]
    budget: Budget = Budget(max_turns=30)
    policy: Callable[..., Any] | None = None


FailureKind = Literal["turn_budget", "token_budget", "invalid_output", "model_error", "refusal"]


class AgentFailure(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: FailureKind
    message: str


@dataclass
class AgentOutcome:
    agent: str
    output: dict[str, Any] | None
    failure: AgentFailure | None
    usage: Usage
    turns: int
    tool_log: list[dict[str, Any]] = field(default_factory=list)


@functools.lru_cache(maxsize=256)
def final_tool_spec(output_type: type[BaseModel]) -> ToolSpec:
    schema = output_type.model_json_schema()
    return ToolSpec(name=FINAL_TOOL, description="Return your final answer. Call this exactly once, when done.", input_schema=schema)


def system_blocks(instructions: str, playbook: Playbook | None) -> list[SystemBlock]:
    """Instructions then playbook, the playbook block closing the cached prefix."""
    pb = playbook.render() if playbook is not None else "<playbook>(none)</playbook>"
    return [SystemBlock(text=instructions), SystemBlock(text="Your playbook (lessons learned from past missions):\n" + pb, cache=True)]


def usage_attributes(usage: Usage) -> dict[str, int]:
    return {
        tr.INPUT_TOKENS: usage.input_tokens,
        tr.OUTPUT_TOKENS: usage.output_tokens,
        tr.CACHE_READ_TOKENS: usage.cache_read_input_tokens,
        tr.CACHE_CREATION_TOKENS: usage.cache_creation_input_tokens,
    }


def chat(model: Model, request: ModelRequest, *, run_id: str) -> Any:
    """One traced model call (`chat {model}` span)."""
    with tr.tracer().start_as_current_span(
        f"chat {model.name}",
        kind=trace.SpanKind.CLIENT,
        attributes={tr.OP: "chat", tr.PROVIDER: model.provider, tr.REQUEST_MODEL: model.name, tr.CONVERSATION_ID: run_id, "orchestra.run_id": run_id, "orchestra.agent": request.agent},
    ) as span:
        try:
            response = model.complete(request)
        except ModelError as e:
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(e)))
            span.set_attribute(tr.ERROR_TYPE, type(e).__name__)
            span.set_attributes(tr.chat_content_attributes(request))
            raise
        span.set_attributes(usage_attributes(response.usage))
        span.set_attributes(tr.chat_content_attributes(request, response))
        span.set_attribute(tr.RESPONSE_MODEL, response.model or model.name)
        span.set_attribute(tr.FINISH_REASONS, [response.stop_reason])
        return response


def run_agent(
    spec: Specialist,
    task: BaseModel | dict[str, Any] | str,
    *,
    model: Model,
    playbook: Playbook | None,
    ctx: RunContext[Any],
    attributes: dict[str, Any] | None = None,
) -> AgentOutcome:
    """Run a specialist to a typed result or a typed failure, inside an `invoke_agent` span."""
    task_text = task if isinstance(task, str) else dumps(task)
    attrs = {
        tr.OP: "invoke_agent", tr.AGENT_NAME: spec.name, tr.PROVIDER: model.provider, tr.REQUEST_MODEL: model.name,
        tr.CONVERSATION_ID: ctx.run_id, "orchestra.run_id": ctx.run_id, "orchestra.specialist": spec.name,
        "orchestra.playbook.version": playbook.version if playbook else 0,
        "orchestra.playbook.lesson_ids": list(playbook.lesson_ids) if playbook else [],
        "orchestra.input": tr.json_attr(to_jsonable(task)),
        **({tr.AGENT_DESCRIPTION: spec.description} if spec.description else {}),
        **(attributes or {}),
    }
    with tr.tracer().start_as_current_span(f"invoke_agent {spec.name}", kind=trace.SpanKind.INTERNAL, attributes=attrs) as span:
        outcome = _loop(spec, task_text, model=model, playbook=playbook, ctx=ctx)
        span.set_attributes(usage_attributes(outcome.usage))
        span.set_attribute("orchestra.turns", outcome.turns)
        if outcome.output is not None:
            span.set_attribute("orchestra.result", tr.json_attr(outcome.output))
        if outcome.failure is not None:
            span.set_attribute("orchestra.failure.kind", outcome.failure.kind)
            span.set_attribute("orchestra.failure.message", outcome.failure.message)
            span.set_attribute("error.type", outcome.failure.kind)
            span.set_status(trace.Status(trace.StatusCode.ERROR, outcome.failure.message))
        return outcome


def _loop(spec: Specialist, task_text: str, *, model: Model, playbook: Playbook | None, ctx: RunContext[Any]) -> AgentOutcome:
    tools = {t.name: t for t in spec.tools}
    specs = [ToolSpec(name=t.name, description=t.description, input_schema=t.input_schema) for t in spec.tools]
    specs.append(final_tool_spec(spec.output_type))
    system = system_blocks(spec.instructions, playbook)
    rules = playbook.rules_payload() if playbook else []
    weights = playbook.rule_weights() if playbook else []
    messages: list[Message] = [Message.user(task_text)]
    usage = Usage()
    repaired = False
    tool_log: list[dict[str, Any]] = []
    ctx = RunContext(deps=ctx.deps, run_id=ctx.run_id, agent=spec.name, state=ctx.state)

    def fail(kind: FailureKind, msg: str, turns: int) -> AgentOutcome:
        return AgentOutcome(spec.name, None, AgentFailure(kind=kind, message=msg), usage, turns, tool_log)

    for turn in range(1, spec.budget.max_turns + 1):
        request = ModelRequest(agent=spec.name, system=system, messages=messages, tools=specs, rules=rules, rule_weights=weights)
        try:
            response = chat(model, request, run_id=ctx.run_id)
        except ModelError as e:
            return fail("model_error", str(e), turn)
        usage = usage + response.usage
        if usage.total > spec.budget.max_tokens:
            return fail("token_budget", f"{spec.name} used {usage.total} tokens, budget {spec.budget.max_tokens}", turn)
        if not response.content:
            if repaired:
                return fail("invalid_output", f"{spec.name} returned an empty response twice", turn)
            repaired = True
            messages = messages + [Message.user(f"Your response was empty. Call {FINAL_TOOL} with your answer.")]
            continue
        messages = messages + [Message(role="assistant", content=list(response.content))]
        uses = response.tool_uses
        if not uses:
            if response.stop_reason == "refusal":
                return fail("refusal", f"{spec.name} refused: {response.text[:200]}", turn)
            if repaired:
                return fail("invalid_output", f"{spec.name} did not call {FINAL_TOOL} after a reminder", turn)
            repaired = True
            messages = messages + [Message.user(f"Call the {FINAL_TOOL} tool with your answer; plain text is not accepted.")]
            continue
        results: list[Any] = []
        final_output: dict[str, Any] | None = None
        final_error: str | None = None
        for use in uses:
            if use.name == FINAL_TOOL:
                try:
                    final_output = spec.output_type.model_validate(use.input).model_dump(mode="json")
                    results.append(ToolResultBlock(tool_use_id=use.id, content="accepted"))
                except ValidationError as e:
                    final_error = format_validation_error(e)
                    results.append(ToolResultBlock(tool_use_id=use.id, content=f"Invalid final answer: {final_error}. Fix it and call {FINAL_TOOL} again.", is_error=True))
                continue
            content, is_error = _execute_tool(tools.get(use.name), use.name, use.id, dict(use.input), ctx)
            tool_log.append({"agent": spec.name, "tool": use.name, "input": dict(use.input), "result": _maybe_json(content), "is_error": is_error})
            results.append(ToolResultBlock(tool_use_id=use.id, content=content, is_error=is_error))
        if final_output is not None:
            return AgentOutcome(spec.name, final_output, None, usage, turn, tool_log)
        if final_error is not None:
            if repaired:
                return fail("invalid_output", f"{spec.name} final answer invalid after one repair: {final_error}", turn)
            repaired = True
        messages = messages + [Message(role="user", content=results)]
    return fail("turn_budget", f"{spec.name} reached its {spec.budget.max_turns}-turn budget", spec.budget.max_turns)


def _execute_tool(tool: Tool | None, name: str, call_id: str, args: dict[str, Any], ctx: RunContext[Any]) -> tuple[str, bool]:
    """One traced tool call; every failure becomes an error result for the model."""
    with tr.tracer().start_as_current_span(
        f"execute_tool {name}",
        kind=trace.SpanKind.INTERNAL,
        attributes={tr.OP: "execute_tool", tr.TOOL_NAME: name, tr.TOOL_CALL_ID: call_id, tr.TOOL_TYPE: "function", **({tr.TOOL_DESCRIPTION: tool.description} if tool is not None else {}), "orchestra.run_id": ctx.run_id, "orchestra.agent": ctx.agent, "orchestra.tool.arguments": tr.json_attr(args)},
    ) as span:
        if tool is None:
            content, is_error = f"Unknown tool {name!r}.", True
        else:
            try:
                content, is_error = dumps(tool.call(args, ctx)), False
            except ValidationError as e:
                content, is_error = f"Invalid arguments for {name}: {format_validation_error(e)}", True
            except ToolError as e:
                content, is_error = f"{name} failed: {e}", True
            except Exception as e:  # a tool bug must not crash the run; the model sees it
                content, is_error = f"{name} raised {type(e).__name__}: {e}", True
        span.set_attribute("orchestra.tool.result", content if len(content) < 8192 else content[:8192])
        span.set_attributes(tr.tool_content_attributes(args, None if is_error else content))
        if is_error:
            span.set_attribute("error.type", "tool_error")
            span.set_status(trace.Status(trace.StatusCode.ERROR, content[:200]))
        return content, is_error


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


__all__ = ["Budget", "Specialist", "Lead", "AgentFailure", "AgentOutcome", "run_agent", "chat", "final_tool_spec", "system_blocks", "TextBlock"]
