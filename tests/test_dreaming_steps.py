"""Induction over kept statistics: the general family, and families focused by failures' own explanations."""

from __future__ import annotations

import numpy as np
import pytest

from orchestra.dreaming import Episode, InductionStats, update
from orchestra.dreaming import steps
from orchestra.dreaming.episodes import CRITERIA_MARK, name_words, words
from orchestra.dreaming.mine import explain as mine_explain
from orchestra.dreaming.job import shuffle_labels
from orchestra.dreaming.synthesize import synthesize_offline

NOMINAL = "Nominal: landed 120 m from the target."


def team(runs: int = 30, seed: int = 0, *, explain: bool = True) -> list[Episode]:
    """Two specialists. Three mechanisms with a run in ten each, every one named by its run's explanation:
    no beacon (output.beacon_on false), tower not lit (site.lit), dark approach flown without lidar."""
    rng = np.random.default_rng(seed)
    eps = []
    for i in range(runs):
        site = {"output.beacon_on": i % 10 != 3, "output.lit_fraction": float(rng.uniform(0.5, 1.0)),
                **{f"output.noise{k}": float(rng.normal()) for k in range(8)}}
        dark = float(rng.uniform(0.0, 0.3)) if i % 10 not in (5, 6, 7) else float(rng.uniform(0.6, 0.9))
        sensor = "lidar" if i % 10 in (6, 7) else "camera"
        if i % 10 == 8:
            site["output.lit_fraction"] = float(rng.uniform(0.0, 0.2))
        nav = {"input.dark_fraction": dark, "output.sensor": sensor, "output.hover_m": float(rng.uniform(20, 80)),
               **{f"input.noise{k}": float(rng.normal()) for k in range(6)}}
        if i % 10 == 3:
            cause, why = "no_signal", "Landed, but the beacon stayed off: no signal home."
        elif i % 10 == 5:
            cause, why = "lost_lock", "The camera lost lock over a dark approach."
        elif i % 10 == 8:
            cause, why = "no_power", "Landed in a spot that is not lit: the battery drains."
        else:
            cause, why = "none", NOMINAL
        ok = cause == "none"
        for spec, f in (("site", site), ("nav", nav)):
            eps.append(Episode(specialist=spec, run_id=f"r{i:03d}", features=f, passed=ok, cause=cause,
                               explanation=why if explain else "", criteria={"main.safe": ok}))
    return eps


def test_words_fold_case_plurals_and_boilerplate():
    assert words("The Beacons stayed OFF; measured false, expected true") == {"beacon", "stayed"}
    assert name_words("output.beacon_on") == {"beacon"}
    assert name_words("output.sensor", ("lidar", "camera")) == {"sensor", "lidar", "camera"}
    assert name_words("output.reject_m@input.site.relief_m") == {"reject", "relief"}


def test_explanations_focus_the_search_on_the_features_they_name():
    stats = update(InductionStats.empty(), team())
    fams = {(s, lab): cols for s, lab, cols in steps.focus_families(stats)}
    assert fams[("site", ("cause", "no_signal"))] == ("output.beacon_on",)
    assert set(fams[("nav", ("cause", "lost_lock"))]) == {"input.dark_fraction", "output.sensor"}
    assert not any("noise" in c for cols in fams.values() for c in cols)


def test_a_cause_and_the_criterion_it_fails_are_tested_as_one_hypothesis():
    """`no_signal` runs fail criterion `link.ok`, and so does one other run: two names for one way of failing.
    Tested apart they would double what Benjamini-Hochberg charges; tested together, one family with both labels."""
    eps = [e.model_copy(update={"criteria": {**e.criteria, "link.ok": e.cause != "no_signal" and e.run_id != "r005"}}) for e in team(30)]
    tests = steps.focused_tests(update(InductionStats.empty(), eps))
    beacon = [t for t in tests if t.columns == ("output.beacon_on",)]
    assert len(beacon) == 1 and set(beacon[0].labels) == {("cause", "no_signal"), ("criterion", "link.ok")}
    # a different way of failing that names other columns stays a family of its own
    assert any(t.labels == (("cause", "lost_lock"),) for t in tests)
    assert beacon[0].p_value <= 0.01
    _, found, _ = steps.induce_all(None, eps, ["site", "nav"])
    beacon_rules = [r for rs in found.values() for r in rs if r.rule.describe() == "require output.beacon_on == True"]
    assert beacon_rules and beacon_rules[0].label in ("cause:no_signal", "link.ok")


