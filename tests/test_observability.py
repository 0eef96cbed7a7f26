"""OTLP export to real receivers on 127.0.0.1: same spans as the store, GenAI attributes, never blocking a run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from fakes.otlp_receiver import BlackHole, GRPCReceiver, HTTPReceiver, dead_url
from orchestra import tracing
from orchestra.models.base import Message, ModelRequest, ModelResponse, SystemBlock, TextBlock, ToolResultBlock, ToolUseBlock
from orchestra.runner import run_workflow
from orchestra.store import Store

ROOT = Path(__file__).resolve().parent.parent
PLANTED = "sk-ant-test-PLANTED-123456"
ENV_KEYS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", tracing.CAPTURE_CONTENT_ENV, "ANTHROPIC_API_KEY",
)


@pytest.fixture
def otel_env():
    """configure(**env) replaces the OTel environment and re-initialises tracing; teardown restores both."""
    saved = {k: os.environ.get(k) for k in ENV_KEYS}

    def configure(**env: str) -> None:
        for k in ENV_KEYS:
            os.environ.pop(k, None)
        os.environ.update(env)
        tracing.setup(force=True)

    yield configure
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    tracing.setup(force=True)


def by_id(spans: list[dict]) -> dict[str, dict]:
    return {s["span_id"]: s for s in spans}


@pytest.mark.parametrize("protocol,receiver", [("http/protobuf", HTTPReceiver), ("grpc", GRPCReceiver)])
def test_otlp_receives_the_stored_spans_with_genai_attributes(protocol, receiver, otel_env, tiny, db, spans):
    with receiver() as rx:
        otel_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=rx.base_url, OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
            OTEL_SERVICE_NAME="orchestra-ci", OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=ci,team=lumara",
            OTEL_EXPORTER_OTLP_HEADERS="x-orchestra-test=planted-header",
        )
        r = run_workflow(tiny, seed=3, model="offline", db=db)
        stats = tracing.flush(5.0)
        stored = by_id(Store(db).spans_for_run(r.run_id))
        got = by_id(rx.wait_for(len(stored)))

    assert stats["exported"] == len(stored) == 16 and stats["failed"] == stats["dropped"] == stats["pending"] == 0
    assert {(k, s["parent_id"], s["name"], s["status"]) for k, s in got.items()} == {(k, s["parent_id"], s["name"], s["status"]) for k, s in stored.items()}
    assert {s["trace_id"] for s in got.values()} == {r.trace_id}
    assert {k: s["attributes"] for k, s in got.items()} == {k: s["attributes"] for k, s in stored.items()}
    assert len({format(s.context.span_id, "016x") for s in spans.get_finished_spans()} & set(got)) == 16  # conftest's processor survived setup(force=True)

    for req in rx.requests:
        assert req.headers["x-orchestra-test"] == "planted-header"
        if protocol == "http/protobuf":
            assert req.path == "/v1/traces"
    res = next(iter(got.values()))["resource"]
    assert res["service.name"] == "orchestra-ci" and res["deployment.environment.name"] == "ci" and res["team"] == "lumara"
    assert {s["scope"] for s in got.values()} == {"orchestra"}
    assert {s["schema_url"] for s in got.values()} == {tracing.SCHEMA_URL}

    named = {s["name"]: s for s in got.values()}
    root = named["invoke_workflow tiny_trip"]
    assert root["parent_id"] is None and root["kind"] == "INTERNAL"
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_workflow"
    assert root["attributes"]["gen_ai.workflow.name"] == "tiny_trip"
    assert root["attributes"]["gen_ai.conversation.id"] == r.run_id
    agent = named["invoke_agent researcher"]
    assert agent["kind"] == "INTERNAL" and agent["parent_id"] == root["span_id"]
    assert agent["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert agent["attributes"]["gen_ai.agent.name"] == "researcher"
    assert agent["attributes"]["gen_ai.provider.name"] == "orchestra.policy"
    chat = named["chat policy:researcher"]
    assert chat["kind"] == "CLIENT" and chat["parent_id"] == agent["span_id"]
    assert chat["attributes"]["gen_ai.operation.name"] == "chat"
    assert chat["attributes"]["gen_ai.request.model"] == "policy:researcher"
    assert chat["attributes"]["gen_ai.provider.name"] == "orchestra.policy"
    assert chat["attributes"]["gen_ai.usage.input_tokens"] > 0
    assert isinstance(chat["attributes"]["gen_ai.response.finish_reasons"], list)
    tool = named["execute_tool lookup_city"]
    assert tool["kind"] == "INTERNAL" and tool["parent_id"] == agent["span_id"]
    assert tool["attributes"]["gen_ai.operation.name"] == "execute_tool"
    assert tool["attributes"]["gen_ai.tool.name"] == "lookup_city"


def test_traces_endpoint_and_protocol_take_precedence_and_are_used_as_is(otel_env, tiny, db):
    with HTTPReceiver(paths=("/custom/traces",)) as rx:
        otel_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=dead_url(), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=rx.base_url + "/custom/traces",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-traces-only=yes",
        )
        r = run_workflow(tiny, seed=1, model="offline", db=db)
        assert tracing.flush(5.0)["exported"] == len(r.spans)
        assert len(rx.wait_for(len(r.spans))) == len(r.spans)
    assert {q.path for q in rx.requests} == {"/custom/traces"}
    assert {q.headers.get("x-traces-only") for q in rx.requests} == {"yes"}


@pytest.mark.parametrize("switch", [{"OTEL_SDK_DISABLED": "true"}, {"OTEL_TRACES_EXPORTER": "none"}])
def test_disabling_otlp_keeps_the_local_store(switch, otel_env, tiny, db):
    with HTTPReceiver() as rx:
        otel_env(OTEL_EXPORTER_OTLP_ENDPOINT=rx.base_url, **switch)
        r = run_workflow(tiny, seed=2, model="offline", db=db)
        stats = tracing.flush(1.0)
        time.sleep(0.7)  # longer than the batch delay: anything queued would have been sent
        assert not tracing.otlp_configured()
        assert rx.spans() == [] and stats["exported"] == 0
    assert len(Store(db).spans_for_run(r.run_id)) == 16


@pytest.mark.parametrize("kind", ["dead", "hung"])
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_dead_or_hung_endpoint_costs_a_bounded_delay_and_is_reported(kind, protocol, otel_env, tiny, db):
    otel_env()
    run_workflow(tiny, seed=0, model="offline", db=db)
    t0 = time.perf_counter()
    run_workflow(tiny, seed=0, model="offline", db=db)
    baseline = time.perf_counter() - t0

    with BlackHole() as hole:
        # A hung export outlives the run's flush (4 s > the 2 s the runner waits): the run must not wait for it.
        endpoint, timeout = (dead_url(), "1") if kind == "dead" else (hole.base_url, "4")
        otel_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol, OTEL_EXPORTER_OTLP_TIMEOUT=timeout)
        t0 = time.perf_counter()
        first = run_workflow(tiny, seed=0, model="offline", db=db)
        first_wall = time.perf_counter() - t0
        deadline = time.monotonic() + 8.0
        while tracing.flush(0.2)["failed"] < len(first.spans) and time.monotonic() < deadline:
            time.sleep(0.05)
        t0 = time.perf_counter()
        second = run_workflow(tiny, seed=1, model="offline", db=db)
        second_wall = time.perf_counter() - t0
        stats = tracing.flush(0.0)

    assert first_wall - baseline < 3.0, (first_wall, baseline)
    assert second_wall - baseline < 0.5, (second_wall, baseline)  # no flush wait once the endpoint is known to fail
    assert stats["failed"] >= len(first.spans) == 16
    assert stats["failed"] + stats["pending"] == len(first.spans) + len(second.spans)
    assert stats["exported"] == stats["dropped"] == 0
    assert first.status == second.status == "passed"
    assert len(Store(db).spans_for_run(second.run_id)) == 16


def test_secrets_reach_neither_the_store_nor_the_collector(otel_env, tiny, db, spans):
    planted = tiny.model_copy(update={"job": lambda seed: {"seed": seed, "city": PLANTED, "days": 2}})
    with HTTPReceiver() as rx:
        otel_env(OTEL_EXPORTER_OTLP_ENDPOINT=rx.base_url, ANTHROPIC_API_KEY=PLANTED)
        r = run_workflow(planted, seed=0, model="offline", db=db)
        tracing.flush(5.0)
        rx.wait_for(len(r.spans))
        wire = b"".join(q.raw for q in rx.requests)

    raw = [s for s in spans.get_finished_spans() if format(s.context.trace_id, "032x") == r.trace_id]
    assert any(PLANTED in str(dict(s.attributes)) + str(s.status.description) for s in raw)  # it did reach a tool call
    stored = json.dumps(Store(db).spans_for_run(r.run_id))
    assert "PLANTED" not in stored and "[REDACTED]" in stored
    assert len(rx.spans()) == len(r.spans)
    assert b"PLANTED" not in wire and b"[REDACTED]" in wire


def _request() -> ModelRequest:
    return ModelRequest(
        agent="researcher", system=[SystemBlock(text="Look cities up.")],
        messages=[
            Message.user("city: lisbon, token sk-ant-test-PLANTED-123456"),
            Message(role="assistant", content=[ToolUseBlock(id="t1", name="lookup_city", input={"city": "lisbon"})]),
            Message(role="user", content=[ToolResultBlock(tool_use_id="t1", content='{"daily_cost":120}')]),
        ],
    )


def test_message_content_is_opt_in_and_follows_the_genai_schemas(otel_env):
    response = ModelResponse(content=[TextBlock(text="done")], stop_reason="end_turn")
    otel_env()
    assert not tracing.capture_content()
    assert tracing.chat_content_attributes(_request(), response) == {}
    assert tracing.tool_content_attributes({"city": "lisbon"}, "{}") == {}

    otel_env(**{tracing.CAPTURE_CONTENT_ENV: "true"})
    attrs = tracing.chat_content_attributes(_request(), response)
    assert json.loads(attrs["gen_ai.system_instructions"]) == [{"type": "text", "content": "Look cities up."}]
    inputs = json.loads(attrs["gen_ai.input.messages"])
    assert [m["role"] for m in inputs] == ["user", "assistant", "tool"]
    assert inputs[0]["parts"] == [{"type": "text", "content": "city: lisbon, token [REDACTED]"}]
    assert inputs[1]["parts"] == [{"type": "tool_call", "id": "t1", "name": "lookup_city", "arguments": {"city": "lisbon"}}]
    assert inputs[2]["parts"] == [{"type": "tool_call_response", "id": "t1", "response": '{"daily_cost":120}'}]
    assert json.loads(attrs["gen_ai.output.messages"]) == [{"role": "assistant", "parts": [{"type": "text", "content": "done"}], "finish_reason": "stop"}]
    tool = tracing.tool_content_attributes({"city": "lisbon"}, '{"usd":1.5}')
    assert json.loads(tool["gen_ai.tool.call.arguments"]) == {"city": "lisbon"}
    assert json.loads(tool["gen_ai.tool.call.result"]) == {"usd": 1.5}


def test_the_semconv_version_followed_is_documented():
    doc = (ROOT / "docs/observability.md").read_text()
    assert f"v{tracing.SEMCONV_VERSION}" in doc and tracing.CAPTURE_CONTENT_ENV in doc
    assert tracing.SCHEMA_URL.endswith(tracing.SEMCONV_VERSION)
