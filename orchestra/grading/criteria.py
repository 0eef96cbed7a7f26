"""Criteria: deterministic checks on evidence values, and questions for a judge model.

A deterministic criterion reads one value at `path` and compares it with `op`:

- full credit (score 1, passes) when `value op full` holds;
- for ordering operators (`<=`, `<`, `>=`, `>`) an optional `partial` threshold,
  further on the lenient side of `full`, opens a partial-credit band: the score
  falls linearly from 1 at `full` to 0.5 at `partial` (inclusive) and is 0
  beyond. With a strict operator a value exactly at `full` scores 1 by the
  interpolation but does not pass, because passing means full credit;
- for `in`, `full` is the list of fully credited values and an optional
  `partial` list earns 0.5;
- `==`, `!=`, `is_true`, `is_false` are all-or-nothing.

A value the operator cannot judge (null, NaN, a string for a numeric
threshold, a non-boolean for `is_true`) raises `Ungradeable`: grading failed,
so the criterion goes unscored rather than failed.

A model criterion passes when the judge's score is at least `scale.pass_at`.

A criterion of weight 0 is *advisory*: graded and recorded like any other (a near
miss, such as a touchdown slope past a safety margin but under the limit), but left
out of the score and the pass, so it can never be a gate. Dreaming reads advisory
failures as labels: near misses are more frequent than the failures they warn of.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..rules import compare
from .evidence import parse_path

Op = Literal["<=", "<", ">=", ">", "==", "!=", "in", "is_true", "is_false"]
Scalar = Union[bool, int, float, str, None]
ORDERING: frozenset[str] = frozenset({"<=", "<", ">=", ">"})
ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]*$"


def rubric_error(msg: str, field: str | None = None) -> PydanticCustomError:
    """A validation error whose message is `msg` verbatim; `field` narrows its location."""
    return PydanticCustomError("rubric", "{msg}", {"msg": msg, "at": field})


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Scale(_Strict):
    """The judge's score range; `pass_at` and above means the criterion is met."""

    min: float
    max: float
    pass_at: float

    @model_validator(mode="after")
    def _ordered(self) -> "Scale":
        if not self.min < self.max:
            raise rubric_error(f"min ({self.min:g}) must be below max ({self.max:g})", "max")
        if not self.min <= self.pass_at <= self.max:
            raise rubric_error(f"pass_at ({self.pass_at:g}) must lie within [{self.min:g}, {self.max:g}]", "pass_at")
        return self

    def normalize(self, score: float) -> float:
        return (score - self.min) / (self.max - self.min)