def _boulder_field(runs: int, seed: int, advisory: bool) -> list[Episode]:
    """Boulders cluster on crater rims: one strike in `runs`, but many more near misses, recorded by an advisory
    criterion (`land.advisory.boulder_clearance`) that never fails a run. A beacon left off (every tenth run) is a
    failure mechanism of its own, seen often enough for its family to pass."""
    rng = np.random.default_rng(seed)
    rim = rng.uniform(0.0, 300.0, runs)
    silent = {i for i in range(runs) if i % 10 == 3}
    close = [int(i) for i in np.flatnonzero(rim < 80.0) if i not in silent]
    struck = set(close[:1])
    near = {i for i in close[1:] if i % 4 != 0}
    eps = []
    for i in range(runs):
        told = f" It came down {rim[i]:.0f} m from the nearest fresh crater rim."
        if i in struck:
            cause, why = "boulder_strike", "A boulder under a footpad tipped the lander." + told
        elif i in silent:
            cause, why = "no_signal", "Landed, but the beacon stayed off: no signal home."
        elif i in near:
            cause, why = "none", NOMINAL + " A boulder lay under the footprint; no footpad struck it." + told
        else:
            cause, why = "none", NOMINAL
        criteria = {"land.upright": i not in struck}
        if advisory:
            criteria["land.advisory.boulder_clearance"] = i not in struck and i not in near
        feats = {"output.rim_distance_m": float(rim[i]), "output.beacon_on": i not in silent,
                 **{f"output.noise{k}": float(rng.normal()) for k in range(6)}}
        eps.append(Episode(specialist="site", run_id=f"r{i:03d}", features=feats, passed=cause == "none", cause=cause,
                           explanation=why, criteria=criteria))
    return eps


def test_near_misses_carry_a_rule_their_rare_failures_cannot():
    """One strike in 40 runs is too few for a rule; the near misses an advisory criterion records are not, and the
    rule says which label it was tested on."""
    for seed in range(3):
        _, found, _ = steps.induce_all(None, _boulder_field(40, seed, advisory=True), ["site"])
        rim = [r for r in found["site"] if r.rule.require.field == "output.rim_distance_m"]
        assert rim and rim[0].rule.require.op == ">=" and rim[0].label == "land.advisory.boulder_clearance", (seed, found)
        _, blind, _ = steps.induce_all(None, _boulder_field(40, seed, advisory=False), ["site"])
        assert not any(r.rule.require.field == "output.rim_distance_m" for r in blind["site"]), (seed, blind)


def test_near_misses_cost_the_failure_families_nothing():
    """Gatekeeping: failure families are tested as if no near miss were recorded, and near-miss families share only
    the alpha the failure families earned. With no failure family passing, near misses alone propose nothing."""
    for seed in range(3):
        with_near = steps.induce_focused(update(InductionStats.empty(), _boulder_field(40, seed, advisory=True)), seed=seed)
        without = steps.induce_focused(update(InductionStats.empty(), _boulder_field(40, seed, advisory=False)), seed=seed)
        failure_rules = [r for r in with_near if r.label != "land.advisory.boulder_clearance"]
        assert [(r.rule, r.p_value) for r in failure_rules] == [(r.rule, r.p_value) for r in without], seed
        assert any(r.rule.require.field == "output.beacon_on" for r in without)
        quiet = [e.model_copy(update={"passed": True, "cause": "none", "explanation": NOMINAL}) if e.cause == "no_signal" else e
                 for e in _boulder_field(40, seed, advisory=True)]
        assert not any(r.label == "land.advisory.boulder_clearance"
                       for r in steps.induce_focused(update(InductionStats.empty(), quiet), seed=seed)), seed


