"""The evidence pack: the only thing a grader sees.

An evidence pack is a plain JSON-able dict, for example
`{"results": {specialist: typed result}, "tools": {tool: last result},
"telemetry": {...}, "report": {...}}`. Items are addressed by dotted paths
(`results.site_selection.slope_deg`, `telemetry.samples[3].alt_m` or
`telemetry.samples.3.alt_m`; `-1` indexes the last list item). A path is also
the evidence id a judge cites. Keys containing dots or brackets cannot be
addressed; keep evidence keys simple.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from ..tools import to_jsonable

Evidence = dict[str, Any]
PathPart = str | int

_SEGMENT = re.compile(r"^([^.\[\]]+)?((?:\[-?\d+\])*)$")
_INDEX = re.compile(r"\[(-?\d+)\]")
_INT = re.compile(r"^-?\d+$")


class MissingEvidence(LookupError):
    """A path that does not resolve in the evidence pack; the criterion goes unscored."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"missing evidence {path!r}: {reason}")
        self.path = path
        self.reason = reason


def parse_path(path: str) -> tuple[PathPart, ...]:
    """Split a dotted path into keys and list indices; ValueError when malformed."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("path must be a non-empty string")
    parts: list[PathPart] = []
    for seg in path.split("."):
        m = _SEGMENT.match(seg)
        if not seg or m is None or (m.group(1) is None and not m.group(2)):
            raise ValueError(f"malformed path {path!r} at segment {seg!r}")
        if m.group(1) is not None:
            parts.append(m.group(1))
        parts.extend(int(i) for i in _INDEX.findall(m.group(2)))
    return tuple(parts)


def resolve(evidence: Mapping[str, Any], path: str) -> Any:
    """The value at `path`, or MissingEvidence naming the first part that failed."""
    try:
        parts = parse_path(path)
    except ValueError as e:
        raise MissingEvidence(path, str(e)) from None
    node: Any = evidence
    walked: list[str] = []
    for part in parts:
        if isinstance(node, Mapping):
            key = str(part)
            if key not in node:
                where = ".".join(walked) or "the evidence pack"
                raise MissingEvidence(path, f"no key {key!r} in {where}")
            node = node[key]
        elif isinstance(node, Sequence) and not isinstance(node, (str, bytes)):
            if isinstance(part, str) and _INT.match(part):
                part = int(part)
            if not isinstance(part, int):
                raise MissingEvidence(path, f"{'.'.join(walked)} is a list; {part!r} is not an index")
            if not -len(node) <= part < len(node):
                raise MissingEvidence(path, f"index {part} out of range for {'.'.join(walked)} (length {len(node)})")
            node = node[part]
        else:
            raise MissingEvidence(path, f"{'.'.join(walked)} is a {type(node).__name__}, not a container")
        walked.append(str(part))
    return node


def normalize(evidence: Mapping[str, Any]) -> Evidence:
    """A JSON-able copy (pydantic models dumped, tuples listed) so graders never see live objects."""
    return {str(k): to_jsonable(v) for k, v in evidence.items()}


def subset(evidence: Mapping[str, Any], paths: Iterable[str]) -> tuple[Evidence, dict[str, str]]:
    """`({path: value}, {path: why missing})`: the slice of evidence a judge may see."""
    found: Evidence = {}
    missing: dict[str, str] = {}
    for p in paths:
        try:
            found[p] = resolve(evidence, p)
        except MissingEvidence as e:
            missing[p] = e.reason
    return found, missing
