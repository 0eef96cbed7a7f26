"""Structured playbook rules: conditions over a specialist's features.

A *feature* is a dotted key into what a specialist saw and decided, flattened
to scalars: `input.*` (the subtask the lead handed it), `tool.<name>.*` (the
last result of each tool it called) and `output.*` (its typed result). Dreaming
induces rules over these keys; offline policies obey them; nothing here knows
any domain.

A rule reads "when every `when` condition holds, `require` must hold". A condition
with `per` compares with a multiple of another feature in the same unit
(`output.altimeter_rejection_m >= 1.2 * input.site.relief_m`), not a constant.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, model_validator

Op = Literal["<=", "<", ">=", ">", "==", "!=", "in", "not_in"]
Scalar = float | int | str | bool | None


class Condition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    op: Op
    value: Scalar | list[Scalar]
    per: str | None = None
    """When set, `value` multiplies this feature: the condition compares two quantities of one unit."""

    @model_validator(mode="after")
    def _per_is_numeric(self) -> "Condition":
        if self.per is not None and (self.op not in ("<=", "<", ">=", ">") or isinstance(self.value, (bool, str, list)) or self.value is None):
            raise ValueError("a condition with `per` needs a numeric value and one of <=, <, >=, >")
        return self

    def bound(self, features: Mapping[str, Any]) -> Any:
        """What the feature is compared with here: `value`, or `value` times the `per` feature (None if absent)."""
        if self.per is None:
            return self.value
        ref = features.get(self.per)
        if not is_real(ref):
            return None
        return float(self.value) * float(ref)  # type: ignore[arg-type]

    def holds(self, features: Mapping[str, Any]) -> bool | None:
        """True/False, or None when the feature (or its `per` reference) is absent (rule does not apply)."""
        if self.field not in features:
            return None
        bound = self.bound(features)
        if bound is None:
            return None
        return compare(features[self.field], self.op, bound)

    def describe(self) -> str:
        v = self.value
        if isinstance(v, float):
            v = f"{v:.4g}"
        return f"{self.field} {self.op} {v}" + (f" * {self.per}" if self.per else "")


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    when: list[Condition] = []
    require: Condition

    def applies(self, features: Mapping[str, Any]) -> bool:
        return all(c.holds(features) is True for c in self.when)

    def satisfied(self, features: Mapping[str, Any]) -> bool:
        """A rule whose required feature is missing counts as satisfied."""
        if not self.applies(features):
            return True
        return self.require.holds(features) is not False

    def describe(self) -> str:
        req = self.require.describe()
        if not self.when:
            return f"require {req}"
        return "when " + " and ".join(c.describe() for c in self.when) + f", require {req}"


def is_real(v: Any) -> bool:
    """A finite int or float, and not a bool: a value a numeric bound can be computed from."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def compare(x: Any, op: str, v: Any) -> bool:
    try:
        if op == "in":
            return x in v
        if op == "not_in":
            return x not in v
        if op == "==":
            return _eq(x, v)
        if op == "!=":
            return not _eq(x, v)
        if x is None or isinstance(x, str) or isinstance(v, str):
            return False
        x, v = float(x), float(v)
        if math.isnan(x):
            return False
        return {"<=": x <= v, "<": x < v, ">=": x >= v, ">": x > v}[op]
    except (TypeError, ValueError, KeyError):
        return False


def _eq(x: Any, v: Any) -> bool:
    if isinstance(x, bool) or isinstance(v, bool):
        return x is v or x == v
    if isinstance(x, (int, float)) and isinstance(v, (int, float)):
        return abs(float(x) - float(v)) <= 1e-9 * max(1.0, abs(float(v)))
    return x == v


def flatten(obj: Any, prefix: str = "") -> dict[str, Scalar]:
    """Flatten nested dicts/pydantic models to dotted scalar keys; lists are skipped."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    out: dict[str, Scalar] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, (Mapping, BaseModel)):
                out.update(flatten(v, key))
            elif isinstance(v, (str, bool, int, float)) or v is None:
                out[key] = v
    elif prefix and (isinstance(obj, (str, bool, int, float)) or obj is None):
        out[prefix] = obj
    return out


def violations(rules: Iterable[Rule], features: Mapping[str, Any]) -> list[Rule]:
    return [r for r in rules if not r.satisfied(features)]


def choose(
    candidates: Sequence[Mapping[str, Any]],
    rules: Sequence[Rule],
    key: Any = None,
    weights: Sequence[float] | None = None,
) -> int:
    """Index of the best candidate that breaks no rule, else the one whose broken rules risk least (ties by `key`, higher first).

    How a policy obeys a playbook when its decision is a choice among options. With `weights` (each rule's failure
    rate among those who broke it), a candidate's risk is the chance that one of its broken rules fails it, the
    rules taken as independent: a well-evidenced rule is not traded for two weak ones. Without them (or for a rule
    with no recorded evidence), each broken rule counts as much as one that failed 63% of those who broke it.
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    cost = [-math.log(1.0 - min(w, 0.99)) if w > 0 else 1.0 for w in weights] if weights and len(weights) == len(rules) else [1.0] * len(rules)
    scored = []
    for i, feats in enumerate(candidates):
        broken = [j for j, r in enumerate(rules) if not r.satisfied(feats)]
        k = key(feats) if key else 0.0
        scored.append((bool(broken), round(sum(cost[j] for j in broken), 9), -k, i))
    return min(scored)[3]


def constrain(rules: Iterable[Rule], features: Mapping[str, Any], field: str, value: Any) -> Any:
    """Move a decision `value` for `field` just far enough to satisfy every applicable rule.

    How a policy obeys a playbook when its decision is a number or a category.
    """
    feats = dict(features)
    feats[field] = value
    for r in rules:
        if r.require.field != field or not r.applies(feats):
            continue
        c, cur = r.require, feats[field]
        v = c.bound(feats)
        if v is None or compare(cur, c.op, v):
            continue
        if c.op in (">=", ">") and isinstance(v, (int, float)) and not isinstance(v, bool):
            cur = v if c.op == ">=" else _nudge(v, +1, cur)
        elif c.op in ("<=", "<") and isinstance(v, (int, float)) and not isinstance(v, bool):
            cur = v if c.op == "<=" else _nudge(v, -1, cur)
        elif c.op == "==":
            cur = v
        elif c.op == "in" and isinstance(v, list) and v:
            cur = v[0]
        feats[field] = cur
    return feats[field]


def _nudge(v: float, sign: int, like: Any) -> float | int:
    if isinstance(like, int) and not isinstance(like, bool):
        return int(v) + sign
    return v + sign * max(1e-6, abs(v) * 1e-6)