def test_near_misses_wait_until_enough_runs_have_explored(monkeypatch):
    """A near-miss rule narrows what the next days try, and those days are where rare failures show: near-miss
    families are tested once NEAR_MISS_MIN_RUNS runs have been dreamed on; failure families never wait."""
    for seed in range(3):
        stats = update(InductionStats.empty(), _boulder_field(40, seed, advisory=True))
        ready = steps.induce_focused(stats, seed=seed)
        assert any(r.label == "land.advisory.boulder_clearance" for r in ready), seed
        monkeypatch.setattr(steps, "NEAR_MISS_MIN_RUNS", 41)
        early = steps.induce_focused(stats, seed=seed)
        monkeypatch.undo()
        assert not any(r.label == "land.advisory.boulder_clearance" for r in early), seed
        assert [(r.rule, r.p_value) for r in early] == [(r.rule, r.p_value) for r in ready if r.label != "land.advisory.boulder_clearance"]


def test_a_near_miss_rule_weighs_what_its_violators_lost_not_how_many_came_close():
    """Precision counts near misses for a near-miss rule; in a conflict between lessons the team must weigh it by
    how many of the runs that broke it failed, or a near miss would outweigh a real failure."""
    for seed in range(3):
        eps = _boulder_field(40, seed, advisory=True)
        found = steps.induce_focused(update(InductionStats.empty(), eps), seed=seed)
        near = [r for r in found if r.label == "land.advisory.boulder_clearance"]
        assert near, seed
        for r in near:
            broke = [e for e in eps if not r.rule.satisfied(e.features)]
            assert r.risk == pytest.approx(sum(not e.passed for e in broke) / len(broke))
            assert r.risk < r.precision  # most runs that came close still landed
        assert all(r.risk is None for r in found if r.label != "land.advisory.boulder_clearance")
        lesson = synthesize_offline(near, dream_id="d")[0].lesson
        assert lesson.near_miss and lesson.precision == near[0].risk and f"Of the runs that broke it, {near[0].risk:.0%} failed." in lesson.text


def test_three_explained_failures_are_enough_for_a_rule_and_unexplained_ones_are_not():
    names = ["site", "nav"]
    _, found, _ = steps.induce_all(None, team(30), names)
    rules = {r.rule.describe() for rs in found.values() for r in rs}
    assert "require output.beacon_on == True" in rules
    assert any(r.startswith("when input.dark_fraction >=") and r.endswith("require output.sensor == lidar") for r in rules)
    assert any(r.startswith("require output.lit_fraction >=") for r in rules)
    _, blind, _ = steps.induce_all(None, team(30, explain=False), names)
    unexplained = {r.rule.describe() for rs in blind.values() for r in rs}
    # the same runs without their explanations: the general family finds the sharp unconditional mechanisms,
    # but a conditional one pays for every condition it could have picked, and three runs cannot pay that
    assert "require output.beacon_on == True" in unexplained and not any("sensor" in r for r in unexplained)


def test_shuffled_verdicts_carry_their_explanations_and_rarely_yield_a_focused_rule():
    eps = team(60, seed=1)
    hits = 0
    for seed in range(10):
        shuffled = shuffle_labels(eps, seed)
        assert {e.explanation for e in shuffled if e.cause == "no_signal"} <= {"Landed, but the beacon stayed off: no signal home."}
        stats = update(InductionStats.empty(), shuffled)
        hits += bool(steps.induce_focused(stats, seed=seed))
    assert hits <= 2  # Benjamini-Hochberg over the families: any proposal at all in about one dream in twenty


