"""Bad input never produces a traceback: exit 2 and one line naming the file, line or field.

The CLI runs in-process here (the same `main()` the console script calls,
with its real exception handling): any exception escaping it is a traceback
the user would have seen, and fails the test (tests/test_cli.py runs the same
paths as real subprocesses).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from conftest import ROOT

from orchestra.cli import main
from orchestra.loader import load_workflow
from orchestra.runner import run_workflow
from orchestra.store import SCHEMA_VERSION, Store

TINY = str(ROOT / "tests/graphs/tiny.py")
PILOT = str(ROOT / "tests/graphs/pilot.py")
RUBRICS = ROOT / "tests/data/rubrics"


@pytest.fixture
def orchestra(monkeypatch, capsys):
    """Run `orchestra ARGS` in-process: (exit code, stdout, stderr)."""
    monkeypatch.setenv("ORCHESTRA_MODEL", "offline")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)

    def call(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["orchestra", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def one_line_2(result: tuple[int, str, str], *expect: str) -> str:
    code, out, err = result
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for e in expect:
        assert e in lines[0], (e, lines[0])
    return lines[0]


# ---------------------------------------------------------------- graph modules

GRAPHS = {
    "syntax": ("def broken(:\n", ["g.py:1", "syntax error"]),
    "import": ("import not_a_real_module_xyz\n", ["g.py:1", "ModuleNotFoundError", "not_a_real_module_xyz"]),
    "raises": ("x = 1\nraise ValueError('bad\\nmulti\\nline config')\n", ["g.py:2", "ValueError", "bad multi line config"]),
    "no_attr": ("x = 1\n", ["g.py", "no attribute 'workflow'"]),
    "wrong_type": ("workflow = 42\n", ["g.py", "expected an orchestra.Workflow", "int"]),
    "duplicate_specialists": (
        "from pydantic import BaseModel\nfrom orchestra import Lead, Specialist, Workflow\n"
        "class O(BaseModel):\n    x: int\n"
        "a = Specialist(name='a', instructions='i', output_type=O)\n"
        "workflow = Workflow(\n    name='dup', lead=Lead(instructions='l', output_type=O),\n    specialists=(a, a),\n)\n",
        ["g.py:6", "invalid Workflow", "duplicate specialist names", "'a'"],
    ),
    "bad_specialist_name": (
        "from pydantic import BaseModel\nfrom orchestra import Specialist\n"
        "class O(BaseModel):\n    x: int\n"
        "a = Specialist(name='Bad Name', instructions='i', output_type=O)\n",
        ["g.py:5", "invalid Specialist", "name"],
    ),
    "bad_budget": (
        "from orchestra import Budget\nb = Budget(max_turns=0)\n",
        ["g.py:2", "invalid Budget", "max_turns"],
    ),
}


@pytest.mark.parametrize("case", sorted(GRAPHS))
def test_bad_graph_module(orchestra, tmp_path, case):
    content, expect = GRAPHS[case]
    g = tmp_path / "g.py"
    g.write_text(content)
    for cmd in (["run", g], ["dream", g], ["campaign", g, "--nights", "1", "--missions", "1", "--test", "1", "--validation", "1"]):
        one_line_2(orchestra(*cmd, "--db", tmp_path / "o.db"), *expect)


REFERENCES = {
    "not_a_mapping": ("reference = 42\n", ["g.py:reference", "expected a mapping of specialist name to orchestra.Playbook", "int"]),
    "unknown_specialist": ("from orchestra import Playbook\nreference = {'copilot': Playbook(specialist='copilot')}\n", ["g.py:reference", "unknown specialist 'copilot'", "pilot"]),
    "not_a_playbook": ("reference = {'pilot': ['slow down']}\n", ["g.py:reference['pilot']", "expected an orchestra.Playbook", "list"]),
    "other_specialist": ("from orchestra import Playbook\nreference = {'pilot': Playbook(specialist='copilot')}\n", ["g.py:reference['pilot']", "is for specialist 'copilot'"]),
}


@pytest.mark.parametrize("case", sorted(REFERENCES))
def test_bad_reference_playbooks(orchestra, tmp_path, case):
    """A graph module's reference playbooks are checked before any mission flies."""
    content, expect = REFERENCES[case]
    g = tmp_path / "g.py"
    g.write_text((ROOT / "tests/graphs/pilot.py").read_text().replace("HERE = Path(__file__).resolve().parent", f"HERE = Path({str(ROOT / 'tests/graphs')!r})") + "\n" + content)
    one_line_2(orchestra("campaign", g, "--nights", "1", "--missions", "1", "--test", "1", "--validation", "1", "--db", tmp_path / "o.db"), *expect)
    assert not (tmp_path / "o.db").exists() or Store(tmp_path / "o.db").db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


# ---------------------------------------------------------------- rubrics

