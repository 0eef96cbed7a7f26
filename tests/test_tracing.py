"""Every run is one trace with GenAI-attributed spans, stored in SQLite."""

from __future__ import annotations

import json

from conftest import tree

from orchestra.runner import run_workflow
from orchestra.store import Store


def test_whole_span_tree_of_a_run(tiny, db, spans):
    r = run_workflow(tiny, seed=2, model="offline", db=db)
    finished = spans.get_finished_spans()
    assert {s.context.trace_id for s in finished} == {int(r.trace_id, 16)}
    assert tree(finished) == [
        ("invoke_workflow tiny_trip", None),
        ("invoke_agent lead", "invoke_workflow tiny_trip"),
        ("chat policy:lead", "invoke_agent lead"),
        ("invoke_agent researcher", "invoke_workflow tiny_trip"),
        ("chat policy:researcher", "invoke_agent researcher"),
        ("execute_tool lookup_city", "invoke_agent researcher"),
        ("chat policy:researcher", "invoke_agent researcher"),
        ("invoke_agent lead", "invoke_workflow tiny_trip"),
        ("chat policy:lead", "invoke_agent lead"),
        ("invoke_agent accountant", "invoke_workflow tiny_trip"),
        ("chat policy:accountant", "invoke_agent accountant"),
        ("execute_tool convert", "invoke_agent accountant"),
        ("chat policy:accountant", "invoke_agent accountant"),
        ("invoke_agent lead", "invoke_workflow tiny_trip"),
        ("chat policy:lead", "invoke_agent lead"),
        ("grade tiny_trip", "invoke_workflow tiny_trip"),
    ]
    by_name = {s.name: s for s in finished}
    root = by_name["invoke_workflow tiny_trip"]
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["gen_ai.conversation.id"] == r.run_id
    agent = by_name["invoke_agent researcher"]
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "researcher"
    assert agent.attributes["orchestra.specialist"] == "researcher"
    assert json.loads(agent.attributes["orchestra.result"])["city"] == "tokyo"
    chat = by_name["chat policy:researcher"]
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "policy:researcher"
    assert chat.attributes["gen_ai.usage.input_tokens"] > 0
    assert chat.attributes["gen_ai.provider.name"] == "orchestra.policy"
    tool = by_name["execute_tool lookup_city"]
    assert tool.attributes["gen_ai.tool.name"] == "lookup_city"
    assert by_name["grade tiny_trip"].attributes["orchestra.verdict.passed"] is True


def test_spans_land_in_the_store_with_parents(tiny, db):
    r = run_workflow(tiny, seed=0, model="offline", db=db)
    stored = Store(db).spans_for_run(r.run_id)
    assert len(stored) == len(r.spans) == 16
    ids = {s["span_id"] for s in stored}
    roots = [s for s in stored if s["parent_id"] is None]
    assert len(roots) == 1 and roots[0]["name"] == "invoke_workflow tiny_trip"
    assert all(s["parent_id"] in ids for s in stored if s["parent_id"])
    assert all(s["trace_id"] == r.trace_id for s in stored)
