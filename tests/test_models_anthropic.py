"""AnthropicModel against a fake Messages API over real HTTP: request shape, parsing, retries, refusals."""

from __future__ import annotations

import time

import pytest
from fakes.messages_server import FakeMessagesServer, error_body, text_response, tool_use_response, usage

from orchestra.models.anthropic import AnthropicModel, is_loopback, retry_after_seconds
from orchestra.models.base import (
    Message,
    ModelError,
    ModelRequest,
    SystemBlock,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    allow_model_requests,
    model_requests_allowed,
)

PLANTED = "sk-ant-test-PLANTED-123456"


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", PLANTED)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    before = model_requests_allowed()
    allow_model_requests(False)
    yield
    allow_model_requests(before)


@pytest.fixture
def srv():
    with FakeMessagesServer() as s:
        yield s


def model(srv: FakeMessagesServer, **kw) -> AnthropicModel:
    kw.setdefault("retry_base_delay", 0.01)
    kw.setdefault("timeout", 5.0)
    return AnthropicModel("claude-test", base_url=srv.base_url, **kw)


def request(**kw) -> ModelRequest:
    base = dict(
        agent="navigator",
        system=[SystemBlock(text="You are the navigator.", cache=False), SystemBlock(text="Playbook: keep margins.", cache=True)],
        messages=[Message.user('{"site": "A"}')],
        tools=[
            ToolSpec(name="terrain", description="Terrain at a site.", input_schema={"type": "object", "properties": {"site": {"type": "string"}}}),
            ToolSpec(name="final_result", description="The typed answer.", input_schema={"type": "object"}),
        ],
        max_tokens=1000,
    )
    base.update(kw)
    return ModelRequest(**base)


def test_request_shape_caches_system_and_tool_prefix(srv: FakeMessagesServer) -> None:
    srv.script(text_response("ok"))
    convo = [
        Message.user("task"),
        Message(role="assistant", content=[TextBlock(text="checking"), ToolUseBlock(id="toolu_1", name="terrain", input={"site": "A"})]),
        Message(role="user", content=[ToolResultBlock(tool_use_id="toolu_1", content="no such site", is_error=True)]),
    ]
    model(srv).complete(request(messages=convo))
    (req,) = srv.requests
    body = req.body
    assert req.path == "/v1/messages"
    assert body["model"] == "claude-test" and body["max_tokens"] == 1000
    assert body["system"] == [
        {"type": "text", "text": "You are the navigator."},
        {"type": "text", "text": "Playbook: keep margins.", "cache_control": {"type": "ephemeral"}},
    ]
    assert [t["name"] for t in body["tools"]] == ["terrain", "final_result"]
    assert "cache_control" not in body["tools"][0]
    assert body["tools"][1]["cache_control"] == {"type": "ephemeral"}
    assert body["tools"][0]["input_schema"]["properties"]["site"] == {"type": "string"}
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "checking"}, {"type": "tool_use", "id": "toolu_1", "name": "terrain", "input": {"site": "A"}}],
    }
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "no such site", "is_error": True}]
    assert req.headers.get("anthropic-version")
    assert PLANTED in (req.headers.get("x-api-key", "") + req.headers.get("authorization", ""))


def test_no_tools_no_system_and_max_tokens_override(srv: FakeMessagesServer) -> None:
    srv.script(text_response("ok"))
    model(srv, max_tokens=77).complete(request(system=[], tools=[]))
    body = srv.requests[0].body
    assert "system" not in body and "tools" not in body
    assert body["max_tokens"] == 77


def test_cache_breakpoints_capped_at_four(srv: FakeMessagesServer) -> None:
    srv.script(text_response("ok"))
    system = [SystemBlock(text=f"part {i}", cache=True) for i in range(6)]
    model(srv).complete(request(system=system))
    body = srv.requests[0].body
    marks = [s["text"] for s in body["system"] if "cache_control" in s]
    assert marks == ["part 3", "part 4", "part 5"]
    assert sum("cache_control" in t for t in body["tools"]) == 1


def test_response_parsing_with_cache_usage(srv: FakeMessagesServer) -> None:
    srv.script(tool_use_response("terrain", {"site": "B"}, id="toolu_x", text="Let me look.", usage=usage(100, 20, cache_read=900, cache_creation=50)))
    resp = model(srv).complete(request())
    assert resp.stop_reason == "tool_use"
    assert resp.content == [TextBlock(text="Let me look."), ToolUseBlock(id="toolu_x", name="terrain", input={"site": "B"})]
    assert resp.usage.input_tokens == 100 and resp.usage.output_tokens == 20
    assert resp.usage.cache_read_input_tokens == 900 and resp.usage.cache_creation_input_tokens == 50
    assert resp.model == "claude-fake-1"


@pytest.mark.parametrize(("sent", "mapped"), [("refusal", "refusal"), ("max_tokens", "max_tokens"), ("model_context_window_exceeded", "max_tokens"), ("pause_turn", "pause_turn")])
def test_stop_reasons_map_through(srv: FakeMessagesServer, sent: str, mapped: str) -> None:
    srv.script(text_response("", stop_reason=sent))
    assert model(srv).complete(request()).stop_reason == mapped


