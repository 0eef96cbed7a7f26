"""The model protocol: a Messages-API-shaped request in, a response out.

Every model (Claude, offline policy, replay) speaks this, so the agent loop,
tracing and grading never care which one answers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol, Union, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TextBlock(_Frozen):
    type: Literal["text"] = "text"
    text: str


class ToolUseBlock(_Frozen):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Frozen):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str
    is_error: bool = False


Block = Annotated[Union[TextBlock, ToolUseBlock, ToolResultBlock], Field(discriminator="type")]


class Message(_Frozen):
    role: Literal["user", "assistant"]
    content: list[Block]

    @classmethod
    def user(cls, text: str) -> "Message":
        return cls(role="user", content=[TextBlock(text=text)])


class SystemBlock(_Frozen):
    """A system prompt part; `cache` marks the end of a cacheable prefix."""

    text: str
    cache: bool = False


class ToolSpec(_Frozen):
    name: str
    description: str
    input_schema: dict[str, Any]


class Usage(_Frozen):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
        )

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


class ModelRequest(_Frozen):
    """What an agent sends: system blocks, its own messages, its tools.

    `rules` carries the agent's playbook as structured rules (dicts of
    `orchestra.rules.Rule`) for offline policies, and `rule_weights` what
    breaking each one has cost (its lesson's failure rate among violators);
    real models see only the rendered playbook text inside `system`, whose
    lessons state the same evidence.
    """

    agent: str
    system: list[SystemBlock]
    messages: list[Message]
    tools: list[ToolSpec] = []
    max_tokens: int = 4096
    rules: list[dict[str, Any]] = []
    rule_weights: list[float] = []


class ModelResponse(_Frozen):
    content: list[Block]
    stop_reason: Literal["end_turn", "tool_use", "max_tokens", "refusal", "stop_sequence", "pause_turn"] = "end_turn"
    usage: Usage = Usage()
    model: str = ""

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


class ModelError(RuntimeError):
    """A model call that failed for good (after retries); the run records why."""


@runtime_checkable
class Model(Protocol):
    """Anything that answers a ModelRequest. `provider` feeds `gen_ai.provider.name`."""

    name: str
    provider: str

    def complete(self, request: ModelRequest) -> ModelResponse: ...


_REAL_MODEL_REQUESTS_ALLOWED = True


def allow_model_requests(allowed: bool) -> None:
    """Global switch: tests turn real (networked) model requests off entirely."""
    global _REAL_MODEL_REQUESTS_ALLOWED
    _REAL_MODEL_REQUESTS_ALLOWED = allowed


def model_requests_allowed() -> bool:
    return _REAL_MODEL_REQUESTS_ALLOWED
