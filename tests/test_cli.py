"""The `orchestra` command: JSON output, span trees, one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "tests/graphs/tiny.py")


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "orchestra.cli", *args], capture_output=True, text=True, env=e, cwd=ROOT, timeout=120)


def test_run_json_then_traces(db):
    p = cli("run", TINY, "--seed", "1", "--db", str(db), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert {"run_id", "trace_id", "status", "specialists", "results", "verdict"} <= set(doc)
    assert doc["status"] == "passed" and doc["specialists"] == ["researcher", "accountant"]
    assert doc["verdict"]["passed"] is True and doc["verdict"]["attempts"] == 1
    assert {c["id"] for c in doc["verdict"]["criteria"]} == {"total_positive", "affordable"}

    listed = json.loads(cli("traces", "list", "--db", str(db), "--json").stdout)
    assert [r["run_id"] for r in listed] == [doc["run_id"]]
    shown = cli("traces", "show", doc["run_id"], "--db", str(db), "--json")
    spans = json.loads(shown.stdout)
    assert {"name", "span_id", "parent_id", "start", "end", "attributes"} <= set(spans[0])
    names = [s["name"] for s in spans]
    assert names[0] == "invoke_workflow tiny_trip" and "execute_tool convert" in names
    assert any(s["attributes"].get("gen_ai.agent.name") == "accountant" for s in spans)
    human = cli("traces", "show", doc["run_id"][:8], "--db", str(db))
    assert human.returncode == 0 and "invoke_agent researcher" in human.stdout


def test_orchestra_db_env_is_honoured(tmp_path):
    db = tmp_path / "env.db"
    p = cli("run", TINY, "--json", env={"ORCHESTRA_DB": str(db)})
    assert p.returncode == 0, p.stderr
    assert db.exists()


@pytest.mark.parametrize(
    "content,expect",
    [
        ("def broken(:\n", "syntax error"),
        ("import not_a_real_module_xyz\n", "ModuleNotFoundError"),
        ("x = 1\n", "no attribute 'workflow'"),
        ("workflow = 42\n", "expected an orchestra.Workflow"),
    ],
)
def test_bad_graph_modules_exit_2_with_one_line(tmp_path, content, expect):
    g = tmp_path / "g.py"
    g.write_text(content)
    p = cli("run", str(g), "--db", str(tmp_path / "o.db"))
    assert p.returncode == 2
    assert expect in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr


def test_missing_graph_bad_option_and_corrupt_store(tmp_path):
    p = cli("run", str(tmp_path / "nope.py"))
    assert p.returncode == 2 and "not found" in p.stderr
    p = cli("run", TINY, "--seed", "-3")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 1000)
    p = cli("traces", "list", "--db", str(bad))
    assert p.returncode == 2 and str(bad) in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = cli("traces", "show", "nope", "--db", str(tmp_path / "o.db"))
    assert p.returncode == 2 and "no run" in p.stderr
