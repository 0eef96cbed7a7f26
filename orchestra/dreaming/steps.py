"""The dream's middle steps, glued: induce over kept statistics, then synthesize and curate per specialist.

Induction runs two kinds of test. The *general* family (every specialist, failure label and
candidate) is held to one Westfall-Young family-wise bound. *Focused* families are the features a
failure's own explanation names (see `focus_families`): each is small, gets a permutation p-value
from its own null (conditional candidates included), and the families are held together by
Benjamini-Hochberg, so two or three explained runs can carry a rule while shuffled outcomes still
yield a proposal in at most alpha of dreams. The validation gate then confirms every proposal.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import Any, Sequence

import numpy as np

from ..models.base import Model
from ..playbook import Playbook
from ..rules import Condition, Rule
from .curate import Delta, curate, loosens, update_counts
from .episodes import CRITERION_WORD, NEAR_MISS_WORD, Episode, FailureSignature, is_advisory_key, name_words
from .induce import InducedRule, NullSearch, _Cond, _holds, _Search, focus_table, induce_from_stats
from .stats import RATIO, Column, InductionStats, Table, failure_signatures, update
from .synthesize import synthesize_offline, synthesize_with_model

MIN_SUPPORT = 3
ALPHA = 0.05
MAX_RULES = 5
MAX_LESSONS = 12
MAX_TOKENS = 1500
PERMUTATIONS = 200
PERMUTATION_MAX_ROWS = 6000
FOCUS_MIN_SUPPORT = 2  # a failure's own account is a second line of evidence, so two runs may carry a focused rule
FOCUS_SHARE = 0.5  # a word names a failure when at least half of its runs' explanations use it ...
FOCUS_CONTRAST = 0.5  # ... and that many more of them than of the other runs' explanations
FOCUS_MAX_RULES = 2
FOCUS_SAME = 0.5  # labels whose failed runs overlap this much (Jaccard) are one hypothesis under two names
FOCUS_PERMUTATIONS = 1000  # enough resolution for Benjamini-Hochberg over a few dozen families
NEAR_MISS_MIN_RUNS = 30  # near-miss families are tested once this many runs are in the statistics (see induce_focused)


Outcome = tuple[bool, "str | None", dict]
Label = "tuple[str, str] | None"


def _outcomes(tables: list[Table]) -> dict[str, Outcome]:
    """Each run's outcome: passed, root cause, and which criteria failed (the same for all its episodes)."""
    out: dict[str, Outcome] = {}
    for t in tables:
        for j, (run, ok, code) in enumerate(zip(t.run_ids, t.passed, t.cause)):
            if str(run) not in out:
                failed = {c: bool(t.C[i, j] == 0) for i, c in enumerate(t.criteria)} if t.C.size else {}
                out[str(run)] = (bool(ok), t.causes[code] if code >= 0 else None, failed)
    return out


def _relabel(t: Table, outcome: dict[str, Outcome], label: Label) -> Table:
    """The table with run outcomes from `outcome`; a label narrows 'failed' to one cause or one criterion."""
    runs = [str(r) for r in t.run_ids]
    if label is None:
        passed = [outcome[r][0] for r in runs]
    elif label[0] == "cause":
        passed = [outcome[r][1] != label[1] for r in runs]
    else:
        passed = [not outcome[r][2].get(label[1], False) for r in runs]
    return dataclasses.replace(t, passed=np.array(passed, bool))


def _failed(outcome: Outcome, label: Label) -> bool:
    if label is None:
        return not outcome[0]
    if label[0] == "cause":
        return outcome[1] == label[1]
    return bool(outcome[2].get(label[1], False))


def _label_name(label: Label) -> str:
    """A label as an induced rule records it: '' for the verdict, 'cause:<name>', or the criterion's key."""
    if label is None:
        return ""
    return f"cause:{label[1]}" if label[0] == "cause" else str(label[1])


def _labelled(rules: list[InducedRule], label: Label) -> list[InducedRule]:
    return [r.model_copy(update={"label": _label_name(label)}) for r in rules]


