"""PolicyModel: a deterministic Python function answering through the model protocol.

A policy sees what the agent's model would see (its task, its own tool
exchanges, later notes such as grader feedback, and its playbook as structured
rules) and answers with tool calls or a final typed output. This is how every
graph runs offline, in tests and in CI, with the full agent loop.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from pydantic import BaseModel

from ..rules import Rule
from .base import (
    Message,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)

FINAL_TOOL = "final_result"


@dataclass(frozen=True)
class Call:
    """A tool call a policy wants made."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Final:
    """The policy's typed final answer."""

    output: Any


@dataclass
class ToolExchange:
    name: str
    input: dict[str, Any]
    result: Any
    is_error: bool


@dataclass
class PolicyContext:
    agent: str
    task: Any
    exchanges: list[ToolExchange]
    notes: list[Any]
    rules: list[Rule]
    tools: list[str]
    request: ModelRequest
    recent: list[ToolExchange] = field(default_factory=list)
    """Exchanges since the latest note (e.g. since grader feedback or a new stage)."""
    rule_weights: list[float] = field(default_factory=list)
    """For each rule, how often breaking it went with failure: what `choose` trades off when no option satisfies them all."""

    def last(self, tool_name: str) -> Any:
        """The last successful result of `tool_name`, or None."""
        for ex in reversed(self.exchanges):
            if ex.name == tool_name and not ex.is_error:
                return ex.result
        return None

    def results(self, tool_name: str) -> list[Any]:
        return [ex.result for ex in self.exchanges if ex.name == tool_name and not ex.is_error]

    def called(self, tool_name: str) -> bool:
        return any(ex.name == tool_name for ex in self.exchanges)

    @property
    def errors(self) -> list[ToolExchange]:
        return [ex for ex in self.exchanges if ex.is_error]


PolicyAnswer = Union[Call, list[Call], Final, BaseModel, dict, str]
Policy = Callable[[PolicyContext], PolicyAnswer]


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def context_from_request(request: ModelRequest) -> PolicyContext:
    """Rebuild a policy's view from the raw request, exactly what a real model would get."""
    task: Any = None
    notes: list[Any] = []
    pending: dict[str, ToolUseBlock] = {}
    exchanges: list[ToolExchange] = []
    recent: list[ToolExchange] = []
    for msg in request.messages:
        for block in msg.content:
            if isinstance(block, ToolUseBlock):
                pending[block.id] = block
            elif isinstance(block, ToolResultBlock):
                use = pending.pop(block.tool_use_id, None)
                if use is not None:
                    ex = ToolExchange(use.name, dict(use.input), _parse(block.content), block.is_error)
                    exchanges.append(ex)
                    recent.append(ex)
            elif isinstance(block, TextBlock) and msg.role == "user":
                if task is None:
                    task = _parse(block.text)
                else:
                    notes.append(_parse(block.text))
                    recent = []
    return PolicyContext(
        agent=request.agent,
        task=task,
        exchanges=exchanges,
        notes=notes,
        rules=[Rule.model_validate(r) for r in request.rules],
        tools=[t.name for t in request.tools],
        request=request,
        recent=recent,
        rule_weights=list(request.rule_weights) if len(request.rule_weights) == len(request.rules) else [],
    )


class PolicyModel:
    """Drive the agent protocol from a plain function; deterministic and offline."""

    provider = "orchestra.policy"

    def __init__(self, policy: Policy, name: str | None = None):
        self.policy = policy
        self.name = name or f"policy:{getattr(policy, '__name__', 'anonymous')}"
        self._ids = itertools.count(1)

    def complete(self, request: ModelRequest) -> ModelResponse:
        ctx = context_from_request(request)
        answer = self.policy(ctx)
        blocks: list[Any]
        if isinstance(answer, Final):
            answer = answer.output
        if isinstance(answer, Call):
            answer = [answer]
        if isinstance(answer, list):
            blocks = [ToolUseBlock(id=self._next_id(), name=c.name, input=dict(c.input)) for c in answer]
            stop = "tool_use"
        elif isinstance(answer, (BaseModel, dict)):
            out = answer.model_dump(mode="json") if isinstance(answer, BaseModel) else answer
            blocks = [ToolUseBlock(id=self._next_id(), name=FINAL_TOOL, input=out)]
            stop = "tool_use"
        else:
            blocks = [TextBlock(text=str(answer))]
            stop = "end_turn"
        usage = Usage(input_tokens=_estimate_tokens(request), output_tokens=_estimate_blocks(blocks))
        return ModelResponse(content=blocks, stop_reason=stop, usage=usage, model=self.name)

    def _next_id(self) -> str:
        return f"toolu_policy_{next(self._ids):06d}"


def _estimate_tokens(request: ModelRequest) -> int:
    """Rough 4-chars-per-token count, so budgets and cost reports work offline too."""
    n = sum(len(s.text) for s in request.system)
    for m in request.messages:
        n += _chars(m)
    n += sum(len(json.dumps(t.input_schema)) for t in request.tools)
    return max(1, n // 4)


def _chars(m: Message) -> int:
    n = 0
    for b in m.content:
        if isinstance(b, TextBlock):
            n += len(b.text)
        elif isinstance(b, ToolUseBlock):
            n += len(json.dumps(b.input)) + len(b.name)
        else:
            n += len(b.content)
    return n


def _estimate_blocks(blocks: list[Any]) -> int:
    return max(1, sum(_chars(Message(role="assistant", content=[b])) for b in blocks) // 4)
