"""Reading traces back from Jaeger's query API gives the store's spans and the same mined episodes."""

from __future__ import annotations

import pytest

from fakes.jaeger_server import FakeJaeger, store_lookup, to_jaeger_span
from fakes.otlp_receiver import dead_url
from orchestra.dreaming.mine import mine
from orchestra.jaeger import JaegerError, fetch_trace, jaeger_span_source, spans_from_jaeger
from orchestra.runner import run_workflow
from orchestra.store import Store


@pytest.fixture
def stored_runs(tiny, db):
    store = Store(db)
    runs = [run_workflow(tiny, seed=s, model="offline", store=store) for s in range(4)]
    return store, runs


def test_mining_from_jaeger_gives_the_same_episodes_as_the_store(stored_runs):
    store, runs = stored_runs
    local, local_ids = mine(store, "tiny_trip")
    with FakeJaeger(store_lookup(store)) as jaeger:
        remote, remote_ids = mine(store, "tiny_trip", span_source=jaeger_span_source(jaeger.url))
        requested = jaeger.paths
    assert local and remote_ids == local_ids == [r.run_id for r in runs]
    assert remote == local
    assert sorted(requested) == sorted(f"/api/traces/{r.trace_id}" for r in runs)


def test_jaeger_spans_equal_the_stored_spans(stored_runs):
    store, runs = stored_runs
    with FakeJaeger(store_lookup(store)) as jaeger:
        for r in runs:
            remote = fetch_trace(jaeger.url, r.trace_id)
            local = store.spans_for_run(r.run_id)
            assert [(s["span_id"], s["parent_id"], s["trace_id"], s["run_id"], s["name"], s["status"]) for s in remote] == [
                (s["span_id"], s["parent_id"], s["trace_id"], s["run_id"], s["name"], s["status"]) for s in local
            ]
            assert [s["attributes"] for s in remote] == [s["attributes"] for s in local]
            assert [s["start_ns"] for s in remote] == [s["start_ns"] // 1000 * 1000 for s in local]


def test_reads_jaegers_documented_json():
    doc = {"data": [{
        "traceID": "abc0000000000000000000000000001",
        "processes": {"p1": {"serviceName": "orchestra", "tags": []}},
        "spans": [{
            "traceID": "abc0000000000000000000000000001", "spanID": "00000000000000b2", "operationName": "invoke_agent nav",
            "references": [
                {"refType": "FOLLOWS_FROM", "traceID": "ffff", "spanID": "00000000000000f1"},
                {"refType": "CHILD_OF", "traceID": "abc0000000000000000000000000001", "spanID": "a1"},
            ],
            "startTime": 1_700_000_000_000_001, "duration": 250, "processID": "p1", "flags": 1, "logs": [], "warnings": None,
            "tags": [
                {"key": "gen_ai.operation.name", "type": "string", "value": "invoke_agent"},
                {"key": "orchestra.turns", "type": "int64", "value": 3},
                {"key": "orchestra.verdict.score", "type": "float64", "value": 1},
                {"key": "orchestra.verdict.passed", "type": "bool", "value": False},
                {"key": "orchestra.blob", "type": "binary", "value": "aGk="},
                {"key": "orchestra.playbook.lesson_ids", "type": "string", "value": "[\"L1\",\"L2\"]"},
                {"key": "gen_ai.response.finish_reasons", "type": "string", "value": "[\"tool_use\"]"},
                {"key": "orchestra.verdict.criteria", "type": "string", "value": "[{\"id\":\"fuel\",\"passed\":true}]"},
                {"key": "orchestra.result", "type": "string", "value": "{\"site\":\"A\"}"},
                {"key": "otel.scope.name", "type": "string", "value": "orchestra"},
                {"key": "span.kind", "type": "string", "value": "internal"},
                {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                {"key": "otel.status_description", "type": "string", "value": "turn budget"},
                {"key": "error", "type": "bool", "value": True},
            ],
        }],
    }], "total": 0, "limit": 0, "offset": 0, "errors": None}
    [span] = spans_from_jaeger(doc)
    assert span["trace_id"] == "0abc0000000000000000000000000001" and span["span_id"] == "00000000000000b2"
    assert span["parent_id"] == "00000000000000a1" and span["status"] == "ERROR" and span["name"] == "invoke_agent nav"
    assert span["start_ns"] == 1_700_000_000_000_001_000 and span["end_ns"] - span["start_ns"] == 250_000
    assert span["attributes"] == {
        "gen_ai.operation.name": "invoke_agent", "orchestra.turns": 3, "orchestra.verdict.score": 1.0,
        "orchestra.verdict.passed": False, "orchestra.blob": b"hi", "orchestra.playbook.lesson_ids": ["L1", "L2"],
        "gen_ai.response.finish_reasons": ["tool_use"], "orchestra.verdict.criteria": "[{\"id\":\"fuel\",\"passed\":true}]",
        "orchestra.result": "{\"site\":\"A\"}",
    }
    assert isinstance(span["attributes"]["orchestra.verdict.score"], float)


def test_the_fake_translates_like_jaeger():
    s = {"span_id": "00000000000000b2", "trace_id": "0" * 16 + "00000000000000c3", "parent_id": None, "name": "x",
         "start_ns": 2_500, "end_ns": 9_999, "status": "UNSET", "attributes": {"a.ids": ["x"], "n": 1}}
    j = to_jaeger_span(s)
    assert j["traceID"] == "c3" and j["startTime"] == 2 and j["duration"] == 7 and j["references"] == []
    assert {"key": "a.ids", "type": "string", "value": "[\"x\"]"} in j["tags"] and {"key": "n", "type": "int64", "value": 1} in j["tags"]


def test_unreachable_jaeger_is_a_one_line_error():
    url = dead_url()
    with pytest.raises(JaegerError) as e:
        jaeger_span_source(url, timeout=2.0)({"run_id": "r1", "trace_id": "ab" * 16})
    msg = str(e.value)
    assert url in msg and "unreachable" in msg and "\n" not in msg


def test_unknown_trace_is_a_one_line_error(db):
    with FakeJaeger(store_lookup(Store(db))) as jaeger, pytest.raises(JaegerError) as e:
        fetch_trace(jaeger.url, "cd" * 16)
    assert "HTTP 404" in str(e.value) and "cd" * 16 in str(e.value) and "\n" not in str(e.value)
