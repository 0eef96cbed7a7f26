"""CLI commands for dreaming, playbooks and campaigns (registered on the main app)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .cli import CliError, DbOpt, JsonOpt, app, console, emit_json, open_store, playbook_app
from .report import dream_outcome, unnamed_outcome

RayAddressOpt = typer.Option(None, "--ray-address", help="Ray cluster for --executor ray: host:port, 'auto' or ray://host:10001 (default: $RAY_ADDRESS, else a local cluster).")


@app.command()
def dream(
    graph: str = typer.Argument(..., help="GRAPH_FILE[:ATTR]"),
    db: Optional[Path] = DbOpt,
    validation: int = typer.Option(20, "--validation", min=1, help="Validation scenarios for the gate."),
    seed: int = typer.Option(0, "--seed", min=0, help="Campaign seed selecting the validation set."),
    executor: str = typer.Option("local", "--executor", help="local | process | ray"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1),
    ray_address: Optional[str] = RayAddressOpt,
    model: Optional[str] = typer.Option(None, "--model", help="Model for gate runs and synthesis ('offline' or a Claude id)."),
    synth_model: Optional[str] = typer.Option(None, "--synth-model", help="Model that writes lesson text (default $ORCHESTRA_SYNTH_MODEL, else --model; 'offline' for the template)."),
    review: bool = typer.Option(False, "--review", help="Leave candidates pending until `orchestra playbook approve`."),
    traces: Optional[str] = typer.Option(None, "--traces", help="Read spans from elsewhere: jaeger=http://host:16686"),
    as_json: bool = JsonOpt,
) -> None:
    """Dream on the runs not yet dreamed on: mine, induce, synthesize, curate, gate, promote."""
    from .dreaming.job import DreamBusy, dream as run_dream
    from .loader import load_workflow

    _check_executor(executor, ray_address)
    wf = load_workflow(graph)
    store = open_store(db)
    span_source = None
    if traces:
        kind, _, url = traces.partition("=")
        if kind != "jaeger" or not url:
            raise CliError(f"--traces: expected jaeger=http://host:16686, got {traces!r}")
        from .jaeger import jaeger_span_source

        span_source = jaeger_span_source(url)
    try:
        result = run_dream(wf, store, validation_seeds=wf.scenario_seeds("validation", validation, seed), executor=executor, workers=workers, model=model, synth_model=synth_model, review=review, span_source=span_source)  # type: ignore[arg-type]
    except DreamBusy as e:
        raise CliError(str(e)) from None
    doc = {k: v for k, v in result.items() if not k.startswith("_")}
    if as_json:
        emit_json(doc)
        return
    console.print(f"dream [bold]{doc['dream_id']}[/]: mined {doc['runs_mined']} runs, {doc['episodes']} episodes; promoted: {doc['promoted']}")
    g = doc.get("gate") or {}
    if g:
        console.print(f"gate on {g['n']} validation scenarios: current {g['current_success']:.0%} -> candidate {g['candidate_success']:.0%}; regressions: {g['regressions'] or 'none'}")
    for spec, d in doc["specialists"].items():
        console.print(f"  {spec}: {dream_outcome(d)}", markup=False, highlight=False)
    for u in doc.get("unnamed_failures") or []:
        console.print(f"  no decision named: {unnamed_outcome(u)}", markup=False, highlight=False)


def _check_executor(executor: str, ray_address: str | None = None) -> None:
    if executor not in ("local", "process", "ray"):
        raise CliError(f"--executor: expected local, process or ray, got {executor!r}")
    if ray_address and executor != "ray":
        raise CliError("--ray-address needs --executor ray")
    if executor == "ray":
        from .ray_executor import require_ray

        require_ray(ray_address)  # one line if Ray is missing, before any work starts


def _specialist_check(store: Any, specialist: str) -> None:
    known = {r[0] for r in store.db.execute("SELECT DISTINCT specialist FROM injections UNION SELECT specialist FROM playbooks").fetchall()}
    if known and specialist not in known:
        raise CliError(f"unknown specialist {specialist!r}; known: {', '.join(sorted(known))}")


@playbook_app.command("show")
def playbook_show(specialist: str, version: Optional[int] = typer.Option(None, "--version", min=0), db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """Show a specialist's playbook (active version by default) with provenance."""
    from .versions import active_version, get_playbook

    store = open_store(db)
    _specialist_check(store, specialist)
    pb = get_playbook(store, specialist, version)
    doc = {"specialist": specialist, "version": pb.version, "active": active_version(store, specialist) == pb.version, "lessons": [x.model_dump(mode="json") for x in pb.lessons], "rendered": pb.render()}
    if as_json:
        emit_json(doc)
        return
    console.print(f"[bold]{specialist}[/] playbook v{pb.version}{' (active)' if doc['active'] else ''}: {len(pb.lessons)} lessons")
    for les in pb.lessons:
        console.print(f"- [bold]{les.id}[/] {les.text}", markup=True, highlight=False)
        console.print(f"    dream {les.dream_id}; support {les.support}, precision {les.precision:.2f}, lift {les.lift:.2f}, p {les.p_value:.2g}; helpful {les.helpful} / harmful {les.harmful}; evidence: {', '.join(les.evidence[:4])}{' …' if len(les.evidence) > 4 else ''}", highlight=False)


