"""Run one job through a workflow: models, playbooks, tracing, checkpointing, store."""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from opentelemetry import trace

from . import tracing as tr
from .models.base import Model
from .models.policy import PolicyModel
from .playbook import Playbook
from .store import Store
from .versions import active_playbooks
from .workflow import Runtime, Workflow, build_evidence, default_playbooks, initial_state

OFFLINE = "offline"


class ConfigError(Exception):
    """A run that cannot start (no policy for offline, unknown model); one line for the CLI."""


def default_model_spec() -> str:
    return os.environ.get("ORCHESTRA_MODEL") or ("claude-sonnet-4-5" if os.environ.get("ANTHROPIC_API_KEY") else OFFLINE)


# Optional AnthropicModel settings from the environment: (variable, keyword, type).
ANTHROPIC_ENV = (
    ("ORCHESTRA_MAX_RETRIES", "max_retries", int),
    ("ORCHESTRA_RETRY_BASE_DELAY", "retry_base_delay", float),
    ("ORCHESTRA_RETRY_MAX_DELAY", "retry_max_delay", float),
    ("ORCHESTRA_MODEL_TIMEOUT", "timeout", float),
)


def anthropic_options() -> dict[str, Any]:
    """AnthropicModel keyword arguments set through ORCHESTRA_* variables (retries, backoff, timeout)."""
    out: dict[str, Any] = {}
    for var, key, kind in ANTHROPIC_ENV:
        raw = os.environ.get(var)
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r}: expected a number") from None
        if value < 0 or (key == "timeout" and value == 0):
            raise ConfigError(f"{var}={raw!r}: expected a {'positive' if key == 'timeout' else 'non-negative'} number")
        out[key] = value
    return out


def resolve_model(spec: str, agent: str, policy: Any) -> Model:
    if spec == OFFLINE:
        if policy is None:
            raise ConfigError(f"agent {agent!r} has no offline policy; pass --model <claude model id>")
        return PolicyModel(policy, name=f"policy:{agent}")
    if spec.startswith("claude"):
        from .models.anthropic import AnthropicModel

        return AnthropicModel(spec, **anthropic_options())
    raise ConfigError(f"unknown model {spec!r}: use 'offline' or a Claude model id (claude-...)")


def judge_model_spec(model: str | None = None, roles: dict[str, str] | None = None) -> str:
    """The judge's model: roles['judge'], else $ORCHESTRA_JUDGE_MODEL, else the run's model."""
    return (roles or {}).get("judge") or os.environ.get("ORCHESTRA_JUDGE_MODEL") or model or default_model_spec()


def resolve_synth_model(synth: str | None = None, model: str | None = None) -> Model | None:
    """Dream synthesis model: `synth`, else $ORCHESTRA_SYNTH_MODEL, else the runs' `model`; None when offline."""
    spec = synth or os.environ.get("ORCHESTRA_SYNTH_MODEL") or model or default_model_spec()
    if spec == OFFLINE:
        return None
    return resolve_model(spec, "dream synthesis", None)


def resolve_models(wf: Workflow, model: str | None = None, roles: dict[str, str] | None = None, overrides: dict[str, Model] | None = None) -> tuple[dict[str, Model], Model | None]:
    """One model per agent (and the judge); roles may name a different model per agent or 'judge'."""
    spec = model or default_model_spec()
    roles = roles or {}
    overrides = overrides or {}
    out: dict[str, Model] = {}
    for name, policy in [(wf.lead.name, wf.lead.policy)] + [(s.name, s.policy) for s in wf.specialists]:
        out[name] = overrides.get(name) or resolve_model(roles.get(name, spec), name, policy)
    judge: Model | None = overrides.get("judge")
    if judge is None:
        jspec = judge_model_spec(spec, roles)
        if jspec == OFFLINE:
            judge = PolicyModel(wf.judge_policy, name="policy:judge") if wf.judge_policy else None
        else:
            judge = resolve_model(jspec, "judge", None)
    return out, judge