def test_explanation_words_survive_stored_statistics_and_older_statistics_still_load():
    import io
    import json

    stats = update(InductionStats.empty(), team(10))
    back = InductionStats.from_bytes(stats.to_bytes())
    assert list(back.tables["site"].words) == list(stats.tables["site"].words)
    assert {"beacon", "signal"} <= set(back.tables["site"].words[3].split())
    with np.load(io.BytesIO(stats.to_bytes())) as z:  # format 1 had no words
        arrays = {k: z[k] for k in z.files if not k.endswith("_words")}
    meta = json.loads(bytes(arrays["meta"]).decode())
    arrays["meta"] = np.frombuffer(json.dumps({**meta, "format": 1}).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    old = InductionStats.from_bytes(buf.getvalue())
    assert set(old.tables["site"].words) == {""}
    folded, _, _ = steps.induce_all(old, team(10, seed=2), ["site", "nav"])
    assert folded.tables["site"].n == 20 and folded.tables["site"].words[13] != ""


def graded(runs: int = 40, seed: int = 3) -> list[Episode]:
    """A graded risk: the more of the site in shadow, the likelier the battery drains (risk = shadow^2)."""
    rng = np.random.default_rng(seed)
    eps = []
    for i in range(runs):
        shadow = float(rng.uniform(0.0, 1.0))
        ok = bool(rng.uniform() >= shadow ** 2)
        eps.append(Episode(specialist="site", run_id=f"g{i:03d}", passed=ok, cause="none" if ok else "no_power",
                           features={"output.shadow_fraction": shadow, "output.gate_m": float(rng.uniform(50, 60)), "input.relief_m": float(rng.uniform(40, 50))},
                           explanation=NOMINAL if ok else "Landed in shadow: the battery drains.", criteria={"main.safe": ok}))
    return eps


def test_a_limit_moved_in_sits_at_the_median_the_passed_runs_chose_inside_it():
    """What the gate may try instead of a tested limit: the typical passed choice inside it, never a looser one."""
    from orchestra.rules import Condition, Rule

    t = update(InductionStats.empty(), graded()).tables["site"]
    x = t.X[t.index("output.shadow_fraction")].astype(float)
    upper = Rule(require=Condition(field="output.shadow_fraction", op="<=", value=0.5))
    moved = steps.moved_in(upper, t)
    assert moved is not None and moved.require.value == round(float(np.median(x[t.passed & (x <= 0.5)])), 4) < 0.5
    assert moved.require.field == "output.shadow_fraction" and moved.require.op == "<=" and not moved.when
    # a bound relative to an input moves by the ratio the passed runs chose
    ratio = Rule(require=Condition(field="output.gate_m", op=">=", value=1.1, per="input.relief_m"))
    r = t.X[t.index("output.gate_m")].astype(float) / t.X[t.index("input.relief_m")].astype(float)
    got = steps.moved_in(ratio, t)
    assert got is not None and got.require.per == "input.relief_m" and got.require.value == round(float(np.median(r[t.passed & (r >= 1.1)])), 4) > 1.1
    # induction placed that limit on the stored ratio column, and the move reads the same column
    assert "output.gate_m@input.relief_m" in {c.name for c in t.columns}
    stored = t.X[t.index("output.gate_m@input.relief_m")].astype(float)
    assert got.require.value == round(float(np.median(stored[t.passed & (stored >= 1.1)])), 4)
    # a limit relative to an input no ratio column holds (a model wrote it, say) divides the raw columns
    odd = Rule(require=Condition(field="output.shadow_fraction", op="<=", value=0.01, per="input.relief_m"))
    q = x / t.X[t.index("input.relief_m")].astype(float)
    assert "output.shadow_fraction@input.relief_m" not in {c.name for c in t.columns}
    assert steps.moved_in(odd, t).require.value == round(float(np.median(q[t.passed & (q <= 0.01)])), 4) < 0.01


def test_conditional_categorical_thin_and_unknown_limits_are_not_moved():
    from orchestra.rules import Condition, Rule

    t = update(InductionStats.empty(), graded()).tables["site"]
    x = np.sort(t.X[t.index("output.shadow_fraction")][t.passed].astype(float))
    when = Rule(when=[Condition(field="input.relief_m", op=">=", value=45.0)], require=Condition(field="output.shadow_fraction", op="<=", value=0.5))
    assert steps.moved_in(when, t) is None
    assert steps.moved_in(Rule(require=Condition(field="output.lit", op="==", value=True)), t) is None
    assert steps.moved_in(Rule(require=Condition(field="output.shadow_fraction", op="<=", value=float(x[2]))), t) is None  # three passed runs inside
    assert steps.moved_in(Rule(require=Condition(field="output.nowhere", op="<=", value=1.0)), t) is None


def _altimeter_runs(why_failed: str) -> list[Episode]:
    """Thirty runs, every sixth failing with `why_failed` and every sixth (offset 3) running out of fuel."""
    rng = np.random.default_rng(1)
    eps = []
    for i in range(30):
        fail, other = i % 6 == 0, i % 6 == 3  # a second way of failing, so the cause is a label of its own
        why = why_failed if fail else "Fuel ran out." if other else NOMINAL
        eps.append(Episode(specialist="nav", run_id=f"a{i:03d}", passed=not (fail or other), cause="altimeter_rejection" if fail else "fuel" if other else "none",
                           explanation=why, criteria={"main.safe": not (fail or other)},
                           features={"output.altimeter_rejection_m": float(rng.uniform(20, 60)), "output.hover_altitude_m": float(rng.uniform(50, 150)),
                                     "input.terrain_relief_m": float(rng.uniform(20, 60)), "input.rim_distance_m": float(rng.uniform(20, 300)),
                                     "input.noise": float(rng.normal())}))
    return eps


def test_a_family_holds_the_decisions_its_failures_name_best_and_every_input_they_name():
    """'The altimeter rejection gate fired on the jump and the altitude estimate drifted': the altimeter gate is
    named twice, the hover altitude once. The family tests the gate and the gate against every input in metres
    (none is named), not the hover altitude."""
    stats = update(InductionStats.empty(), _altimeter_runs("The altimeter rejection gate fired on the jump and the altitude estimate drifted."))
    fams = {(s, lab): cols for s, lab, cols in steps.focus_families(stats)}
    assert set(fams[("nav", ("cause", "altimeter_rejection"))]) == {
        "output.altimeter_rejection_m", "output.altimeter_rejection_m@input.terrain_relief_m", "output.altimeter_rejection_m@input.rim_distance_m"}


def test_a_ratio_to_a_named_input_comes_first_once_its_decision_is_named():
    """'... fired on a jump in terrain relief': the gate measured against the terrain relief carries four of its
    words, so the family tests that ratio, with the relief as a possible condition. The raw gate (two words), the
    gate against the rim distance (two) and the hover altitude against the relief (three) drop out. A text
    naming only the relief names no decision, and the specialist gets no family."""
    stats = update(InductionStats.empty(), _altimeter_runs("The altimeter rejection gate fired on a jump in terrain relief; the altitude estimate drifted."))
    fams = {(s, lab): cols for s, lab, cols in steps.focus_families(stats)}
    assert set(fams[("nav", ("cause", "altimeter_rejection"))]) == {"output.altimeter_rejection_m@input.terrain_relief_m", "input.terrain_relief_m"}
    stats = update(InductionStats.empty(), _altimeter_runs("A large jump in terrain relief."))
    assert not [f for f in steps.focus_families(stats) if f[1] == ("cause", "altimeter_rejection")]


def test_a_cause_reads_its_outcome_text_and_a_criterion_also_the_rationales():
    """A crash also fails the Earth-link criterion; 'earth link: measured false' says what followed, not why the
    altimeter gate fired. The cause's family leaves `earth_visible` out; the criterion's family keeps it."""
    rng = np.random.default_rng(2)
    eps = []
    for i in range(30):
        crash, fuel, tip = i % 6 == 0, i % 6 == 3, i in (1, 7, 13)  # tip-overs keep the link: three distinct labels
        why = ("The altimeter rejection gate fired." if crash else "Fuel ran out." if fuel else "Tipped over." if tip else NOMINAL)
        if crash or fuel:
            why += f"{CRITERIA_MARK}earth link: measured false; expected is true"
        cause = "altimeter_rejection" if crash else "fuel" if fuel else "tip_over" if tip else "none"
        eps.append(Episode(specialist="nav", run_id=f"c{i:03d}", passed=cause == "none", cause=cause,
                           explanation=why, criteria={"main.earth_link": not (crash or fuel)},
                           features={"output.altimeter_rejection_m": float(rng.uniform(20, 60)), "input.earth_visible": bool(i % 2)}))
    fams = {(s, lab): set(cols) for s, lab, cols in steps.focus_families(update(InductionStats.empty(), eps))}
    assert fams[("nav", ("cause", "altimeter_rejection"))] == {"output.altimeter_rejection_m"}
    assert "input.earth_visible" in fams[("nav", ("criterion", "main.earth_link"))]


def test_a_failure_family_never_hears_a_near_miss():
    """Crashes slide in on steep ground, so the slope near misses' rationale ('slope margin: measured 9 deg') is
    said on most crashes and few other runs. A criterion's family reads the failed criteria's rationales, but not
    a near miss's: the Earth-link family names what it would with no near miss recorded; the near-miss family
    hears its own words."""
    rng = np.random.default_rng(4)

    def runs(near_misses: bool) -> list[Episode]:
        eps = []
        for i in range(30):
            crash, hidden, tip = i % 5 == 0, i in (3, 13), i in (1, 9, 17)  # two lose Earth behind a ridge, three tip over
            near = near_misses and (crash or i in (7, 11))
            outcome = "The altimeter rejection gate fired." if crash else "Earth is below the horizon." if hidden else "Tipped over." if tip else NOMINAL
            why = mine_explain({"result": {"outcome": {"detail": outcome}}}, "earth link: measured false; expected is true" if crash or hidden else "",
                               "slope margin: measured 9 deg; expected <= 8" if near else "")
            criteria = {"main.earth_link": not (crash or hidden), **({"main.advisory.slope_margin": not near} if near_misses else {})}
            cause = "altimeter_rejection" if crash else "no_earth_link" if hidden else "tip_over" if tip else "none"
            eps.append(Episode(specialist="nav", run_id=f"n{i:03d}", passed=cause == "none", cause=cause,
                               explanation=why, criteria=criteria,
                               features={"output.altimeter_rejection_m": float(rng.uniform(20, 60)), "output.slope_deg": float(rng.uniform(0, 12)),
                                         "input.earth_visible": bool(i % 2)}))
        return eps

    quiet = steps.focus_keys(update(InductionStats.empty(), runs(False)))
    heard = steps.focus_keys(update(InductionStats.empty(), runs(True)))
    assert heard[("criterion", "main.earth_link")] == quiet[("criterion", "main.earth_link")]
    assert not {"slope", "margin"} & heard[("criterion", "main.earth_link")]
    assert {"slope", "margin"} <= heard[("criterion", "main.advisory.slope_margin")]


def test_a_near_miss_whose_account_names_no_decision_is_reported():
    """An advisory criterion named for what it protects ('power margin') rather than what it measures never names
    the site's shadow: no focused family can test it, and the dream says so rather than stay silent."""
    def runs(name: str) -> list[Episode]:
        rng = np.random.default_rng(0)
        eps = []
        for i in range(30):
            shadow = float(rng.uniform(0, 1))
            near = shadow > 0.6
            why = mine_explain({"result": {"outcome": {"detail": NOMINAL}}}, "", f"{name} margin: measured {shadow:.2f}; expected <= 0.6" if near else "")
            eps.append(Episode(specialist="site", run_id=f"s{i:03d}", passed=True, cause="none", explanation=why,
                               criteria={f"land.advisory.{name}_margin": not near},
                               features={"output.shadow_fraction": shadow, "output.slope_deg": float(rng.uniform(0, 12))}))
        return eps

    power = runs("power")
    assert steps.unnamed_failures(update(InductionStats.empty(), power)) == [
        {"label": "land.advisory.power_margin", "runs": sum(not e.criteria["land.advisory.power_margin"] for e in power), "words": ["margin", "power"]}]
    assert steps.unnamed_failures(update(InductionStats.empty(), runs("shadow"))) == []


def test_adaptive_benjamini_hochberg_charges_only_for_the_families_that_look_null():
    # plain BH over ten families stops at rank 3: p = 0.025 at rank 4 misses 4 * 0.05 / 10 = 0.02. With three
    # near-certain families and six that look null, Storey's estimate charges for 10 * 7 / 9.5 = 7.4 families
    p = [0.001, 0.001, 0.002, 0.025, 0.2, 0.3, 0.5, 0.6, 0.8, 0.9]
    assert steps.null_share(p) == pytest.approx(7 / 9.5)
    assert steps.bh_cutoff(p) == pytest.approx(4 * 0.05 / (10 * 7 / 9.5))
    assert steps.bh_cutoff(p[:3] + [0.03] + p[4:]) == pytest.approx(3 * 0.05 / (10 * 7 / 9.5))
    # with no family below lambda the estimate is capped at 1 (plain BH), and nothing passes here
    assert steps.null_share([0.2, 0.4, 0.9]) == 1.0
    assert steps.bh_cutoff([0.2, 0.4, 0.9]) is None
    assert steps.bh_cutoff([]) is None and steps.null_share([]) == 1.0
    # however many families are real, one that would not pass alone at alpha does not pass
    assert steps.bh_cutoff([0.001] * 9 + [0.08]) == 0.05


def camera_team(seed: int = 0, runs: int = 40) -> list[Episode]:
    """16 of 40 landings fly the camera, 11 of those over a dark approach; 4 of the 11 lose lock. Four beacon
    failures stand apart. `dark_fraction >= t` covers most camera landings, so it adds little to the sensor."""
    rng = np.random.default_rng(seed)
    cam = set(rng.choice(runs, 16, replace=False).tolist())
    dark_cam = set(sorted(cam)[:11])
    lost = set(rng.choice(sorted(dark_cam), 4, replace=False).tolist())
    beacon = set(rng.choice(sorted(set(range(runs)) - lost), 4, replace=False).tolist())
    eps = []
    for i in range(runs):
        dark = rng.uniform(0.3, 1.0) if i in dark_cam else rng.uniform(0.0, 0.3) if i in cam else rng.uniform(0.0, 1.0)
        cause, why = ("lost_lock", "The camera lost lock over a dark approach.") if i in lost else \
            ("no_signal", "The beacon stayed off.") if i in beacon else ("none", NOMINAL)
        eps.append(Episode(specialist="nav", run_id=f"r{i:03d}", passed=cause == "none", cause=cause, explanation=why,
                           features={"input.dark_fraction": float(dark), "output.sensor": "camera" if i in cam else "lidar"},
                           criteria={"main.safe": cause == "none"}))
    return eps


def test_a_family_that_passes_speaks_through_its_best_rule_that_holds_up():
    """The family's best candidate is `when dark_fraction >= t, require lidar`, but its condition adds nothing
    that the camera alone does not say (all four losses are among 16 camera landings anyway), so it is no rule.
    The family passed all the same: its best rule that holds up, the plain `sensor == lidar` (p = 0.02, above
    the family's null quantile but within its cutoff), speaks for it, instead of nothing."""
    stats = update(InductionStats.empty(), camera_team(0))
    (family,) = steps.focused_tests(stats)
    assert set(family.columns) == {"input.dark_fraction", "output.sensor"} and family.p_value <= 0.05
    found = steps.induce_focused(stats)
    assert [r.rule.describe() for r in found] == ["require output.sensor == lidar"]
    assert found[0].p_value <= steps.bh_cutoff([family.p_value])


def test_of_two_decisions_named_by_as_many_words_the_one_named_by_more_of_its_own_words_carries_the_family():
    """'Parked in shade' names `shade_fraction` by one of its two words and `approach_shade_fraction` by one of
    three: the approach, unsaid, tells that column is about something else, so the family tests the site's shade."""
    rng = np.random.default_rng(0)
    eps = []
    for i in range(30):
        dark, beacon = i % 6 == 0, i % 6 == 1
        cause, why = ("dark", "Parked in shade: the battery drained.") if dark else ("no_signal", "The beacon stayed off.") if beacon else ("none", NOMINAL)
        eps.append(Episode(specialist="site", run_id=f"r{i:03d}", passed=cause == "none", cause=cause, explanation=why,
                           features={"output.shade_fraction": float(rng.uniform()), "output.approach_shade_fraction": float(rng.uniform())},
                           criteria={"main.safe": cause == "none"}))
    fams = {lab: cols for _, lab, cols in steps.focus_families(update(InductionStats.empty(), eps))}
    assert fams[("cause", "dark")] == ("output.shade_fraction",)


def shade_team(seed: int = 0, *, named_separates: bool = True, runs: int = 40) -> list[Episode]:
    """14 of 40 landings fly the camera, 5 of them lose lock: "the approach was in shade". The site's own shade
    separates the losses perfectly; with `named_separates` the approach's shade does too, but for one camera
    landing from a sunlit site over a shaded approach that held lock. Without it the approach's shade is noise."""
    rng = np.random.default_rng(seed)
    cam = list(range(0, runs, 3))[:14]
    lost, odd = cam[:5], cam[5]
    eps = []
    for i in range(runs):
        if i in lost:
            approach, site = (rng.uniform(0.5, 0.9) if named_separates else rng.uniform(0.0, 0.3)), rng.uniform(0.5, 0.9)
        elif i == odd:
            approach, site = (0.6 if named_separates else 0.1), 0.1
        elif i in cam:
            approach, site = rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.3)
        else:
            approach, site = rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0)
        cause, why = ("lost_lock", "The camera lost lock: the approach was in shade.") if i in lost else \
            ("no_signal", "The beacon stayed off.") if i in (1, 4, 7) else ("none", NOMINAL)
        eps.append(Episode(specialist="nav", run_id=f"r{i:03d}", passed=cause == "none", cause=cause, explanation=why,
                           features={"input.approach_shade_fraction": float(approach), "input.shade_fraction": float(site),
                                     "output.sensor": "camera" if i in cam else "lidar"},
                           criteria={"main.safe": cause == "none"}))
    return eps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_passed_family_takes_its_condition_from_the_input_its_failures_name_best(seed):
    """'The approach was in shade' names `approach_shade_fraction` by two words, the site's `shade_fraction` by
    one. Both are in the family and its p-value is the same as ever; when a condition on the approach's shade
    holds up under the family's bound, it speaks, though the site's shade split these 40 runs a little better
    (a sunlit site is no condition a later playbook that keeps sites sunlit would ever meet). When the approach's
    shade explains nothing, the condition comes from the other input named, as before."""
    stats = update(InductionStats.empty(), shade_team(seed))
    (family,) = steps.focused_tests(stats)
    assert set(family.columns) == {"input.approach_shade_fraction", "input.shade_fraction", "output.sensor"}
    (rule,) = steps.induce_focused(stats)
    assert rule.rule.when[0].field == "input.approach_shade_fraction" and rule.rule.require.describe() == "output.sensor == lidar"
    (rule,) = steps.induce_focused(update(InductionStats.empty(), shade_team(seed, named_separates=False)))
    assert rule.rule.when[0].field == "input.shade_fraction"


