"""Induction: rules that separate failed from passed episodes, with honest statistics.

A candidate rule reads "when C require R": R is a threshold (`<=`/`>=`) or a
category test (`==`/`!=`) on one decision feature (`output.*` by default), C is
optional, one condition on any other usable feature. A decision feature may also be
a ratio `output.a_m@input.b_m` (see `stats.ratios`): R then bounds the decision by a
multiple of a same-unit quantity the specialist was handed. Its *violators* are the
episodes where C holds, R's feature is present and R fails; everything else
with R's feature present are *satisfiers*. A good rule's violators fail far
more often than its satisfiers.

Search, per specialist: features are cut at quantiles (32 for decisions, 8 for
conditions), every (condition, decision cut) pair is counted at once by one
matrix product of condition masks against one-hot decision bins, the best
candidates by a normal approximation get an exact one-sided Fisher p-value,
and the winner's thresholds are then refined over every observed value and
placed at a round number inside the gap between the last satisfying and the
first violating value. Greedy rounds then drop the winner's violators and
search again, so several independent mechanisms come out, skipping a second
rule on the same field and direction.

False discoveries: weighted Bonferroni over *every* candidate tested in the
call (all specialists, all greedy rounds), so the family-wise error rate —
and hence the false discovery rate — stays below alpha under any dependence
between candidates. Each (specialist, round, class) group, class being
unconditional or conditional, gets an equal share of alpha, so the tens of
thousands of conditional candidates do not drown the few hundred
unconditional ones: q = p * groups * candidates_in_group. (Benjamini–Hochberg
was rejected: the many near-duplicate variants of one strong rule would count
as discoveries and loosen the threshold for the weak rules after it.)
(With `log_threshold`, a permutation-calibrated bound from `steps`, replaces all of this.)
Minimum support is counted in distinct runs, not episodes. A rule's reported
counts are over the stored episodes its specialist's earlier rules did not
already explain; `q_value` belongs to the candidate as tested, before its
thresholds were refined.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..rules import Condition, Rule
from .episodes import Episode
from .stats import (
    RATIO,
    InductionStats,
    Table,
    failure_signatures,  # noqa: F401 - re-exported: signatures are part of induction
    log_factorials,
    log_fisher_greater,
    place_threshold,
    quantile_cuts,
    recent_unique,
    update,
)

R_BINS, C_BINS, TOP_UNCOND, TOP_COND, ATTEMPTS, MAX_EVIDENCE = 32, 8, 32, 96, 25, 20
LIMIT_PASSES = 2  # margin of a placed threshold: a decision limit sits where the second run seen to pass it does, not the first
SAME = 1e-3  # relative difference below which two observed values are treated as one when placing thresholds


class InducedRule(BaseModel):
    """One induced rule and the evidence for it, counted over the specialist's episodes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Rule
    specialist: str
    support: int = Field(description="violating episodes (C holds, R fails)")
    runs: int = Field(description="distinct runs among the violators")
    failures: int = Field(description="violators that failed")
    precision: float = Field(description="failure rate among violators")
    baseline_failure_rate: float = Field(description="failure rate among satisfiers")
    lift: float
    p_value: float
    q_value: float
    trace_ids: list[str] = Field(default_factory=list, description="failed violators, most recent last")
    criteria: list[str] = Field(default_factory=list, description="criteria violators failed more often than satisfiers")
    label: str = Field("", description="what counted as failing: '' the run's verdict, 'cause:<name>' one cause, else one criterion")
    risk: float | None = Field(None, description="for a rule tested on near misses: the share of violators whose run failed (its weight in a conflict)")


def induce(episodes: Iterable[Episode], *, min_support: int = 8, alpha: float = 0.05, max_rules: int = 5, seed: int = 0,
           decision_prefix: str = "output.", max_sample: int = 20_000) -> list[InducedRule]:
    """Induce rules for every specialist in `episodes` (see the module doc for the method)."""
    return induce_from_stats(update(InductionStats.empty(), episodes), min_support=min_support, alpha=alpha,
                             max_rules=max_rules, seed=seed, decision_prefix=decision_prefix, max_sample=max_sample)


