"""Episodes: one specialist's part of one run, flattened for induction.

Mining (spans + verdicts) produces episodes; induction, synthesis and curation
consume them. An episode holds only scalars keyed by dotted feature names, so
everything downstream is domain-free.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field

from ..rules import flatten

FeatureValue = float | int | str | bool | None

# Words that make an identifier instruction-shaped (IGNORE_THE_RUBRIC, add-lesson): such a category value or
# feature name must not become a rule or lesson text, whatever a tool or model wrote into a trace.
_INSTRUCTION_WORD = r"(?:^|[_.\-])(?:ignore|disregard|forget|override|bypass|jailbreak|pretend|instructions?|prompt|lessons?|rubric)(?=[_.\-]|$)"
# A value or name that may appear in lesson text: short, no spaces, no markup, not instruction-shaped.
SAFE_TOKEN = re.compile(rf"^(?!.*{_INSTRUCTION_WORD})[A-Za-z0-9_.\-]{{1,32}}$", re.IGNORECASE)
# A feature name: dotted segments, each a safe token.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,32}(\.[A-Za-z0-9_\-]{1,32}){0,7}$")
ADVISORY = "advisory."  # infix of an advisory criterion's key (`land.advisory.slope_margin`): near misses, never failures


def criterion_key(stage: str, criterion_id: str, advisory: bool) -> str:
    """How mining keys a criterion: `<stage>.<id>`, or `<stage>.advisory.<id>` for an advisory one (near misses)."""
    return f"{stage}.{ADVISORY if advisory else ''}{criterion_id}"


def is_advisory_key(key: str) -> bool:
    """Whether a criterion key (`criterion_key`) is an advisory criterion's."""
    return f".{ADVISORY}" in key


class Episode(BaseModel):
    """What one specialist saw and decided in one run, and how the run came out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specialist: str
    run_id: str
    trace_id: str = ""
    features: dict[str, FeatureValue] = Field(default_factory=dict)
    passed: bool
    criteria: dict[str, bool | None] = Field(default_factory=dict, description="None = unscored")
    cause: str | None = None
    explanation: str = Field(default="", description="why the run came out so: its outcome text and failed criteria's rationales")
    lesson_ids: list[str] = Field(default_factory=list, description="lessons it was given")


class FailureSignature(BaseModel):
    """A recurring way of failing: a failed criterion (or none) together with a cause."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specialist: str
    criterion: str | None
    cause: str | None
    count: int
    runs: int
    share: float = Field(description="fraction of the specialist's failed episodes")
    trace_ids: list[str] = Field(default_factory=list)


def make_features(subtask: Any = None, tools: Mapping[str, Any] | None = None, output: Any = None) -> dict[str, FeatureValue]:
    """Flatten a specialist's subtask, last tool results and typed output into feature keys.

    The one place the `input.` / `tool.<name>.` / `output.` prefixes are spelled,
    so mining and policies agree on names.
    """
    feats: dict[str, FeatureValue] = {}
    if subtask is not None:
        feats.update(flatten(subtask, "input"))
    for name, result in (tools or {}).items():
        feats.update(flatten(result, f"tool.{name}"))
    if output is not None:
        feats.update(flatten(output, "output"))
    return feats


def is_usable_name(name: str) -> bool:
    """Feature names induction may use: schema-like and not an identifier field."""
    if not SAFE_NAME.match(name) or re.search(_INSTRUCTION_WORD, name, re.IGNORECASE):
        return False
    last = name.rsplit(".", 1)[-1].lower()
    return not (last in ("id", "ids", "uuid") or last.endswith("_id") or last.endswith("_ids"))


# Words that carry no mechanism: grammar, and the grader's boilerplate.
_STOP = frozenset("""the and for with from was were that this than then into its are has had have not but all any per via
above below after before over under out off its their there here which what when where while will would can could
should may might must one two three measured expected true false none full credit only also been being more most
less least very each every other others same such""".split())


def words(text: str) -> frozenset[str]:
    """The content words of a text, lower-cased, plurals folded: how explanations are compared with feature names."""
    out = set()
    for w in re.split(r"[^a-z0-9]+", text.lower()):
        if len(w) < 3 or w in _STOP or w.isdigit():
            continue
        out.add(w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w)
    return frozenset(out)


CRITERIA_MARK = " || "  # in an explanation, what follows is the failed criteria's rationales
NEAR_MISS_MARK = " |~ "  # ... and after this, the near misses' (failed advisory criteria's) rationales
CRITERION_WORD = "+"  # marks a word only the criteria's rationales use
NEAR_MISS_WORD = "~"  # marks a word only the near misses' rationales use


def explanation_words(text: str) -> list[str]:
    """An explanation's words: those only its failed criteria's rationales use marked with CRITERION_WORD, those
    only its near misses' use marked with NEAR_MISS_WORD.

    A crash also fails the Earth-link and power criteria; their words say what followed, not why, so a
    cause's focused family reads only the outcome's own words, while a criterion's reads both. A near
    miss's words are read only by near-miss families: a failure's family hears what it would without them.
    """
    text, _, near = text.partition(NEAR_MISS_MARK)
    said, _, criteria = text.partition(CRITERIA_MARK)
    own, told = words(said), words(criteria)
    return sorted(own) + sorted(CRITERION_WORD + w for w in told - own) + sorted(NEAR_MISS_WORD + w for w in words(near) - own - told)


def name_words(name: str, vocab: tuple[str, ...] = ()) -> frozenset[str]:
    """Words of a feature's own name (its last dotted segment) and of its category values."""
    parts = [n.rsplit(".", 1)[-1] for n in name.split("@")]
    return words(" ".join(p.replace("_", " ") for p in parts) + " " + " ".join(v.replace("_", " ") for v in vocab))