def _labels(stats: InductionStats, min_count: int) -> list[Label]:
    """Overall pass/fail, each cause and each criterion failed in at least `min_count` runs; one name per set of runs."""
    real = _outcomes(list(stats.tables.values()))
    causes: dict[str, int] = {}
    crits: dict[str, int] = {}
    for ok, cause, failed in real.values():
        if not ok and cause and cause != "none":
            causes[cause] = causes.get(cause, 0) + 1
        for c, f in failed.items():
            crits[c] = crits.get(c, 0) + int(f)
    labels: list[Label] = [None]
    labels += [("cause", c) for c, n in sorted(causes.items()) if n >= min_count]
    labels += [("criterion", c) for c, n in sorted(crits.items()) if n >= min_count]
    # the same failing runs under two names is one hypothesis, not two: keep the first name
    runs = sorted(real)
    unique: list[Label] = []
    seen: set[tuple[bool, ...]] = set()
    for lab in labels:
        key = tuple(_failed(real[r], lab) for r in runs)
        if key not in seen:
            seen.add(key)
            unique.append(lab)
    return unique


def _advisory(label: Label) -> bool:
    """A near-miss label: an advisory criterion's, tested only after the failure labels (see `induce_focused`)."""
    return label is not None and label[0] == "criterion" and is_advisory_key(str(label[1]))


def _variants(stats: InductionStats) -> list[tuple[str, Label]]:
    """(specialist, label) pairs to test: overall pass/fail, each recurring cause, each often-failed criterion."""
    labels = [lab for lab in _labels(stats, MIN_SUPPORT) if not _advisory(lab)]
    return [(spec, lab) for spec in sorted(stats.tables) for lab in labels]


def permutation_threshold(stats: InductionStats, variants: list[tuple[str, Label]], *, alpha: float = ALPHA, permutations: int = PERMUTATIONS, seed: int = 0) -> float | None:
    """Westfall-Young: the alpha-quantile of the family-wide best log p when run outcomes are shuffled.

    Controls the family-wise error over every specialist, label and candidate at once, without
    Bonferroni's penalty for the thousands of near-identical candidates. None when too large to permute.
    """
    tables = list(stats.tables.values())
    if not tables or sum(t.n for t in tables) > PERMUTATION_MAX_ROWS:
        return None
    real = _outcomes(tables)
    runs = sorted(real)
    searches = {spec: NullSearch(t, MIN_SUPPORT) for spec, t in stats.tables.items()}
    run_index = {spec: _positions(t, runs) for spec, t in stats.tables.items()}
    labels = sorted({lab for _, lab in variants}, key=str)
    # failed[label][run] under the real outcomes; a permutation reorders runs
    failed = {lab: np.array([_failed(real[r], lab) for r in runs], bool) for lab in labels}
    perms = _permutations(len(runs), permutations, seed)
    best = np.zeros(permutations)
    for spec, lab in variants:
        cols = failed[lab][perms][run_index[spec]]  # episodes x P
        best = np.minimum(best, searches[spec].min_logp(cols))
    return _quantile(best, alpha)


