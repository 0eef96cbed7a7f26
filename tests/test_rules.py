"""Structured playbook rules: conditions, choose and constrain."""

from orchestra.rules import Condition, Rule, choose, constrain, flatten, violations


def test_condition_ops_and_missing_features():
    f = {"a": 0.3, "s": "lidar", "b": True}
    assert Condition(field="a", op="<=", value=0.35).holds(f) is True
    assert Condition(field="a", op=">", value=0.35).holds(f) is False
    assert Condition(field="s", op="in", value=["lidar", "radar"]).holds(f) is True
    assert Condition(field="b", op="==", value=True).holds(f) is True
    assert Condition(field="zz", op="==", value=1).holds(f) is None


def test_conditional_rule_and_constrain():
    r = Rule(when=[Condition(field="input.shadow", op=">", value=0.3)], require=Condition(field="output.sensor", op="==", value="lidar"))
    assert constrain([r], {"input.shadow": 0.5}, "output.sensor", "optical") == "lidar"
    assert constrain([r], {"input.shadow": 0.1}, "output.sensor", "optical") == "optical"
    lo = Rule(require=Condition(field="output.alt", op=">=", value=80.0))
    assert constrain([lo], {}, "output.alt", 50.0) == 80.0
    assert constrain([lo], {}, "output.alt", 120.0) == 120.0


def test_when_no_option_keeps_every_rule_choose_breaks_the_least_evidenced_ones():
    visible = Rule(require=Condition(field="earth", op="==", value=True))
    rough = Rule(require=Condition(field="rough", op=">=", value=0.9))
    lit = Rule(require=Condition(field="shadow", op="<=", value=0.5))
    cands = [{"earth": False, "rough": 1.0, "shadow": 0.2},  # breaks the Earth rule only
             {"earth": True, "rough": 0.1, "shadow": 0.7}]   # breaks the two weakly evidenced ones
    # unweighted, one broken rule beats two
    assert choose(cands, [visible, rough, lit]) == 0
    # 80% of those who broke the Earth rule failed, half of those who broke each of the others:
    # breaking both weak ones (1 - 0.5 * 0.5 = 75% risk) is better than breaking the strong one (80%)
    assert choose(cands, [visible, rough, lit], weights=[0.8, 0.5, 0.5]) == 1
    assert choose(cands, [visible, rough, lit], weights=[0.7, 0.5, 0.5]) == 0
    # an option that keeps every rule wins whatever the weights, and weights that do not match the rules are ignored
    assert choose(cands + [{"earth": True, "rough": 1.0, "shadow": 0.1}], [visible, rough, lit], weights=[0.8, 0.5, 0.5]) == 2
    assert choose(cands, [visible, rough, lit], weights=[0.8]) == 0


def test_choose_prefers_fewest_violations_then_key():
    r = Rule(require=Condition(field="output.slope", op="<=", value=5))
    cands = [{"output.slope": 9, "v": 10}, {"output.slope": 4, "v": 1}, {"output.slope": 3, "v": 2}]
    assert choose(cands, [r], key=lambda f: f["v"]) == 2
    assert choose(cands, [], key=lambda f: f["v"]) == 0
    assert len(violations([r], cands[0])) == 1


def test_flatten():
    assert flatten({"site": {"slope": 3, "tags": [1]}, "ok": True}, "input") == {"input.site.slope": 3, "input.ok": True}


def test_relative_condition_compares_with_a_multiple_of_another_feature():
    c = Condition(field="output.rejection_m", op=">=", value=1.2, per="input.relief_m")
    assert c.holds({"output.rejection_m": 60.0, "input.relief_m": 40.0}) is True
    assert c.holds({"output.rejection_m": 40.0, "input.relief_m": 40.0}) is False
    assert c.holds({"output.rejection_m": 40.0}) is None  # no reference: the rule does not apply
    assert c.describe() == "output.rejection_m >= 1.2 * input.relief_m"
    r = Rule(require=c)
    assert constrain([r], {"input.relief_m": 50.0}, "output.rejection_m", 30.0) == 60.0
    assert constrain([r], {}, "output.rejection_m", 30.0) == 30.0
    assert r.satisfied({"output.rejection_m": 30.0})


def test_relative_condition_needs_a_numeric_comparison():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="per"):
        Condition(field="output.sensor", op="==", value="lidar", per="input.x")
    with pytest.raises(ValidationError, match="per"):
        Condition(field="output.x", op=">=", value=True, per="input.x")
