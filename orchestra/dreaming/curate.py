"""Curation: apply lesson deltas to a playbook, keep it consistent, small and honest.

Order of work in `curate`: apply ADD / UPDATE / REMOVE by lesson id; then
drop lessons whose track record says they hurt; then, newest first, drop any
older lesson that duplicates (same required field and operator, same `when`
fields) or contradicts (same required field, the two requirements cannot both
hold, and their `when` parts can hold together) a newer one — the latest
evidence wins; then drop the weakest until the lesson count and the rendered
size fit. Every implicit removal comes back as a REMOVE delta with its reason.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from ..playbook import Lesson, Playbook
from ..rules import Condition, Rule, compare
from .episodes import Episode
from .stats import binom_sf

CHARS_PER_TOKEN = 4


class Delta(BaseModel):
    """One change to a playbook. UPDATE replaces `lesson_id` with `lesson` (which may have a new id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal["ADD", "UPDATE", "REMOVE"]
    lesson: Lesson | None = None
    lesson_id: str = ""
    reason: str = ""

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("lesson_id") and data.get("op") == "ADD":
            lesson = data.get("lesson")
            lid = lesson.id if isinstance(lesson, Lesson) else (lesson or {}).get("id", "")
            data = {**data, "lesson_id": lid}
        return data

    @model_validator(mode="after")
    def _check(self) -> "Delta":
        if self.op in ("ADD", "UPDATE") and self.lesson is None:
            raise ValueError(f"{self.op} needs a lesson")
        if not self.lesson_id:
            raise ValueError(f"{self.op} needs a lesson_id")
        return self


def lesson_id(specialist: str, rule: Rule) -> str:
    """Deterministic id: the same rule for the same specialist is the same lesson."""
    digest = hashlib.sha256(f"{specialist}\n{rule.model_dump_json()}".encode()).hexdigest()
    return f"L{digest[:12]}"


def rendered_tokens(playbook: Playbook) -> int:
    return math.ceil(len(playbook.render()) / CHARS_PER_TOKEN)


def curate(
    playbook: Playbook,
    deltas: Iterable[Delta],
    *,
    max_lessons: int = 12,
    max_tokens: int = 1500,
    min_n: int = 5,
    base_rate: float | None = None,
) -> tuple[Playbook, list[Delta]]:
    """Apply `deltas` and hold the budget; returns the new playbook (same version) and what changed."""
    lessons: list[Lesson] = list(playbook.lessons)
    applied: list[Delta] = []

    def find(lid: str) -> int | None:
        return next((i for i, l in enumerate(lessons) if l.id == lid), None)

    for d in deltas:
        if d.lesson is not None and d.lesson.specialist != playbook.specialist:
            continue
        i = find(d.lesson_id)
        if d.op == "REMOVE":
            if i is not None:
                lessons.pop(i)
                applied.append(d)
            continue
        new = d.lesson
        assert new is not None
        if i is not None:
            old = lessons.pop(i)
            if old.rule == new.rule:  # same rule: keep its track record
                new = new.model_copy(update={"helpful": old.helpful + new.helpful, "harmful": old.harmful + new.harmful})
        j = find(new.id)
        if j is not None:  # an ADD of a lesson already present refreshes it
            old = lessons.pop(j)
            new = new.model_copy(update={"helpful": max(old.helpful, new.helpful), "harmful": max(old.harmful, new.harmful)})
        lessons.append(new)  # newest last
        applied.append(d)

    # harm first: a lesson its followers failed under must not evict, as "newer", an older one it contradicts
    pb = playbook.model_copy(update={"lessons": lessons})
    for lid in harmful_lessons(pb, min_n, base_rate=base_rate):
        lesson = next(l for l in lessons if l.id == lid)
        lessons.remove(lesson)
        applied.append(Delta(op="REMOVE", lesson_id=lid, reason=f"harmful: {lesson.harmful} of {lesson.helpful + lesson.harmful} runs failed"))

    kept: list[Lesson] = []
    for lesson in reversed(lessons):  # newest first
        clash = next((k for k in kept if _duplicate(lesson, k) or _contradicts(lesson, k)), None)
        if clash is None:
            kept.append(lesson)
        else:
            kind = "duplicate of" if _duplicate(lesson, clash) else "contradicted by"
            applied.append(Delta(op="REMOVE", lesson_id=lesson.id, reason=f"{kind} newer {clash.id}"))
    lessons = kept[::-1]

    while lessons:
        pb = playbook.model_copy(update={"lessons": lessons})
        if len(lessons) <= max_lessons and rendered_tokens(pb) <= max_tokens:
            break
        weakest = min(range(len(lessons)), key=lambda i: (_strength(lessons[i]), i))
        gone = lessons.pop(weakest)
        applied.append(Delta(op="REMOVE", lesson_id=gone.id, reason="over budget: weakest lesson"))
    return playbook.model_copy(update={"lessons": lessons}), applied


def update_counts(playbook: Playbook, episodes: Iterable[Episode]) -> Playbook:
    """Credit each lesson with the later runs that were given it and followed it where it applied.

    Passed -> helpful, failed -> harmful. Episodes where the rule applied but was
    broken say nothing about the lesson and are skipped. Count each run once:
    feed only runs not counted before.
    """
    eps = [e for e in episodes if e.specialist == playbook.specialist]
    out = []
    for lesson in playbook.lessons:
        helpful = harmful = 0
        if lesson.rule is not None:
            for e in eps:
                if lesson.id in e.lesson_ids and lesson.rule.applies(e.features) and lesson.rule.satisfied(e.features):
                    helpful += e.passed
                    harmful += not e.passed
        out.append(lesson.model_copy(update={"helpful": lesson.helpful + helpful, "harmful": lesson.harmful + harmful}))
    return playbook.model_copy(update={"lessons": out})


def harmful_lessons(playbook: Playbook, min_n: int = 5, *, base_rate: float | None = None, alpha: float = 0.05) -> list[str]:
    """Ids of lessons whose followers failed significantly more often than the base rate.

    One-sided exact binomial test per lesson, Bonferroni over the playbook's
    lessons. `base_rate` is the specialist's failure rate; by default the pooled
    rate over every counted application in the playbook.
    """
    counted = [l for l in playbook.lessons if l.helpful + l.harmful > 0]
    if base_rate is None:
        n = sum(l.helpful + l.harmful for l in counted)
        base_rate = sum(l.harmful for l in counted) / n if n else 0.0
    flagged = []
    for lesson in counted:
        n = lesson.helpful + lesson.harmful
        if n < min_n or lesson.harmful / n <= base_rate:
            continue
        if binom_sf(lesson.harmful, n, base_rate) <= alpha / max(len(playbook.lessons), 1):
            flagged.append(lesson.id)
    return flagged


def loosens(rule: Rule, playbook: Playbook, near_miss: bool = False) -> bool:
    """Would this rule replace a limit the validation scenarios moved in with a looser one of the same shape?

    A moved-in limit was kept because the team did better with it than at the tested edge; a later
    induction finds that edge again from the same kind of runs, so it must not undo the gate's choice.
    """
    for lesson in playbook.lessons:
        if lesson.moved_from is None or lesson.rule is None or lesson.near_miss != near_miss or not same_shape(rule, lesson.rule):
            continue
        new, kept, op = rule.require.value, lesson.rule.require.value, rule.require.op
        if isinstance(new, (int, float)) and isinstance(kept, (int, float)) and ((op in ("<=", "<") and new > kept) or (op in (">=", ">") and new < kept)):
            return True
    return False


def _strength(lesson: Lesson) -> float:
    """Evidence x track record: lift * support, scaled by the smoothed helpful rate."""
    record = (lesson.helpful + 1) / (lesson.helpful + lesson.harmful + 2)
    return max(lesson.lift, 0.0) * max(lesson.support, 1) * record


def _whens(rule: Rule) -> frozenset[str]:
    return frozenset(c.field for c in rule.when)


def _duplicate(a: Lesson, b: Lesson) -> bool:
    if a.rule is None or b.rule is None:
        return a.rule is None and b.rule is None and " ".join(a.text.split()) == " ".join(b.text.split())
    # a limit learned from near misses sits inside the one failures placed: both stay, and in a conflict the
    # team breaks the near-miss one first (its weight counts failures, see steps.verdict_risk)
    return a.near_miss == b.near_miss and same_shape(a.rule, b.rule)


def same_shape(ra: Rule, rb: Rule) -> bool:
    """The same requirement (feature, operator, reference) under conditions on the same features: one may replace the other."""
    return ra.require.field == rb.require.field and ra.require.op == rb.require.op and ra.require.per == rb.require.per and _whens(ra) == _whens(rb)


def _contradicts(a: Lesson, b: Lesson) -> bool:
    if a.rule is None or b.rule is None or a.rule.require.field != b.rule.require.field:
        return False
    if a.rule.require.per != b.rule.require.per:
        return False  # bounds in different references: no value-level clash to decide here
    if _compatible([a.rule.require, b.rule.require]):
        return False
    return _compatible(list(a.rule.when) + list(b.rule.when))  # only a clash if both can apply at once


def _compatible(conds: list[Condition]) -> bool:
    """Can all conditions hold together? Checked per field on the values that matter."""
    by_field: dict[str, list[Condition]] = {}
    for c in conds:
        if c.per is not None:
            continue  # relative to another feature: assumed satisfiable
        by_field.setdefault(c.field, []).append(c)
    return all(_satisfiable(cs) for cs in by_field.values())


def _satisfiable(cs: list[Condition]) -> bool:
    points: list = ["\x00other", True, False]
    for c in cs:
        vals = c.value if isinstance(c.value, list) else [c.value]
        for v in vals:
            points.append(v)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                step = max(abs(float(v)) * 1e-9, 1e-12)
                points += [float(v) - step, float(v) + step]
    nums = sorted(float(p) for p in points if isinstance(p, (int, float)) and not isinstance(p, bool))
    points += [(x + y) / 2 for x, y in zip(nums, nums[1:])]
    return any(all(compare(p, c.op, c.value) for c in cs) for p in points)
