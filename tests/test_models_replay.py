"""ReplayModel: record through AnthropicModel against the fake server, replay offline, no secrets on disk."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fakes.messages_server import FakeMessagesServer, text_response, tool_use_response, usage

from orchestra.models.anthropic import AnthropicModel
from orchestra.models.base import (
    Message,
    ModelError,
    ModelRequest,
    ModelResponse,
    SystemBlock,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from orchestra.models.policy import Call, PolicyModel
from orchestra.models.replay import ReplayModel, request_hash

PLANTED = "sk-ant-test-PLANTED-123456"
CASSETTES = Path(__file__).parent / "cassettes"
TOOLS = [ToolSpec(name="terrain", description="Terrain at a site.", input_schema={"type": "object"})]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", PLANTED)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def first(agent: str, task: str) -> ModelRequest:
    return ModelRequest(
        agent=agent,
        system=[SystemBlock(text=f"You are {agent}."), SystemBlock(text="Playbook: none yet.", cache=True)],
        messages=[Message.user(task)],
        tools=TOOLS,
    )


def followup(req: ModelRequest, resp: ModelResponse, result: str) -> ModelRequest:
    use = resp.tool_uses[0]
    msgs = [*req.messages, Message(role="assistant", content=resp.content), Message(role="user", content=[ToolResultBlock(tool_use_id=use.id, content=result)])]
    return req.model_copy(update={"messages": msgs})


def conversation(model) -> list[ModelResponse]:
    """Two agents, two turns each: the exchanges an agent loop would make."""
    out = []
    for agent, task in (("navigator", '{"site": "A"}'), ("assurance", f"check it; creds {PLANTED}")):
        req = first(agent, task)
        resp = model.complete(req)
        out.append(resp)
        out.append(model.complete(followup(req, resp, '{"slope": 4.2}')))
    return out


def script(srv: FakeMessagesServer) -> None:
    srv.script(
        tool_use_response("terrain", {"site": "A"}, id="toolu_nav1", usage=usage(200, 30, cache_creation=180)),
        text_response("Site A is fine.", usage=usage(240, 12, cache_read=180)),
        tool_use_response("terrain", {"site": "A"}, id="toolu_asr1", text=f"I echo {PLANTED}"),
        text_response("Assured."),
    )


def test_record_then_replay_offline_is_identical(tmp_path: Path) -> None:
    cassette = tmp_path / "run.json"
    with FakeMessagesServer() as srv:
        script(srv)
        live = AnthropicModel("claude-test", base_url=srv.base_url, retry_base_delay=0.01)
        recorder = ReplayModel.record(live, cassette)
        recorded = conversation(recorder)
    assert recorder.name == "claude-test" and recorder.provider == "anthropic"
    replay = ReplayModel.replay(cassette)
    replayed = conversation(replay)
    assert [replayed[i] for i in (0, 1, 3)] == [recorded[i] for i in (0, 1, 3)]
    assert replayed[2].tool_uses == recorded[2].tool_uses and replayed[2].usage == recorded[2].usage
    assert PLANTED in recorded[2].text and replayed[2].text == "I echo [REDACTED]"
    assert replay.name == "claude-test" and replay.provider == "anthropic" and replay.fallbacks == 0


def test_cassette_holds_no_planted_key(tmp_path: Path) -> None:
    cassette = tmp_path / "run.json"
    with FakeMessagesServer() as srv:
        script(srv)
        conversation(ReplayModel.record(AnthropicModel("claude-test", base_url=srv.base_url), cassette))
        assert any(PLANTED in r.headers.get("authorization", "") + r.headers.get("x-api-key", "") for r in srv.requests)
    text = cassette.read_text()
    assert PLANTED not in text and "PLANTED-123456" not in text
    assert "[REDACTED]" in text
    data = json.loads(text)
    assert data["version"] == 1 and len(data["interactions"]) == 4
    assert {i["agent"] for i in data["interactions"]} == {"navigator", "assurance"}
    assert all(set(i) == {"agent", "request_hash", "request", "response"} for i in data["interactions"])


def test_request_hash_ignores_tool_use_ids_not_content() -> None:
    def convo(tool_id: str, result: str) -> ModelRequest:
        return first("nav", "task").model_copy(update={"messages": [
            Message.user("task"),
            Message(role="assistant", content=[ToolUseBlock(id=tool_id, name="terrain", input={"site": "A"})]),
            Message(role="user", content=[ToolResultBlock(tool_use_id=tool_id, content=result)]),
        ]})

    assert request_hash(convo("toolu_1", "ok")) == request_hash(convo("toolu_zz", "ok"))
    assert request_hash(convo("toolu_1", "ok")) != request_hash(convo("toolu_1", "bad"))
    assert request_hash(first("nav", "task")) != request_hash(first("asr", "task"))
    with_rules = first("nav", "task").model_copy(update={"rules": [{"id": "r1"}]})
    assert request_hash(with_rules) == request_hash(first("nav", "task"))


def policy(ctx) -> object:
    return Call("terrain", {"site": ctx.task["site"]}) if not ctx.exchanges else {"site": ctx.task["site"], "ok": True}


def test_fallback_to_agent_order_and_strict_mode(tmp_path: Path) -> None:
    cassette = tmp_path / "p.json"
    rec = ReplayModel.record(PolicyModel(policy, name="policy:nav"), cassette)
    recorded = rec.complete(first("nav", '{"site": "A"}'))
    replay = ReplayModel.replay(cassette)
    drifted = first("nav", '{"site": "A", "note": "prompt changed"}')
    assert replay.complete(drifted) == recorded and replay.fallbacks == 1
    with pytest.raises(ModelError, match=r"'nav'.*p\.json"):
        replay.complete(drifted)
    with pytest.raises(ModelError, match=r"agent 'nav'.*cassette .*p\.json"):
        ReplayModel.replay(cassette, strict=True).complete(drifted)


def test_unknown_agent_names_agent_and_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "p.json"
    ReplayModel.record(PolicyModel(policy), cassette).complete(first("nav", '{"site": "A"}'))
    with pytest.raises(ModelError) as info:
        ReplayModel.replay(cassette).complete(first("grader", "{}"))
    assert "'grader'" in str(info.value) and str(cassette) in str(info.value)


def test_identical_request_asked_again_reuses_answer(tmp_path: Path) -> None:
    cassette = tmp_path / "p.json"
    req = first("nav", '{"site": "A"}')
    recorded = ReplayModel.record(PolicyModel(policy), cassette).complete(req)
    replay = ReplayModel.replay(cassette, strict=True)
    assert replay.complete(req) == recorded and replay.complete(req) == recorded


def test_recorded_errors_replay_as_errors(tmp_path: Path) -> None:
    cassette = tmp_path / "e.json"
    with FakeMessagesServer() as srv:
        srv.fail_next(400)
        rec = ReplayModel.record(AnthropicModel("claude-test", base_url=srv.base_url), cassette)
        with pytest.raises(ModelError, match="400"):
            rec.complete(first("nav", "x"))
    with pytest.raises(ModelError, match="400 invalid_request_error"):
        ReplayModel.replay(cassette).complete(first("nav", "x"))


def test_bad_cassettes_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        ReplayModel.replay(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 99, "interactions": []}')
    with pytest.raises(ModelError, match="unsupported"):
        ReplayModel.replay(bad)


def test_concurrent_recording_keeps_every_interaction(tmp_path: Path) -> None:
    cassette = tmp_path / "c.json"
    rec = ReplayModel.record(PolicyModel(policy), cassette)
    threads = [threading.Thread(target=rec.complete, args=(first(f"agent{i}", '{"site": "A"}'),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = json.loads(cassette.read_text())
    assert sorted(i["agent"] for i in data["interactions"]) == sorted(f"agent{i}" for i in range(8))


def test_checked_in_cassette_still_replays() -> None:
    """Guards the on-disk format: a cassette recorded against the fake server must keep loading."""
    replay = ReplayModel.replay(CASSETTES / "fake_two_agents.json", strict=True)
    responses = conversation(replay)
    assert [r.stop_reason for r in responses] == ["tool_use", "end_turn", "tool_use", "end_turn"]
    assert responses[1].text == "Site A is fine."
    assert responses[0].usage.cache_creation_input_tokens == 180 and responses[1].usage.cache_read_input_tokens == 180
    assert isinstance(responses[2].content[0], TextBlock) and "[REDACTED]" in responses[2].content[0].text