@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(lambda s: s.fail_next(429, headers={"retry-after-ms": "20"}), id="429"),
        pytest.param(lambda s: s.fail_next(529), id="529-overloaded"),
        pytest.param(lambda s: s.fail_next(500), id="500"),
        pytest.param(lambda s: s.fail_next(503, times=2), id="503x2"),
        pytest.param(lambda s: s.reset_next(), id="connection-reset"),
        pytest.param(lambda s: s.slow_next(3), id="timeout"),
    ],
)
def test_transient_faults_are_retried_then_succeed(srv: FakeMessagesServer, inject) -> None:
    inject(srv)
    srv.script(text_response("landed"))
    resp = model(srv, timeout=0.4).complete(request())
    assert resp.text == "landed"
    assert len(srv.requests) >= 2


def test_exhausted_retries_raise_one_clear_line_without_key(srv: FakeMessagesServer) -> None:
    srv.fail_next(529, times=10)
    with pytest.raises(ModelError) as info:
        model(srv, max_retries=3).complete(request())
    msg = str(info.value)
    assert len(srv.requests) == 4
    assert "529" in msg and "overloaded_error" in msg and "4 attempts" in msg and "claude-test" in msg
    assert "\n" not in msg and PLANTED not in msg and "PLANTED" not in msg
    assert info.value.__cause__ is None


def test_client_errors_are_not_retried_and_key_never_leaks(srv: FakeMessagesServer) -> None:
    secret = "sk-ant-explicit-SECRET-0987654321"
    srv.fail_next(401, body=error_body(401, f"invalid x-api-key: {secret}"))
    with pytest.raises(ModelError) as info:
        model(srv, api_key=secret).complete(request())
    msg = str(info.value)
    assert len(srv.requests) == 1
    assert "401" in msg and "authentication_error" in msg and "1 attempt" in msg
    assert secret not in msg and "SECRET-0987654321" not in msg and PLANTED not in msg
    assert secret not in repr(model(srv, api_key=secret))


def test_server_can_veto_retry(srv: FakeMessagesServer) -> None:
    srv.fail_next(500, headers={"x-should-retry": "false"})
    with pytest.raises(ModelError, match="after 1 attempt"):
        model(srv).complete(request())
    assert len(srv.requests) == 1


def test_retry_after_is_honoured(srv: FakeMessagesServer) -> None:
    srv.fail_next(429, headers={"retry-after": "1"})
    srv.script(text_response("ok"))
    start = time.monotonic()
    model(srv, retry_base_delay=0.001).complete(request())
    waited = srv.requests[1].at - srv.requests[0].at
    assert waited >= 1.0
    assert time.monotonic() - start < 5


def test_retry_after_is_capped(srv: FakeMessagesServer) -> None:
    srv.fail_next(529, headers={"retry-after": "3600"})
    srv.script(text_response("ok"))
    start = time.monotonic()
    model(srv, max_retry_after=0.1).complete(request())
    assert time.monotonic() - start < 2


def test_timeout_raises_model_error(srv: FakeMessagesServer) -> None:
    srv.slow_next(5, times=3)
    start = time.monotonic()
    with pytest.raises(ModelError, match=r"timed out after 0.3s \(after 2 attempts\)"):
        model(srv, timeout=0.3, max_retries=1).complete(request())
    assert time.monotonic() - start < 3


def test_connection_reset_exhausted(srv: FakeMessagesServer) -> None:
    srv.reset_next(times=3)
    with pytest.raises(ModelError, match=r"connection failed.*after 3 attempts"):
        model(srv, max_retries=2).complete(request())


def test_global_switch_refuses_non_loopback_urls(srv: FakeMessagesServer) -> None:
    remote = AnthropicModel("claude-test", base_url="https://api.anthropic.com", max_retries=0, timeout=0.1)
    with pytest.raises(ModelError, match="disabled") as info:
        remote.complete(request())
    assert PLANTED not in str(info.value)
    srv.script(text_response("local ok"))
    local = AnthropicModel("claude-test", base_url=f"http://localhost:{srv.port}", retry_base_delay=0.01)
    assert local.complete(request()).text == "local ok"


def test_base_url_from_environment(srv: FakeMessagesServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.base_url)
    srv.script(text_response("via env"))
    m = AnthropicModel("claude-test")
    assert m.complete(request()).text == "via env"
    assert m.provider == "anthropic" and m.name == "claude-test"


def test_missing_key_is_a_clear_model_error(srv: FakeMessagesServer, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path / "absent"))
    with pytest.raises(ModelError, match="no Anthropic credentials for claude-test: set ANTHROPIC_API_KEY"):
        model(srv).complete(request())
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="no Anthropic credentials for claude-test: set ANTHROPIC_API_KEY"):
        model(srv).complete(request())
    assert srv.requests == []


def test_sdk_spans_off_by_default(srv: FakeMessagesServer) -> None:
    """Orchestra's agent loop makes the chat span; the SDK's own would double-count usage."""
    assert model(srv)._client.open_telemetry["traces"]["enabled"] is False
    assert model(srv, sdk_spans=True)._client.open_telemetry["traces"]["enabled"] is True


def test_helpers() -> None:
    assert is_loopback("http://127.0.0.1:8080") and is_loopback("http://localhost") and is_loopback("http://[::1]:9")
    assert not is_loopback("https://api.anthropic.com") and not is_loopback("http://10.0.0.1") and not is_loopback("http://localhost.evil.com")
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