def test_a_near_miss_limit_beside_a_failure_limit_takes_no_second_place_among_max_rules():
    """Five decisions fill a specialist's rules; a near-miss limit on one of them still joins (it constrains the
    same decision), a sixth decision does not, and a weaker rule of the same decision and side is dropped."""
    from orchestra.dreaming.induce import InducedRule
    from orchestra.rules import Condition, Rule

    def induced(field: str, value: float, p: float, label: str = "") -> InducedRule:
        return InducedRule(rule=Rule(require=Condition(field=f"output.{field}", op="<=", value=value)), specialist="site", support=5, runs=5,
                           failures=4, precision=0.8, baseline_failure_rate=0.2, lift=4.0, p_value=p, q_value=p, label=label)

    five = [induced(f"risk{k}", 1.0, 0.001 * (k + 1)) for k in range(steps.MAX_RULES)]
    near = induced("risk0", 0.5, 0.01, label="land.advisory.risk_margin")
    sixth = induced("other", 1.0, 0.009)
    weaker = induced("risk1", 0.7, 0.02)
    chosen = steps.select_rules([sixth, weaker, near, *reversed(five)], ["site", "nav"])
    assert chosen["nav"] == []
    assert [r.rule.describe() for r in chosen["site"]] == [r.rule.describe() for r in five] + ["require output.risk0 <= 0.5"]
