"""Campaign report: summary.json, report.md and PNG plots (matplotlib, headless)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .redact import redact


def dream_outcome(d: dict[str, Any]) -> str:
    """One specialist's part of a dream in words: what became of its candidate, or why there was none."""
    deltas = ", ".join(f"{x['op']} {x.get('lesson_id')}" for x in d.get("deltas") or [])
    status = d.get("status") or ("active" if d.get("promoted") else "unchanged")
    cand, cur = d.get("candidate_version"), d.get("current_version")
    if status == "active":
        return f"v{cand} promoted over v{cur} ({deltas or 'lessons revised'})"
    if status == "pending":
        return f"candidate v{cand} awaits review ({deltas or 'lessons revised'})"
    if status == "rejected":
        return f"candidate v{cand} rejected by the gate ({deltas or 'lessons revised'}); v{cur} stays"
    induced = len(d.get("induced") or [])
    if not induced:
        return f"no rule held up on these runs; v{cur} stays"
    return f"{induced} rule{'s' if induced != 1 else ''} induced, none changed the playbook; v{cur} stays"


def moved_outcome(t: dict[str, Any]) -> str:
    """One trial of a limit moved in: its validation figures, against the tested limit where recorded, and whether it was kept."""
    if t.get("skipped"):
        return f"not flown ({t['skipped']})"
    v = t.get("versus_tested")
    versus = f" (won {v['wins']}, lost {v['losses']} against the tested limit)" if v else ""
    return f"{_pct(t.get('success_with'))} -> {_pct(t.get('success_moved'))}{versus}, {'kept' if t.get('kept') else 'not kept'}"


