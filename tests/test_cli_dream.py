"""`orchestra dream` and `orchestra playbook ...` on a real store."""

from __future__ import annotations

import json

from conftest import ROOT
from test_cli import cli

from orchestra.loader import load_workflow
from orchestra.runner import run_workflow
from orchestra.store import Store

PILOT = str(ROOT / "tests/graphs/pilot.py")


def seed_runs(db, n=40):
    wf = load_workflow(PILOT)
    store = Store(db)
    for s in range(n):
        run_workflow(wf, seed=s, store=store, checkpoint=False)


def test_dream_review_approve_show_diff_rollback(db, tmp_path):
    seed_runs(db)
    p = cli("dream", PILOT, "--db", str(db), "--validation", "20", "--review", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert {"dream_id", "specialists", "gate", "promoted"} <= set(doc)
    spec = doc["specialists"]["pilot"]
    assert spec["candidate_version"] == 1 and spec["status"] == "pending" and not spec["promoted"]
    assert spec["deltas"] and spec["deltas"][0]["op"] == "ADD"

    shown = json.loads(cli("playbook", "show", "pilot", "--db", str(db), "--json").stdout)
    assert shown["version"] == 0 and shown["lessons"] == []
    ok = cli("playbook", "approve", "pilot", "--db", str(db), "--json")
    assert ok.returncode == 0, ok.stderr
    shown = json.loads(cli("playbook", "show", "pilot", "--db", str(db), "--json").stdout)
    assert shown["version"] == 1 and shown["active"]
    lesson = shown["lessons"][0]
    assert lesson["dream_id"] == doc["dream_id"] and lesson["evidence"] and lesson["support"] >= 4

    hist = json.loads(cli("playbook", "history", "pilot", "--db", str(db), "--json").stdout)
    assert [(h["version"], h["active"]) for h in hist] == [(0, False), (1, True)]
    diff = json.loads(cli("playbook", "diff", "pilot", "0", "1", "--db", str(db), "--json").stdout)
    assert [x["id"] for x in diff["added"]] == [lesson["id"]] and diff["removed"] == []

    run = json.loads(cli("run", PILOT, "--seed", "77", "--db", str(db), "--json").stdout)
    assert run["playbooks"]["pilot"] == {"playbook_version": 1, "lesson_ids": [lesson["id"]]}

    rb = cli("playbook", "rollback", "pilot", "0", "--db", str(db), "--json")
    assert json.loads(rb.stdout) == {"specialist": "pilot", "from": 1, "active": 0}
    out = tmp_path / "pb"
    assert cli("playbook", "export", "--markdown", str(out), "--db", str(db)).returncode == 0
    assert (out / "pilot.md").read_text().startswith("# pilot playbook v0")


def test_dream_prints_each_specialists_outcome_in_words(db):
    seed_runs(db)
    first = cli("dream", PILOT, "--db", str(db), "--validation", "20")
    assert first.returncode == 0, first.stderr
    assert "  pilot: v1 promoted over v0 (ADD L" in first.stdout
    again = cli("dream", PILOT, "--db", str(db), "--validation", "20")  # no new run: the kept statistics give the same rule
    assert again.returncode == 0, again.stderr
    assert "  pilot: 1 rule induced, none changed the playbook; v1 stays" in again.stdout


def test_playbook_errors_are_one_line(db):
    seed_runs(db, 2)
    p = cli("playbook", "show", "nobody", "--db", str(db))
    assert p.returncode == 2 and "unknown specialist 'nobody'" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = cli("playbook", "show", "pilot", "--version", "9", "--db", str(db))
    assert p.returncode == 2 and "no playbook version 9" in p.stderr
    p = cli("playbook", "approve", "pilot", "--db", str(db))
    assert p.returncode == 2 and "no pending playbook" in p.stderr
    p = cli("dream", PILOT, "--db", str(db), "--executor", "warp")
    assert p.returncode == 2 and "--executor" in p.stderr