def induce_from_stats(stats: InductionStats, *, min_support: int = 8, alpha: float = 0.05, max_rules: int = 5, seed: int = 0,
                      decision_prefix: str = "output.", max_sample: int = 20_000, log_threshold: float | None = None,
                      conditions_in_null: bool = False, condition_prefix: str = "") -> list[InducedRule]:
    """Same as `induce`, from an incrementally kept summary; `seed` drives subsampling past `max_sample`.

    With `log_threshold` (a permutation-calibrated bound on log p, see `null_min_logp`) it replaces
    the Bonferroni bound, which is far too strict for the few runs of one night. `conditions_in_null` says
    that bound already covers conditional candidates (see `focus_null`), so they pay nothing extra.
    `condition_prefix` limits conditions to features so named (e.g. `input.`: what the specialist was handed)."""
    groups: list[int] = []  # hypotheses tested per (specialist, round, class)
    found: list[tuple[Table, list[_Pick]]] = []
    for spec in sorted(stats.tables):
        table = stats.tables[spec]
        search = _Search.build(table, min_support, decision_prefix, max_sample, seed, condition_prefix)
        if search is None:
            continue
        search.log_threshold = log_threshold
        search.cond_free = conditions_in_null
        picks: list[_Pick] = []
        for _ in range(max_rules):
            groups += [0, 0]
            pick = search.round(groups, len(groups) - 2, alpha)
            if pick is None:
                break
            picks.append(pick)
        found.append((table, picks))
    m, live = sum(groups), sum(1 for g in groups if g)
    out: list[InducedRule] = []
    for table, picks in found:
        alive = np.ones(table.n, bool)
        for pick in picks:
            q = min(1.0, math.exp(pick.log_p) * live * groups[pick.group]) if m else 1.0
            if log_threshold is not None:
                q = min(1.0, math.exp(pick.log_p - log_threshold) * alpha)
            rule, alive = _describe(table, pick, q, alive)
            if q > alpha or rule.p_value > alpha:
                break
            out.append(rule)
    return out


@dataclass(frozen=True)
class _Cond:
    col: int
    op: str
    value: float


@dataclass(frozen=True)
class _Pick:
    when: _Cond | None
    require: _Cond
    log_p: float  # ln p of the grid candidate as tested (before refinement)
    group: int  # its (specialist, round, class) group


def _holds(x: np.ndarray, c: _Cond) -> np.ndarray:
    """Condition on stored values; missing (NaN) never holds, like a None feature."""
    if c.op in ("<=", ">="):
        return x <= c.value if c.op == "<=" else x >= c.value
    return x == c.value if c.op == "==" else (x != c.value) & ~np.isnan(x)


