"""The `orchestra` command: run, traces, rubric, grade, dream, playbook, campaign."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="Agent teams that learn from their own traces.")
traces_app = typer.Typer(no_args_is_help=True, help="Inspect stored traces.")
rubric_app = typer.Typer(no_args_is_help=True, help="Work with rubric files.")
playbook_app = typer.Typer(no_args_is_help=True, help="Show, diff, roll back and approve playbooks.")
app.add_typer(traces_app, name="traces")
app.add_typer(rubric_app, name="rubric")
app.add_typer(playbook_app, name="playbook")

console = Console(stderr=False)
err = Console(stderr=True)

DbOpt = typer.Option(None, "--db", help="Store path (default $ORCHESTRA_DB or .orchestra/orchestra.db).")
JsonOpt = typer.Option(False, "--json", help="Print exactly one JSON document on stdout.")


class CliError(Exception):
    """Exit 2 with one line on stderr."""


def emit_json(doc: Any) -> None:
    from .redact import redact  # results and tool logs can carry secrets; CI logs keep stdout

    sys.stdout.write(json.dumps(redact(doc), default=str, indent=None) + "\n")
    sys.stdout.flush()


def open_store(db: Optional[Path]) -> Any:
    from .store import Store

    return Store(db)


@app.command()
def run(
    graph: str = typer.Argument(..., help="GRAPH_FILE[:ATTR], e.g. graphs/lumara.py"),
    seed: int = typer.Option(0, "--seed", min=0, help="Job seed."),
    model: Optional[str] = typer.Option(None, "--model", help="'offline' or a Claude model id (default $ORCHESTRA_MODEL, else offline without an API key)."),
    judge_model: Optional[str] = typer.Option(None, "--judge-model", help="Model for model-judged criteria (default $ORCHESTRA_JUDGE_MODEL, else --model)."),
    token_ceiling: Optional[int] = typer.Option(None, "--token-ceiling", min=1, help="Stop the run cleanly (failed) once it has used this many input+output tokens."),
    db: Optional[Path] = DbOpt,
    picture: Optional[Path] = typer.Option(None, "--picture", help="Draw the run to this PNG (if the workflow can)."),
    as_json: bool = JsonOpt,
) -> None:
    """Run one job through a workflow."""
    from .loader import load_workflow
    from .runner import run_workflow

    wf = load_workflow(graph)
    store = open_store(db)
    roles = {"judge": judge_model} if judge_model else None
    result = run_workflow(wf, seed=seed, model=model, roles=roles, store=store, token_ceiling=token_ceiling)
    doc = result.to_json()
    if picture is not None:
        if wf.picture is None:
            raise CliError(f"{graph}: this workflow cannot draw pictures")
        from .pictures import draw_run

        draw_run(wf, result.to_json(), picture, tool_log=result.tool_log)
        doc["picture"] = str(picture)
    jaeger = os.environ.get("ORCHESTRA_JAEGER_URL")
    if jaeger:
        doc["trace_url"] = f"{jaeger.rstrip('/')}/trace/{result.trace_id}"
    if as_json:
        emit_json(doc)
        return
    console.print(f"run [bold]{result.run_id}[/] status [bold]{result.status}[/] trace {result.trace_id}")
    if doc.get("trace_url"):
        console.print(f"trace: {doc['trace_url']}")
    if result.error:
        console.print(f"error: {result.error}")
    for v in result.verdicts:
        console.print(verdict_table(v))
    if result.outcome:
        console.print(f"outcome: {json.dumps(result.outcome, default=str)}")


def verdict_table(v: dict[str, Any]) -> Table:
    t = Table(title=f"{v.get('rubric_id')} v{v.get('rubric_version')} stage={v.get('stage')} attempt={v.get('attempt')}: {'PASS' if v.get('passed') else 'FAIL'} score={_fmt(v.get('score'))}")
    for col in ("criterion", "score", "passed", "gate", "rationale"):
        t.add_column(col)
    for c in v.get("criteria", []):
        passed = "unscored" if c.get("unscored") else ("yes" if c.get("passed") else "no")
        t.add_row(c["id"], _fmt(c.get("score")), passed, "gate" if c.get("gate") else "", str(c.get("rationale", ""))[:80])
    return t


def _fmt(x: Any) -> str:
    return "-" if x is None else (f"{x:.2f}" if isinstance(x, float) else str(x))


@traces_app.command("list")
def traces_list(db: Optional[Path] = DbOpt, limit: int = typer.Option(20, "--limit", min=1), as_json: bool = JsonOpt) -> None:
    """List recent runs and their trace ids."""
    store = open_store(db)
    runs = store.list_runs(limit=limit)
    rows = [{k: r.get(k) for k in ("run_id", "trace_id", "workflow", "seed", "status", "cause", "started", "phase")} for r in runs]
    if as_json:
        emit_json(rows)
        return
    t = Table(title=f"runs in {store.path}")
    for col in ("run_id", "trace_id", "workflow", "seed", "status", "cause"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(str(r.get(c) or "") for c in ("run_id", "trace_id", "workflow", "seed", "status", "cause")))
    console.print(t)


@traces_app.command("show")
def traces_show(run_id: str, db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """Show a run's span tree with its GenAI attributes."""
    store = open_store(db)
    run = store.get_run(run_id)
    if run is None:
        raise CliError(f"no run {run_id!r} in {store.path}")
    spans = store.spans_for_run(run["run_id"])
    if as_json:
        emit_json([{"name": s["name"], "span_id": s["span_id"], "parent_id": s["parent_id"], "trace_id": s["trace_id"], "start": s["start_ns"], "end": s["end_ns"], "status": s["status"], "attributes": s["attributes"]} for s in spans])
        return
    from .tracing import span_tree

    root = Tree(f"run {run['run_id']} trace {run['trace_id']} ({run['status']})")

    def add(node: Tree, s: dict[str, Any]) -> None:
        a = s["attributes"]
        keys = [k for k in ("gen_ai.operation.name", "gen_ai.agent.name", "gen_ai.tool.name", "gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens") if k in a]
        detail = " ".join(f"{k.split('.', 1)[1]}={a[k]}" for k in keys)
        child = node.add(f"[bold]{s['name']}[/] {(s['end_ns'] - s['start_ns']) / 1e6:.1f} ms {detail}")
        for c in s["children"]:
            add(child, c)

    for s in span_tree(spans):
        add(root, s)
    console.print(root)


