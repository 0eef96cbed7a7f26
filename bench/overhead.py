"""Orchestration + tracing overhead per agent turn, against a bare LangGraph graph.

Both run the same specialist/tool calls (the tiny trip workflow's policies and
tools); the bare graph calls them directly in LangGraph nodes. Prints JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from langgraph.graph import END, START, StateGraph  # noqa: E402

from orchestra.loader import load_workflow  # noqa: E402
from orchestra.runner import run_workflow  # noqa: E402
from orchestra.store import Store  # noqa: E402


class S(TypedDict, total=False):
    job: dict
    facts: dict
    total: float


def bare_graph(tools: dict[str, Any]) -> Any:
    def research(state: S) -> S:
        return {"facts": tools["lookup_city"].fn(type("C", (), {"state": {}})(), state["job"]["city"])}

    def account(state: S) -> S:
        f = state["facts"]
        return {"total": tools["convert"].fn(f["daily_cost"] * state["job"]["days"], f["currency"])["usd"]}

    g = StateGraph(S)
    g.add_node("research", research)
    g.add_node("account", account)
    g.add_edge(START, "research")
    g.add_edge("research", "account")
    g.add_edge("account", END)
    return g.compile()


def main(n: int = 200) -> dict[str, Any]:
    wf = load_workflow(str(ROOT / "tests/graphs/tiny.py"))
    tools = {t.name: t for s in wf.specialists for t in s.tools}
    bare = bare_graph(tools)
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "o.db")
        r = run_workflow(wf, seed=0, store=store, checkpoint=False)
        turns = sum(1 for s in r.spans if s["name"].startswith("chat "))
        for _ in range(20):
            bare.invoke({"job": wf.make_job(0)})
            run_workflow(wf, seed=0, store=store, checkpoint=False)
        t = time.perf_counter()
        for i in range(n):
            bare.invoke({"job": wf.make_job(i)})
        bare_s = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for i in range(n):
            run_workflow(wf, seed=i, store=store, checkpoint=False)
        orch_s = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for i in range(n // 4):
            run_workflow(wf, seed=i, store=store, checkpoint=True, durability="exit")
        orch_ckpt_s = (time.perf_counter() - t) / (n // 4)
    return {
        "bench": "overhead",
        "runs": n,
        "agent_turns_per_run": turns,
        "bare_langgraph_ms_per_run": round(bare_s * 1e3, 3),
        "orchestra_ms_per_run": round(orch_s * 1e3, 3),
        "orchestra_checkpointed_ms_per_run": round(orch_ckpt_s * 1e3, 3),
        "overhead_ms_per_turn": round((orch_s - bare_s) * 1e3 / turns, 3),
        "overhead_ms_per_turn_checkpointed": round((orch_ckpt_s - bare_s) * 1e3 / turns, 3),
        "ratio_to_bare_langgraph": round(orch_s / bare_s, 2),
        "goal_ms_per_turn": 1.0,
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)))
