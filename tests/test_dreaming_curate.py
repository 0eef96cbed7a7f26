"""Curation: deltas by id, newest evidence wins, harmful lessons go, the budget holds."""

from __future__ import annotations

from orchestra.dreaming import Delta, Episode, curate, harmful_lessons, lesson_id, update_counts
from orchestra.dreaming.curate import rendered_tokens
from orchestra.playbook import Lesson, Playbook
from orchestra.rules import Condition, Rule


def rule(field: str, op: str, value, when: list[tuple[str, str, object]] = ()) -> Rule:
    return Rule(when=[Condition(field=f, op=o, value=v) for f, o, v in when], require=Condition(field=field, op=op, value=value))


def lesson(r: Rule, text: str = "", **kw) -> Lesson:
    return Lesson(id=lesson_id("site", r), specialist="site", text=text or f"Keep {r.describe()}.", rule=r, **kw)


def add(l: Lesson) -> Delta:
    return Delta(op="ADD", lesson=l)


def test_lesson_ids_are_deterministic_per_specialist_and_rule():
    r = rule("output.x", "<=", 0.35)
    assert lesson_id("site", r) == lesson_id("site", rule("output.x", "<=", 0.35))
    assert lesson_id("site", r) != lesson_id("nav", r) != lesson_id("site", rule("output.x", "<=", 0.3))


def test_add_update_remove_by_id():
    a, b = lesson(rule("output.x", "<=", 0.35)), lesson(rule("output.y", ">=", 2))
    pb, applied = curate(Playbook(specialist="site"), [add(a), add(b)])
    assert pb.lesson_ids == [a.id, b.id] and len(applied) == 2
    b2 = lesson(rule("output.y", ">=", 3), text="Keep output.y >= 3 now.")
    pb, applied = curate(pb, [Delta(op="UPDATE", lesson_id=b.id, lesson=b2), Delta(op="REMOVE", lesson_id=a.id),
                              Delta(op="REMOVE", lesson_id="Lmissing")])
    assert pb.lesson_ids == [b2.id] and pb.lessons[0].text == "Keep output.y >= 3 now."
    assert [d.op for d in applied] == ["UPDATE", "REMOVE"]  # removing an unknown id changes nothing
    other = Lesson(id="Lnav", specialist="nav", text="x", rule=rule("output.z", "<=", 1))
    assert curate(pb, [add(other)])[0] == pb  # another specialist's lesson never lands here


def test_readding_a_lesson_keeps_its_track_record():
    a = lesson(rule("output.x", "<=", 0.35), helpful=9, harmful=1)
    pb = Playbook(specialist="site", lessons=[a])
    pb2, _ = curate(pb, [add(lesson(a.rule, text="Keep output.x <= 0.35, newer figures."))])
    assert pb2.lessons[0].text.endswith("newer figures.") and (pb2.lessons[0].helpful, pb2.lessons[0].harmful) == (9, 1)


def test_duplicates_merge_and_the_newest_wins():
    old = lesson(rule("output.x", "<=", 0.30, [("input.s", ">=", 0.5)]), text="old")
    new = lesson(rule("output.x", "<=", 0.35, [("input.s", ">=", 0.4)]), text="new")
    other_when = lesson(rule("output.x", "<=", 0.2, [("input.t", ">=", 0.4)]), text="different condition")
    pb, applied = curate(Playbook(specialist="site", lessons=[old, other_when]), [add(new)])
    assert [l.text for l in pb.lessons] == ["different condition", "new"]
    assert applied[-1].op == "REMOVE" and applied[-1].lesson_id == old.id and new.id in applied[-1].reason


def test_a_near_miss_limit_stays_beside_the_failure_limit_of_the_same_shape():
    """Near misses place a limit inside the one failures placed; keeping both lets a team that cannot keep the
    near-miss limit still keep the failure one, rather than have the newer of the two replace the other."""
    failures = lesson(rule("output.shadow", "<=", 0.5), text="failures")
    near = lesson(rule("output.shadow", "<=", 0.1), text="near misses", near_miss=True)
    pb, _ = curate(Playbook(specialist="site", lessons=[failures]), [add(near)])
    assert [l.text for l in pb.lessons] == ["failures", "near misses"]
    newer = lesson(rule("output.shadow", "<=", 0.05), text="newer near misses", near_miss=True)
    pb, applied = curate(pb, [add(newer)])
    assert [l.text for l in pb.lessons] == ["failures", "newer near misses"] and applied[-1].lesson_id == near.id


def test_contradictions_resolve_to_the_newest_only_when_they_can_clash():
    low = lesson(rule("output.x", "<=", 0.3))
    high = lesson(rule("output.x", ">=", 0.5))
    pb, _ = curate(Playbook(specialist="site", lessons=[low]), [add(high)])
    assert pb.lesson_ids == [high.id]
    band = lesson(rule("output.x", ">=", 0.1))  # compatible with x <= 0.3: both stay
    pb, _ = curate(Playbook(specialist="site", lessons=[low]), [add(band)])
    assert pb.lesson_ids == [low.id, band.id]
    lidar = lesson(rule("output.sensor", "==", "lidar", [("input.s", ">=", 0.5)]))
    radar_elsewhere = lesson(rule("output.sensor", "!=", "lidar", [("input.s", "<=", 0.2)]))
    radar_same = lesson(rule("output.sensor", "!=", "lidar", [("input.s", ">=", 0.7)]))
    pb, _ = curate(Playbook(specialist="site", lessons=[lidar]), [add(radar_elsewhere)])
    assert pb.lesson_ids == [lidar.id, radar_elsewhere.id]  # never apply together
    pb, _ = curate(Playbook(specialist="site", lessons=[lidar]), [add(radar_same)])
    assert pb.lesson_ids == [radar_same.id]


