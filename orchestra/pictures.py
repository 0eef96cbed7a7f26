"""Draw a finished run by replaying its tool calls on fresh, seed-determined deps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .tools import RunContext


def draw_run(wf: Any, result: dict[str, Any], path: Path, tool_log: list[dict[str, Any]] | None = None) -> Path:
    """The workflow's deps are deterministic per job, so replaying the logged tool calls rebuilds the run."""
    if wf.picture is None:
        raise ValueError(f"workflow {wf.name!r} cannot draw pictures")
    deps = wf.deps(wf.make_job(result["seed"])) if wf.deps else None
    tools = {t.name: t for s in wf.specialists for t in s.tools}
    for entry in tool_log if tool_log is not None else result.get("tool_log", []):
        t = tools.get(entry["tool"])
        if t is not None and not entry.get("is_error"):
            try:
                t.call(entry["input"], RunContext(deps=deps, run_id=result.get("run_id", ""), agent=entry["agent"]))
            except Exception:
                continue
    path.parent.mkdir(parents=True, exist_ok=True)
    wf.picture(deps, path)
    return path
