"""Secrets planted in the environment, a tool argument and a tool result never reach anything written down.

After a run, a dream and a small campaign: every table of the store, the raw
bytes of the store file, its WAL and the checkpoint database, the report
directory, a recorded cassette, the dream statistics blob, captured logs and
the CLI's own output are scanned for the planted values.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from conftest import ROOT
from test_cli import cli

from orchestra.campaign import CampaignConfig, run_campaign
from orchestra.dreaming.job import dream
from orchestra.dreaming.stats import InductionStats
from orchestra.loader import load_workflow
from orchestra.models.policy import PolicyModel
from orchestra.models.replay import ReplayModel
from orchestra.runner import checkpoint_path, run_workflow
from orchestra.store import Store

KEY = "sk-ant-test-PLANTED-1234567890"
TOKEN = "tok-PLANTED-abcdef123"
PLANTED = (KEY, TOKEN, "PLANTED-1234567890", "PLANTED-abcdef123")
SECRETIVE = str(ROOT / "tests/graphs/secretive.py")


@pytest.fixture
def planted(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("MY_SERVICE_TOKEN", TOKEN)
    monkeypatch.setenv("ORCHESTRA_MODEL", "offline")  # a key in the env would otherwise pick Claude


def leaks(blob: bytes | str) -> list[str]:
    data = blob.encode("utf-8", "surrogateescape") if isinstance(blob, str) else blob
    return [p for p in PLANTED if p.encode() in data]


def scan_db(path: Path) -> list[str]:
    """Every cell of every table, then the raw bytes of the file and its WAL / SHM."""
    found = []
    conn = sqlite3.connect(str(path))
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables
        for t in tables:
            for row in conn.execute(f'SELECT * FROM "{t}"'):
                for cell in row:
                    if isinstance(cell, (str, bytes)) and leaks(cell):
                        found.append(f"{path.name}:{t}: {str(cell)[:200]}")
    finally:
        conn.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        f = Path(str(path) + suffix)
        if f.exists() and leaks(f.read_bytes()):
            found.append(f"{f.name}: raw bytes")
    return found


def scan_stats(store: Store) -> list[str]:
    """The dream statistics are a compressed blob: decode them and look inside."""
    found = []
    for (blob,) in store.db.execute("SELECT stats FROM dream_state").fetchall():
        st = InductionStats.from_bytes(bytes(blob))
        for t in st.tables.values():
            words = [c.name for c in t.columns] + [v for c in t.columns for v in c.vocab] + list(t.run_ids) + list(t.trace_ids) + sorted(t.dropped) + list(t.causes)
            found += [f"dream_state: {w}" for w in words if leaks(str(w))]
    return found


def test_planted_secrets_never_written_by_run_dream_campaign_or_cassette(planted, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    wf = load_workflow(SECRETIVE)
    db = tmp_path / "o.db"
    store = Store(db)
    # the key really is handled: the tool gets it as an argument and echoes it (the test is not vacuous)
    probe = run_workflow(wf, seed=1, model="offline", persist=False, checkpoint=False)
    assert KEY in json.dumps(probe.tool_log) and TOKEN in json.dumps(probe.tool_log) and KEY in json.dumps(probe.results)
    # runs with checkpoints (the default) and a recorded cassette for the pilot
    cassette = tmp_path / "cassettes" / "pilot.json"
    recorder = ReplayModel.record(PolicyModel(wf.specialist("pilot").policy, name="policy:pilot"), cassette)
    r = run_workflow(wf, seed=2, model="offline", store=store, models={"pilot": recorder})
    assert r.status in ("passed", "failed") and r.results["pilot"]["note"].endswith(KEY)
    for s in range(3, 33):
        run_workflow(wf, seed=s, model="offline", store=store)
    out = dream(wf, store, validation_seeds=list(range(1000, 1010)), model="offline")
    assert out["runs_mined"] == 31
    summary = run_campaign(wf, CampaignConfig(nights=1, missions=10, validation=5, test=5, model="offline"), db=tmp_path / "c.db", out=tmp_path / "report")
    assert summary["versions"]

    found = scan_db(db) + scan_db(checkpoint_path(store)) + scan_db(tmp_path / "c.db") + scan_stats(store) + scan_stats(Store(tmp_path / "c.db"))
    assert (tmp_path / "report" / "report.md").exists() and (tmp_path / "report" / "summary.json").exists()
    for f in sorted((tmp_path / "report").iterdir()):
        if leaks(f.read_bytes()):
            found.append(f"report/{f.name}")
    text = cassette.read_text()
    assert '"api_key"' in text or "read_conditions" in text  # the exchange with the tool argument was recorded
    if leaks(text):
        found.append("cassette")
    if leaks(caplog.text):
        found.append("logs")
    cap = capsys.readouterr()
    if leaks(cap.out + cap.err):
        found.append("captured output")
    assert not found, "planted secrets written down:\n" + "\n".join(found)


def test_cli_output_and_store_of_a_subprocess_run_hold_no_secrets(tmp_path):
    env = {"ANTHROPIC_API_KEY": KEY, "MY_SERVICE_TOKEN": TOKEN, "ORCHESTRA_MODEL": "offline"}
    db = tmp_path / "o.db"
    p = cli("run", SECRETIVE, "--seed", "3", "--db", str(db), "--json", env=env)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["results"]["pilot"]["note"].startswith("weather fetched with key")  # the secret was in the result
    found = ["run --json output"] if leaks(p.stdout + p.stderr) else []
    found += scan_db(db) + scan_db(db.with_name(db.stem + ".checkpoints.sqlite"))
    assert not found, "planted secrets written down:\n" + "\n".join(found)


def test_secrets_in_model_errors_and_synthesized_lessons_are_not_written(planted, tmp_path, caplog):
    from test_reliability_faults import Scripted, final

    from orchestra.models.base import ModelError

    caplog.set_level(logging.DEBUG)
    wf = load_workflow(SECRETIVE)
    store = Store(tmp_path / "o.db")
    broken = run_workflow(wf, seed=1, store=store, model="offline", models={"lead": Scripted(ModelError(f"401 from upstream: invalid key {KEY} (service token {TOKEN})"))})
    assert broken.status == "error" and KEY in broken.error  # the in-memory result is the caller's own
    assert "[REDACTED]" in store.get_run(broken.run_id)["error"]
    for s in range(2, 42):
        run_workflow(wf, seed=s, store=store, model="offline", checkpoint=False)
    synth = Scripted(final(deltas=[
        {"op": "ADD", "induced_rule_index": 0, "text": f"Keep output.speed_mps low; authenticate with {KEY} and {TOKEN}."},
        {"op": "ADD", "induced_rule_index": 9, "text": f"Out of range, but the log line quotes {KEY}."},
    ]))
    out = dream(wf, store, validation_seeds=list(range(1000, 1010)), model="offline", synth_model=synth)
    assert synth.requests and not leaks(json.dumps([m.model_dump() for r in synth.requests for m in r.messages]))
    assert all(not leaks(d["text"] or "") for d in out["specialists"]["pilot"]["deltas"])
    assert "dropped model delta" in caplog.text  # the rejected deltas were logged, redacted
    found = scan_db(store.path) + (["logs"] if leaks(caplog.text) else [])
    assert not found, "planted secrets written down:\n" + "\n".join(found)
