"""Rubric: a versioned YAML file of weighted criteria, validated by pydantic.

`load_rubric` reports any problem as one line, `FILE:LINE: field: message`,
so an editor or CI log jumps straight to it: lines come from the YAML node
tree (yaml.compose), found by walking the pydantic error location.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from .criteria import Criterion, _Strict, rubric_error


class Rubric(_Strict):
    """What "done well" means for a stage; `max_attempts` bounds the workflow's retries."""

    id: str = Field(min_length=1)
    version: str | int
    description: str = ""
    pass_threshold: float = Field(ge=0, le=1)
    max_attempts: int = Field(1, ge=1)
    criteria: list[Criterion] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _no_float_version(cls, v: Any) -> Any:
        if isinstance(v, float):
            raise rubric_error(f"version {v!r} is a float; quote it, e.g. '{v}'")
        return v

    @field_validator("criteria")
    @classmethod
    def _unique_ids(cls, v: list[Criterion]) -> list[Criterion]:
        seen: set[str] = set()
        for i, c in enumerate(v):
            if c.id in seen:
                raise PydanticCustomError("rubric", "{msg}", {"msg": f"duplicate criterion id {c.id!r}", "at": f"{i}.id"})
            seen.add(c.id)
        if all(c.advisory for c in v):
            raise PydanticCustomError("rubric", "{msg}", {"msg": "every criterion is advisory (weight 0): nothing could pass", "at": "0.weight"})
        return v

    def criterion(self, cid: str) -> Criterion:
        for c in self.criteria:
            if c.id == cid:
                return c
        raise KeyError(cid)

    @property
    def hash(self) -> str:
        return rubric_hash(self)

    @property
    def canonical_version(self) -> str:
        """`id@version#hash12`: the declared version plus what the content actually was."""
        return f"{self.id}@{self.version}#{self.hash[:12]}"


def rubric_hash(rubric: Rubric) -> str:
    """SHA-256 of the canonical JSON form; equal content, equal hash, whatever the YAML layout."""
    canonical = json.dumps(rubric.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class RubricError(ValueError):
    """A rubric problem as one line, `FILE:LINE: field: message`."""

    def __init__(self, file: str, line: int, field: str, message: str):
        self.file, self.line, self.field = file, line, field
        self.message = " ".join(str(message).split())
        super().__init__(f"{file}:{line}: {field}: {self.message}")


def load_rubric(path: str | Path) -> Rubric:
    """Parse and validate a rubric file; RubricError on any problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RubricError(file, 1, "(file)", f"cannot read: {e}") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise RubricError(file, mark.line + 1 if mark else 1, "(yaml)", problem) from None
    if not isinstance(data, dict) or root is None:
        line = root.start_mark.line + 1 if root is not None else 1
        raise RubricError(file, line, "(root)", "a rubric must be a YAML mapping")
    dup = _duplicate_key(root)
    if dup is not None:
        raise RubricError(file, dup[0], dup[1], "duplicate key")
    try:
        return Rubric.model_validate(data)
    except ValidationError as e:
        located = [_locate(root, err) for err in e.errors()]
        line, field, msg = min(located, key=lambda x: x[0])
        raise RubricError(file, line, field, msg) from None


def _locate(root: yaml.Node, err: Any) -> tuple[int, str, str]:
    """Walk `err['loc']` down the node tree: the line of the deepest node reached, and its field name."""
    loc = list(err.get("loc", ()))
    ctx = err.get("ctx") or {}
    extra = ctx.get("at") if err.get("type") == "rubric" else None
    if extra:
        loc += [int(p) if p.isdigit() else p for p in str(extra).split(".")]
    if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        loc.append("kind")
    node, line, names = root, root.start_mark.line + 1, []
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if k.value == part), None)
            if hit is not None:
                line, node = hit[0].start_mark.line + 1, hit[1]
                names.append(str(part))
            elif i == len(loc) - 1 and isinstance(part, str) and not _is_tag(node, part):
                names.append(part)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
            names.append(f"[{part}]")
    field = ".".join(names).replace(".[", "[") or "(root)"
    return line, field, str(err.get("msg", "invalid"))


def _is_tag(node: yaml.MappingNode, part: str) -> bool:
    """Pydantic puts a discriminated union's tag (`deterministic`, `model`) in the location."""
    return any(k.value == "kind" and getattr(v, "value", None) == part for k, v in node.value)


def _duplicate_key(node: yaml.Node, prefix: str = "") -> tuple[int, str] | None:
    """PyYAML silently keeps the last of two equal keys; a rubric treats that as a mistake."""
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for k, v in node.value:
            name = f"{prefix}.{k.value}" if prefix else str(k.value)
            if k.value in seen:
                return k.start_mark.line + 1, name
            seen.add(k.value)
            found = _duplicate_key(v, name)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            found = _duplicate_key(v, f"{prefix}[{i}]")
            if found:
                return found
    return None