@playbook_app.command("history")
def playbook_history(specialist: str, db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """Every version of a specialist's playbook, with parent, status and gate figures."""
    from .versions import history

    store = open_store(db)
    _specialist_check(store, specialist)
    rows = history(store, specialist)
    if as_json:
        emit_json(rows)
        return
    t = Table(title=f"{specialist} playbook history")
    for c in ("version", "parent", "status", "lessons", "dream", "active"):
        t.add_column(c)
    for r in rows:
        t.add_row(str(r["version"]), str(r["parent_version"]), r["status"], str(r["lessons"]), str(r["dream_id"] or ""), "*" if r["active"] else "")
    console.print(t)


@playbook_app.command("diff")
def playbook_diff(specialist: str, v1: int, v2: int, db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """Lessons added, removed and changed between two versions."""
    from .versions import diff, get_playbook

    store = open_store(db)
    _specialist_check(store, specialist)
    d = diff(get_playbook(store, specialist, v1), get_playbook(store, specialist, v2))
    if as_json:
        emit_json({"specialist": specialist, "from": v1, "to": v2, **d})
        return
    for x in d["added"]:
        console.print(f"[green]+ {x['id']}[/] {x['text']}", highlight=False)
    for x in d["removed"]:
        console.print(f"[red]- {x['id']}[/] {x['text']}", highlight=False)
    for x in d["changed"]:
        console.print(f"[yellow]~ {x['id']}[/] {x['from']} -> {x['to']}", highlight=False)


@playbook_app.command("rollback")
def playbook_rollback(specialist: str, version: int, db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """Make an earlier version active again (exactly as it was)."""
    from .versions import activate, active_version

    store = open_store(db)
    _specialist_check(store, specialist)
    before = active_version(store, specialist)
    activate(store, specialist, version)
    doc = {"specialist": specialist, "from": before, "active": version}
    emit_json(doc) if as_json else console.print(f"{specialist}: active playbook v{before} -> v{version}")


@playbook_app.command("approve")
def playbook_approve(specialist: str, version: Optional[int] = typer.Argument(None), db: Optional[Path] = DbOpt, as_json: bool = JsonOpt) -> None:
    """Promote a pending candidate (left by `dream --review`)."""
    from .versions import activate, history

    store = open_store(db)
    pending = [r["version"] for r in history(store, specialist) if r["status"] == "pending"]
    if version is None:
        if not pending:
            raise CliError(f"{specialist}: no pending playbook to approve")
        version = pending[-1]
    elif version not in pending:
        raise CliError(f"{specialist}: version {version} is not pending (pending: {pending or 'none'})")
    activate(store, specialist, version, status="active")
    emit_json({"specialist": specialist, "active": version}) if as_json else console.print(f"{specialist}: v{version} approved and active")


@playbook_app.command("export")
def playbook_export(markdown: Path = typer.Option(..., "--markdown", help="Directory for one Markdown file per specialist."), db: Optional[Path] = DbOpt) -> None:
    """Export every active playbook as Markdown."""
    from .versions import get_playbook

    store = open_store(db)
    specs = sorted({r[0] for r in store.db.execute("SELECT specialist FROM heads UNION SELECT specialist FROM injections").fetchall()})
    markdown.mkdir(parents=True, exist_ok=True)
    for s in specs:
        pb = get_playbook(store, s)
        lines = [f"# {s} playbook v{pb.version}", ""]
        for les in pb.lessons:
            lines.append(f"- **{les.id}** {les.text} _(dream {les.dream_id}, support {les.support}, p {les.p_value:.2g})_")
        (markdown / f"{s}.md").write_text("\n".join(lines) + "\n")
    console.print(f"exported {len(specs)} playbook(s) to {markdown}")


@app.command()
def campaign(
    graph: str = typer.Argument(..., help="GRAPH_FILE[:ATTR]"),
    nights: int = typer.Option(2, "--nights", min=1),
    missions: int = typer.Option(60, "--missions", min=1, help="Training missions per day."),
    validation: int = typer.Option(20, "--validation", min=1, help="Validation scenarios per gate."),
    test: int = typer.Option(60, "--test", min=1, help="Held-out test scenarios."),
    seed: int = typer.Option(0, "--seed", min=0),
    executor: str = typer.Option("process", "--executor", help="local | process | ray"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1),
    ray_address: Optional[str] = RayAddressOpt,
    model: Optional[str] = typer.Option(None, "--model"),
    token_ceiling: Optional[int] = typer.Option(None, "--token-ceiling", min=1, help="Fly no new missions once the campaign's runs have used this many input+output tokens."),
    oracle: str = typer.Option("oracle", "--oracle", help="Attribute of the graph module holding the oracle workflow ('' for none)."),
    reference: str = typer.Option("reference", "--reference", help="Attribute of the graph module holding hand-written reference playbooks, flown on the test set for comparison ('' for none)."),
    ablation: Optional[str] = typer.Option(None, "--ablation", help="'shuffled': also dream on shuffled verdicts."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report directory (default reports/<campaign_id>/)."),
    db: Optional[Path] = DbOpt,
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted campaign with the same options."),
    as_json: bool = JsonOpt,
) -> None:
    """Day -> night dream -> day ..., then every playbook version on held-out test scenarios."""
    from .campaign import CampaignConfig, run_campaign
    from .loader import load_reference, load_workflow
    from .report import yardsticks

    _check_executor(executor, ray_address)
    if ablation not in (None, "shuffled"):
        raise CliError(f"--ablation: expected 'shuffled', got {ablation!r}")
    wf = load_workflow(graph)
    from .runner import load_stage_rubrics

    load_stage_rubrics(wf)  # a bad rubric fails here, as one line, before the progress display and the store
    oracle_wf = None
    if oracle:
        path = graph.partition(":")[0]
        try:
            oracle_wf = load_workflow(f"{path}:{oracle}")
        except Exception:
            oracle_wf = None
    reference_pbs = load_reference(graph, reference, wf) if reference else None
    cfg = CampaignConfig(nights=nights, missions=missions, validation=validation, test=test, seed=seed, executor=executor, workers=workers, model=model, ablation=ablation, token_ceiling=token_ceiling)  # type: ignore[arg-type]
    progress_console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=progress_console, transient=False) as bar:
        tasks: dict[str, Any] = {}
        stats: dict[str, list[float]] = {}

        def start(phase: str, total: int) -> None:
            tasks[phase] = bar.add_task(phase, total=total, rate="")
            stats[phase] = [time.perf_counter(), 0, 0]

        def advance(phase: str, flown: Any) -> None:
            s = stats[phase]
            if flown is not None:
                s[1] += 1
                s[2] += int(flown.passed)
            el = max(1e-6, time.perf_counter() - s[0])
            rate = f"{s[1] / el:.1f} missions/s, success {s[2] / s[1]:.0%}" if s[1] else "resumed"
            bar.update(tasks[phase], advance=1, rate=rate)

        def done(phase: str) -> None:
            bar.update(tasks[phase], completed=bar.tasks[tasks[phase]].total)

        from .campaign import Progress as P

        summary = run_campaign(wf, cfg, db=db, oracle=oracle_wf, reference=reference_pbs, out=out, progress=P(start=start, advance=advance, done=done), resume=resume)
    if as_json:
        emit_json(summary)
        return
    t = Table(title=f"campaign {summary['campaign_id']} — held-out test set ({summary['test_missions']} scenarios)")
    for c in ("version", "success", "95% CI", "gap closed"):
        t.add_column(c)
    for v in summary["versions"] + yardsticks(summary):
        gc = v.get("gap_closed")
        t.add_row(v["name"], f"{v['success_rate']:.0%}", f"{v['ci95'][0]:.0%}–{v['ci95'][1]:.0%}", "-" if gc is None else f"{gc:.0%}")
    console.print(t)
    console.print(f"report: {summary['report']}")
