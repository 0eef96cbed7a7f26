"""How a campaign report puts a dream's result per specialist into words (`orchestra.report.dream_outcome`)."""

from __future__ import annotations

import pytest

from orchestra.report import dream_outcome

ADD = [{"op": "ADD", "lesson_id": "L1"}, {"op": "ADD", "lesson_id": "L2"}]


@pytest.mark.parametrize("status, promoted, expected", [
    ("active", True, "v2 promoted over v1 (ADD L1, ADD L2)"),
    ("pending", False, "candidate v2 awaits review (ADD L1, ADD L2)"),
    ("rejected", False, "candidate v2 rejected by the gate (ADD L1, ADD L2); v1 stays"),
])
def test_a_candidate_says_what_became_of_it(status, promoted, expected):
    d = {"current_version": 1, "candidate_version": 2, "promoted": promoted, "status": status, "deltas": ADD, "induced": [{"rule": "r"}]}
    assert dream_outcome(d) == expected


def test_no_candidate_says_why_there_was_none():
    none = {"current_version": 0, "candidate_version": None, "promoted": False, "status": "unchanged", "deltas": [], "induced": []}
    assert dream_outcome(none) == "no rule held up on these runs; v0 stays"
    known = {**none, "current_version": 3, "induced": [{"rule": "a"}, {"rule": "b"}]}
    assert dream_outcome(known) == "2 rules induced, none changed the playbook; v3 stays"
    assert "None" not in dream_outcome(none) + dream_outcome(known)


def test_a_candidate_whose_lessons_were_only_revised_says_so():
    moved = {"current_version": 1, "candidate_version": 2, "promoted": True, "status": "active", "deltas": [], "induced": []}
    assert dream_outcome(moved) == "v2 promoted over v1 (lessons revised)"
