"""Playbooks: a specialist's versioned list of lessons, rendered into its system prompt."""

from __future__ import annotations

import html
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .rules import Rule


class Lesson(BaseModel):
    """One learned lesson: readable text, the rule policies obey, and where it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    specialist: str
    text: str
    rule: Rule | None = None
    dream_id: str = ""
    evidence: list[str] = Field(default_factory=list, description="trace ids behind it")
    support: int = 0
    precision: float = 0.0
    lift: float = 0.0
    p_value: float = 1.0
    helpful: int = 0
    harmful: int = 0
    moved_from: float | None = Field(default=None, description="the tested limit, when validation moved the rule's limit in from it")
    near_miss: bool = Field(default=False, description="learned from near misses (an advisory criterion), not from failures")


class Playbook(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    specialist: str
    version: int = 0
    lessons: list[Lesson] = Field(default_factory=list)

    @property
    def rules(self) -> list[Rule]:
        return [lesson.rule for lesson in self.lessons if lesson.rule is not None]

    @property
    def lesson_ids(self) -> list[str]:
        return [lesson.id for lesson in self.lessons]

    def render(self) -> str:
        """Text for the system prompt; lesson text is escaped so it cannot close its section."""
        if not self.lessons:
            return f"<playbook specialist=\"{self.specialist}\" version=\"{self.version}\">\n(no lessons yet)\n</playbook>"
        lines = [f"<playbook specialist=\"{self.specialist}\" version=\"{self.version}\">"]
        for lesson in self.lessons:
            text = html.escape(" ".join(lesson.text.split()), quote=True)
            lines.append(f"- [{html.escape(lesson.id)}] {text}")
        lines.append("</playbook>")
        return "\n".join(lines)

    def rules_payload(self) -> list[dict[str, Any]]:
        return [r.model_dump(mode="json") for r in self.rules]

    def rule_weights(self) -> list[float]:
        """For each rule of `rules_payload`, how often breaking it went with failure (its lesson's precision)."""
        return [float(lesson.precision) for lesson in self.lessons if lesson.rule is not None]


def empty_playbook(specialist: str) -> Playbook:
    return Playbook(specialist=specialist, version=0, lessons=[])
