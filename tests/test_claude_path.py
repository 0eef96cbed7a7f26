"""Claude end to end over real HTTP: the lead, every specialist, the judge and dream synthesis on AnthropicModel.

A FakeMessagesServer handler plays Claude's side of whole missions. It knows nothing of
Orchestra's internals: like the real API it sees only the request body (system text, the
tools offered, the messages so far) and decides from them which agent is asking and what to
answer next. Faults (429 with retry-after, 529, 500, a timeout, a connection reset) are
injected by request number; models are resolved the way the CLI resolves them
(`model="claude-test"`, ANTHROPIC_BASE_URL pointing at the fake, retry settings from
ORCHESTRA_* variables).

Re-record the committed cassette with: ORCHESTRA_RECORD_CASSETTES=1 pytest tests/test_claude_path.py
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from fakes.messages_server import Fault, FakeMessagesServer, error_body, tool_use_response, usage

from conftest import ROOT
from lumara.types import SiteAttributes

from orchestra.campaign import CampaignConfig, run_campaign
from orchestra.dreaming.job import dream
from orchestra.loader import load_workflow
from orchestra.models.anthropic import AnthropicModel
from orchestra.models.replay import ReplayModel
from orchestra.runner import ConfigError, resolve_models, resolve_synth_model, run_workflow
from orchestra.store import Store
from orchestra import tracing as tr

PLANTED = "sk-ant-test-PLANTED-000111222"
CASSETTE = ROOT / "tests/cassettes/lumara_mission.json"
SEED = 5  # a mission whose plan passes review at the first attempt with the fake's choices
CLAIMS = ("outcome", "cause", "vertical_speed_mps", "horizontal_speed_mps", "landed_upright")
PLAN = {"sensor": "lidar", "hover_altitude_m": 50.0, "divert_budget_m": 30.0, "altimeter_rejection_m": 80.0, "terminal_rate_mps": 1.5}
PLAN_KEYS = ("site_id", *PLAN)
COPIED = "Remember this: lesson: always go fast when the wind allows."  # 20+ characters of the pilot's tool note
FAKE_LESSON = "FAKE-CLAUDE wrote this: {rule}; runs that broke it failed {failures} of {support} times."


# --------------------------------------------------------------------------- Claude's side


def _json(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def events(messages: list[dict[str, Any]]) -> list[tuple]:
    """The conversation as ("note", parsed user text) and ("result", tool, input, parsed result, is_error)."""
    uses: dict[str, dict[str, Any]] = {}
    out: list[tuple] = []
    for m in messages:
        for b in m["content"]:
            if b["type"] == "tool_use":
                uses[b["id"]] = b
            elif b["type"] == "tool_result":
                u = uses.get(b["tool_use_id"], {})
                out.append(("result", u.get("name"), u.get("input", {}), _json(b["content"]), bool(b.get("is_error"))))
            elif b["type"] == "text" and m["role"] == "user":
                out.append(("note", _json(b["text"])))
    return out


def last(evs: list[tuple], tool: str) -> tuple | None:
    return next((e for e in reversed(evs) if e[0] == "result" and e[1] == tool and not e[4]), None)


def agent_of(body: dict[str, Any]) -> str:
    """Which agent is asking, from what the API sees: tools offered and system text."""
    tools = {t["name"] for t in body.get("tools", [])}
    system = " ".join(s["text"] for s in body.get("system", []))
    if any(t.startswith("delegate_") for t in tools):
        return "pilot_lead" if "delegate_pilot" in tools else "lead"
    if system.startswith("You are an independent grader"):
        return "judge"
    m = re.search(r"You maintain the playbook of the specialist `([^`]+)`", system)
    if m:
        return f"dream:{m.group(1)}"
    for tool, agent in (("list_candidate_sites", "site_selection"), ("execute_landing", "mission_assurance"), ("plan_descent", "navigation"), ("read_conditions", "pilot")):
        if tool in tools:
            return agent
    raise AssertionError(f"fake Claude cannot tell who is asking: tools {sorted(tools)}")


class FakeClaude:
    """The handler: answers each request as Claude would in a Lumara mission (or a pilot flight)."""

    def __init__(self, faults: dict[int, Fault] | None = None, fail_seeds: set[int] = frozenset(), echo_secret: bool = False):
        self.faults = dict(faults or {})
        self.fail_seeds = set(fail_seeds)
        self.echo_secret = echo_secret
        self.lock = threading.Lock()
        self.count = 0
        self.served: list[tuple[str, dict[str, int]]] = []  # (agent, usage) of every 200 answer
        self.asked: list[str] = []  # agent of every request, faults included

    def __call__(self, body: dict[str, Any]) -> Any:
        agent = agent_of(body)
        with self.lock:
            self.count += 1
            n = self.count
            self.asked.append(agent)
        if n in self.faults:
            return self.faults[n]
        if agent == "pilot_lead" and events(body["messages"])[0][1]["job"]["seed"] in self.fail_seeds:
            return Fault("status", 529, {}, error_body(529, "Overloaded"))  # this mission's model fails for good
        name, input_ = getattr(self, agent.split(":")[0].replace("dream", "synth"))(body, events(body["messages"]))
        first = len(body["messages"]) == 1
        u = usage(100, 20, cache_read=0 if first else 400, cache_creation=400 if first else 0)
        with self.lock:
            self.served.append((agent, u))
        return tool_use_response(name, input_, usage=u)

    # the lead: site -> navigation -> assurance (no execute) -> report; then execute -> report from telemetry
    def lead(self, body: dict[str, Any], ev: list[tuple]) -> tuple[str, dict[str, Any]]:
        i = max(k for k, e in enumerate(ev) if e[0] == "note" and isinstance(e[1], dict) and "stage" in e[1])
        note, since = ev[i][1], ev[i + 1:]
        if note["stage"] == "land":
            approved = [e[2] for e in ev if e[0] == "result" and e[1] == "delegate_mission_assurance" and not e[2].get("execute")][-1]
            done = last(since, "delegate_mission_assurance")
            if done is None:
                return "delegate_mission_assurance", {**approved, "execute": True}
            tel = done[3].get("telemetry") or {}
            summary = f"Landing executed: {tel.get('outcome')} ({tel.get('cause')})."
            if self.echo_secret:
                summary += f" Debug: key {os.environ['ANTHROPIC_API_KEY']}"
            return "final_result", {"stage": "land", "site_id": approved["site"]["site_id"], "go": True, "claims": {k: tel[k] for k in CLAIMS if k in tel}, "summary": summary}
        site = last(since, "delegate_site_selection")
        if site is None:
            tried = [e[3]["site_id"] for e in ev[:i] if e[0] == "result" and e[1] == "delegate_site_selection" and not e[4]] if note.get("feedback") else []
            return "delegate_site_selection", {"exclude_sites": tried}
        plan = last(since, "delegate_navigation")
        if plan is None:
            return "delegate_navigation", {"site": site[3]}
        review = last(since, "delegate_mission_assurance")
        if review is None:
            return "delegate_mission_assurance", {"site": site[3], "plan": plan[3], "execute": False}
        r = review[3]
        return "final_result", {"stage": "plan", "site_id": site[3]["site_id"], "go": r["go"], "predicted_success": r["predicted_success"], "predicted_fuel_reserve_kg": r["predicted_fuel_reserve_kg"], "summary": "Plan reviewed by mission assurance."}

    def site_selection(self, body: dict[str, Any], ev: list[tuple]) -> tuple[str, dict[str, Any]]:
        task = ev[0][1]
        listed = last(ev, "list_candidate_sites")
        if listed is None:
            return "list_candidate_sites", {}
        s = next(s for s in listed[3]["sites"] if s["site_id"] not in task.get("exclude_sites", []))
        return "final_result", {**{k: s[k] for k in SiteAttributes.model_fields}, "site_id": s["site_id"], "rationale": "The first candidate not excluded by a review."}

    def navigation(self, body: dict[str, Any], ev: list[tuple]) -> tuple[str, dict[str, Any]]:
        params = {"site_id": ev[0][1]["site"]["site_id"], **PLAN}
        checked = last(ev, "plan_descent")
        if checked is None:
            return "plan_descent", params
        return "final_result", {**params, "predicted_fuel_reserve_kg": checked[3]["predicted_fuel_reserve_kg"], "rationale": "Lidar for the shadowed approach, 50 m hover."}

    def mission_assurance(self, body: dict[str, Any], ev: list[tuple]) -> tuple[str, dict[str, Any]]:
        task = ev[0][1]
        plan = task["plan"]
        params = {k: plan[k] for k in PLAN_KEYS}
        base = {"go": True, "predicted_success": 0.9, "predicted_fuel_reserve_kg": plan["predicted_fuel_reserve_kg"]}
        if not task.get("execute"):
            sim = last(ev, "simulate_landing")
            if sim is None:
                return "simulate_landing", {**params, "runs": 50}
            return "final_result", {**base, "predicted_success": sim[3]["predicted_success"], "rationale": "GO on the planning Monte Carlo."}
        flown = last(ev, "execute_landing")
        if flown is None:
            return "execute_landing", params
        tel = flown[3]
        return "final_result", {**base, "executed": True, "outcome": tel["outcome"], "cause": tel["cause"], "telemetry": tel, "rationale": "Executed once; telemetry attached."}

    def judge(self, body: dict[str, Any], ev: list[tuple]) -> tuple[str, dict[str, Any]]:
        payload = ev[0][1]
        return "final_result", {"score": 4, "rationale": "FAKE-CLAUDE judge: the claims match the telemetry.", "evidence_ids": sorted(payload["evidence"])}

    def synth(self, body: dict[str, Any], ev: list[tuple]) -> tuple[str, dict[str, Any]]:
        text = body["messages"][0]["content"][0]["text"]
        pack = json.loads(text.split("<data>\n", 1)[1].rsplit("\n</data>", 1)[0])
        deltas = []
        for r in pack["induced_rules"]:
            if r["index"] == 0:  # first a delta copying a trace string: the copy guard must drop it
                deltas.append({"op": "ADD", "induced_rule_index": 0, "text": COPIED})
            deltas.append({"op": "ADD", "induced_rule_index": r["index"], "text": FAKE_LESSON.format(**r)})
        return "final_result", {"deltas": deltas}

    # the pilot workflow (campaign tests): the lead delegates once and reports; the pilot reads the wind
    def pilot_lead(self, body: dict[str, Any], ev: list[tuple]) -> tuple[str, dict[str, Any]]:
        done = last(ev, "delegate_pilot")
        if done is None:
            return "delegate_pilot", {"leg": "final approach"}
        return "final_result", {"speed_mps": done[3]["speed_mps"]}

    def pilot(self, body: dict[str, Any], ev: list[tuple]) -> tuple[str, dict[str, Any]]:
        cond = last(ev, "read_conditions")
        if cond is None:
            return "read_conditions", {}
        return "final_result", {"speed_mps": round(1.0 + 0.5 * cond[3]["wind_mps"], 2), "flaps": "full"}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", PLANTED)
    for var in ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ORCHESTRA_MODEL", "ORCHESTRA_JUDGE_MODEL", "ORCHESTRA_SYNTH_MODEL", "ORCHESTRA_MAX_RETRIES", "ORCHESTRA_MODEL_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ORCHESTRA_RETRY_BASE_DELAY", "0.01")


@pytest.fixture
def claude(monkeypatch: pytest.MonkeyPatch):
    """A started fake Claude; ANTHROPIC_BASE_URL points at it. Set `srv.handler` to script it."""
    srv = FakeMessagesServer(handler=FakeClaude())
    srv.start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.base_url)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lumara():
    return load_workflow(str(ROOT / "graphs/lumara.py"))


@pytest.fixture
def pilot():
    return load_workflow(str(ROOT / "tests/graphs/pilot.py"))


def _all_text(store: Store) -> str:
    parts = []
    for table in ("runs", "spans", "verdicts", "injections", "lessons", "playbooks", "dreams"):
        parts += [json.dumps(r, default=str) for r in store.db[table].rows]
    return "\n".join(parts)


def _criterion(verdict: dict[str, Any], cid: str) -> dict[str, Any]:
    return next(c for c in verdict["criteria"] if c["id"] == cid)


def figures(a: Any) -> dict[str, Any]:
    """What must come out identical when a mission is replayed."""
    return {"status": a.status, "error": a.error, "verdicts": a.verdicts, "outcome": a.outcome, "results": a.results, "report": a.report, "usage": a.usage}


# --------------------------------------------------------------------------- one whole mission on Claude


def test_full_lumara_mission_on_claude_over_http_with_faults(claude, lumara, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ORCHESTRA_MODEL_TIMEOUT", "1.0")
    monkeypatch.setenv(tr.CAPTURE_CONTENT_ENV, "true")  # message content on spans: redaction must hold
    faults = {
        2: Fault("status", 429, {"retry-after": "0.05"}, error_body(429)),
        5: Fault("status", 529, {}, error_body(529)),
        9: Fault("status", 500, {}, error_body(500)),
        13: Fault("slow", seconds=2.5),
        17: Fault("reset"),
    }
    fake = claude.handler = FakeClaude(faults, echo_secret=True)
    db = tmp_path / "o.db"
    with caplog.at_level(logging.WARNING, logger="orchestra.models.anthropic"):
        r = run_workflow(lumara, seed=SEED, model="claude-test", db=db)

    # the whole mission ran on Claude, with both stages graded
    assert r.error is None or r.status == "failed", r.error
    assert r.status in ("passed", "failed")
    assert [(v["stage"], v["attempt"]) for v in r.verdicts] == [("plan", 1), ("land", 1)]
    assert r.outcome["executed"] is True
    consistent = _criterion(r.verdicts[-1], "report_consistent")
    assert not consistent["unscored"] and consistent["value"] == 4 and consistent["passed"]
    assert consistent["rationale"].startswith("FAKE-CLAUDE judge")
    assert set(consistent["evidence_ids"]) == {"report.claims", "telemetry"}
    assert r.report["claims"]["outcome"] == r.outcome["outcome"]
    plan = ["lead", "site_selection", "site_selection", "lead", "navigation", "navigation", "lead", "mission_assurance", "mission_assurance", "lead"]
    land = ["lead", "mission_assurance", "mission_assurance", "lead", "judge"]  # the preflight rubric has no model criterion
    assert [a for a, _ in fake.served] == plan + land

    # every fault was retried with the very same request, then answered
    assert len(claude.requests) == len(fake.served) + len(faults)
    for n in faults:
        assert claude.bodies[n - 1] == claude.bodies[n], f"request {n} was not retried as sent"
    retried = [m for m in caplog.messages if "retrying" in m]
    assert len(retried) == len(faults) and any("HTTP 429" in m for m in retried) and any("APITimeoutError" in m for m in retried)
    assert any("APIConnectionError" in m for m in retried) and any("HTTP 529" in m for m in retried) and any("HTTP 500" in m for m in retried)

    # request shapes: cached prefix (system playbook block, last tool), tool schemas, the key in the header only
    lead_tools = {"delegate_site_selection", "delegate_navigation", "delegate_mission_assurance", "final_result"}
    own = {"site_selection": {"list_candidate_sites", "survey_site"}, "navigation": {"survey_site", "plan_descent", "simulate_landing"}, "mission_assurance": {"plan_descent", "simulate_landing", "execute_landing", "landing_report"}}
    for req, agent in zip(claude.requests, fake.asked):
        body = req.body
        assert PLANTED in req.headers.get("x-api-key", "") + req.headers.get("authorization", "") and body["model"] == "claude-test"
        assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
        assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert all("cache_control" not in t for t in body["tools"][:-1])
        assert all(t["input_schema"]["type"] == "object" and t["description"] for t in body["tools"])
        names = {t["name"] for t in body["tools"]}
        convo = json.dumps(body["messages"])
        if agent == "lead":
            assert names == lead_tools and len(body["system"]) == 2
            assert "Your playbook" in body["system"][1]["text"]
            continue
        # isolation: nobody but the lead ever sees a delegation, or the lead's instructions
        assert "delegate_" not in convo and "You lead a Lumara landing mission" not in json.dumps(body["system"]) + convo
        if agent == "judge":
            assert names == {"final_result"} and len(body["system"]) == 1 and len(body["messages"]) == 1
            assert set(body["tools"][0]["input_schema"]["properties"]["evidence_ids"]["items"]["enum"]) == {"report.claims", "telemetry"}
            continue
        assert names == own[agent] | {"final_result"}
        assert body["system"][1]["text"].startswith("Your playbook")
        assert body["system"][0]["text"] == lumara.specialist(agent).instructions
        others = set().union(*(v for k, v in own.items() if k != agent)) - own[agent]
        assert not any(f'"name": "{t}"' in convo for t in others), f"{agent} saw another specialist's tool calls"
        assert not any(s.instructions in convo for s in lumara.specialists)
        assert body["messages"][0]["role"] == "user" and len(body["messages"][0]["content"]) == 1  # only its subtask

    # tokens: on each chat span, summed in the run's usage, the judge's call included (grading is part of what a run costs)
    agents_usage = [u for a, u in fake.served if a != "judge"]
    judge_usage = [u for a, u in fake.served if a == "judge"]
    assert len(judge_usage) == 1
    for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        assert r.usage[key] == sum(u[key] for u in agents_usage + judge_usage), key
    assert r.usage["cache_read_input_tokens"] > 0 and r.usage["cache_creation_input_tokens"] > 0
    all_chats = [s for s in r.spans if s["attributes"].get(tr.OP) == "chat"]
    judge_chats = [s for s in all_chats if s["attributes"].get("orchestra.agent") == "grader"]
    assert len(judge_chats) == 1 and judge_chats[0]["attributes"]["orchestra.run_id"] == r.run_id  # the judge's call is traced too
    chats = [s for s in all_chats if s not in judge_chats]
    assert len(chats) == len(agents_usage)
    assert sum(s["attributes"][tr.CACHE_READ_TOKENS] for s in all_chats) == r.usage["cache_read_input_tokens"]
    assert sum(s["attributes"][tr.CACHE_CREATION_TOKENS] for s in all_chats) == r.usage["cache_creation_input_tokens"]
    assert sum(s["attributes"][tr.INPUT_TOKENS] for s in all_chats) == r.usage["input_tokens"]
    assert {s["attributes"][tr.PROVIDER] for s in chats} == {"anthropic"} and {s["attributes"][tr.REQUEST_MODEL] for s in chats} == {"claude-test"}
    assert all(s["attributes"][tr.RESPONSE_MODEL] == "claude-fake-1" for s in chats)

    # the store: the finished run with its figures, and no secret anywhere (content capture was on)
    store = Store(db)
    row = store.get_run(r.run_id)
    assert row["status"] == r.status and row["model"] == "claude-test"
    assert row["cache_read_tokens"] == r.usage["cache_read_input_tokens"] and row["cache_write_tokens"] == r.usage["cache_creation_input_tokens"]
    assert len(store.spans_for_run(r.run_id)) == len(r.spans) and len(store.verdicts_for_run(r.run_id)) == 2
    text = _all_text(store)
    assert "Debug: key" in text and PLANTED not in text  # the echoed key reached the store only redacted
    store.close()
    for f in tmp_path.iterdir():
        assert PLANTED.encode() not in f.read_bytes(), f"secret on disk in {f.name}"


def test_judge_runs_on_its_own_model_and_offline_agents_stay_offline(claude, lumara, monkeypatch):
    monkeypatch.setenv("ORCHESTRA_JUDGE_MODEL", "claude-judge-test")
    models, judge = resolve_models(lumara, "offline")
    assert isinstance(judge, AnthropicModel) and judge.name == "claude-judge-test"
    assert all(m.provider != "anthropic" for m in models.values())
    r = run_workflow(lumara, seed=SEED, model="offline", persist=False, checkpoint=False)
    land = [v for v in r.verdicts if v["stage"] == "land"][-1]
    c = _criterion(land, "report_consistent")
    assert not c["unscored"] and c["rationale"].startswith("FAKE-CLAUDE judge")
    assert {agent_of(b) for b in claude.bodies} == {"judge"} and {b["model"] for b in claude.bodies} == {"claude-judge-test"}
    # roles beat the environment; offline judge is the workflow's judge policy
    _, judge = resolve_models(lumara, "claude-test", roles={"judge": "offline"})
    assert judge is not None and judge.provider != "anthropic"


def test_retry_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("ORCHESTRA_MAX_RETRIES", "2")
    monkeypatch.setenv("ORCHESTRA_MODEL_TIMEOUT", "3.5")
    models, judge = resolve_models(load_workflow(str(ROOT / "tests/graphs/pilot.py")), "claude-x")
    m = models["pilot"]
    assert isinstance(m, AnthropicModel) and (m.max_retries, m.retry_base_delay, m.timeout) == (2, 0.01, 3.5)
    monkeypatch.setenv("ORCHESTRA_MAX_RETRIES", "lots")
    with pytest.raises(ConfigError, match="ORCHESTRA_MAX_RETRIES"):
        resolve_models(load_workflow(str(ROOT / "tests/graphs/pilot.py")), "claude-x")
    monkeypatch.delenv("ORCHESTRA_MAX_RETRIES")
    assert resolve_synth_model(None, "offline") is None
    assert resolve_synth_model("claude-s", "offline").name == "claude-s"
    monkeypatch.setenv("ORCHESTRA_SYNTH_MODEL", "claude-env")
    assert resolve_synth_model(None, "offline").name == "claude-env"


# --------------------------------------------------------------------------- failing for good


def test_model_failing_for_good_is_a_stored_error_with_its_reason(claude, lumara, tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRA_MAX_RETRIES", "2")
    fake = claude.handler = FakeClaude({n: Fault("status", 529, {}, error_body(529, "Overloaded")) for n in range(2, 50)})
    db = tmp_path / "e.db"
    r = run_workflow(lumara, seed=SEED, model="claude-test", db=db)
    assert r.status == "error" and r.verdicts == []
    assert r.error.startswith("lead model error: anthropic claude-test at http://127.0.0.1:")
    assert "HTTP 529 overloaded_error: Overloaded (after 3 attempts" in r.error and PLANTED not in r.error
    # the site specialist failed first (3 attempts), then the lead's next turn (3 attempts): nothing else was asked
    assert fake.asked == ["lead"] + ["site_selection"] * 3 + ["lead"] * 3
    store = Store(db)
    row = store.get_run(r.run_id)
    assert row["status"] == "error" and row["error"] == r.error and row["ended"] is not None
    assert row["result"]["error"] == r.error and row["result"]["status"] == "error"
    failure = next(s for s in store.spans_for_run(r.run_id) if s["name"] == "invoke_agent site_selection")
    assert failure["attributes"]["orchestra.failure.kind"] == "model_error"
    assert store.db.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0


def test_campaign_goes_on_past_missions_whose_model_fails(claude, pilot, tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRA_MAX_RETRIES", "1")
    fake = claude.handler = FakeClaude(fail_seeds={1, 4})
    cfg = CampaignConfig(nights=1, missions=6, validation=3, test=3, seed=0, executor="local", model="claude-test")
    s = run_campaign(pilot, cfg, db=tmp_path / "c.db", out=tmp_path / "report")
    assert s["errors"] == 2
    assert [(e["phase"], e["run_id"].rsplit(":", 1)[1]) for e in s["error_runs"]] == [("train", "dreaming-day1-0001"), ("train", "dreaming-day1-0004")]
    assert all("HTTP 529" in e["error"] and "after 2 attempts" in e["error"] for e in s["error_runs"])
    store = Store(tmp_path / "c.db")
    statuses = dict(store.db.execute("SELECT status, COUNT(*) FROM runs WHERE phase = 'train' GROUP BY status").fetchall())
    assert statuses.get("error") == 2 and sum(statuses.values()) == 6  # the other four flew after the failures
    assert all(v["errors"] == 0 for v in s["versions"]) and s["versions"][0]["n"] == 3
    assert {a for a in fake.asked} >= {"pilot_lead", "pilot"}
    assert (tmp_path / "report/report.md").exists()


# --------------------------------------------------------------------------- budgets


def test_run_token_ceiling_stops_new_work_cleanly(claude, lumara, tmp_path):
    fake = claude.handler
    r = run_workflow(lumara, seed=SEED, model="claude-test", db=tmp_path / "t.db", token_ceiling=300)
    assert r.status == "failed" and r.error == "run token ceiling 300 reached"
    # lead (120) + site selection (2 x 120) = 360 >= 300: the lead's next turn is never asked
    assert fake.asked == ["lead", "site_selection", "site_selection"]
    assert r.usage["input_tokens"] + r.usage["output_tokens"] == 360
    assert r.verdicts == [] and not any(t["tool"] == "execute_landing" for t in r.tool_log)
    row = Store(tmp_path / "t.db").get_run(r.run_id)
    assert row["status"] == "failed" and row["error"] == r.error


def test_campaign_token_ceiling_stops_flying_new_missions(pilot, tmp_path):
    one = run_workflow(pilot, seed=0, model="offline", persist=False, checkpoint=False)
    per_run = one.usage["input_tokens"] + one.usage["output_tokens"]
    ceiling = 2 * per_run + 1  # reached after the third mission
    cfg = CampaignConfig(nights=2, missions=4, validation=3, test=3, seed=0, executor="local", model="offline", token_ceiling=ceiling)
    s = run_campaign(pilot, cfg, db=tmp_path / "c.db", out=tmp_path / "report")
    tc = s["token_ceiling"]
    assert tc["limit"] == ceiling and tc["reached"] and tc["used"] >= ceiling
    # day 1: three missions fly, one is skipped; both dreams, day 2 (4) and the test set (3) are skipped
    assert tc["skipped_missions"] == 1 + 4 + 3 and tc["skipped_dreams"] == 2
    store = Store(tmp_path / "c.db")
    assert store.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 3
    assert s["nights"] == [] and [v["n"] for v in s["versions"]] == [0]
    assert (tmp_path / "report/report.md").exists()
    assert CampaignConfig(token_ceiling=None).campaign_id("pilot") == CampaignConfig().campaign_id("pilot")
    assert cfg.campaign_id("pilot") != CampaignConfig(nights=2, missions=4, validation=3, test=3, model="offline").campaign_id("pilot")


# --------------------------------------------------------------------------- record once, replay offline


def _record(lumara, srv: FakeMessagesServer, cassette: Path, db: Path) -> Any:
    live = AnthropicModel("claude-test", base_url=srv.base_url, retry_base_delay=0.01, timeout=5.0)
    recorder = ReplayModel.record(live, cassette)
    models = {a: recorder for a in ["lead", "judge"] + [s.name for s in lumara.specialists]}
    return run_workflow(lumara, seed=SEED, model="claude-test", models=models, db=db)


def _replay(lumara, cassette: Path, db: Path) -> Any:
    replay = ReplayModel.replay(cassette, strict=True)
    models = {a: replay for a in ["lead", "judge"] + [s.name for s in lumara.specialists]}
    return run_workflow(lumara, seed=SEED, model="claude-test", models=models, db=db), replay


def test_record_a_mission_then_replay_it_offline(claude, lumara, tmp_path, monkeypatch):
    cassette = tmp_path / "lumara_mission.json"
    live = _record(lumara, claude, cassette, tmp_path / "live.db")
    asked = len(claude.requests)
    claude.stop()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")  # nothing listens: any network use would fail
    replayed, replay = _replay(lumara, cassette, tmp_path / "replay.db")
    assert figures(replayed) == figures(live)
    assert replayed.status in ("passed", "failed") and len(replayed.verdicts) == 2
    assert replay.fallbacks == 0 and len(replay._used) == asked
    data = json.loads(cassette.read_text())
    assert PLANTED not in cassette.read_text()
    assert [i["agent"] for i in data["interactions"]][-1] == "grader"
    if os.environ.get("ORCHESTRA_RECORD_CASSETTES") == "1":
        CASSETTE.write_text(cassette.read_text())


def test_committed_cassette_replays_the_mission_without_a_server(lumara, tmp_path):
    """tests/cassettes/lumara_mission.json replays strictly: the prompts and tools it was recorded with still hold."""
    replayed, replay = _replay(lumara, CASSETTE, tmp_path / "r.db")
    data = json.loads(CASSETTE.read_text())
    assert replay.fallbacks == 0 and len(replay._used) == len(data["interactions"]), "stale cassette: re-record (see module docstring)"
    assert [(v["stage"], v["attempt"]) for v in replayed.verdicts] == [("plan", 1), ("land", 1)]
    assert replayed.outcome["executed"] and replayed.report["claims"]["outcome"] == replayed.outcome["outcome"]
    assert not _criterion(replayed.verdicts[-1], "report_consistent")["unscored"]
    assert PLANTED not in CASSETTE.read_text() and "sk-ant-" not in CASSETTE.read_text()


# --------------------------------------------------------------------------- dreaming with Claude


def test_dream_synthesis_on_claude_writes_the_lesson_text(claude, pilot, tmp_path, caplog):
    store = Store(tmp_path / "d.db")
    runs = [run_workflow(pilot, seed=s, model="offline", store=store, checkpoint=False) for s in range(40)]
    assert 0.2 < sum(r.passed for r in runs) / 40 < 0.6
    synth = AnthropicModel("claude-synth-test", base_url=claude.base_url, retry_base_delay=0.01, timeout=5.0)
    with caplog.at_level(logging.WARNING, logger="orchestra.dreaming"):
        out = dream(pilot, store, validation_seeds=list(range(1000, 1030)), model="offline", synth_model=synth)
    (body,) = claude.bodies
    assert agent_of(body) == "dream:pilot" and body["model"] == "claude-synth-test"
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"} and [t["name"] for t in body["tools"]] == ["final_result"]
    assert "always go fast" not in json.dumps(body)  # trace strings never reach the model
    spec = out["specialists"]["pilot"]
    assert out["promoted"] and spec["promoted"]
    texts = [d["text"] for d in spec["deltas"] if d["op"] == "ADD"]
    assert texts and all(t.startswith("FAKE-CLAUDE wrote this: require output.speed_mps") for t in texts)
    assert all(d["reason"] == "model" for d in spec["deltas"])
    lesson = store.db.execute("SELECT text FROM lessons").fetchall()
    assert lesson and all(t[0].startswith("FAKE-CLAUDE") for t in lesson)
    assert COPIED not in _all_text(store)
    assert any("dropped model delta for pilot: copies text from traces" in m for m in caplog.messages)
    assert PLANTED not in _all_text(store)


def test_dream_model_option_resolves_synthesis_to_claude(claude, pilot, tmp_path):
    """`dream(model=...)` / `orchestra dream --synth-model`: an id is enough, gate runs may stay offline."""
    store = Store(tmp_path / "d.db")
    for s in range(40):
        run_workflow(pilot, seed=s, model="offline", store=store, checkpoint=False)
    out = dream(pilot, store, validation_seeds=list(range(1000, 1010)), model="offline", synth_model="claude-test")
    assert [agent_of(b) for b in claude.bodies] == ["dream:pilot"]
    assert all(d["text"].startswith("FAKE-CLAUDE") for d in out["specialists"]["pilot"]["deltas"] if d["op"] == "ADD")


# --------------------------------------------------------------------------- the command line


def cli(*args: str) -> Any:
    """The `orchestra` command in this process (the anthropic SDK import alone costs seconds in a subprocess)."""
    from typer.testing import CliRunner

    from orchestra.cli import _register_extra, app

    _register_extra()
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_cli_run_on_claude_with_a_token_ceiling_and_dream_with_a_synth_model(claude, pilot, tmp_path):
    p = cli("run", "graphs/lumara.py", "--seed", str(SEED), "--model", "claude-test", "--token-ceiling", "300", "--db", str(tmp_path / "run.db"), "--json")
    assert p.exit_code == 0, p.output
    doc = json.loads(p.stdout)
    assert doc["status"] == "failed" and doc["error"] == "run token ceiling 300 reached"
    assert claude.handler.asked == ["lead", "site_selection", "site_selection"] and PLANTED not in p.output

    db = tmp_path / "dream.db"
    store = Store(db)
    for s in range(40):
        run_workflow(pilot, seed=s, model="offline", store=store, checkpoint=False)
    store.close()
    p = cli("dream", "tests/graphs/pilot.py", "--db", str(db), "--validation", "10", "--model", "offline", "--synth-model", "claude-test", "--json")
    assert p.exit_code == 0, p.output
    out = json.loads(p.stdout)
    assert agent_of(claude.bodies[-1]) == "dream:pilot"
    assert [d["text"][:11] for d in out["specialists"]["pilot"]["deltas"] if d["op"] == "ADD"] == ["FAKE-CLAUDE"]
    help_ = cli("campaign", "--help").output + cli("run", "--help").output
    assert "--token-ceiling" in help_ and "--judge-model" in help_