def _permutations(n_runs: int, count: int, seed: int) -> np.ndarray:
    """`count` shuffles of the run order, one per column (runs x count): what every permutation null reorders."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n_runs) for _ in range(count)], axis=1)


def _positions(t: Table, runs: list[str]) -> np.ndarray:
    """For each episode of `t`, the position of its run in `runs`."""
    index = {r: i for i, r in enumerate(runs)}
    return np.array([index[str(r)] for r in t.run_ids], int)


def _quantile(null: np.ndarray, alpha: float) -> float:
    """The alpha-quantile of a permutation null of best log p-values (the k-th smallest, k = floor(alpha * P))."""
    return float(np.sort(null)[max(0, int(math.floor(alpha * len(null))) - 1)])


Family = tuple[str, "tuple[str, str]", tuple[str, ...]]


def _run_words(tables: list[Table]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for t in tables:
        for run, w in zip(t.run_ids, t.words):
            out.setdefault(str(run), frozenset(str(w).split()))
    return out


def _heard(said: frozenset[str], criteria_too: bool, near_misses_too: bool = False) -> frozenset[str]:
    """A run's explanation words for one label: the outcome's own, plus the criteria's for a criterion label,
    plus the near misses' for a near-miss label (a failure's family never hears a near miss)."""
    keep = {CRITERION_WORD: criteria_too, NEAR_MISS_WORD: near_misses_too}
    return frozenset(w[1:] if w[:1] in keep else w for w in said if keep.get(w[:1], True))


def _named(c: Column, key: set[str]) -> tuple[int, float]:
    """How many of a failure's key words a column's name carries (a ratio's only once its decision carries one),
    and what share of the name's own words that is (an unnamed input a decision is measured against counts for neither).

    The share breaks ties: a touchdown "in shadow" names `shadow_fraction` by half its words and
    `approach_shadow_fraction` by a third, and the approach's word, unsaid, says that column is about something else.
    """
    decision, _, ref = c.name.partition(RATIO)
    k = len(name_words(decision, c.vocab if c.kind == "cat" else ()) & key)
    own = len(name_words(decision))
    ref_words = name_words(ref) if k and ref else frozenset()
    if ref_words & key:
        k += len(ref_words & key)
        own += len(ref_words)
    return k, k / max(own, 1)


def focus_keys(stats: InductionStats) -> dict[Label, set[str]]:
    """Per failure label, the words at least FOCUS_SHARE of its failed runs' explanations use, FOCUS_CONTRAST more than the rest."""
    tables = list(stats.tables.values())
    real = _outcomes(tables)
    said = _run_words(tables)
    runs = sorted(real)
    # a cause reads its outcome's own words; a criterion also its rationale's; a near miss also its own rationale's
    kinds = ((False, False), (True, False), (True, True))  # a cause, a criterion, a near miss
    heard_by = {k: {r: _heard(said.get(r, frozenset()), *k) for r in runs} for k in kinds}
    out: dict[Label, set[str]] = {}
    for lab in _labels(stats, FOCUS_MIN_SUPPORT)[1:]:
        failed = [r for r in runs if _failed(real[r], lab)]
        others = [r for r in runs if not _failed(real[r], lab)]
        if len(failed) < FOCUS_MIN_SUPPORT or not others:
            continue
        heard = heard_by[(lab[0] == "criterion", _advisory(lab))]
        k1 = Counter(w for r in failed for w in heard[r])
        k0 = Counter(w for r in others for w in heard[r])
        key = {w for w, k in k1.items() if k / len(failed) >= FOCUS_SHARE and k / len(failed) - k0[w] / len(others) >= FOCUS_CONTRAST}
        if key:
            out[lab] = key
    return out


def unnamed_failures(stats: InductionStats, keys: dict[Label, set[str]] | None = None) -> list[dict[str, Any]]:
    """Failures and near misses seen in FOCUS_MIN_SUPPORT runs or more whose accounts name no specialist's decision.

    No focused family tests them, only the general one (which needs two or three times the runs), so a
    criterion whose rationale never names what it measures teaches nothing from a few runs: the dream says so.
    """
    if sum(t.n for t in stats.tables.values()) > PERMUTATION_MAX_ROWS:
        return []  # no focused family is tested at this size, named or not
    keys = focus_keys(stats) if keys is None else keys
    tested = {lab for _, lab, _ in focus_families(stats, keys)}
    real = _outcomes(list(stats.tables.values()))
    out = []
    for lab in _labels(stats, FOCUS_MIN_SUPPORT)[1:]:
        if lab not in tested:
            said = sorted(w for w in keys.get(lab, set()) if w.isalnum())[:8]
            out.append({"label": _label_name(lab), "runs": sum(_failed(o, lab) for o in real.values()), "words": said})
    return out


def _best_named_inputs(t: Table, columns: Sequence[str], key: set[str]) -> tuple[str, ...]:
    """The family's columns with only the inputs its failure's words name best: the conditions its text points at."""
    named = {c.name: _named(c, key) for c in t.columns if c.name in columns and c.name.startswith("input.")}
    best = max(named.values(), default=(0, 0.0))
    return tuple(n for n in columns if not n.startswith("input.") or named.get(n) == best)


def focus_families(stats: InductionStats, keys: dict[Label, set[str]] | None = None) -> list[Family]:
    """(specialist, failure label, columns): per label, the features named by the words its failed runs' explanations share.

    A rule may require one of the specialist's decisions so named, optionally when something it was
    handed (`input.*`) and so named holds. The families are fixed before any p-value is computed and
    travel with the outcomes under permutation, so their own Westfall-Young bound stays valid.
    `keys` are `focus_keys(stats)`, when the caller already has them.
    """
    out: list[Family] = []
    for lab, key in (focus_keys(stats) if keys is None else keys).items():
        for spec in sorted(stats.tables):
            t = stats.tables[spec]
            # a decision counts by its own name's words, so the decisions named best carry the family, with every
            # input named as a possible condition; a ratio to an input counts once its decision is named, and then
            # by both names' words, so "a jump in terrain relief" puts the gate relative to the relief first
            named = {c.name: _named(c, key) for c in t.columns if c.name.startswith(("output.", "input."))}
            best = max((k for n, k in named.items() if n.startswith("output.")), default=(0, 0.0))
            cols = tuple(n for n, k in named.items() if k[0] and (n.startswith("input.") or k == best))
            if best[0]:
                out.append((spec, lab, cols))  # type: ignore[arg-type]
    return out


def focus_null(stats: InductionStats, family: Family, real: dict[str, Outcome], perms: np.ndarray, *, seed: int = 0) -> tuple[float, np.ndarray] | None:
    """One focused family's best log p on the real outcomes, and its null over `perms` (conditional candidates included)."""
    spec, lab, cols = family
    runs = sorted(real)
    t = focus_table(stats.tables[spec], cols)
    failed = np.array([_failed(real[r], lab) for r in runs], bool)
    at = _positions(t, runs)
    search = _Search.build(dataclasses.replace(t, passed=~failed[at]), FOCUS_MIN_SUPPORT, "output.", PERMUTATION_MAX_ROWS, seed, "input.")
    if search is None:
        return None
    observed = search.min_logp(top=8)
    labels = failed[perms][at]  # episodes x P
    return observed, np.array([search.relabel(labels[:, p]).min_logp(top=8) for p in range(perms.shape[1])])


@dataclasses.dataclass(frozen=True)
class FocusTest:
    """One focused hypothesis as tested: a specialist's named columns under one or more labels failing mostly the same runs."""

    specialist: str
    columns: tuple[str, ...]
    labels: tuple[Label, ...]
    p_value: float
    observed: float
    null: np.ndarray = dataclasses.field(repr=False, compare=False)


def focused_tests(stats: InductionStats, *, seed: int = 0, keys: dict[Label, set[str]] | None = None) -> list[FocusTest]:
    """Every focused family's permutation test, most significant first.

    Families of one specialist that name the same columns under labels failing mostly the same runs
    (a cause and the criterion it fails) are one hypothesis under two names: they are tested together,
    their statistic the best over the labels and their null the best over the labels under each
    shuffle, so two names for one way of failing do not double what Benjamini-Hochberg must pay for.
    """
    tables = list(stats.tables.values())
    if sum(t.n for t in tables) > PERMUTATION_MAX_ROWS:
        return []
    real = _outcomes(tables)
    runs = sorted(real)
    perms = _permutations(len(real), FOCUS_PERMUTATIONS, seed + 1)  # the same shuffles for every family
    groups: list[tuple[str, tuple[str, ...], list[Label], set[str], float, np.ndarray]] = []
    for family in focus_families(stats, keys):
        got = focus_null(stats, family, real, perms, seed=seed)
        if got is None:
            continue
        spec, lab, cols = family
        fails = {r for r in runs if _failed(real[r], lab)}
        key = tuple(sorted(cols))
        for k, (s, c, labels, members, observed, null) in enumerate(groups):
            if (s, c) == (spec, key) and _same_failures(fails, members) and _advisory(lab) == _advisory(labels[0]):
                groups[k] = (s, c, labels + [lab], members | fails, min(observed, got[0]), np.minimum(null, got[1]))
                break
        else:
            groups.append((spec, key, [lab], fails, got[0], got[1]))
    tests = [FocusTest(spec, cols, tuple(labels), float((1 + np.sum(null <= observed + 1e-9)) / (len(null) + 1)), observed, null)
             for spec, cols, labels, _, observed, null in groups]
    return sorted(tests, key=lambda t: t.p_value)


def induce_focused(stats: InductionStats, *, seed: int = 0) -> list[InducedRule]:
    """Rules from the focused tests (see `focused_tests`), adaptive Benjamini-Hochberg over them.

    The tests whose p-values pass adaptive Benjamini-Hochberg at ALPHA (`bh_cutoff`) are searched with
    the matching quantile of their null as the bound; a passed family whose candidates all miss that bound
    or fail to hold up gives its best rule that holds up within the cutoff. Under shuffled outcomes any
    proposal at all happens with probability at most about ALPHA (the chance that some family passes);
    with several real mechanisms the bound loosens for each one found, as it should.
    """
    keys = focus_keys(stats)  # the families' words, read once: they also say which conditions to search first
    tests = focused_tests(stats, seed=seed, keys=keys)
    real = _outcomes(list(stats.tables.values()))
    if len(real) < NEAR_MISS_MIN_RUNS:
        # a near-miss rule steers the next days away from where rare failures would show: it waits for more runs
        tests = [t for t in tests if not _advisory(t.labels[0])]
    # gatekeeping: failure families first, exactly as if no near misses were recorded; near-miss families then
    # share only the alpha the failure families earned (alpha x the share of them that passed), so they cost nothing
    near = [_advisory(t.labels[0]) for t in tests]
    failures = [t.p_value for t, n in zip(tests, near) if not n]
    failure_cutoff = bh_cutoff(failures)
    if failure_cutoff is None:
        return []
    earned = ALPHA * sum(p <= failure_cutoff for p in failures) / len(failures)
    near_miss_cutoff = bh_cutoff([t.p_value for t, n in zip(tests, near) if n], alpha=earned)
    found: list[InducedRule] = []
    for t, n in zip(tests, near):
        cutoff = near_miss_cutoff if n else failure_cutoff
        if cutoff is None or t.p_value > cutoff:
            continue
        bound = max(_quantile(t.null, (cutoff * (len(t.null) + 1) - 1) / len(t.null)), t.observed)
        table = stats.tables[t.specialist]

        def rules(lab: Label, cols: tuple[str, ...], log_threshold: float, max_rules: int) -> list[InducedRule]:
            view = InductionStats({t.specialist: _relabel(focus_table(table, cols), real, lab)}, stats.max_episodes, stats.max_features, stats.max_categories)
            return _labelled(induce_from_stats(view, min_support=FOCUS_MIN_SUPPORT, alpha=ALPHA, max_rules=max_rules, seed=seed,
                                               log_threshold=log_threshold, conditions_in_null=True, condition_prefix="input."), lab)

        def search(log_threshold: float, max_rules: int) -> list[InducedRule]:
            # the bound covers every candidate of the family, so any that passes may speak: a condition on the inputs
            # the failure's words name best is taken first, and the search runs over every input only without one
            out: list[InducedRule] = []
            for lab in t.labels:
                best = _best_named_inputs(table, t.columns, keys.get(lab, set()))
                named = rules(lab, best, log_threshold, max_rules) if best != t.columns else []
                out += named if any(r.rule.when for r in named) else rules(lab, t.columns, log_threshold, max_rules)
            return out

        # when the family's best candidate did not hold up as a rule (its condition added nothing, say), the family
        # still passed, so its best rule that does hold up may speak for it, if its own p is within the cutoff
        got = search(bound, FOCUS_MAX_RULES) or search(math.log(cutoff), 1)[:1]
        found += [r.model_copy(update={"risk": verdict_risk(r.rule, table, real)}) for r in got] if n else got
    return found


def _column_holds(t: Table, c: Condition) -> tuple[np.ndarray, np.ndarray]:
    """An induced condition placed back on the stored rows: (where its column is present, where it holds there)."""
    if c.op not in ("<=", ">=", "==", "!="):
        raise ValueError(f"induction writes no {c.op!r} condition")
    x = _decision_values(t, c.field, c.per)
    col = None if c.per else t.columns[t.index(c.field)]
    v = col.vocab.index(str(c.value)) if col is not None and col.kind == "cat" else float(c.value)  # type: ignore[arg-type]
    present = ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        return present, present & _holds(x, _Cond(0, c.op, v))


def _decision_values(t: Table, field: str, per: str | None = None) -> np.ndarray:
    """A decision per stored row as induction read it (NaN where absent): `field`, or `field / per` when relative.

    The stored ratio column is the one induction placed the limit on; a rule relative to an input that
    no ratio column holds (written by a model, say) is read by dividing the two raw columns.
    """
    try:
        return t.X[t.index(f"{field}{RATIO}{per}" if per else field)].astype(np.float64)
    except KeyError:
        if per is None:
            raise
    with np.errstate(divide="ignore", invalid="ignore"):
        x = t.X[t.index(field)].astype(np.float64) / t.X[t.index(per)].astype(np.float64)
    return np.where(np.isfinite(x), x, np.nan)


def verdict_risk(rule: Rule, t: Table, real: dict[str, Outcome]) -> float | None:
    """The share of a rule's violators whose run failed its verdict; None when the rule cannot be placed on `t`.

    A rule learned from near misses counts, as its precision, runs that came close, not runs that failed.
    In a conflict between lessons (`rules.choose`) that figure would weigh a near miss like a failure,
    so such a lesson carries this one instead.
    """
    try:
        present, kept = _column_holds(t, rule.require)
        broke = present & ~kept
        for c in rule.when:
            broke &= _column_holds(t, c)[1]
    except (KeyError, ValueError):
        return None
    runs = [str(r) for r in t.run_ids[broke]]
    return sum(not real[r][0] for r in runs) / len(runs) if runs else None


def bh_cutoff(p_values: Sequence[float], alpha: float = ALPHA) -> float | None:
    """The largest p-value adaptive Benjamini-Hochberg lets through at `alpha`, or None when none passes.

    Never above `alpha` itself: however many families are real, one that would not pass alone does not pass.
    """
    m = len(p_values) * null_share(p_values, alpha)
    passed = [k for k, p in enumerate(sorted(p_values), 1) if p <= min(k * alpha / m, alpha)]
    return min(max(passed) * alpha / m, alpha) if passed else None


def null_share(p_values: Sequence[float], lam: float = ALPHA) -> float:
    """Storey's estimate of the share of families with no mechanism behind them (at most 1).

    Benjamini-Hochberg pays for every family as if none were real; when most families of a dream
    come out near p = 0.001, that overcharges the rest. Adaptive BH (Storey, Taylor and Siegmund
    2004) divides the charge by this estimate. lambda = alpha is the choice Blanchard and Roquain (2009)
    found robust under dependence; under shuffled outcomes few p-values fall below it and the estimate stays 1.
    """
    if not p_values:
        return 1.0
    return min(1.0, (1 + sum(p > lam for p in p_values)) / (len(p_values) * (1 - lam)))


def _same_failures(a: set[str], b: set[str]) -> bool:
    """Two labels name one way of failing when most runs failing under either fail under both."""
    return len(a & b) >= FOCUS_SAME * len(a | b)


def induce_general(stats: InductionStats, variants: list[tuple[str, Label]], *, seed: int = 0) -> list[InducedRule]:
    """Rules from the general family: every specialist, label and candidate under one permutation bound."""
    threshold = permutation_threshold(stats, variants, seed=seed)
    real = _outcomes(list(stats.tables.values()))
    found: list[InducedRule] = []
    for spec, label in variants:
        view = InductionStats({spec: _relabel(stats.tables[spec], real, label)}, stats.max_episodes, stats.max_features, stats.max_categories)
        found += _labelled(induce_from_stats(view, min_support=MIN_SUPPORT, alpha=ALPHA, max_rules=MAX_RULES, seed=seed, log_threshold=threshold), label)
    return found


def select_rules(found: Sequence[InducedRule], names: Sequence[str]) -> dict[str, list[InducedRule]]:
    """The strongest rule per decision and side, for at most MAX_RULES decisions per specialist.

    A near-miss limit may stand beside the failure limit of the same decision (`Lesson.near_miss`); it
    constrains the same decision, so it takes no second place among the MAX_RULES.
    """
    by_spec: dict[str, list[InducedRule]] = {n: [] for n in names}
    seen: set[tuple[str, str, str, bool]] = set()
    for r in sorted(found, key=lambda r: r.p_value):
        decision = (r.rule.require.field, r.rule.require.op)
        key = (r.specialist, *decision, is_advisory_key(r.label))
        decisions = {(x.rule.require.field, x.rule.require.op) for x in by_spec.setdefault(r.specialist, [])}
        if key in seen or (decision not in decisions and len(decisions) >= MAX_RULES):
            continue
        seen.add(key)
        by_spec[r.specialist].append(r)
    return by_spec


def induce_all(prior: InductionStats | None, episodes: Sequence[Episode], names: Sequence[str], *, seed: int = 0) -> tuple[InductionStats, dict[str, list[InducedRule]], dict[str, list[FailureSignature]]]:
    """Fold new episodes into the kept statistics and induce from them: old spans are never re-read."""
    stats = update(prior or InductionStats.empty(), episodes)
    variants = _variants(stats)
    found = induce_general(stats, variants, seed=seed) + induce_focused(stats, seed=seed)
    by_spec = select_rules(found, names)
    sigs: dict[str, list[FailureSignature]] = {n: [] for n in names}
    for s in failure_signatures(stats):
        sigs.setdefault(s.specialist, []).append(s)
    return stats, by_spec, sigs


TIGHTEN_QUANTILE = 0.5  # a limit is tried moved in to the median of the values passed runs chose inside it
TIGHTEN_MIN_RUNS = 4


def moved_in(rule: Rule, t: Table) -> Rule | None:
    """The rule with its limit moved in to the median value that passed runs chose inside it; None when not applicable.

    Induction places a limit where 20-40 runs make the evidence significant, which for a graded risk (a
    site's shadow, an altimeter gate against relief) is where failures are common, not where they stop.
    The moved limit was never tested, so it is only a proposal: the gate keeps it if the team wins more
    validation scenarios with it. Only unconditional numeric limits on a decision qualify.
    """
    req = rule.require
    if rule.when or req.op not in ("<=", ">=") or isinstance(req.value, bool) or not isinstance(req.value, (int, float)):
        return None
    try:
        x = _decision_values(t, req.field, req.per)
    except KeyError:
        return None
    limit = float(req.value)
    inside = t.passed & np.isfinite(x) & ((x <= limit) if req.op == "<=" else (x >= limit))
    if int(inside.sum()) < TIGHTEN_MIN_RUNS:
        return None
    moved = round(float(np.quantile(x[inside], TIGHTEN_QUANTILE)), 4)
    if (req.op == "<=" and moved >= limit) or (req.op == ">=" and moved <= limit):
        return None
    return rule.model_copy(update={"require": req.model_copy(update={"value": moved})})


def revise(current: Playbook, episodes: Sequence[Episode], induced: Sequence[InducedRule], signatures: Sequence[FailureSignature], *, dream_id: str, model: Model | None = None, base_rate: float | None = None) -> tuple[Playbook, list[dict[str, Any]]]:
    """Count how the current lessons did, write deltas from the induced rules, and curate under budget."""
    counted = update_counts(current, episodes)
    if model is not None:
        deltas: list[Delta] = synthesize_with_model(model, induced, signatures, specialist=current.specialist, dream_id=dream_id, episodes=episodes, playbook=counted)
    else:
        deltas = synthesize_offline(induced, dream_id=dream_id)
    known = {lesson.id for lesson in counted.lessons}
    fresh = [d for d in deltas if not (d.op == "ADD" and (d.lesson_id in known or (d.lesson and d.lesson.rule and loosens(d.lesson.rule, counted, d.lesson.near_miss))))]
    # one rule induced under two labels (a failure's and a near miss's) is one lesson: its last ADD is the one kept
    last = {d.lesson_id: i for i, d in enumerate(fresh) if d.op == "ADD"}
    fresh = [d for i, d in enumerate(fresh) if d.op != "ADD" or last[d.lesson_id] == i]
    candidate, applied = curate(counted, fresh, max_lessons=MAX_LESSONS, max_tokens=MAX_TOKENS, base_rate=base_rate)
    return candidate, [{"op": d.op, "lesson_id": d.lesson_id, "reason": d.reason, "text": d.lesson.text if d.lesson else None} for d in applied]


def describe_induced(rules: Sequence[InducedRule]) -> list[dict[str, Any]]:
    return [{"rule": r.rule.describe(), "support": r.support, "runs": r.runs, "precision": round(r.precision, 3), "baseline_failure_rate": round(r.baseline_failure_rate, 3), "lift": round(r.lift, 2), "p_value": r.p_value, "q_value": r.q_value} for r in rules]


def load_stats(blob: bytes) -> InductionStats:
    return InductionStats.from_bytes(bytes(blob))


def dump_stats(stats: InductionStats) -> bytes:
    return stats.to_bytes()
