"""Rubric schema, one-line `FILE:LINE: field: message` errors, hashing, evidence paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestra.grading import (
    DeterministicCriterion, MissingEvidence, ModelCriterion, Rubric, RubricError, load_rubric, parse_path,
    resolve, rubric_hash,
)

DATA = Path(__file__).resolve().parent / "data" / "rubrics"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def _error(path: Path) -> RubricError:
    with pytest.raises(RubricError) as info:
        load_rubric(path)
    assert "\n" not in str(info.value)
    return info.value


def test_load_valid_rubric():
    r = load_rubric(DATA / "landing.yaml")
    assert (r.id, r.version, r.pass_threshold, r.max_attempts) == ("landing", 3, 0.75, 2)
    assert [c.id for c in r.criteria] == ["touchdown_speed", "slope", "landed", "report_quality"]
    speed = r.criterion("touchdown_speed")
    assert isinstance(speed, DeterministicCriterion)
    assert (speed.op, speed.full, speed.partial, speed.units, speed.gate, speed.weight) == ("<=", 2.0, 3.0, "m/s", True, 3.0)
    judged = r.criterion("report_quality")
    assert isinstance(judged, ModelCriterion)
    assert (judged.scale.min, judged.scale.max, judged.scale.pass_at) == (0, 4, 3)
    assert judged.evidence == ["report.summary", "results.site_selection"]
    assert r.criterion("landed").weight == 1.0 and r.criterion("landed").gate is False


def test_rubric_is_frozen():
    r = load_rubric(DATA / "landing.yaml")
    with pytest.raises(ValidationError):
        r.pass_threshold = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(
    "fixture, expected",
    [
        ("bad_yaml.yaml", "8: (yaml): mapping values are not allowed here"),
        ("unknown_field.yaml", "11: criteria[0].treshold: Extra inputs are not permitted"),
        ("wrong_type.yaml", "14: criteria[1].weight: Input should be a valid number"),
        ("duplicate_id.yaml", "16: criteria[2].id: duplicate criterion id 'fast'"),
        ("missing_criteria.yaml", "2: criteria: Field required"),
        ("bad_op.yaml", "9: criteria[0].op: Input should be '<=', '<', '>=', '>', '==', '!=', 'in', 'is_true' or 'is_false'"),
    ],
)
def test_malformed_fixture_gives_file_line_field_message(fixture: str, expected: str):
    path = DATA / fixture
    err = _error(path)
    assert str(err) == f"{path}:{expected}"
    assert err.file == str(path) and err.line == int(expected.split(":")[0])


_GOOD_CRITERION = """\
  - id: fast
    kind: deterministic
    description: Touchdown speed
    path: telemetry.touchdown.vertical_speed_mps
    op: "<="
    full: 2.0