@rubric_app.command("check")
def rubric_check(file: Path) -> None:
    """Validate a rubric file: exit 0 if valid, else FILE:LINE: field: message."""
    from .grading import load_rubric

    r = load_rubric(file)
    console.print(f"{file}: ok ({r.id} v{r.version}, {len(r.criteria)} criteria)")


@app.command()
def grade(
    run_id: str,
    rubric: Path = typer.Option(..., "--rubric", help="Rubric file to grade the stored run with."),
    graph: Optional[str] = typer.Option(None, "--graph", help="Graph module (for judge policy), optional."),
    db: Optional[Path] = DbOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Re-grade a stored run with another rubric (version) without re-running it."""
    from .regrade import regrade

    store = open_store(db)
    verdict = regrade(store, run_id, rubric, graph)
    if as_json:
        emit_json(verdict)
    else:
        console.print(verdict_table(verdict))


def _register_extra() -> None:
    from . import cli_dream  # noqa: F401  (registers dream/playbook/campaign commands)


def main() -> None:
    from .grading import RubricError
    from .jaeger import JaegerError
    from .loader import UserError
    from .runner import ConfigError
    from .store import StoreError
    from .versions import VersionError

    _register_extra()
    try:
        app(standalone_mode=False)
    except (CliError, UserError, ConfigError, StoreError, VersionError, RubricError, JaegerError) as e:
        err.print(str(e), markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        err.print("aborted", markup=False)
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
    except sqlite3.DatabaseError as e:  # a store damaged past its header fails on first read, not on open
        err.print(f"{_db_arg()}: not a usable Orchestra store ({e})", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as e:  # click usage errors and the like
        click_exc = _click_exceptions()
        if isinstance(e, click_exc.ClickException):
            hint = f" ({e.ctx.command_path})" if getattr(e, "ctx", None) is not None else ""
            err.print(f"error{hint}: {e.format_message()}", markup=False, highlight=False, soft_wrap=True)
            sys.exit(2)
        if isinstance(e, getattr(click_exc, "Exit", typer.Exit)):  # typer's vendored click has no Exit
            sys.exit(e.exit_code)
        raise


def _db_arg() -> str:
    """The store path this command was given (for errors raised after the store opened)."""
    from .store import default_db_path

    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == "--db" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--db="):
            return a[5:]
    return str(default_db_path())


def _click_exceptions() -> Any:
    try:
        from typer._click import exceptions  # typer >= 0.20 vendors click
    except ImportError:
        from click import exceptions
    return exceptions


if __name__ == "__main__":
    from orchestra.cli import main as _main  # the package module, where cli_dream registers its commands

    _main()
