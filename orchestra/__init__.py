"""Orchestra: agent teams that learn from their own traces.

The public API; everything not listed in `__all__` is private by convention.
"""

from .agents import AgentFailure, Budget, Lead, Specialist, run_agent
from .models.base import Model, ModelError, ModelRequest, ModelResponse, allow_model_requests
from .models.policy import Call, Final, PolicyContext, PolicyModel
from .playbook import Lesson, Playbook
from .rules import Condition, Rule
from .runner import RunResult, run_workflow
from .store import Store
from .tools import RunContext, Tool, ToolError, tool
from .workflow import Stage, Workflow


def __getattr__(name: str):  # lazy: optional heavy imports
    if name == "AnthropicModel":
        from .models.anthropic import AnthropicModel

        return AnthropicModel
    if name == "ReplayModel":
        from .models.replay import ReplayModel

        return ReplayModel
    if name in ("Rubric", "Grader", "Verdict", "load_rubric"):
        from . import grading

        return getattr(grading, name)
    raise AttributeError(name)


__all__ = [
    "AgentFailure", "AnthropicModel", "Budget", "Call", "Condition", "Final", "Grader", "Lead", "Lesson",
    "Model", "ModelError", "ModelRequest", "ModelResponse", "Playbook", "PolicyContext", "PolicyModel",
    "ReplayModel", "Rubric", "Rule", "RunContext", "RunResult", "Specialist", "Stage", "Store", "Tool",
    "ToolError", "Verdict", "Workflow", "allow_model_requests", "load_rubric", "run_agent", "run_workflow", "tool",
]
