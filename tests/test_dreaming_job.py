"""The dream job end to end on a real store: mine spans, induce, gate, promote, roll back."""

from __future__ import annotations

import json
import threading

import pytest

from orchestra.dreaming.episodes import NEAR_MISS_MARK, explanation_words, is_advisory_key
from orchestra.dreaming.gate import gate
from orchestra.dreaming.job import DreamBusy, _could_win, _near_miss_inside, dream
from orchestra.loader import load_workflow
from orchestra.playbook import Lesson, Playbook
from orchestra.rules import Condition, Rule
from orchestra.runner import run_workflow
from orchestra.store import Store
from orchestra.versions import activate, active_version, get_playbook, history

from conftest import ROOT


@pytest.fixture
def pilot():
    return load_workflow(str(ROOT / "tests/graphs/pilot.py"))


def fly(wf, store, seeds):
    return [run_workflow(wf, seed=s, store=store, checkpoint=False, run_id=f"{wf.name}-{s:05d}") for s in seeds]


def test_dream_learns_the_hidden_limit_and_promotes(pilot, db):
    store = Store(db)
    before = fly(pilot, store, range(40))
    base_rate = sum(r.passed for r in before) / 40
    assert 0.2 < base_rate < 0.6
    out = dream(pilot, store, validation_seeds=list(range(1000, 1030)))
    assert out["runs_mined"] == 40 and out["episodes"] == 40
    spec = out["specialists"]["pilot"]
    assert out["promoted"] and spec["promoted"] and spec["candidate_version"] == 1
    pb = get_playbook(store, "pilot")
    assert pb.version == 1 and active_version(store, "pilot") == 1
    rule = pb.lessons[0].rule
    assert rule.require.field == "output.speed_mps" and rule.require.op in ("<=", "<")
    assert 2.5 <= float(rule.require.value) <= 3.0
    lesson = pb.lessons[0]
    assert lesson.dream_id == out["dream_id"] and lesson.support >= 4 and lesson.evidence
    assert set(lesson.evidence) <= {r.trace_id for r in before}
    assert out["gate"]["candidate_success"] > out["gate"]["current_success"]
    # a sharp limit: the candidate lands every validation scenario, so no limit moved in could win one and none is flown
    assert out["gate"]["candidate_success"] == 1.0 and "tightened" not in out["gate"] and lesson.moved_from is None
    # what the night cost: 30 validation scenarios flown with the current and the candidate playbooks, no synthesis model
    assert out["cost"]["gate_flights"] == 60 and out["cost"]["gate_tokens"] > 0 and out["cost"]["synthesis_tokens"] == 0
    # the next run is given the lesson and records it
    after = run_workflow(pilot, seed=5000, store=store, checkpoint=False)
    assert after.playbooks["pilot"] == {"playbook_version": 1, "lesson_ids": [lesson.id]}
    assert store.injections_for_run(after.run_id)["pilot"]["lesson_ids"] == [lesson.id]
    later = fly(pilot, store, range(100, 130))
    assert sum(r.passed for r in later) / 30 >= 0.9
    # dreamed runs are not mined again; the dream is a trace of its own
    assert store.db.execute("SELECT COUNT(*) FROM runs WHERE dreamed = 1").fetchone()[0] == 40
    assert store.db.execute("SELECT COUNT(*) FROM spans WHERE trace_id = ?", [out["trace_id"]]).fetchone()[0] >= 1


