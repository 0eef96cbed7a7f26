"""`@tool`: a typed Python function becomes a JSON-schema tool an agent can call."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

D = TypeVar("D")


@dataclass
class RunContext(Generic[D]):
    """What a tool may know besides its arguments: the run's domain dependencies."""

    deps: D
    run_id: str = ""
    agent: str = ""
    state: dict[str, Any] = field(default_factory=dict)


class ToolError(Exception):
    """Raised by a tool to tell the model something went wrong (sent back as an error result)."""


class Tool:
    """A callable tool: name, description, pydantic input model, JSON schema."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, description: str | None = None):
        self.fn = fn
        self.name = name or fn.__name__
        doc = inspect.getdoc(fn) or ""
        self.description = description or doc or self.name
        hints = get_type_hints(fn, include_extras=True)  # keep Annotated[..., Field(...)] constraints
        params = list(inspect.signature(fn).parameters.values())
        self.takes_ctx = bool(params) and _is_ctx(hints.get(params[0].name))
        if self.takes_ctx:
            params = params[1:]
        fields: dict[str, Any] = {}
        for p in params:
            ann = hints.get(p.name, Any)
            default = p.default if p.default is not inspect.Parameter.empty else ...
            fields[p.name] = (ann, default)
        self.input_model: type[BaseModel] = create_model(  # type: ignore[call-overload]
            f"{self.name}_args", __config__=ConfigDict(extra="forbid"), **fields
        )
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        self.input_schema: dict[str, Any] = schema

    def validate(self, args: dict[str, Any]) -> BaseModel:
        return self.input_model.model_validate(args)

    def call(self, args: dict[str, Any], ctx: RunContext[Any] | None = None) -> Any:
        """Validate then call; raises ValidationError / ToolError for the loop to report."""
        parsed = self.validate(args)
        kwargs = {k: getattr(parsed, k) for k in self.input_model.model_fields}
        if self.takes_ctx:
            return self.fn(ctx, **kwargs)
        return self.fn(**kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def _is_ctx(ann: Any) -> bool:
    origin = getattr(ann, "__origin__", None)
    return ann is RunContext or origin is RunContext


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None) -> Any:
    """Decorator: `@tool` or `@tool(name=..., description=...)`."""
    if fn is None:
        return lambda f: Tool(f, name=name, description=description)
    return Tool(fn, name=name, description=description)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"), sort_keys=True, default=str)


def format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {e.get('msg')}")
    return "; ".join(parts)
