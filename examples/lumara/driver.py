"""A tiny offline mission driver for benchmarks: the same policies, tools and protocol as the graph.

Each specialist runs in its own message history through `PolicyModel`, with tool results
serialised exactly as the agent loop does, so a policy cannot tell the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from orchestra.models.base import Message, ModelRequest, SystemBlock, TextBlock, ToolResultBlock, ToolSpec
from orchestra.models.policy import FINAL_TOOL, PolicyModel
from orchestra.rules import Rule
from orchestra.tools import RunContext, Tool, ToolError, dumps, format_validation_error

from .mission import Mission
from .policies import POLICIES
from .tools import SPECIALIST_TOOLS
from .types import AssuranceResult, AssuranceTask, DescentPlan, MissionReport, NavTask, SiteChoice, SiteTask

OUTPUT_TYPES: dict[str, type[BaseModel]] = {"site_selection": SiteChoice, "navigation": DescentPlan, "mission_assurance": AssuranceResult}
MAX_TURNS = 12


@dataclass
class Episode:
    """One specialist run: its task, tool log and typed output (what dreaming would mine)."""

    agent: str
    task: dict[str, Any]
    output: dict[str, Any] | None
    tool_log: list[dict[str, Any]] = field(default_factory=list)


def run_specialist(agent: str, policy: Callable[..., Any], task: BaseModel, mission: Mission, tools: list[Tool],
                   rules: list[Rule]) -> Episode:
    """Drive one specialist to its typed result, like the agent loop (minus tracing and budgets)."""
    by_name = {t.name: t for t in tools}
    specs = [ToolSpec(name=t.name, description=t.description, input_schema=t.input_schema) for t in tools]
    model = PolicyModel(policy)
    messages = [Message.user(dumps(task))]
    payload = [r.model_dump(mode="json") for r in rules]
    log: list[dict[str, Any]] = []
    ctx = RunContext(deps=mission, run_id=f"lumara-{mission.seed}", agent=agent)
    out_type = OUTPUT_TYPES[agent]
    for _ in range(MAX_TURNS):
        req = ModelRequest(agent=agent, system=[SystemBlock(text=agent)], messages=messages, tools=specs, rules=payload)
        resp = model.complete(req)
        messages = messages + [Message(role="assistant", content=list(resp.content))]
        results = []
        for use in resp.tool_uses:
            if use.name == FINAL_TOOL:
                return Episode(agent, task.model_dump(mode="json"), out_type.model_validate(use.input).model_dump(mode="json"), log)
            tool = by_name.get(use.name)
            try:
                if tool is None:
                    raise ToolError(f"unknown tool {use.name!r}")
                content, err = dumps(tool.call(dict(use.input), ctx)), False
            except ValidationError as e:
                content, err = f"Invalid arguments for {use.name}: {format_validation_error(e)}", True
            except ToolError as e:
                content, err = f"{use.name} failed: {e}", True
            log.append({"tool": use.name, "input": dict(use.input), "is_error": err, "result": content})
            results.append(ToolResultBlock(tool_use_id=use.id, content=content, is_error=err))
        if not results:
            messages = messages + [Message(role="user", content=[TextBlock(text=f"Call {FINAL_TOOL}.")])]
        else:
            messages = messages + [Message(role="user", content=results)]
    return Episode(agent, task.model_dump(mode="json"), None, log)


@dataclass
class MissionRun:
    report: MissionReport
    episodes: list[Episode]
    mission: Mission


def fly_mission(seed: int, policies: dict[str, Callable[..., Any]] | None = None,
                rules: dict[str, list[Rule]] | None = None, tools: dict[str, list[Tool]] | None = None,
                max_attempts: int = 3) -> MissionRun:
    """Site selection -> navigation -> assurance (execute when go); a no-go excludes the site and retries."""
    policies = policies or POLICIES
    rules = rules or {}
    tools = tools or SPECIALIST_TOOLS
    mission = Mission(seed)
    excluded: list[str] = []
    note = ""
    episodes: list[Episode] = []
    site = plan = result = None
    attempts = 0
    for attempts in range(1, max_attempts + 1):
        e = run_specialist("site_selection", policies["site_selection"], SiteTask(exclude_sites=excluded, note=note),
                           mission, tools["site_selection"], rules.get("site_selection", []))
        episodes.append(e)
        if e.output is None:
            break
        site = SiteChoice.model_validate(e.output)
        e = run_specialist("navigation", policies["navigation"], NavTask(site=site, note=note), mission,
                           tools["navigation"], rules.get("navigation", []))
        episodes.append(e)
        if e.output is None:
            break
        plan = DescentPlan.model_validate(e.output)
        e = run_specialist("mission_assurance", policies["mission_assurance"],
                           AssuranceTask(site=site, plan=plan, execute=True, note=note), mission,
                           tools["mission_assurance"], rules.get("mission_assurance", []))
        episodes.append(e)
        if e.output is None:
            break
        result = AssuranceResult.model_validate(e.output)
        if result.executed:
            break
        excluded.append(site.site_id)
        note = f"Mission assurance declared NO-GO for site {site.site_id}: {result.rationale}. Choose another site."
    report = MissionReport(seed=seed, site=site, plan=plan, assurance=result, attempts=attempts)
    return MissionRun(report=report, episodes=episodes, mission=mission)