class _Criterion(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    description: str
    weight: float = Field(1.0, ge=0)
    gate: bool = False

    @model_validator(mode="after")
    def _advisory_is_no_gate(self) -> "_Criterion":
        # weight 0 makes a criterion advisory: graded and recorded (a near miss), never part of the score or the pass
        if self.advisory and self.gate:
            raise rubric_error("an advisory criterion (weight 0) cannot be a gate", "gate")
        return self

    @property
    def advisory(self) -> bool:
        return self.weight == 0


def _check_path(path: str) -> str:
    try:
        parse_path(path)
    except ValueError as e:
        raise rubric_error(str(e)) from None
    return path


class DeterministicCriterion(_Criterion):
    kind: Literal["deterministic"] = "deterministic"
    path: str
    op: Op
    full: Scalar | list[Scalar] = None
    partial: Scalar | list[Scalar] = None
    units: str = ""

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _check_path(v)

    @model_validator(mode="after")
    def _thresholds(self) -> "DeterministicCriterion":
        op, full, partial = self.op, self.full, self.partial
        if op in ORDERING:
            if not _is_number(full):
                raise rubric_error(f"op {op!r} needs a numeric `full` threshold", "full")
            if partial is not None:
                if not _is_number(partial):
                    raise rubric_error("`partial` must be a number", "partial")
                lenient = partial > full if op in ("<=", "<") else partial < full  # type: ignore[operator]
                if not lenient:
                    side = "above" if op in ("<=", "<") else "below"
                    raise rubric_error(f"`partial` must be {side} `full` for op {op!r}", "partial")
        elif op == "in":
            if not isinstance(full, list) or not full:
                raise rubric_error("op 'in' needs `full` as a non-empty list", "full")
            if partial is not None and not isinstance(partial, list):
                raise rubric_error("op 'in' needs `partial` as a list", "partial")
        elif op in ("==", "!="):
            if full is None or isinstance(full, list):
                raise rubric_error(f"op {op!r} needs a scalar `full` value", "full")
            if partial is not None:
                raise rubric_error(f"op {op!r} has no partial credit", "partial")
        else:
            for name in ("full", "partial"):
                if getattr(self, name) is not None:
                    raise rubric_error(f"op {op!r} takes no `{name}`", name)
        return self

    def target(self) -> str:
        """The full-credit condition in words, e.g. `<= 2 m/s`."""
        if self.op in ("is_true", "is_false"):
            return self.op.replace("_", " ")
        unit = f" {self.units}" if self.units and self.op in ORDERING | {"==", "!="} else ""
        return f"{self.op} {_fmt(self.full)}{unit}"


class ModelCriterion(_Criterion):
    kind: Literal["model"] = "model"
    question: str = Field(min_length=1)
    scale: Scale
    evidence: list[str] = Field(min_length=1)

    @field_validator("evidence")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        for i, p in enumerate(v):
            try:
                parse_path(p)
            except ValueError as e:
                raise rubric_error(str(e), str(i)) from None
            if p in v[:i]:
                raise rubric_error(f"duplicate evidence path {p!r}", str(i))
        return v

    def target(self) -> str:
        return f"judge score >= {self.scale.pass_at:g} on {self.scale.min:g}..{self.scale.max:g}"


Criterion = Annotated[Union[DeterministicCriterion, ModelCriterion], Field(discriminator="kind")]


class Ungradeable(Exception):
    """The value cannot be judged by this criterion; the criterion goes unscored."""


def score_deterministic(c: DeterministicCriterion, value: Any) -> tuple[float, bool, str]:
    """`(score, passed, rationale)` for one measured value; Ungradeable when it can't be judged."""
    shown = f"{_fmt(value)}{' ' + c.units if c.units and _is_number(value) else ''}"
    if value is None:
        raise Ungradeable(f"{c.path} is null")
    if c.op in ("is_true", "is_false"):
        if not isinstance(value, bool):
            raise Ungradeable(f"{c.path} is {_fmt(value)}, not a boolean")
        ok = value is (c.op == "is_true")
        return (1.0 if ok else 0.0), ok, f"measured {shown}; expected {c.target()}"
    if c.op in ("==", "!="):
        ok = compare(value, c.op, c.full)
        return (1.0 if ok else 0.0), ok, f"measured {shown}; expected {c.target()}"
    if c.op == "in":
        if any(compare(value, "==", v) for v in c.full or []):  # type: ignore[union-attr]
            return 1.0, True, f"measured {shown}; full credit for {_fmt(c.full)}"
        if isinstance(c.partial, list) and any(compare(value, "==", v) for v in c.partial):
            return 0.5, False, f"measured {shown}; partial credit for {_fmt(c.partial)}, full credit for {_fmt(c.full)}"
        return 0.0, False, f"measured {shown}; expected one of {_fmt(c.full)}"
    if not _is_number(value) or math.isnan(float(value)):
        raise Ungradeable(f"{c.path} is {_fmt(value)}, not a number")
    x, full = float(value), float(c.full)  # type: ignore[arg-type]
    if compare(x, c.op, full):
        return 1.0, True, f"measured {shown}; full credit at {c.target()}"
    if c.partial is not None:
        p = float(c.partial)  # type: ignore[arg-type]
        in_band = x <= p if c.op in ("<=", "<") else x >= p
        if in_band:
            unit = f" {c.units}" if c.units else ""
            s = 1.0 - 0.5 * abs(x - full) / abs(p - full)
            return s, False, f"measured {shown}; partial credit {s:.2f} (full at {c.target()}, 0.5 at {_fmt(p)}{unit})"
        return 0.0, False, f"measured {shown}; beyond partial threshold {_fmt(p)} (full at {c.target()})"
    return 0.0, False, f"measured {shown}; expected {c.target()}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, str):
        return repr(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)