@dataclass
class RunResult:
    run_id: str
    trace_id: str
    workflow: str
    seed: int
    status: str
    error: str | None
    specialists: list[str]
    results: dict[str, Any]
    verdicts: list[dict[str, Any]]
    playbooks: dict[str, dict[str, Any]]
    usage: dict[str, int]
    outcome: dict[str, Any]
    report: dict[str, Any] | None
    wall_s: float
    spans: list[dict[str, Any]] = field(default_factory=list, repr=False)
    tool_log: list[dict[str, Any]] = field(default_factory=list, repr=False)
    evidence: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def verdict(self) -> dict[str, Any] | None:
        return self.verdicts[-1] if self.verdicts else None

    def to_json(self) -> dict[str, Any]:
        v = self.verdict
        verdict = None
        if v is not None:
            verdict = {**v, "attempts": v.get("attempt", 1)}
        by_stage: dict[str, Any] = {}
        for x in self.verdicts:
            by_stage[x.get("stage") or "main"] = {**x, "attempts": x.get("attempt", 1)}
        return {
            "run_id": self.run_id, "trace_id": self.trace_id, "workflow": self.workflow, "seed": self.seed,
            "status": self.status, "error": self.error, "specialists": self.specialists, "results": self.results,
            "verdict": verdict, "verdicts": by_stage, "playbooks": self.playbooks, "usage": self.usage,
            "outcome": self.outcome, "report": self.report, "wall_s": round(self.wall_s, 4),
        }

    def to_record(self) -> dict[str, Any]:
        """What the store keeps: the JSON view plus the evidence packs and tool log, for re-grading and mining."""
        return {**self.to_json(), "evidence": self.evidence, "tool_log": self.tool_log}


def checkpoint_path(store: Store) -> Path:
    return store.path.with_name(store.path.stem + ".checkpoints.sqlite")


def run_workflow(
    wf: Workflow,
    *,
    seed: int = 0,
    model: str | None = None,
    roles: dict[str, str] | None = None,
    models: dict[str, Model] | None = None,
    store: Store | None = None,
    db: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
    playbooks: dict[str, Playbook] | None = None,
    rubrics: dict[str, Any] | None = None,
    durability: Literal["sync", "async", "exit"] = "async",
    checkpoint: bool = True,
    persist: bool = True,
    campaign_id: str | None = None,
    phase: str | None = None,
    token_ceiling: int | None = None,
    links: list[Any] | None = None,
) -> RunResult:
    """Run one job. With `persist`, the run, its spans, verdicts and injections land in the store atomically."""
    t0 = time.perf_counter()
    resolved, judge = resolve_models(wf, model, roles, models)
    if store is None and (persist or checkpoint):
        store = Store(db)
    if playbooks is None:
        playbooks = active_playbooks(store, [s.name for s in wf.specialists]) if store is not None else default_playbooks(wf)
    if rubrics is None:
        rubrics = load_stage_rubrics(wf)
    job = wf.make_job(seed)
    deps = wf.deps(job) if wf.deps else None
    run_id = run_id or uuid.uuid4().hex
    resume = store is not None and (store.get_run(run_id) or {}).get("status") == "running" and checkpoint
    model_label = model or default_model_spec()
    rt = Runtime(run_id=run_id, workflow=wf, deps=deps, models=resolved, playbooks=playbooks, judge=judge, rubrics=rubrics, token_ceiling=token_ceiling)
    saver_conn = None
    checkpointer = None
    if checkpoint and store is not None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        saver_conn = sqlite3.connect(str(checkpoint_path(store)), check_same_thread=False, timeout=60)
        saver_conn.execute("PRAGMA secure_delete=ON")  # a finished run's deleted state leaves no bytes behind
        checkpointer = SqliteSaver(saver_conn)
    graph = wf.compile(checkpointer=checkpointer)
    config: dict[str, Any] = {"configurable": {"thread_id": run_id, "orchestra_runtime": rt}, "recursion_limit": 200}
    if persist and checkpoint and store is not None and not resume:  # only a checkpointed run can be resumed
        store.save_run({"run_id": run_id, "workflow": wf.name, "seed": seed, "status": "running", "model": model_label, "started": time.time(), "campaign_id": campaign_id, "phase": phase, "dreamed": 0})
    root_attrs = {tr.OP: "invoke_workflow", tr.WORKFLOW_NAME: wf.name, tr.CONVERSATION_ID: run_id, "orchestra.run_id": run_id, "orchestra.workflow": wf.name, "orchestra.seed": seed, tr.PROVIDER: next(iter(resolved.values())).provider}
    if campaign_id:
        root_attrs["orchestra.campaign_id"] = campaign_id
    if phase:
        root_attrs["orchestra.phase"] = phase
    with tr.tracer().start_as_current_span(f"invoke_workflow {wf.name}", attributes=root_attrs, links=links or None) as root:
        rt.root = root
        trace_id = tr.hex_trace_id(root)
        for name, pb in playbooks.items():
            root.set_attribute(f"orchestra.playbook.{name}.version", pb.version)
            root.set_attribute(f"orchestra.playbook.{name}.lesson_ids", list(pb.lesson_ids))
        error: str | None = None
        state: dict[str, Any]
        try:
            pending = None
            if resume and checkpointer is not None:
                snap = graph.get_state(config)
                pending = snap.next if snap and snap.values else None
            if pending:
                state = graph.invoke(None, config, durability=durability)
            else:
                kwargs = {"durability": durability} if checkpointer is not None else {}
                state = graph.invoke(initial_state(wf, run_id, job), config, **kwargs)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # a run that cannot finish is stored as failed with its reason
            error = f"{type(e).__name__}: {e}"
            state = {"status": "error", "error": error}
            root.set_attribute(tr.ERROR_TYPE, type(e).__name__)
            root.set_status(trace.Status(trace.StatusCode.ERROR, error[:200]))
        status = state.get("status") or "error"
        if status == "running":
            status = "error"
        error = state.get("error") or error
        outcome = wf.outcome(state, deps) if (wf.outcome and "job" in state) else {}
        root.set_attribute("orchestra.status", status)
        if outcome:
            root.set_attribute("orchestra.outcome", tr.json_attr(outcome))
        usage = state.get("usage") or {}
        root.set_attribute(tr.INPUT_TOKENS, usage.get("input_tokens", 0))
        root.set_attribute(tr.OUTPUT_TOKENS, usage.get("output_tokens", 0))
    spans = tr.drain(trace_id)
    verdicts = [v for v in state.get("verdicts", []) if v]
    pb_info = {name: {"playbook_version": pb.version, "lesson_ids": list(pb.lesson_ids)} for name, pb in playbooks.items()}
    result = RunResult(
        run_id=run_id, trace_id=trace_id, workflow=wf.name, seed=seed, status=status, error=error,
        specialists=[s.name for s in wf.specialists], results=state.get("outputs", {}), verdicts=verdicts,
        playbooks=pb_info, usage=usage, outcome=outcome, report=state.get("lead_output"),
        wall_s=time.perf_counter() - t0, spans=spans, tool_log=state.get("tool_log", []),
        evidence=state.get("evidence", {}),
    )
    if persist and store is not None:
        store.save_run(run_record(result, model_label, campaign_id, phase), spans=spans, verdicts=verdicts, injections=[{"specialist": k, **v} for k, v in pb_info.items()])
    if saver_conn is not None:
        if checkpointer is not None:  # checkpoints exist to resume an interrupted run; a finished run's (unredacted) state goes
            checkpointer.delete_thread(run_id)
        saver_conn.close()
    if tr.otlp_configured():
        tr.flush(timeout_s=2.0)
    return result