def test_hard_budget_holds_and_drops_the_weakest():
    adds = [add(lesson(rule(f"output.f{i}", "<=", float(i)), text=f"Keep output.f{i} <= {i}. " + "Evidence " * 12,
                       support=10 + (7 * i) % 30, lift=2.0)) for i in range(30)]  # strength not in age order
    pb, applied = curate(Playbook(specialist="site"), adds, max_lessons=12, max_tokens=1500)
    assert len(pb.lessons) == 12 and rendered_tokens(pb) <= 1500
    assert {l.support for l in pb.lessons} == set(range(28, 40))  # the strongest survive
    pb, _ = curate(Playbook(specialist="site"), adds, max_lessons=12, max_tokens=300)
    assert rendered_tokens(pb) <= 300 and 0 < len(pb.lessons) < 12
    assert sum(d.reason.startswith("over budget") for d in applied) == 18


def _eps(l: Lesson, passed: int, failed: int, x: float = 0.2, given: bool = True) -> list[Episode]:
    return [Episode(specialist="site", run_id=f"r{i}-{x}-{given}", features={"output.x": x, "output.y": 5.0}, passed=i < passed,
                    lesson_ids=[l.id] if given else []) for i in range(passed + failed)]


def test_update_counts_credits_only_runs_that_were_given_and_followed_the_lesson():
    a = lesson(rule("output.x", "<=", 0.35))
    pb = Playbook(specialist="site", lessons=[a])
    eps = _eps(a, 6, 2) + _eps(a, 0, 5, x=0.9) + _eps(a, 1, 7, given=False)
    got = update_counts(pb, eps).lessons[0]
    assert (got.helpful, got.harmful) == (6, 2)
    got = update_counts(update_counts(pb, eps), _eps(a, 1, 0)).lessons[0]
    assert (got.helpful, got.harmful) == (7, 2)


def test_harmful_lesson_is_flagged_and_dropped():
    good1, good2 = lesson(rule("output.x", "<=", 0.35)), lesson(rule("output.y", ">=", 2))
    bad = lesson(rule("output.x", ">=", 0.1, [("input.s", "<=", 0.1)]))
    pb = Playbook(specialist="site", lessons=[good1, good2, bad])
    pb = update_counts(pb, _eps(good1, 36, 4) + _eps(good2, 18, 2))
    pb = update_counts(pb, [Episode(specialist="site", run_id=f"b{i}", passed=i < 3, lesson_ids=[bad.id],
                                    features={"output.x": 0.2, "input.s": 0.05}) for i in range(15)])
    assert [(l.helpful, l.harmful) for l in pb.lessons] == [(36, 4), (18, 2), (3, 12)]
    assert harmful_lessons(pb) == [bad.id]
    assert harmful_lessons(pb, min_n=20) == []  # too little evidence yet
    assert harmful_lessons(pb, base_rate=0.9) == []  # not worse than a bad base rate
    pb2, applied = curate(pb, [])
    assert pb2.lesson_ids == [good1.id, good2.id] and applied[0].reason.startswith("harmful")


def test_a_limit_validation_moved_in_is_not_loosened_by_a_later_induction():
    from orchestra.dreaming.curate import loosens

    def rule(op: str, value: float, per: str | None = None, when: bool = False) -> Rule:
        return Rule(when=[Condition(field="input.wind", op=">=", value=3.0)] if when else [],
                    require=Condition(field="output.speed", op=op, value=value, per=per))

    moved = Lesson(id="Lm", specialist="pilot", text="Keep output.speed <= 1.7", rule=rule("<=", 1.7), moved_from=2.3)
    pb = Playbook(specialist="pilot", lessons=[moved])
    assert loosens(rule("<=", 2.3), pb) and loosens(rule("<=", 1.9), pb)
    assert not loosens(rule("<=", 1.5), pb)  # stricter: induction may still tighten it
    assert not loosens(rule("<=", 2.3, when=True), pb) and not loosens(rule("<=", 2.3, per="input.wind"), pb)  # another shape
    assert not loosens(rule(">=", 0.5), pb)  # the other side of the same feature
    tested = Playbook(specialist="pilot", lessons=[moved.model_copy(update={"moved_from": None})])
    assert not loosens(rule("<=", 2.3), tested)  # a tested limit is replaced as before, newest wins
    up = Playbook(specialist="pilot", lessons=[Lesson(id="Lu", specialist="pilot", text="", rule=rule(">=", 2.0, per="input.wind"), moved_from=1.1)])
    assert loosens(rule(">=", 1.2, per="input.wind"), up) and not loosens(rule(">=", 2.5, per="input.wind"), up)
    near = Playbook(specialist="pilot", lessons=[moved.model_copy(update={"near_miss": True})])
    assert not loosens(rule("<=", 2.3), near) and loosens(rule("<=", 2.3), near, near_miss=True)  # failures' own limit may sit outside