def unnamed_outcome(u: dict[str, Any]) -> str:
    """A failure whose accounts name no decision (a dream's `unnamed_failures` entry), in words."""
    return f"`{u['label']}` in {u['runs']} runs (shared words: {', '.join(u['words']) or 'none'})"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def yardsticks(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows learning is measured against, when flown: the hand-written reference, then the oracle."""
    return [summary[k] for k in ("reference", "oracle") if summary.get(k)]


def _rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row a report compares: the versions, then the yardsticks."""
    return summary["versions"] + yardsticks(summary)


def plot_success(summary: dict[str, Any], path: Path) -> None:
    plt = _plt()
    rows = _rows(summary)
    names = [r["name"] for r in rows]
    rates = [r["success_rate"] for r in rows]
    lo = [max(0.0, r["success_rate"] - r["ci95"][0]) for r in rows]
    hi = [max(0.0, r["ci95"][1] - r["success_rate"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows)), 4))
    colors = ["#888888"] + ["#2b7bba"] * (len(rows) - 1)
    for i, r in enumerate(rows):
        if r["name"] == "oracle":
            colors[i] = "#2ca02c"
        elif r is summary.get("reference"):
            colors[i] = "#9467bd"
        elif r["name"].startswith("ablation"):
            colors[i] = "#d62728"
    ax.bar(names, rates, yerr=[lo, hi], capsize=6, color=colors)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (test set, 95% CI)")
    ax.set_title(f"{summary['workflow']}: success by playbook version ({summary['test_missions']} held-out scenarios)")
    for i, v in enumerate(rates):  # inside the bar's foot, clear of the error bar
        ax.text(i, 0.03, f"{v:.0%}", ha="center", color="white", fontweight="bold")
    plt.xticks(rotation=15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_criteria(summary: dict[str, Any], path: Path) -> None:
    plt = _plt()
    rows = _rows(summary)
    crits = sorted({c for r in rows for c in r["criteria"]})
    fig, ax = plt.subplots(figsize=(max(8, 0.7 * len(crits) * len(rows) / 2), 4.5))
    width = 0.8 / max(1, len(rows))
    for i, r in enumerate(rows):
        xs = [j + i * width for j in range(len(crits))]
        ax.bar(xs, [r["criteria"].get(c, 0.0) for c in crits], width=width, label=r["name"])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(crits))])
    ax.set_xticklabels(crits, rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("pass rate")
    ax.legend(fontsize=8)
    ax.set_title("rubric criteria pass rate by version")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_causes(summary: dict[str, Any], path: Path) -> None:
    plt = _plt()
    rows = [summary["versions"][0], [v for v in summary["versions"] if v["arm"] == "dreaming"][-1]] + yardsticks(summary)
    causes = sorted({c for r in rows for c in r["causes"] if c != "none"})
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(causes) * len(rows) / 2), 4))
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        ax.bar([j + i * width for j in range(len(causes))], [r["causes"].get(c, 0) for c in causes], width=width, label=r["name"])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(causes))])
    ax.set_xticklabels(causes, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("missions")
    ax.set_title("failure causes before and after dreaming")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pictures(wf: Any, evals: list[dict[str, Any]], test: list[int], out: Path, k: int = 2) -> list[tuple[str, str]]:
    """Landing pictures for a few test scenarios where v0 failed and the final version passed."""
    if wf.picture is None or len(evals) < 2:
        return []
    from .pictures import draw_run

    first, last = evals[0]["results"], [e for e in evals if e["arm"] == "dreaming"][-1]["results"]
    picks = [i for i in range(min(len(first), len(last))) if first[i]["status"] != "passed" and last[i]["status"] == "passed"][:k]
    pics = []
    for i in picks:
        for tag, res in (("before", first[i]), ("after", last[i])):
            p = out / f"landing_{res['seed']}_{tag}.png"
            try:
                draw_run(wf, res, p)
                pics.append((tag, p.name))
            except Exception:
                continue
    return pics


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def write_report(summary: dict[str, Any], out: Path, wf: Any, evals: list[dict[str, Any]], oracle_eval: Any, test: list[int]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    summary = redact(summary)
    plot_success(summary, out / "success_by_version.png")
    plot_criteria(summary, out / "criteria_by_version.png")
    plot_causes(summary, out / "failure_causes.png")
    pics = _pictures(wf, evals, test, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    L: list[str] = []
    L.append(f"# Campaign `{summary['campaign_id']}`\n")
    c = summary["config"]
    L.append(f"Workflow `{summary['workflow']}`; {c['nights']} night(s) x {c['missions']} training missions, {c['validation']} validation (gate) scenarios, {c['test']} held-out test scenarios; seed {c['seed']}; executor {c['executor']}; model {c['model'] or 'offline'}. Wall time {summary['wall_s']:.1f} s.\n")
    L.append("## Success on the held-out test set\n")
    L.append("| version | success | 95% CI | gap closed | tokens |")
    L.append("|---|---|---|---|---|")
    for v in _rows(summary):
        L.append(f"| {v['name']} | {_pct(v['success_rate'])} ({v['successes']}/{v['n']}) | {_pct(v['ci95'][0])}–{_pct(v['ci95'][1])} | {_pct(v.get('gap_closed'))} | {v.get('tokens', 0)} |")
    L.append(f"\nGap closed by the final playbooks: **{_pct(summary['gap_closed'])}** of (oracle − baseline). Largest drop of any criterion's pass rate: {100 * summary['max_criterion_drop']:.1f} points.\n")
    ref = summary.get("reference")
    if ref:
        L.append(f"The hand-written reference playbooks (the workflow's own, written by someone who knows the domain; dreaming never reads them) "
                 f"close {_pct(ref.get('gap_closed'))} of that gap: what a playbook over the same inputs reached here. "
                 f"The final learned playbooks reach {_pct(summary.get('reference_gain_reached'))} of the reference's gain over the baseline.\n")
    L.append("![success](success_by_version.png)\n")
    L.append("## Rubric criteria\n")
    cols = _rows(summary)  # the yardsticks too: where the final playbooks still trail the reference, criterion by criterion
    crits = sorted({k for v in cols for k in v.get("criteria", {})})
    L.append("| criterion | " + " | ".join(v["name"] for v in cols) + " |")
    L.append("|---|" + "---|" * len(cols))
    advisory = {k for v in cols for k in v.get("advisory_criteria", [])}
    for k in crits:
        name = f"{k} (advisory)" if k in advisory else k
        L.append(f"| {name} | " + " | ".join(_pct(v.get("criteria", {}).get(k)) for v in cols) + " |")
    if advisory:
        L.append("\nAdvisory criteria (weight 0) record near misses for dreaming; they are in no pass, so they count in no drop.")
    L.append("\n![criteria](criteria_by_version.png)\n")
    L.append("## Failure causes\n")
    for v in _rows(summary):
        L.append(f"- **{v['name']}**: " + ", ".join(f"{k} {n}" for k, n in v["causes"].items()))
    L.append("\n![causes](failure_causes.png)\n")
    L.append("## Nights: dreams and gates\n")
    for n in summary["nights"]:
        L.append(f"### {n['arm']} night {n['night']} (dream `{n.get('dream_id')}`)\n")
        L.append(f"Runs mined: {n.get('runs_mined', 0)}; episodes: {n.get('episodes', 0)}; promoted: {n.get('promoted')}.")
        unnamed = n.get("unnamed_failures") or []
        if unnamed:
            L.append("Failed in 2+ runs, but their accounts name no decision (only the general family tests these): "
                     + "; ".join(unnamed_outcome(u) for u in unnamed) + ".")
        g = n.get("gate") or {}
        if g:
            L.append(f"Gate on {g.get('n')} validation scenarios: current {_pct(g.get('current_success'))} vs candidate {_pct(g.get('candidate_success'))} (wins {g.get('wins')}, losses {g.get('losses')}); regressions: {g.get('regressions') or 'none'}.")
            pruned = g.get("pruned") or {}
            for i, r in enumerate(pruned.get("rounds") or [], 1):
                without = ", ".join(f"{lid} {_pct(rate)}" for lid, rate in r.get("success_without", {}).items())
                L.append(f"Leave-one-out round {i}: with every new lesson {_pct(r.get('success_with'))}; without each: {without}.")
            if pruned:
                L.append(f"Dropped by leave-one-out: {', '.join(pruned.get('dropped') or []) or 'none'}.")
            for t in g.get("tightened") or []:
                L.append(f"Moved in: `{t.get('rule')}` -> `{t.get('moved')}`: {moved_outcome(t)}.")
            if g.get("reason"):
                L.append(f"Not promoted: {g['reason']}.")
        for spec, d in (n.get("specialists") or {}).items():
            L.append(f"- `{spec}`: {dream_outcome(d)}")
        L.append("")
    L.append("## Lessons of the final playbooks (with provenance)\n")
    final = [v for v in summary["versions"] if v["arm"] == "dreaming"][-1]
    for spec, lessons in final["lessons"].items():
        L.append(f"### {spec} (v{final['playbook_versions'].get(spec)})\n")
        if not lessons:
            L.append("(no lessons)\n")
        for les in lessons:
            L.append(f"- `{les['id']}` {les['text']}  \n  dream `{les['dream_id']}`, support {les['support']}, precision {les['precision']:.2f}, lift {les['lift']:.2f}, p {les['p_value']:.2g}, helpful {les['helpful']} / harmful {les['harmful']}; evidence traces: {', '.join(les['evidence'][:5])}{' …' if len(les['evidence']) > 5 else ''}")
        L.append("")
    if ref and any(ref.get("lessons", {}).values()):
        L.append("## The reference playbooks (hand-written, for comparison)\n")
        for spec, lessons in ref["lessons"].items():
            if lessons:
                L.append(f"- `{spec}`: " + " ".join(f"`{les['id']}` {les['text']}" for les in lessons))
        L.append("")
    if pics:
        L.append("## Landings before and after\n")
        for tag, name in pics:
            L.append(f"![{tag}]({name})")
        L.append("")
    L.append("## Cost\n")
    L.append(f"Training tokens: {summary['training_tokens']}; total wall time {summary['wall_s']:.1f} s.\n")
    cost = summary.get("cost") or {}
    if cost:
        L.append("| arm | training missions (tokens) | dream validation flights (tokens) | synthesis tokens | learning tokens | test flights (tokens) | total tokens |")
        L.append("|---|---|---|---|---|---|---|")
        for arm, c in cost.items():
            L.append(f"| {arm} | {c['training_missions']} ({c['training_tokens']}) | {c['gate_flights']} ({c['gate_tokens']}) | {c['synthesis_tokens']} | "
                     f"{c['learning_tokens']} | {c['test_flights']} ({c['test_tokens']}) | {c['total_tokens']} |")
        L.append("\nLearning tokens are what the playbooks cost: the day's missions plus every validation flight the nights flew "
                 "(gate, leave-one-out, single-specialist trials) and lesson synthesis. The oracle's and the reference's test flights are in the first arm's test tokens.")
    (out / "report.md").write_text("\n".join(L) + "\n")
    return out / "report.md"