"""


@pytest.mark.parametrize(
    "text, line, field, message",
    [
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria: []\n", 4, "criteria", "at least 1 item"),
        ("id: x\nversion: 1\npass_threshold: 1.5\ncriteria:\n" + _GOOD_CRITERION, 3, "pass_threshold", "less than or equal to 1"),
        ("id: x\nversion: 1.2\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION, 2, "version", "quote it"),
        ("id: x\nversion: 1\npass_threshold: 0.5\nmax_attempts: 0\ncriteria:\n" + _GOOD_CRITERION, 4, "max_attempts", "greater than or equal to 1"),
        ("id: x\nversion: 1\nversion: 2\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION, 3, "version", "duplicate key"),
        ("id: x\nversion: 1\ndescription:\n  - not\n  - text\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION,
         3, "description", "valid string"),
        ("- just\n- a list\n", 1, "(root)", "must be a YAML mapping"),
        ("", 1, "(root)", "must be a YAML mapping"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION.replace('    full: 2.0\n', '    full: 2.0\n    partial: 1.0\n'),
         11, "criteria[0].partial", "must be above `full`"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION.replace("full: 2.0", 'full: "slow"'),
         10, "criteria[0].full", "numeric `full`"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION.replace("kind: deterministic", "kind: vibes"),
         6, "criteria[0].kind", "does not match any of the expected tags"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION.replace("    path: telemetry.touchdown.vertical_speed_mps\n", ""),
         5, "criteria[0].path", "Field required"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION.replace("telemetry.touchdown", "telemetry..touchdown"),
         8, "criteria[0].path", "malformed path"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION + "    gate: maybe\n", 11, "criteria[0].gate", "valid boolean"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION + "    weight: -1\n", 11, "criteria[0].weight", "greater than or equal to 0"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION + "    weight: 0\n    gate: true\n", 12, "criteria[0].gate",
         "advisory criterion (weight 0) cannot be a gate"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n" + _GOOD_CRITERION + "    weight: 0\n", 11, "criteria[0].weight",
         "every criterion is advisory"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n  - id: q\n    kind: model\n    description: d\n    question: ok?\n"
         "    scale: {min: 0, max: 4, pass_at: 5}\n    evidence: [report]\n", 9, "criteria[0].scale.pass_at", "must lie within [0, 4]"),
        ("id: x\nversion: 1\npass_threshold: 0.5\ncriteria:\n  - id: q\n    kind: model\n    description: d\n    question: ok?\n"
         "    scale: {min: 0, max: 4, pass_at: 3}\n    evidence:\n      - report\n      - report\n", 12, "criteria[0].evidence[1]", "duplicate evidence path"),
    ],
)
def test_malformed_inline_rubric(tmp_path: Path, text: str, line: int, field: str, message: str):
    path = _write(tmp_path, text)
    err = _error(path)
    assert (err.file, err.line, err.field) == (str(path), line, field), str(err)
    assert message in err.message
    assert str(err).startswith(f"{path}:{line}: {field}: ")


def test_unreadable_file_is_a_rubric_error(tmp_path: Path):
    err = _error(tmp_path / "absent.yaml")
    assert err.field == "(file)" and err.line == 1


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"op": "<=", "full": True}, "numeric `full`"),
        ({"op": ">=", "full": 10, "partial": 12}, "must be below `full`"),
        ({"op": "in", "full": "a"}, "non-empty list"),
        ({"op": "in", "full": ["a"], "partial": "b"}, "`partial` as a list"),
        ({"op": "==", "full": "ok", "partial": "meh"}, "no partial credit"),
        ({"op": "!="}, "scalar `full`"),
        ({"op": "is_true", "full": True}, "takes no `full`"),
        ({"op": "is_false", "partial": 1}, "takes no `partial`"),
    ],
)
def test_threshold_rules_per_operator(fields: dict, message: str):
    with pytest.raises(ValidationError, match=message):
        DeterministicCriterion(id="c", description="d", path="a.b", **fields)


def test_rubric_rejects_duplicate_ids_when_built_in_code():
    c = DeterministicCriterion(id="c", description="d", path="a", op="is_true")
    with pytest.raises(ValidationError, match="duplicate criterion id 'c'"):
        Rubric(id="r", version=1, pass_threshold=0.5, criteria=[c, c])


def test_hash_ignores_layout_but_not_content(tmp_path: Path):
    a = load_rubric(DATA / "landing.yaml")
    text = (DATA / "landing.yaml").read_text()
    relaid = _write(tmp_path, "# moved comments\n" + text.replace("scale: {min: 0, max: 4, pass_at: 3}", "scale:\n      min: 0\n      max: 4\n      pass_at: 3"))
    assert rubric_hash(load_rubric(relaid)) == rubric_hash(a)
    changed = _write(tmp_path, text.replace("full: 2.0", "full: 2.5"))
    assert rubric_hash(load_rubric(changed)) != rubric_hash(a)
    assert a.canonical_version == f"landing@3#{rubric_hash(a)[:12]}"


def test_parse_path_keys_and_indices():
    assert parse_path("results.site_selection.slope_deg") == ("results", "site_selection", "slope_deg")
    assert parse_path("telemetry.samples[2].alt") == ("telemetry", "samples", 2, "alt")
    assert parse_path("grid[0][-1]") == ("grid", 0, -1)
    for bad in ["", "a..b", "a.", "a[x]", "a[1"]:
        with pytest.raises(ValueError):
            parse_path(bad)


def test_resolve_dicts_lists_and_missing():
    ev = {"telemetry": {"samples": [{"alt": 10}, {"alt": 5}], "touchdown": {"v": 1.5}}, "tags": {"007": "bond"}}
    assert resolve(ev, "telemetry.touchdown.v") == 1.5
    assert resolve(ev, "telemetry.samples[1].alt") == 5
    assert resolve(ev, "telemetry.samples.0.alt") == 10
    assert resolve(ev, "telemetry.samples[-1].alt") == 5
    assert resolve(ev, "tags.007") == "bond"
    for path, why in [
        ("telemetry.touchdown.h", "no key 'h' in telemetry.touchdown"),
        ("telemetry.samples[5].alt", "out of range"),
        ("telemetry.samples.first", "is a list"),
        ("telemetry.touchdown.v.x", "not a container"),
        ("nope", "in the evidence pack"),
    ]:
        with pytest.raises(MissingEvidence, match=why) as info:
            resolve(ev, path)
        assert info.value.path == path
