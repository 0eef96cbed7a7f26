"""The gate's paired comparison (`orchestra.dreaming.gate.compare`): what may hold a candidate back."""

from __future__ import annotations

from typing import Any

from orchestra.dreaming.gate import advisory_of, compare


def _run(passed: bool, **criteria: bool | None) -> dict[str, Any]:
    """A flown validation result: status plus one 'land' verdict; None marks an unscored criterion."""
    rows = []
    for cid, ok in criteria.items():
        advisory = cid.startswith("near_")
        rows.append({"id": cid, "passed": ok, "unscored": ok is None, "weight": 0.0 if advisory else 1.0})
    return {"status": "passed" if passed else "failed", "verdicts": {"land": {"criteria": rows}}}


def test_a_scored_criterion_that_regresses_holds_the_candidate_back():
    current = [_run(True, power=True) for _ in range(10)]
    candidate = [_run(True, power=i >= 4) for i in range(10)]  # four paired losses, no wins: beyond noise
    g = compare(current, candidate)
    assert g["regressions"] == ["land.power"]
    assert g["criteria"]["land.power"] == {"current": 1.0, "candidate": 0.6, "lost": 4, "won": 0, "regressed": True}
    assert g["promote"] is False


def test_an_advisory_criterion_is_compared_but_never_holds_the_candidate_back():
    # the candidate flies lidar where the current team flew optical: the optical margin goes unscored
    current = [_run(i < 8, near_optical_margin=True, power=i < 8) for i in range(10)]
    candidate = [_run(True, near_optical_margin=None, power=True) for _ in range(10)]
    g = compare(current, candidate)
    near = g["criteria"]["land.near_optical_margin"]
    assert (near["lost"], near["won"], near["advisory"], near["regressed"]) == (10, 0, True, False)
    assert g["regressions"] == []
    assert g["promote"] is True
    assert "advisory" not in g["criteria"]["land.power"]


def test_advisory_criteria_are_found_by_their_weight():
    runs = [_run(True, near_slope=True, slope=True), _run(False, power=False)]
    assert advisory_of(runs) == {"land.near_slope"}
    assert advisory_of([]) == set()