class _Search:
    """One specialist's greedy search over a (sub)sample of its table."""

    @classmethod
    def build(cls, t: Table, min_support: int, prefix: str, max_sample: int, seed: int, condition_prefix: str = "") -> "_Search | None":
        n = t.n
        rows = np.arange(n) if n <= max_sample else np.sort(np.random.default_rng(seed).choice(n, max_sample, replace=False))
        y = ~t.passed[rows]
        return None if n < 2 * min_support or y.all() or not y.any() else cls(t, rows, y, min_support, prefix, condition_prefix)

    def __init__(self, t: Table, rows: np.ndarray, y: np.ndarray, min_support: int, prefix: str, condition_prefix: str = ""):
        self.t, self.X, self.y, self.ms = t, t.X[:, rows], y, min_support
        self.min_sat = max(2, min_support // 2)
        self.run = np.unique(t.run_ids[rows], return_inverse=True)[1]
        self.lf = log_factorials(len(rows))
        self.w = np.ones(len(rows), bool)
        self.picked: set[tuple[int, str]] = set()
        self.log_threshold: float | None = None
        self.cond_free = False  # True when log_threshold was calibrated on conditional candidates too
        present = ~np.isnan(self.X)
        usable = [i for i in range(len(t.columns)) if present[i].sum() >= min_support and np.unique(self.X[i][present[i]]).size > 1]
        # Context conditions (masks); index 0 is "no condition".
        self.masks: list[_Cond | None] = [None]
        cols = []
        for i in usable:
            x, col = self.X[i], t.columns[i]
            if RATIO in col.name or not col.name.startswith(condition_prefix):
                continue  # a ratio is a decision measured against its context, never a context itself
            if col.kind == "num":
                for c in quantile_cuts(x, C_BINS):
                    for m, op in ((x < c, "<="), (x > c, ">=")):
                        if m.sum() >= min_support:
                            cols.append(m)
                            self.masks.append(_Cond(i, op, c))
            else:
                for v in range(len(col.vocab) if col.kind == "cat" else 2):
                    m = x == v
                    if m.sum() >= min_support:
                        cols.append(m)
                        self.masks.append(_Cond(i, "==", float(v)))
        self.mask_col = np.array([-1] + [m.col for m in self.masks[1:]])
        self.M = np.column_stack([np.ones(len(rows), bool)] + cols).astype(np.float32)
        # Decision features as one-hot bins.
        self.dec: list[tuple[int, int, int, list[_Cond]]] = []  # (col, offset, bins, R candidates)
        blocks, off = [], 0
        for i in usable:
            col = t.columns[i]
            if not col.name.startswith(prefix):
                continue
            x = self.X[i]
            if col.kind == "num":
                cuts = quantile_cuts(x, R_BINS)
                b, nb = np.searchsorted(cuts, x), len(cuts) + 1
                cands = [_Cond(i, "<=", c) for c in cuts] + [_Cond(i, ">=", c) for c in cuts]
            else:
                nb = len(col.vocab) if col.kind == "cat" else 2
                b = np.nan_to_num(x, nan=0).astype(np.int64)
                cands = [_Cond(i, "==", float(v)) for v in range(nb)] + ([_Cond(i, "!=", float(v)) for v in range(nb)] if nb > 2 else [])
            z = np.zeros((len(rows), nb), np.float32)
            ok = ~np.isnan(x)
            z[np.nonzero(ok)[0], b[ok]] = 1.0
            blocks.append(z)
            self.dec.append((i, off, nb, cands))
            off += nb
        self.Z = np.hstack(blocks) if blocks else np.zeros((len(rows), 0), np.float32)
        self.T = self.M.T @ self.Z
        self.F = self.M.T @ (self.Z * y[:, None])
        # Flat candidate index: block-major, then mask, then R candidate.
        self.cands = [c for *_, cs in self.dec for c in cs]
        nm, per, k0 = len(self.masks), [len(cs) for *_, cs in self.dec], np.cumsum([0] + [len(cs) for *_, cs in self.dec])
        self.f_mask = np.concatenate([np.repeat(np.arange(nm), q) for q in per] or [np.zeros(0, int)])
        self.f_cand = np.concatenate([np.tile(np.arange(q) + k0[j], nm) for j, q in enumerate(per)] or [np.zeros(0, int)])
        f_col = np.array([c.col for c in self.cands], int)[self.f_cand] if self.cands else np.zeros(0, int)
        self.f_ok = self.mask_col[self.f_mask] != f_col

    def _counts(self) -> tuple[np.ndarray, ...]:
        """Violators, their failures, in-condition totals and population for every flat candidate."""
        out: list[list[np.ndarray]] = [[], [], [], [], [], []]
        for col, off, nb, cands in self.dec:
            T, F = self.T[:, off:off + nb].astype(np.float64), self.F[:, off:off + nb].astype(np.float64)
            if self.t.columns[col].kind == "num":
                cT, cF = np.cumsum(T, 1), np.cumsum(F, 1)
                nV = np.hstack([cT[:, -1:] - cT[:, :-1], cT[:, :-1]])
                aV = np.hstack([cF[:, -1:] - cF[:, :-1], cF[:, :-1]])
            else:
                nV = np.hstack([T.sum(1, keepdims=True) - T] + ([T] if nb > 2 else []))
                aV = np.hstack([F.sum(1, keepdims=True) - F] + ([F] if nb > 2 else []))
            Nc, Kc = np.broadcast_to(T.sum(1, keepdims=True), nV.shape), np.broadcast_to(F.sum(1, keepdims=True), nV.shape)
            for lst, arr in zip(out, (nV, aV, Nc, Kc, np.full(nV.shape, Nc[0, 0]), np.full(nV.shape, Kc[0, 0]))):
                lst.append(arr.ravel())
        return tuple(np.concatenate(lst) if lst else np.zeros(0) for lst in out)

    def round(self, groups: list[int], base: int, alpha: float) -> _Pick | None:
        """Test every candidate on the still-unexplained episodes; return the best that holds up."""
        nV, aV, Nc, Kc, N, K = self._counts()
        fresh = np.array([self._key(c) not in self.picked for c in self.cands], bool)
        valid = (nV >= self.ms) & (N - nV >= 1) & (Nc - nV >= self.min_sat) & self.f_ok & fresh[self.f_cand]
        pos = valid & (aV * N > K * nV) & ((Kc - aV) * nV < aV * (Nc - nV))
        with np.errstate(divide="ignore", invalid="ignore"):
            var = nV * K * (N - K) * (N - nV) / (N * N * np.maximum(N - 1, 1))
            z = np.where(pos, (aV - 0.5 - nV * K / N) / np.sqrt(np.maximum(var, 1e-12)), -np.inf)
        scored = []
        for cls, top in ((0, TOP_UNCOND), (1, TOP_COND)):
            in_cls = (self.f_mask > 0) == bool(cls)
            groups[base + cls] += int((valid & in_cls).sum())
            idx = np.nonzero(pos & in_cls)[0]
            if len(idx) > top:
                idx = np.sort(idx[np.argpartition(-z[idx], top)[:top]])
            for i in idx[np.argsort(-z[idx], kind="stable")]:
                lp = log_fisher_greater(int(round(aV[i])), int(round(nV[i])), int(round(K[i])), int(round(N[i])), self.lf)
                scored.append((lp + math.log(max(groups[base + cls], 1)), lp, cls, int(i)))
        self.alpha, live = alpha, sum(1 for g in groups if g)
        for _, lp, cls, i in sorted(scored)[:ATTEMPTS]:
            if self.log_threshold is not None:
                if lp > self.log_threshold - (math.log(len(self.masks)) if cls and not self.cond_free else 0.0):
                    continue  # not below the permutation null's alpha-quantile (conditions pay for their count)
            elif lp + math.log(live * groups[base + cls]) > math.log(alpha):
                continue  # cannot pass the final Bonferroni bound, which only grows
            pick = self._materialize(self.masks[self.f_mask[i]], self.cands[self.f_cand[i]])
            if pick is not None:
                when, require = pick
                self.picked.add(self._key(require))
                self._remove(when, require)
                return _Pick(when, require, lp, base + cls)
        return None

    def relabel(self, y: np.ndarray) -> "_Search":
        """The same candidates scored against other outcomes (a permutation of the real ones)."""
        self.y = y
        self.F = self.M.T @ (self.Z * y[:, None])
        return self

    def min_logp(self, top: int = TOP_UNCOND) -> float:
        """The smallest one-sided Fisher log p-value over all first-round candidates (0 if none)."""
        nV, aV, Nc, Kc, N, K = self._counts()
        valid = (nV >= self.ms) & (N - nV >= 1) & (Nc - nV >= self.min_sat) & self.f_ok
        pos = valid & (aV * N > K * nV) & ((Kc - aV) * nV < aV * (Nc - nV))
        idx = np.nonzero(pos)[0]
        if not len(idx):
            return 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            var = nV * K * (N - K) * (N - nV) / (N * N * np.maximum(N - 1, 1))
            z = (aV - 0.5 - nV * K / N) / np.sqrt(np.maximum(var, 1e-12))
        best = idx[np.argsort(-z[idx], kind="stable")[:top]]
        return min(log_fisher_greater(int(round(aV[i])), int(round(nV[i])), int(round(K[i])), int(round(N[i])), self.lf) for i in best)

    def _key(self, c: _Cond) -> tuple[int, str]:
        return (c.col, {"<=": "upper", ">=": "lower"}.get(c.op, "cat"))

    def _violators(self, when: _Cond | None, req: _Cond, X: np.ndarray) -> np.ndarray:
        x = X[req.col]
        v = ~np.isnan(x) & ~_holds(x, req)
        return v & _holds(X[when.col], when) if when is not None else v

    def _remove(self, when: _Cond | None, req: _Cond) -> None:
        gone = self.w & self._violators(when, req, self.X)
        self.w &= ~gone
        if gone.any():
            Mg, Zg = self.M[gone], self.Z[gone]
            self.T -= Mg.T @ Zg
            self.F -= Mg.T @ (Zg * self.y[gone][:, None])

    def _materialize(self, when: _Cond | None, req: _Cond) -> tuple[_Cond | None, _Cond] | None:
        """Refine numeric thresholds on every observed value; None if the rule does not hold up."""
        num = lambda c: self.t.columns[c.col].kind == "num"  # noqa: E731
        if num(req) and (req := self._refine(when, req, True)) is None:
            return None
        if when is not None and num(when):
            if (when := self._refine(req, when, False)) is None:
                return None
            if num(req) and (req := self._refine(when, req, True)) is None:
                return None
        if not self._holds_up(when, req):
            return None
        # tested where the evidence is sharpest, then placed with a margin on the safe side of each threshold
        wide_req = self._refine(when, req, True, widen=True) if num(req) else req
        wide_when = self._refine(req, when, False, widen=True) if when is not None and num(when) else when
        return wide_when or when, wide_req or req

    def _holds_up(self, when: _Cond | None, req: _Cond) -> bool:
        """Support in runs and direction; for a condition also that the decision matters under it
        (violators vs satisfiers where it holds) and that it matters (violators where it holds vs
        where it does not), each Bonferroni-corrected for every (condition, requirement) pair, so
        an irrelevant condition that noise favoured loses to the plain rule."""
        a, y = self.w & ~np.isnan(self.X[req.col]), self.y
        v = a & self._violators(when, req, self.X)
        inC = a & _holds(self.X[when.col], when) if when is not None else a
        nV, aV, nS_in = int(v.sum()), int((v & y).sum()), int((inC & ~v).sum())
        if nV < self.ms or nS_in < self.min_sat or np.unique(self.run[v & y]).size < self.ms:
            return False
        prec = aV / nV
        if not (prec > y[a].mean() and y[inC & ~v].mean() < prec):
            return False
        if when is None:
            return True
        rv = a & ~_holds(self.X[req.col], req)
        if self.cond_free:  # the family's bound already priced the condition in: each side need only be nominally significant
            lim = math.log(self.alpha)
        elif self.log_threshold is not None:
            lim = self.log_threshold - math.log(len(self.masks))
        else:
            lim = math.log(self.alpha) - math.log(len(self.cands) * len(self.masks))
        return (log_fisher_greater(aV, nV, int((inC & y).sum()), int(inC.sum()), self.lf) <= lim
                and log_fisher_greater(aV, nV, int((rv & y).sum()), int(rv.sum()), self.lf) <= lim)

    def _refine(self, other: _Cond | None, target: _Cond, is_require: bool, widen: bool = False) -> _Cond | None:
        """Best threshold for `target` given `other`, scanning every boundary between observed values.

        With `widen`, the same boundary placed with a margin: a decision limit on the LIMIT_PASSES-th run seen to
        pass inside it, a condition's edge past the LIMIT_PASSES nearest runs seen to pass without the requirement.
        """
        X, y = self.X, self.y
        if is_require:
            a = self.w & ~np.isnan(X[target.col])
            g = a & (_holds(X[other.col], other) if other is not None else True)
            key, viol = X[target.col][g], np.ones(int(g.sum()), bool)
        else:
            a = self.w & ~np.isnan(X[other.col])
            g = a & ~np.isnan(X[target.col])
            key, viol = X[target.col][g], (~_holds(X[other.col], other))[g]
        N, K = int(a.sum()), int((a & y).sum())
        order = np.argsort(key, kind="stable")
        key, viol, f, run = key[order].astype(np.float64), viol[order], y[g][order], self.run[g][order]
        # values within SAME of each other are one value: a decision clamped to a learned limit comes back
        # with rounding noise around it, and a threshold must not split that noise (it would re-learn the old limit)
        bnd = np.nonzero(_apart(key[:-1], key[1:]))[0] + 1
        if not len(bnd):
            return None
        upper = target.op == ">=" if not is_require else target.op == "<="  # group = high suffix
        vr = np.nonzero(viol & f)[0]
        first = np.zeros(len(key), bool)
        rr = run[vr][::-1] if upper else run[vr]
        idx = np.unique(rr, return_index=True)[1]
        first[(vr[::-1] if upper else vr)[idx]] = True

        def grp(arr: np.ndarray) -> np.ndarray:
            cs = np.concatenate([[0], np.cumsum(arr)])
            return (cs[-1] - cs[bnd]) if upper else cs[bnd]

        if is_require:  # violators = group, in-C satisfiers = the rest of the in-C rows
            nV, aV, runs = grp(np.ones(len(key))), grp(f), grp(first)
            nS, kS = len(key) - nV, f.sum() - aV
        else:  # in-C = group; violators = R-violating rows in it
            nV, aV, runs = grp(viol), grp(viol & f), grp(first)
            nS, kS = grp(~viol), grp(~viol & f)
        ok = (nV >= self.ms) & (runs >= self.ms) & (nS >= self.min_sat) & (aV * N > K * nV) & (kS * nV < aV * np.maximum(nS, 1))
        if not ok.any():
            return None
        lf = self.lf
        nVi, aVi = nV.astype(np.int64), aV.astype(np.int64)
        logpmf = (lf[K] - lf[aVi] - lf[K - aVi] + lf[N - K] - lf[nVi - aVi] - lf[np.maximum(N - K - nVi + aVi, 0)]
                  - lf[N] + lf[nVi] + lf[N - nVi])
        best = int(np.argmin(np.where(ok, logpmf, np.inf)))
        lo, hi = key[bnd[best] - 1], key[bnd[best]]
        if is_require:
            # a decision limit sits on a value seen to pass (policies clamp to it, and nothing between it and the
            # first failure was ever seen to be safe); widened, LIMIT_PASSES runs in, as one pass at the edge of a
            # failure zone is too often luck
            if widen:
                return _Cond(target.col, target.op, _margin(key, f, bnd[best], target.op == "<="))
            return _Cond(target.col, target.op, float(lo if target.op == "<=" else hi))
        edge = _reach(key, viol & ~f, bnd[best], upper, self.t.columns[target.col].integral) if widen else None
        if edge is None:
            return _Cond(target.col, target.op, place_threshold(lo, hi, target.op, self.t.columns[target.col].integral))
        return _Cond(target.col, target.op, edge)


def _apart(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Whether observed values differ by more than SAME, relative to `b`: below that they are one value."""
    return np.abs(np.asarray(a) - b) > SAME * np.maximum(np.abs(b), 1e-12)


def _outward(key: np.ndarray, mask: np.ndarray, at: int, down: bool) -> tuple[np.ndarray, np.ndarray]:
    """The sorted values on one side of the boundary `at`, nearest first (below it when `down`), and `mask` alongside."""
    return (key[:at][::-1], mask[:at][::-1]) if down else (key[at:], mask[at:])


def _margin(key: np.ndarray, failed: np.ndarray, at: int, upper: bool) -> float:
    """The value of the LIMIT_PASSES-th row seen to pass, counted from the boundary `at` into the satisfiers
    (downwards for an upper limit); the farthest such value when fewer passed."""
    seen, ok = _outward(key, ~failed, at, upper)
    passes = seen[ok]
    if not len(passes):
        return float(seen[0])
    return float(passes[min(LIMIT_PASSES, len(passes)) - 1])


def _reach(key: np.ndarray, passed_without: np.ndarray, at: int, upper: bool, integral: bool) -> float | None:
    """A threshold just past the LIMIT_PASSES-th row outside a condition that broke the requirement and passed,
    counted outwards from the condition's edge `at` (downwards when the condition is `>=`): a round value in the
    gap between that row and the next one out. None when no such row exists."""
    seen, ok = _outward(key, passed_without, at, upper)
    rows = np.nonzero(ok)[0]
    if not len(rows):
        return None
    k = int(rows[min(LIMIT_PASSES, len(rows)) - 1])
    edge = float(seen[k])
    beyond = seen[k + 1:][_apart(seen[k + 1:], edge)]
    if not len(beyond):
        return edge
    return place_threshold(float(beyond[0]), edge, ">=", integral) if upper else place_threshold(edge, float(beyond[0]), "<=", integral)


def _to_condition(t: Table, c: _Cond) -> Condition:
    col = t.columns[c.col]
    if col.kind == "cat":
        return Condition(field=col.name, op=c.op, value=col.vocab[int(c.value)])  # type: ignore[arg-type]
    if col.kind == "bool":
        return Condition(field=col.name, op=c.op, value=bool(c.value))  # type: ignore[arg-type]
    if RATIO in col.name:
        field, per = col.name.split(RATIO, 1)
        return Condition(field=field, op=c.op, value=float(f"{c.value:.4g}"), per=per)  # type: ignore[arg-type]
    v = int(c.value) if col.integral and float(c.value).is_integer() else float(c.value)
    return Condition(field=col.name, op=c.op, value=v)  # type: ignore[arg-type]


def _describe(t: Table, pick: _Pick, q: float, alive: np.ndarray) -> tuple[InducedRule, np.ndarray]:
    """Counts over all stored episodes not explained by the specialist's earlier rules.

    Returns the rule and the episodes still unexplained after it.
    """
    y = ~t.passed
    present = alive & ~np.isnan(t.X[pick.require.col])
    v = present & ~_holds(t.X[pick.require.col], pick.require)
    if pick.when is not None:
        v &= _holds(t.X[pick.when.col], pick.when)
    s = present & ~v
    nV, nS, aV, aS = int(v.sum()), int(s.sum()), int((v & y).sum()), int((s & y).sum())
    prec, base = aV / max(nV, 1), aS / max(nS, 1)
    lp = log_fisher_greater(aV, nV, aV + aS, nV + nS) if nV else 0.0
    crit = []
    for i, name in enumerate(t.criteria):
        cv, cs = t.C[i][v], t.C[i][s]
        fv = (cv == 0).sum() / max((cv >= 0).sum(), 1)
        fs = (cs == 0).sum() / max((cs >= 0).sum(), 1)
        if (cv >= 0).sum() and fv - fs >= 0.1:
            crit.append((float(fv - fs), name))
    rule = Rule(when=[_to_condition(t, pick.when)] if pick.when else [], require=_to_condition(t, pick.require))
    induced = InducedRule(
        rule=rule, specialist=t.specialist, support=nV, runs=int(np.unique(t.run_ids[v]).size), failures=aV,
        precision=prec, baseline_failure_rate=base, lift=prec / max(base, 0.5 / max(nS, 1)),
        p_value=math.exp(lp), q_value=q, trace_ids=recent_unique(t.trace_ids[v & y], MAX_EVIDENCE),
        criteria=[n for _, n in sorted(crit, key=lambda c: (-c[0], c[1]))[:3]],
    )
    return induced, alive & ~v


def focus_table(t: Table, names: Iterable[str]) -> Table:
    """The table cut down to the named columns: a small family of hypotheses named in advance."""
    wanted = set(names)
    keep = [i for i, c in enumerate(t.columns) if c.name in wanted]
    return dataclasses.replace(t, columns=tuple(t.columns[i] for i in keep), X=t.X[keep])


def null_min_logp(tables: list[Table], *, min_support: int, decision_prefix: str = "output.", max_sample: int = 20_000, seed: int = 0) -> float:
    """Best first-round log p over several (specialist, label) tables: one draw of the family-wide null."""
    best = 0.0
    for t in tables:
        search = _Search.build(t, min_support, decision_prefix, max_sample, seed)
        if search is not None:
            best = min(best, search.min_logp())
    return best


class NullSearch:
    """Unconditional candidates of one specialist, built once; scored for many relabellings at once.

    The permutation null covers rules without a condition; a conditional rule must also beat
    the extra factor of its condition count (see `_Search.round`), so the bound stays conservative.
    """

    def __init__(self, t: Table, min_support: int, decision_prefix: str = "output."):
        self.ok = t.n >= 2 * min_support
        if not self.ok:
            return
        y0 = ~t.passed
        if y0.all() or not y0.any():
            y0 = y0.copy()
            y0[0] = not y0[0]
        s = _Search(t, np.arange(t.n), y0, min_support, decision_prefix)
        self.Z, self.dec, self.ms, self.min_sat, self.lf = s.Z.astype(np.float64), s.dec, s.ms, s.min_sat, s.lf
        self.num = [t.columns[col].kind == "num" for col, *_ in s.dec]

    def min_logp(self, failed: np.ndarray, top: int = 8) -> np.ndarray:
        """Best log p per column of `failed` (rows x permutations)."""
        P = failed.shape[1]
        if not self.ok or not len(self.dec):
            return np.zeros(P)
        T = self.Z.sum(0)
        F = self.Z.T @ failed.astype(np.float64)  # bins x P
        nVs, aVs, Ns, Ks = [], [], [], []
        for (col, off, nb, cands), num in zip(self.dec, self.num):
            t, f = T[off:off + nb], F[off:off + nb]
            if num:
                ct, cf = np.cumsum(t), np.cumsum(f, 0)
                nV = np.concatenate([ct[-1] - ct[:-1], ct[:-1]])
                aV = np.vstack([cf[-1:] - cf[:-1], cf[:-1]])
            else:
                nV = np.concatenate([t.sum() - t] + ([t] if nb > 2 else []))
                aV = np.vstack([f.sum(0, keepdims=True) - f] + ([f] if nb > 2 else []))
            nVs.append(nV)
            aVs.append(aV)
            Ns.append(np.full(len(nV), t.sum()))
            Ks.append(np.broadcast_to(f.sum(0, keepdims=True), aV.shape))
        nV, aV, N, K = np.concatenate(nVs)[:, None], np.vstack(aVs), np.concatenate(Ns)[:, None], np.vstack(Ks)
        valid = (nV >= self.ms) & (N - nV >= self.min_sat)
        pos = valid & (aV * N > K * nV)
        with np.errstate(divide="ignore", invalid="ignore"):
            var = nV * K * (N - K) * (N - nV) / (N * N * np.maximum(N - 1, 1))
            z = np.where(pos, (aV - 0.5 - nV * K / N) / np.sqrt(np.maximum(var, 1e-12)), -np.inf)
        out = np.zeros(P)
        best = np.argsort(-z, axis=0)[:top]
        for p in range(P):
            vals = [log_fisher_greater(int(round(aV[i, p])), int(nV[i, 0]), int(round(K[i, p])), int(N[i, 0]), self.lf) for i in best[:, p] if np.isfinite(z[i, p])]
            out[p] = min(vals) if vals else 0.0
        return out
