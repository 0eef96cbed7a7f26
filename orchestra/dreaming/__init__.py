"""Dreaming: mine -> induce -> synthesize -> curate -> gate -> promote.

This package turns past runs' episodes into playbook lessons. `induce` finds
statistically supported rules, `synthesize_*` turns them into lesson deltas,
`curate` applies deltas to a playbook under a hard budget.
"""

from .curate import Delta, curate, harmful_lessons, lesson_id, update_counts
from .episodes import Episode, FailureSignature, make_features
from .induce import InducedRule, induce, induce_from_stats
from .stats import InductionStats, failure_signatures, update
from .synthesize import evidence_pack, synthesize_offline, synthesize_with_model, validate_deltas

__all__ = [
    "Delta",
    "Episode",
    "FailureSignature",
    "InducedRule",
    "InductionStats",
    "curate",
    "evidence_pack",
    "failure_signatures",
    "harmful_lessons",
    "induce",
    "induce_from_stats",
    "lesson_id",
    "make_features",
    "synthesize_offline",
    "synthesize_with_model",
    "update",
    "update_counts",
    "validate_deltas",
]