RUBRIC_CASES = {
    "bad_yaml.yaml": ["bad_yaml.yaml:8", "(yaml)"],
    "unknown_field.yaml": ["unknown_field.yaml:11", "criteria[0].treshold"],
    "wrong_type.yaml": ["wrong_type.yaml:14", "criteria[1].weight"],
    "duplicate_id.yaml": ["duplicate_id.yaml:16", "duplicate criterion id 'fast'"],
    "bad_op.yaml": ["bad_op.yaml:", "op"],
    "missing_criteria.yaml": ["missing_criteria.yaml:", "criteria"],
}


@pytest.mark.parametrize("name", sorted(RUBRIC_CASES))
def test_rubric_check_names_file_line_and_field(orchestra, name):
    one_line_2(orchestra("rubric", "check", RUBRICS / name), *RUBRIC_CASES[name])


@pytest.mark.parametrize("text,expect", [
    ("", ["r.yaml:1", "(root)"]),
    ("- a\n- b\n", ["r.yaml:1", "(root)", "mapping"]),
    ("id: x\nid: y\n", ["r.yaml:2", "id", "duplicate key"]),
    ("id: x\nversion: 1.5\npass_threshold: 2\ncriteria: []\n", ["r.yaml:2", "version"]),
    ("\tid: x\n", ["r.yaml:1", "(yaml)"]),
])
def test_rubric_check_inline_cases(orchestra, tmp_path, text, expect):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    one_line_2(orchestra("rubric", "check", p), *expect)


def test_rubric_check_missing_and_binary_files(orchestra, tmp_path):
    one_line_2(orchestra("rubric", "check", tmp_path / "nope.yaml"), "nope.yaml:1", "cannot read")
    b = tmp_path / "bin.yaml"
    b.write_bytes(b"\xff\xfe\x00garbage")
    one_line_2(orchestra("rubric", "check", b), "bin.yaml:1")
    one_line_2(orchestra("rubric", "check", tmp_path), str(tmp_path))


def graph_with_rubric(tmp_path: Path, rubric: Path) -> Path:
    g = tmp_path / "staged.py"
    g.write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / 'tests/graphs')!r})\nfrom tiny import workflow as w\nfrom orchestra import Stage\n"
        f"workflow = w.model_copy(update={{'stages': (Stage(name='main', rubric={str(rubric)!r}),)}})\n"
    )
    return g


@pytest.mark.parametrize("name", ["unknown_field.yaml", "duplicate_id.yaml", "bad_yaml.yaml", "absent.yaml"])
def test_run_of_a_graph_whose_stage_rubric_is_bad_exits_2_naming_the_rubric(orchestra, tmp_path, name):
    g = graph_with_rubric(tmp_path, RUBRICS / name)
    expect = [f"{name}:"] + RUBRIC_CASES.get(name, [])[:1]
    one_line_2(orchestra("run", g, "--db", tmp_path / "o.db"), *expect)
    one_line_2(orchestra("campaign", g, "--nights", "1", "--missions", "1", "--test", "1", "--validation", "1", "--db", tmp_path / "c.db", "--out", tmp_path / "r"), *expect)
    # nothing half-started was left behind by the failed run
    assert Store(tmp_path / "o.db").db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_grade_with_bad_rubric_or_unknown_run(orchestra, tmp_path):
    db = tmp_path / "o.db"
    r = run_workflow(load_workflow(TINY), seed=1, db=db, model="offline", checkpoint=False)
    one_line_2(orchestra("grade", r.run_id, "--rubric", RUBRICS / "wrong_type.yaml", "--db", db), "wrong_type.yaml:14")
    one_line_2(orchestra("grade", "no-such-run", "--rubric", ROOT / "tests/graphs/tiny_rubric.yaml", "--db", db), "no run 'no-such-run'")


# ---------------------------------------------------------------- playbooks

@pytest.fixture
def pilot_store(tmp_path):
    db = tmp_path / "p.db"
    wf, store = load_workflow(PILOT), Store(db)
    for s in range(3):
        run_workflow(wf, seed=s, store=store, checkpoint=False)
    return db


@pytest.mark.parametrize("args,expect", [
    (["playbook", "show", "nobody"], ["unknown specialist 'nobody'", "pilot"]),
    (["playbook", "history", "nobody"], ["unknown specialist 'nobody'"]),
    (["playbook", "diff", "nobody", "0", "0"], ["unknown specialist 'nobody'"]),
    (["playbook", "rollback", "nobody", "0"], ["unknown specialist 'nobody'"]),
    (["playbook", "show", "pilot", "--version", "7"], ["no playbook version 7", "'pilot'"]),
    (["playbook", "diff", "pilot", "0", "7"], ["no playbook version 7"]),
    (["playbook", "rollback", "pilot", "7"], ["no playbook version 7"]),
    (["playbook", "approve", "pilot"], ["no pending playbook"]),
    (["playbook", "approve", "pilot", "3"], ["version 3 is not pending"]),
    (["playbook", "show", "pilot", "--version", "-1"], ["--version"]),
    (["playbook", "diff", "pilot", "zero", "1"], ["v1", "integer"]),
])
def test_unknown_specialist_or_version(orchestra, pilot_store, args, expect):
    one_line_2(orchestra(*args, "--db", pilot_store), *expect)
    # a refused rollback changed nothing
    assert Store(pilot_store).db.execute("SELECT COUNT(*) FROM heads").fetchone()[0] == 0