def test_a_graded_limit_moves_in_when_the_validation_scenarios_favour_it(db):
    """No speed is safe against random gusts: induction's limit sits where failures are still common, and the
    gate keeps the limit moved in to where passed runs typically flew because it wins more validation scenarios."""
    wf = load_workflow(str(ROOT / "tests/graphs/graded_pilot.py"))
    store = Store(db)
    before = fly(wf, store, range(40))
    out = dream(wf, store, validation_seeds=list(range(1000, 1030)))
    [trial] = out["gate"]["tightened"]
    assert trial["kept"] and trial["success_moved"] >= trial["success_with"] + 1 / 30
    # paired with the tested limit's flights on the same 30 scenarios, the wins net of losses are the gain
    versus = trial["versus_tested"]
    assert versus["wins"] - versus["losses"] == round((trial["success_moved"] - trial["success_with"]) * 30) and versus["wins"] >= 1
    lesson = get_playbook(store, "pilot").lessons[0]
    tested, moved = float(trial["rule"].rsplit(" ", 1)[1]), float(lesson.rule.require.value)
    passed_inside = sorted(r.results["pilot"]["speed_mps"] for r in before if r.passed and r.results["pilot"]["speed_mps"] <= tested)
    assert moved < tested and moved == round(passed_inside[len(passed_inside) // 2] if len(passed_inside) % 2 else (passed_inside[len(passed_inside) // 2 - 1] + passed_inside[len(passed_inside) // 2]) / 2, 4)
    assert lesson.text.startswith(f"Keep output.speed_mps <= {moved:.4g}: moved in from the tested limit output.speed_mps <= {tested:.4g}")
    assert "The tested limit's evidence: in " in lesson.text and f"<= {tested:.4g}." not in lesson.text
    assert out["specialists"]["pilot"]["deltas"][0]["lesson_id"] == lesson.id  # the record names the lesson promoted
    # the gate figures are the promoted team's: paired with the current playbooks on the same 30 scenarios
    assert out["promoted"] and out["gate"]["candidate_success"] == trial["success_moved"] and out["cost"]["gate_flights"] == 90
    assert lesson.moved_from == tested
    later = fly(wf, store, range(100, 140))
    assert all(r.results["pilot"]["speed_mps"] <= moved + 1e-9 for r in later)
    # the next night finds the tested edge again in the same kind of runs; it must not undo the gate's choice
    again = dream(wf, store, validation_seeds=list(range(1000, 1030)))
    assert [i["rule"] for i in again["specialists"]["pilot"]["induced"]] == [trial["rule"]]
    assert not again["specialists"]["pilot"]["deltas"] and again["gate"] is None
    assert get_playbook(store, "pilot").lessons == [lesson]


def test_planted_instruction_never_reaches_a_lesson(pilot, db):
    store = Store(db)
    fly(pilot, store, range(40))
    dream(pilot, store, validation_seeds=list(range(1000, 1020)))
    texts = json.dumps([x.model_dump(mode="json") for x in get_playbook(store, "pilot").lessons]).lower()
    assert "ignore" not in texts and "always go" not in texts and "rubric" not in texts


def test_harmful_candidate_is_rejected_by_the_gate(pilot, db):
    bad = Rule(require=Condition(field="output.speed_mps", op=">=", value=4.0))
    harmful = {"pilot": Playbook(specialist="pilot", version=0, lessons=[Lesson(id="Lbad", specialist="pilot", text="Fly fast.", rule=bad)])}
    current = {"pilot": Playbook(specialist="pilot")}
    g = gate(pilot, current, harmful, list(range(1000, 1020)))
    assert not g["promote"] and g["candidate_success"] < g["current_success"]
    assert "main.speed_limit" in g["regressions"]


def test_rollback_restores_the_exact_earlier_playbook(pilot, db):
    store = Store(db)
    fly(pilot, store, range(40))
    dream(pilot, store, validation_seeds=list(range(1000, 1020)))
    v1 = get_playbook(store, "pilot", 1)
    activate(store, "pilot", 0)
    assert get_playbook(store, "pilot").lessons == []
    activate(store, "pilot", 1)
    assert get_playbook(store, "pilot") == v1
    assert [h["version"] for h in history(store, "pilot")] == [0, 1]


def test_two_dreams_at_once_do_not_double_promote(pilot, db):
    store = Store(db)
    fly(pilot, store, range(40))
    results, errors = [], []

    def go():
        try:
            results.append(dream(pilot, Store(db), validation_seeds=list(range(1000, 1020))))
        except DreamBusy as e:
            errors.append(str(e))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    promoted = [r for r in results if r["promoted"]]
    assert len(promoted) == 1
    assert len(results) + len(errors) == 2
    assert all("another dream" in e for e in errors)
    versions = [h["version"] for h in history(store, "pilot")]
    assert versions == [0, 1]


def test_shuffled_labels_yield_no_promotion(pilot, db):
    store = Store(db)
    fly(pilot, store, range(40))
    out = dream(pilot, store, validation_seeds=list(range(1000, 1020)), shuffle_labels=True, seed=3)
    assert out["specialists"]["pilot"]["induced"] == [] and not out["promoted"]
    assert out["cost"] == {"gate_flights": 0, "gate_tokens": 0, "synthesis_tokens": 0, "synthesis_calls": 0}  # nothing to gate, nothing flown


def test_leave_one_out_drops_the_lesson_the_team_does_better_without(pilot):
    from orchestra.dreaming.job import _prune

    good = Lesson(id="Lgood", specialist="pilot", text="Keep output.speed_mps <= 3.", rule=Rule(require=Condition(field="output.speed_mps", op="<=", value=3.0)))
    bad = Lesson(id="Lbad", specialist="pilot", text="Keep output.speed_mps >= 4.", rule=Rule(require=Condition(field="output.speed_mps", op=">=", value=4.0)))
    current = {"pilot": Playbook(specialist="pilot")}
    joint = {"pilot": Playbook(specialist="pilot", lessons=[good, bad])}
    seeds = list(range(1000, 1020))
    first = gate(pilot, current, joint, seeds)
    out = _prune(pilot, current, joint, first, seeds, "local", None, None, "d-test")
    assert out["dropped"] == ["Lbad"] and len(out["rounds"]) == 1  # one lesson left: the gate decides the rest
    first_round = out["rounds"][0]
    assert first_round["success_without"]["Lbad"] >= first_round["success_with"] + 2 / len(seeds)
    assert first_round["success_without"]["Lgood"] <= first_round["success_with"]
    assert [x.id for x in out["candidate"]["pilot"].lessons] == ["Lgood"]
    assert out["gate"]["promote"] and out["gate"]["candidate_success"] > first["candidate_success"]
    one = {"pilot": Playbook(specialist="pilot", lessons=[bad])}
    assert _prune(pilot, current, one, gate(pilot, current, one, seeds), seeds, "local", None, None, "d-one")["dropped"] == []  # one lesson: the gate decides


def test_mined_episodes_carry_why_their_run_failed(pilot, db):
    from orchestra.dreaming.mine import mine

    store = Store(db)
    fly(pilot, store, range(12))
    episodes, _ = mine(store, "pilot")
    failed = [e for e in episodes if not e.passed]
    assert failed and all("speed limit" in e.explanation and "measured" in e.explanation for e in failed)
    assert all(e.explanation == "" for e in episodes if e.passed)


def test_a_weight_0_criterion_is_mined_under_its_advisory_key(pilot, db):
    """Near misses are recorded by advisory criteria (weight 0); mining keys them `<stage>.advisory.<id>`, which
    keeps them out of the failure labels, and a failed one explains itself after the failures' own account."""
    from orchestra.dreaming.mine import mine

    store = Store(db)
    fly(pilot, store, range(6))
    with store.transaction() as con:
        for vid, verdict in con.execute("SELECT id, verdict FROM verdicts").fetchall():
            v = json.loads(verdict)
            v["criteria"].append({"id": "speed_margin", "weight": 0, "passed": False, "rationale": "measured 9; expected <= 8"})
            con.execute("UPDATE verdicts SET verdict = ? WHERE id = ?", [json.dumps(v), vid])
    episodes, _ = mine(store, "pilot")
    assert episodes
    for e in episodes:
        advisory = [k for k in e.criteria if is_advisory_key(k)]
        assert [k.rsplit(".", 2)[-2:] for k in advisory] == [["advisory", "speed_margin"]] and e.criteria[advisory[0]] is False
        assert all(not is_advisory_key(k) for k in e.criteria if not k.endswith("speed_margin"))
        before, _, near = e.explanation.partition(NEAR_MISS_MARK)
        # a near miss explains itself apart: only a near-miss family reads those words (`explanation_words`)
        assert near == "speed margin: measured 9; expected <= 8" and "margin" not in before
        assert "~margin" in explanation_words(e.explanation)


def test_a_moved_limit_is_flown_only_where_it_could_turn_a_failed_validation_run():
    """A moved limit that every failed validation run already keeps never binds where it could win a scenario,
    so the gate does not pay 20 flights to learn that; records it cannot read are flown, as are ratios to inputs."""
    moved = Rule(require=Condition(field="output.speed_mps", op="<=", value=2.0))

    def run(status: str, speed: float | None) -> dict:
        return {"status": status, "results": {} if speed is None else {"pilot": {"speed_mps": speed, "note": "x"}}}

    assert not _could_win(moved, "pilot", [run("passed", 3.0), run("failed", 1.5), run("failed", 2.0)])
    assert _could_win(moved, "pilot", [run("passed", 3.0), run("failed", 1.5), run("failed", 2.5)])
    assert _could_win(moved, "pilot", [run("failed", 1.5), run("error", None)])
    assert _could_win(moved, "pilot", None)
    ratio = Rule(require=Condition(field="output.speed_mps", op="<=", value=0.5, per="input.gust_mps"))
    assert _could_win(ratio, "pilot", [run("failed", 1.5)])


def test_a_failure_limit_is_not_moved_where_a_near_miss_limit_stands_inside_it():
    """Near misses already placed the edge of the graded risk: moving the failure limit would change
    nothing short of it and overrule it past it. A looser near-miss limit, another decision or a
    conditional rule leaves the move to the gate."""

    def lesson(value: float, near_miss: bool = False, op: str = "<=", field: str = "output.speed_mps", per: str | None = None, when=()) -> Lesson:
        rule = Rule(when=list(when), require=Condition(field=field, op=op, value=value, per=per))
        return Lesson(id=f"L{value}{op}{near_miss}{field}{per}", specialist="pilot", text="t", rule=rule, near_miss=near_miss)

    failure = lesson(3.0)
    assert _near_miss_inside(failure, Playbook(specialist="pilot", lessons=[failure, lesson(2.0, near_miss=True)]))
    assert _near_miss_inside(failure, Playbook(specialist="pilot", lessons=[failure, lesson(3.0, near_miss=True)]))
    assert not _near_miss_inside(failure, Playbook(specialist="pilot", lessons=[failure, lesson(3.5, near_miss=True)]))
    assert not _near_miss_inside(failure, Playbook(specialist="pilot", lessons=[failure, lesson(2.0)]))
    assert not _near_miss_inside(failure, Playbook(specialist="pilot", lessons=[failure, lesson(2.0, near_miss=True, field="output.gust_mps")]))
    assert not _near_miss_inside(failure, Playbook(specialist="pilot", lessons=[failure, lesson(2.0, near_miss=True, per="input.gust_mps")]))
    gusty = [Condition(field="input.gust_mps", op=">=", value=5.0)]
    assert not _near_miss_inside(failure, Playbook(specialist="pilot", lessons=[failure, lesson(2.0, near_miss=True, when=gusty)]))
    gusty_failure = lesson(3.0, when=gusty)
    assert not _near_miss_inside(gusty_failure, Playbook(specialist="pilot", lessons=[gusty_failure, lesson(2.0, near_miss=True)]))
    lower = lesson(1.0, op=">=")
    assert _near_miss_inside(lower, Playbook(specialist="pilot", lessons=[lower, lesson(1.5, near_miss=True, op=">=")]))
    assert not _near_miss_inside(lower, Playbook(specialist="pilot", lessons=[lower, lesson(0.5, near_miss=True, op=">=")]))
