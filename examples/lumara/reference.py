"""A hand-written reference playbook: what an engineer who knows Lumara's failure mechanisms would write.

Campaigns fly it on the test set beside the learned versions, so a report shows how much of the oracle's
lead any playbook over orbital products can take back (the oracle sees ground truth; no playbook can).
Dreaming never reads it and the offline policies never see it unless a run is handed it explicitly.
The limits were set from the mechanisms and checked on development seeds 11-16 only.
"""

from __future__ import annotations

from orchestra import Condition, Lesson, Playbook, Rule


def _lesson(specialist: str, key: str, text: str, rule: Rule) -> Lesson:
    return Lesson(id=f"ref-{key}", specialist=specialist, text=text, rule=rule)


def _req(field: str, op: str, value: object, per: str | None = None) -> Condition:
    return Condition(field=field, op=op, value=value, per=per)  # type: ignore[arg-type]


SITE = [
    ("earth", "Pick a site with Earth above the horizon: no direct-to-Earth link, no mission.",
     Rule(require=_req("output.earth_visible", "==", True))),
    ("sunlit", "Land where the site is at most 10% shadowed: a solar lander parked in shadow drains its battery in hours.",
     Rule(require=_req("output.shadow_fraction", "<=", 0.1))),
    ("slope", "Keep the orbital slope at or under 6 deg: orbital slopes err by 1.5-2.5 deg and the footpads tip past 12 deg.",
     Rule(require=_req("output.slope_deg", "<=", 6.0))),
    ("rims", "Stay 100 m or more from fresh crater rims, where boulders too small to map from orbit cluster.",
     Rule(require=_req("output.rim_distance_m", ">=", 100.0))),
    ("rough", "Prefer sites with RMS roughness at or under 0.5 m.",
     Rule(require=_req("output.roughness_m", "<=", 0.5))),
    ("cliffs", "Stay 50 m or more from terrain steeper than 30 deg.",
     Rule(require=_req("output.cliff_distance_m", ">=", 50.0))),
    ("approach", "Avoid approaches more than half in shadow, where terrain-relative navigation is blind.",
     Rule(require=_req("output.approach_shadow_fraction", "<=", 0.5))),
]

NAVIGATION = [
    ("altimeter", "Set the altimeter rejection gate at 1.5x the approach relief or more, so a real terrain jump is not rejected as a fault.",
     Rule(require=_req("output.altimeter_rejection_m", ">=", 1.5, "input.site.relief_m"))),
    ("lidar", "Fly lidar whenever 5% or more of the approach is in shadow: optical navigation needs light.",
     Rule(when=[_req("input.site.approach_shadow_fraction", ">=", 0.05)], require=_req("output.sensor", "==", "lidar"))),
    ("hover", "Scan for hazards from 100 m or higher, where the hazard map reaches far enough to divert.",
     Rule(require=_req("output.hover_altitude_m", ">=", 100.0))),
    ("divert", "Keep a divert budget of 60 m or more.",
     Rule(require=_req("output.divert_budget_m", ">=", 60.0))),
    ("terminal", "Descend the last metres at 1.2 m/s or slower.",
     Rule(require=_req("output.terminal_rate_mps", "<=", 1.2))),
]


def reference_playbooks() -> dict[str, Playbook]:
    """The reference team's playbooks (mission assurance keeps its instructions only)."""
    return {
        spec: Playbook(specialist=spec, version=0, lessons=[_lesson(spec, key, text, rule) for key, text, rule in items])
        for spec, items in (("site_selection", SITE), ("navigation", NAVIGATION))
    }