# ---------------------------------------------------------------- options

@pytest.mark.parametrize("args,expect", [
    (["run", TINY, "--seed", "-1"], ["--seed"]),
    (["run", TINY, "--model", "gpt-4"], ["unknown model 'gpt-4'"]),
    (["dream", PILOT, "--executor", "warp"], ["--executor", "warp"]),
    (["dream", PILOT, "--validation", "0"], ["--validation"]),
    (["dream", PILOT, "--workers", "0"], ["--workers"]),
    (["dream", PILOT, "--traces", "zipkin=http://x"], ["--traces"]),
    (["campaign", PILOT, "--executor", "warp"], ["--executor", "warp"]),
    (["campaign", PILOT, "--nights", "0"], ["--nights"]),
    (["campaign", PILOT, "--missions", "-3"], ["--missions"]),
    (["campaign", PILOT, "--ablation", "foo"], ["--ablation", "foo"]),
    (["campaign", PILOT, "--seed", "-1"], ["--seed"]),
    (["traces", "list", "--limit", "0"], ["--limit"]),
    (["run"], ["Missing argument", "graph"]),
    (["run", TINY, "--no-such-flag"], ["--no-such-flag"]),
    (["nosuchcommand"], ["nosuchcommand"]),
])
def test_invalid_option_values(orchestra, tmp_path, args, expect):
    one_line_2(orchestra(*args, "--db", tmp_path / "o.db") if args[0] in ("run", "dream", "campaign", "traces") and len(args) > 1 else orchestra(*args), *expect)
    assert not (tmp_path / "o.db").exists() or Store(tmp_path / "o.db").db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


# ---------------------------------------------------------------- stores

def _foreign(p: Path) -> None:
    c = sqlite3.connect(p)
    c.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    c.commit()
    c.close()


def _newer(p: Path) -> None:
    Store(p).close()
    c = sqlite3.connect(p)
    c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    c.commit()
    c.close()


def _garbage(p: Path) -> None:
    p.write_bytes(b"garbage" * 1000)


def _truncated(p: Path) -> None:
    store = Store(p)
    wf = load_workflow(TINY)
    for s in range(5):
        run_workflow(wf, seed=s, store=store, checkpoint=False)
    store.close()
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])


def _damaged_page(p: Path) -> None:
    """Header and schema intact (the store opens), the runs table's root page overwritten."""
    store = Store(p)
    wf = load_workflow(PILOT)
    for s in range(3):
        run_workflow(wf, seed=s, store=store, checkpoint=False)
    root = store.db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
    size = store.db.execute("PRAGMA page_size").fetchone()[0]
    store.close()
    with open(p, "r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\x5a" * size)


def _directory(p: Path) -> None:
    p.mkdir()


def _meta_wrong_shape(p: Path) -> None:
    c = sqlite3.connect(p)
    c.execute("CREATE TABLE meta (a, b)")
    c.commit()
    c.close()


STORES = {"foreign": (_foreign, "not an Orchestra store"), "newer": (_newer, "newer than this Orchestra"), "garbage": (_garbage, "not a usable Orchestra store"),
          "truncated": (_truncated, "not a usable Orchestra store"), "damaged_page": (_damaged_page, "not a usable Orchestra store"),
          "directory": (_directory, "directory"), "meta_wrong_shape": (_meta_wrong_shape, "not a usable Orchestra store")}


@pytest.mark.parametrize("kind", sorted(STORES))
def test_corrupt_foreign_or_newer_store(orchestra, tmp_path, kind):
    make, expect = STORES[kind]
    db = tmp_path / "x.db"
    make(db)
    before = db.read_bytes() if db.is_file() else None
    for args in (["traces", "list"], ["traces", "show", "abc"], ["run", PILOT], ["dream", PILOT, "--validation", "2"], ["playbook", "show", "pilot"], ["playbook", "history", "pilot"]):
        result = orchestra(*args, "--db", db)
        if kind == "damaged_page" and args[0] == "playbook":  # these never read the damaged runs table
            assert result[0] == 0 and not result[2], result
            continue
        one_line_2(result, str(db), expect)
    if kind in ("foreign", "newer"):
        assert db.read_bytes() == before  # a store Orchestra refuses is never written to
