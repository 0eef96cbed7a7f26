"""Campaigns: day -> night -> day, held-out evaluation, report, resume, ablation."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT

from orchestra.campaign import CampaignConfig, Progress, criterion_drops, run_campaign, wilson
from orchestra.loader import load_workflow


@pytest.fixture
def pilot():
    return load_workflow(str(ROOT / "tests/graphs/pilot.py"))


CFG = CampaignConfig(nights=2, missions=20, validation=20, test=30, seed=1, executor="local")


def test_small_campaign_end_to_end(pilot, tmp_path):
    s = run_campaign(pilot, CFG, db=tmp_path / "c.db", out=tmp_path / "report")
    names = [v["name"] for v in s["versions"]]
    assert names == ["v0 (empty)", "after night 1", "after night 2"]
    base, final = s["versions"][0], s["versions"][-1]
    assert final["success_rate"] > base["success_rate"] + 0.2
    assert final["ci95"][0] <= final["success_rate"] <= final["ci95"][1]
    assert s["training_missions"] == 40 and s["wall_s"] > 0
    assert final["criteria"]["main.speed_limit"] == final["success_rate"]
    assert final["lessons"]["pilot"] and final["lessons"]["pilot"][0]["evidence"]
    assert len(s["nights"]) == 2 and all("gate" in n for n in s["nights"])
    report = (tmp_path / "report/report.md").read_text()
    assert "after night 2" in report and "Lessons of the final playbooks" in report
    for png in ("success_by_version.png", "criteria_by_version.png", "failure_causes.png"):
        assert (tmp_path / "report" / png).stat().st_size > 5000
    assert json.loads((tmp_path / "report/summary.json").read_text())["campaign_id"] == s["campaign_id"]
    # the cost of learning counts every validation flight the nights flew, not only the day's missions
    cost = s["cost"]["dreaming"]
    assert cost["training_missions"] == 40 and cost["training_tokens"] == s["training_tokens"] > 0
    assert cost["gate_flights"] == sum(n["cost"]["gate_flights"] for n in s["nights"]) >= 2 * CFG.validation
    assert cost["learning_tokens"] == cost["training_tokens"] + cost["gate_tokens"] + cost["synthesis_tokens"] > cost["training_tokens"]
    assert cost["test_flights"] >= 2 * CFG.test and cost["test_flights"] % CFG.test == 0  # each distinct version flown once
    assert f"| dreaming | 40 ({cost['training_tokens']}) | {cost['gate_flights']} ({cost['gate_tokens']}) |" in report


def test_scenario_sets_are_disjoint_and_seeded(pilot):
    sets = {k: set(pilot.scenario_seeds(k, 200, 3)) for k in ("train", "validation", "test")}
    assert not (sets["train"] & sets["validation"]) and not (sets["train"] & sets["test"]) and not (sets["validation"] & sets["test"])
    assert set(pilot.scenario_seeds("test", 200, 4)) != sets["test"]


class Interrupt(KeyboardInterrupt):
    pass


def test_resume_after_interruption_reproduces_the_figures(pilot, tmp_path):
    full = run_campaign(pilot, CFG, db=tmp_path / "a.db", out=tmp_path / "ra")
    count = {"n": 0}

    def advance(phase, flown):
        count["n"] += 1
        if count["n"] == 30:  # in the middle of day 2
            raise Interrupt()

    with pytest.raises(Interrupt):
        run_campaign(pilot, CFG, db=tmp_path / "b.db", out=tmp_path / "rb", progress=Progress(advance=advance))
    resumed = run_campaign(pilot, CFG, db=tmp_path / "b.db", out=tmp_path / "rb", resume=True)
    assert [v["success_rate"] for v in resumed["versions"]] == [v["success_rate"] for v in full["versions"]]
    assert [v["playbook_versions"] for v in resumed["versions"]] == [v["playbook_versions"] for v in full["versions"]]
    from orchestra.store import Store

    st = Store(tmp_path / "b.db")
    per_phase = dict(st.db.execute("SELECT phase, COUNT(*) FROM runs GROUP BY phase").fetchall())
    assert per_phase["train"] == 40  # every mission exactly once
    assert st.db.execute("SELECT COUNT(DISTINCT run_id) FROM runs").fetchone()[0] == st.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def test_ablation_with_shuffled_verdicts_gains_nothing(pilot, tmp_path):
    cfg = CampaignConfig(nights=1, missions=30, validation=20, test=30, seed=2, executor="local", ablation="shuffled")
    s = run_campaign(pilot, cfg, db=tmp_path / "c.db", out=tmp_path / "r")
    abl = [v for v in s["versions"] if v["arm"] == "ablation_shuffled"]
    assert len(abl) == 1
    assert abl[0]["success_rate"] <= s["versions"][0]["success_rate"] + 0.05
    assert s["versions"][1]["success_rate"] > abl[0]["success_rate"]


def test_wilson_interval():
    lo, hi = wilson(8, 10)
    assert 0.49 < lo < 0.5 and 0.94 < hi < 0.95
    assert wilson(0, 0) == (0.0, 0.0)


@pytest.mark.slow
def test_process_executor_gives_the_same_figures(pilot, tmp_path):
    local = run_campaign(pilot, CFG, db=tmp_path / "l.db", out=tmp_path / "rl")
    proc = run_campaign(pilot, CampaignConfig(**{**CFG.__dict__, "executor": "process", "workers": 2}), db=tmp_path / "p.db", out=tmp_path / "rp")
    assert [v["success_rate"] for v in proc["versions"]] == [v["success_rate"] for v in local["versions"]]


def test_report_shows_leave_one_out_rounds_and_why_a_night_was_not_promoted(pilot, tmp_path):
    from orchestra.report import dream_outcome, write_report

    s = run_campaign(pilot, CampaignConfig(nights=1, missions=20, validation=20, test=20, seed=1, executor="local"), db=tmp_path / "c.db", out=tmp_path / "r1")
    s["nights"][0]["gate"] = {**s["nights"][0]["gate"], "reason": "new lessons won no more validation scenarios than they lost",
                              "pruned": {"dropped": ["Lbad"], "rounds": [{"success_with": 0.5, "success_without": {"Lbad": 0.9, "Lgood": 0.3}}]},
                              "tightened": [{"lesson_id": "Lgood", "rule": "require output.speed_mps <= 2.9", "moved": "require output.speed_mps <= 2.2", "success_with": 0.9, "success_moved": 0.95, "kept": True},
                                             {"lesson_id": "Lgust", "rule": "require output.gust_margin <= 4", "moved": "require output.gust_margin <= 3", "success_with": 0.95,
                                              "success_moved": None, "kept": False, "skipped": "no failed validation run breaks the moved limit"},
                                             {"lesson_id": "Lwind", "rule": "require output.wind_mps <= 9", "moved": "require output.wind_mps <= 6", "success_with": 0.95,
                                              "success_moved": 0.95, "kept": False, "versus_tested": {"wins": 0, "losses": 0}},
                                             {"lesson_id": "Lrain", "rule": "require output.rain_mm <= 9", "moved": "require output.rain_mm <= 6", "success_with": 0.95,
                                              "success_moved": 0.95, "kept": False, "versus_tested": {"wins": 1, "losses": 1}}]}
    assert isinstance(s["nights"][0]["unnamed_failures"], list)  # what the dream found (see test_dreaming_steps)
    s["nights"][0]["unnamed_failures"] = [{"label": "land.advisory.power_margin", "runs": 7, "words": ["margin", "power"]}]
    report = write_report(s, tmp_path / "r2", pilot, [], None, []).read_text()
    assert ("Failed in 2+ runs, but their accounts name no decision (only the general family tests these): "
            "`land.advisory.power_margin` in 7 runs (shared words: margin, power).") in report
    assert "Leave-one-out round 1: with every new lesson 50.0%; without each: Lbad 90.0%, Lgood 30.0%." in report
    assert "Dropped by leave-one-out: Lbad." in report
    assert "Not promoted: new lessons won no more validation scenarios than they lost." in report
    assert "Moved in: `require output.speed_mps <= 2.9` -> `require output.speed_mps <= 2.2`: 90.0% -> 95.0%, kept." in report
    assert "Moved in: `require output.gust_margin <= 4` -> `require output.gust_margin <= 3`: not flown (no failed validation run breaks the moved limit)." in report
    assert "Moved in: `require output.wind_mps <= 9` -> `require output.wind_mps <= 6`: 95.0% -> 95.0% (won 0, lost 0 against the tested limit), not kept." in report
    assert "Moved in: `require output.rain_mm <= 9` -> `require output.rain_mm <= 6`: 95.0% -> 95.0% (won 1, lost 1 against the tested limit), not kept." in report
    for spec, d in s["nights"][0]["specialists"].items():
        assert f"- `{spec}`: {dream_outcome(d)}" in report
    assert "vNone" not in report


def test_running_a_campaign_again_replaces_its_own_stores_and_nothing_beside_them(pilot, tmp_path):
    """The store `runs.db` sits beside the report folder `runs/` and a user's `runs-notes.txt`: a second,
    fresh run of the same campaign replaces runs.db and runs-ablation.db and touches neither of the others."""
    cfg = CampaignConfig(nights=1, missions=6, validation=4, test=4, seed=2, executor="local", ablation="shuffled")
    db, out, notes = tmp_path / "runs.db", tmp_path / "runs", tmp_path / "runs-notes.txt"
    notes.write_text("keep me")
    first = run_campaign(pilot, cfg, db=db, out=out)
    assert (tmp_path / "runs-ablation.db").is_file() and (out / "report.md").is_file()
    second = run_campaign(pilot, cfg, db=db, out=out)
    assert notes.read_text() == "keep me" and (out / "report.md").is_file()
    assert [v["success_rate"] for v in second["versions"]] == [v["success_rate"] for v in first["versions"]]
    from orchestra.store import Store

    for path in (db, tmp_path / "runs-ablation.db"):  # replaced, not appended to
        n = Store(path).db.execute("SELECT COUNT(*) FROM runs WHERE phase = 'train'").fetchone()[0]
        assert n == cfg.missions


def test_a_hand_written_reference_is_flown_beside_the_learned_versions_and_never_dreamed_on(pilot, tmp_path):
    """The reference row shows what a playbook written with the hidden limit in mind reaches on the same test set."""
    from orchestra import Condition, Lesson, Playbook, Rule

    rule = Rule(require=Condition(field="output.speed_mps", op="<=", value=3.0))
    ref = {"pilot": Playbook(specialist="pilot", lessons=[Lesson(id="ref-speed", specialist="pilot", text="Approach at 3 m/s or slower.", rule=rule)])}
    cfg = CampaignConfig(nights=1, missions=10, validation=10, test=20, seed=3, executor="local")
    s = run_campaign(pilot, cfg, db=tmp_path / "c.db", out=tmp_path / "r", reference=ref)
    base, final, reference = s["versions"][0], s["versions"][-1], s["reference"]
    assert reference["name"] == "reference (hand-written)" and reference["n"] == cfg.test
    assert reference["success_rate"] == 1.0 > base["success_rate"]  # the limit kept on every test scenario
    assert reference["lessons"]["pilot"][0]["id"] == "ref-speed"
    assert s["reference_gain_reached"] == pytest.approx((final["success_rate"] - base["success_rate"]) / (1.0 - base["success_rate"]))
    report = (tmp_path / "r/report.md").read_text()
    assert "| reference (hand-written) | 100.0% (20/20) |" in report and "`ref-speed` Approach at 3 m/s or slower." in report
    # the criteria table sets the yardsticks beside the versions, criterion by criterion
    header = next(line for line in report.splitlines() if line.startswith("| criterion |"))
    assert header == "| criterion | v0 (empty) | after night 1 | reference (hand-written) |"  # the pilot graph has no oracle
    rows = [line for line in report.splitlines()[report.splitlines().index(header) + 2:] if line.startswith("| ")][:1]
    assert rows and len(rows[0].split("|")) == len(header.split("|")) and rows[0].endswith("| 100.0% |")
    assert "Largest drop of any criterion's pass rate: " in report and " points." in report
    from orchestra.store import Store

    # its flights are test runs: no dream mined them, and no learned lesson came from them
    store = Store(tmp_path / "c.db")
    rows = store.db.execute("SELECT phase, dreamed FROM runs WHERE run_id LIKE ?", [f"{s['campaign_id']}:reference-test-%"]).fetchall()
    assert len(rows) == cfg.test and {tuple(r) for r in rows} == {("test", 0)}
    assert all(les["id"] != "ref-speed" for les in final["lessons"]["pilot"])
    # without a reference the summary says so, and the report has no reference row
    s2 = run_campaign(pilot, cfg, db=tmp_path / "d.db", out=tmp_path / "r2")
    assert s2["reference"] is None and s2["reference_gain_reached"] is None
    assert "reference (hand-written)" not in (tmp_path / "r2/report.md").read_text()


def test_criterion_drops_leave_out_advisory_criteria():
    # a near miss left unscored by the final team (lidar instead of optical) is not a drop of any pass
    baseline = {"criteria": {"land.power": 0.9, "land.near_margin": 0.8}, "advisory_criteria": ["land.near_margin"]}
    final = {"criteria": {"land.power": 0.85, "land.near_margin": 0.1}, "advisory_criteria": ["land.near_margin"]}
    drops = criterion_drops(baseline, final)
    assert drops == pytest.approx({"land.power": 0.05})
    assert criterion_drops({"criteria": {"land.power": 0.9}}, {"criteria": {}}) == pytest.approx({"land.power": 0.9})