def run_record(r: RunResult, model_label: str, campaign_id: str | None, phase: str | None) -> dict[str, Any]:
    last = r.verdict or {}
    return {
        "run_id": r.run_id, "trace_id": r.trace_id, "workflow": r.workflow, "seed": r.seed, "status": r.status,
        "error": r.error, "model": model_label, "started": time.time() - r.wall_s, "ended": time.time(),
        "campaign_id": campaign_id, "phase": phase, "passed": int(r.passed), "score": last.get("score"),
        "cause": (r.outcome or {}).get("cause"), "input_tokens": r.usage.get("input_tokens", 0),
        "output_tokens": r.usage.get("output_tokens", 0), "cache_read_tokens": r.usage.get("cache_read_input_tokens", 0),
        "cache_write_tokens": r.usage.get("cache_creation_input_tokens", 0), "dreamed": 0, "result": r.to_record(),
    }


_RUBRICS: dict[tuple[str, float], Any] = {}


def load_stage_rubrics(wf: Workflow) -> dict[str, Any]:
    """Rubrics per stage, parsed once per file version (path, mtime)."""
    from .grading import load_rubric

    out = {}
    for s in wf.stages:
        if s.rubric is None:
            continue
        p = Path(s.rubric)
        key = (str(p.resolve()), p.stat().st_mtime if p.exists() else 0.0)
        if key not in _RUBRICS:
            _RUBRICS[key] = load_rubric(p)
        out[s.name] = _RUBRICS[key]
    return out


__all__ = ["run_workflow", "RunResult", "resolve_models", "resolve_synth_model", "anthropic_options", "ConfigError", "build_evidence"]
