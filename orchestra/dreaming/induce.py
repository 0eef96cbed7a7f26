"""Induction: rules that separate failed from passed episodes, with honest statistics.

A candidate rule reads "when C require R": R is a threshold (`<=`/`>=`) or a
category test (`==`/`!=`) on one decision feature (`output.*` by default), C is
optional, one condition on any other usable feature. Its *violators* are the
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
Minimum support is counted in distinct runs, not episodes. A rule's reported
counts are over the stored episodes its specialist's earlier rules did not
already explain; `q_value` belongs to the candidate as tested, before its
thresholds were refined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..rules import Condition, Rule
from .episodes import Episode, FailureSignature
from .stats import InductionStats, Table, log_factorials, log_fisher_greater, update

R_BINS, C_BINS, TOP_UNCOND, TOP_COND, ATTEMPTS, MAX_EVIDENCE = 32, 8, 32, 96, 25, 20


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
    criteria: list[str] = Field(default_factory=list, description="criteria failed most more often by violators")


def induce(
    episodes: Iterable[Episode],
    *,
    min_support: int = 8,
    alpha: float = 0.05,
    max_rules: int = 5,
    seed: int = 0,
    decision_prefix: str = "output.",
    max_sample: int = 20_000,
) -> list[InducedRule]:
    """Induce rules for every specialist in `episodes` (see the module doc for the method)."""
    return induce_from_stats(update(InductionStats.empty(), episodes), min_support=min_support, alpha=alpha,
                             max_rules=max_rules, seed=seed, decision_prefix=decision_prefix, max_sample=max_sample)


def induce_from_stats(
    stats: InductionStats,
    *,
    min_support: int = 8,
    alpha: float = 0.05,
    max_rules: int = 5,
    seed: int = 0,
    decision_prefix: str = "output.",
    max_sample: int = 20_000,
) -> list[InducedRule]:
    """Same as `induce`, from an incrementally kept summary; `seed` drives subsampling past `max_sample`."""
    groups: list[int] = []  # hypotheses tested per (specialist, round, class)
    found: list[tuple[Table, list[_Pick]]] = []
    for spec in sorted(stats.tables):
        table = stats.tables[spec]
        search = _Search.build(table, min_support, decision_prefix, max_sample, seed)
        if search is None:
            continue
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
            rule, alive = _describe(table, pick, q, alive)
            if q > alpha or rule.p_value > alpha:
                break
            out.append(rule)
    return out


def failure_signatures(source: InductionStats | Iterable[Episode], *, min_count: int = 3, max_traces: int = 10) -> list[FailureSignature]:
    """Recurring (failed criterion, cause) combinations among failed episodes, most common first."""
    stats = source if isinstance(source, InductionStats) else update(InductionStats.empty(), source)
    out: list[FailureSignature] = []
    for spec in sorted(stats.tables):
        t = stats.tables[spec]
        failed = ~t.passed
        n_failed = int(failed.sum())
        if not n_failed:
            continue
        crit_masks = [(c, failed & (t.C[i] == 0)) for i, c in enumerate(t.criteria)]
        none_failed = failed & ~(t.C == 0).any(axis=0) if len(t.criteria) else failed
        crit_masks.append((None, none_failed))
        for crit, mask in crit_masks:
            for code in np.unique(t.cause[mask]):
                rows = mask & (t.cause == code)
                count = int(rows.sum())
                if count < min_count:
                    continue
                out.append(FailureSignature(
                    specialist=spec, criterion=crit, cause=t.causes[code] if code >= 0 else None, count=count,
                    runs=int(np.unique(t.run_ids[rows]).size), share=count / n_failed,
                    trace_ids=_recent_unique(t.trace_ids[rows], max_traces)))
    out.sort(key=lambda s: (s.specialist, -s.count, str(s.criterion), str(s.cause)))
    return out


# --------------------------------------------------------------------------- search


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
    if c.op == "<=":
        return x <= c.value
    if c.op == ">=":
        return x >= c.value
    if c.op == "==":
        return x == c.value
    return (x != c.value) & ~np.isnan(x)


def _cuts(x: np.ndarray, bins: int) -> np.ndarray:
    """Cut points at quantiles, each placed midway between two adjacent observed values."""
    x = np.sort(x[~np.isnan(x)]).astype(np.float64)
    u = np.unique(x)
    if len(u) < 2:
        return np.zeros(0)
    if len(u) <= bins:
        return (u[:-1] + u[1:]) / 2
    v = x[np.arange(1, bins) * len(x) // bins]
    pos = np.unique(np.searchsorted(u, v, side="right"))
    pos = pos[(pos > 0) & (pos < len(u))]
    return (u[pos - 1] + u[pos]) / 2


class _Search:
    """One specialist's greedy search over a (sub)sample of its table."""

    @classmethod
    def build(cls, t: Table, min_support: int, prefix: str, max_sample: int, seed: int) -> "_Search | None":
        n = t.n
        rows = np.arange(n) if n <= max_sample else np.sort(np.random.default_rng(seed).choice(n, max_sample, replace=False))
        y = ~t.passed[rows]
        if n < 2 * min_support or y.all() or not y.any():
            return None
        return cls(t, rows, y, min_support, prefix)

    def __init__(self, t: Table, rows: np.ndarray, y: np.ndarray, min_support: int, prefix: str):
        self.t, self.X, self.y, self.ms = t, t.X[:, rows], y, min_support
        self.min_sat = max(2, min_support // 2)
        self.run = np.unique(t.run_ids[rows], return_inverse=True)[1]
        self.lf = log_factorials(len(rows))
        self.w = np.ones(len(rows), bool)
        self.picked: set[tuple[int, str]] = set()
        present = ~np.isnan(self.X)
        usable = [i for i in range(len(t.columns)) if present[i].sum() >= min_support and np.unique(self.X[i][present[i]]).size > 1]
        # Context conditions (masks); index 0 is "no condition".
        self.masks: list[_Cond | None] = [None]
        cols = []
        for i in usable:
            x, col = self.X[i], t.columns[i]
            if col.kind == "num":
                for c in _cuts(x, C_BINS):
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
                cuts = _cuts(x, R_BINS)
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

    def _counts(self):
        """Per decision feature: violators / failures for every (mask, R candidate)."""
        for col, off, nb, cands in self.dec:
            T, F = self.T[:, off:off + nb], self.F[:, off:off + nb]
            if self.t.columns[col].kind == "num":
                L = nb - 1
                cT, cF = np.cumsum(T, 1), np.cumsum(F, 1)
                nV = np.hstack([cT[:, -1:] - cT[:, :L], cT[:, :L]])
                aV = np.hstack([cF[:, -1:] - cF[:, :L], cF[:, :L]])
            else:
                nV = np.hstack([T.sum(1, keepdims=True) - T] + ([T] if nb > 2 else []))
                aV = np.hstack([F.sum(1, keepdims=True) - F] + ([F] if nb > 2 else []))
            yield col, cands, nV, aV, T.sum(1), F.sum(1)

    def round(self, groups: list[int], base: int, alpha: float) -> _Pick | None:
        """Test every candidate on the still-unexplained episodes; return the best that holds up."""
        blocks = []
        for col, cands, nV, aV, Nc, Kc in self._counts():
            N, K = Nc[0], Kc[0]
            key = self._key(cands[0])
            dirs = np.array([self._key(c)[1] for c in cands])
            fresh = np.array([(key[0], d) not in self.picked for d in dirs])
            valid = (nV >= self.ms) & (N - nV >= 1) & (Nc[:, None] - nV >= self.min_sat) & fresh[None, :]
            valid &= (self.mask_col != col)[:, None]
            blocks.append((col, cands, nV, aV, Nc, Kc, N, K, valid))
        if not blocks:
            return None
        scored = []
        for cls in (0, 1):
            zs, refs = [], []
            for bi, (col, cands, nV, aV, Nc, Kc, N, K, valid) in enumerate(blocks):
                v = valid[:1] if cls == 0 else valid[1:]
                groups[base + cls] += int(v.sum())
                sl = slice(0, 1) if cls == 0 else slice(1, None)
                nv, av, nc, kc = nV[sl], aV[sl], Nc[sl, None], Kc[sl, None]
                pos = v & (av * N > K * nv) & ((kc - av) * nv < av * (nc - nv))
                mean = nv * K / N
                var = nv * K * (N - K) * (N - nv) / (N * N * max(N - 1, 1))
                z = np.where(pos, (av - 0.5 - mean) / np.sqrt(np.maximum(var, 1e-12)), -np.inf)
                zs.append(z.ravel())
                refs.append((bi, z.shape[1], sl.start))
            if not zs:
                continue
            allz = np.concatenate(zs)
            top = np.argsort(-allz, kind="stable")[: TOP_UNCOND if cls == 0 else TOP_COND]
            offs = np.cumsum([0] + [len(z) for z in zs])
            for flat in top:
                if not np.isfinite(allz[flat]):
                    break
                k = int(np.searchsorted(offs, flat, side="right") - 1)
                bi, width, start = refs[k]
                r, qi = divmod(int(flat - offs[k]), width)
                mask = r + start
                col, cands, nV, aV, Nc, Kc, N, K, _ = blocks[bi]
                lp = log_fisher_greater(int(round(aV[mask, qi])), int(round(nV[mask, qi])), int(round(K)), int(round(N)), self.lf)
                scored.append((lp, cls, len(scored), mask, cands[qi]))
        ranked = sorted(scored, key=lambda s: (s[0] + math.log(max(groups[base + s[1]], 1)), s[2]))
        for lp, cls, _, mask, req in ranked[:ATTEMPTS]:
            if lp > math.log(alpha):
                continue
            pick = self._materialize(self.masks[mask], req)
            if pick is not None:
                when, require = pick
                self.picked.add(self._key(require))
                self._remove(when, require)
                return _Pick(when, require, lp, base + cls)
        return None

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
        return (when, req) if self._holds_up(when, req) else None

    def _holds_up(self, when: _Cond | None, req: _Cond) -> bool:
        a = self.w & ~np.isnan(self.X[req.col])
        v = a & self._violators(when, req, self.X)
        inC = a & _holds(self.X[when.col], when) if when is not None else a
        nV, nS_in = int(v.sum()), int((inC & ~v).sum())
        if nV < self.ms or nS_in < self.min_sat or np.unique(self.run[v]).size < self.ms:
            return False
        prec = self.y[v].mean()
        return prec > self.y[a].mean() and self.y[inC & ~v].mean() < prec

    def _refine(self, other: _Cond | None, target: _Cond, is_require: bool) -> _Cond | None:
        """Best threshold for `target` given `other`, scanning every boundary between observed values."""
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
        bnd = np.nonzero(np.diff(key) > 0)[0] + 1
        if not len(bnd):
            return None
        upper = target.op == ">=" if not is_require else target.op == "<="  # group = high suffix
        vr = np.nonzero(viol)[0]
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
        return _Cond(target.col, target.op, _place(lo, hi, target.op, self.t.columns[target.col].integral))


def _place(lo: float, hi: float, op: str, integral: bool) -> float:
    """A round threshold inside the gap (lo, hi) between observed values, near its midpoint."""
    if integral:
        return float(round(lo)) if op == "<=" else float(round(hi))
    mid, tol = (lo + hi) / 2, (hi - lo) / 4
    for d in range(-12, 17):
        t = round(mid, d)
        if abs(t - mid) <= tol and lo < t < hi:
            return float(t)
    return float(mid)


# --------------------------------------------------------------------------- reporting


def _to_condition(t: Table, c: _Cond) -> Condition:
    col = t.columns[c.col]
    if col.kind == "cat":
        return Condition(field=col.name, op=c.op, value=col.vocab[int(c.value)])  # type: ignore[arg-type]
    if col.kind == "bool":
        return Condition(field=col.name, op=c.op, value=bool(c.value))  # type: ignore[arg-type]
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
        p_value=math.exp(lp), q_value=q, trace_ids=_recent_unique(t.trace_ids[v & y], MAX_EVIDENCE),
        criteria=[n for _, n in sorted(crit, key=lambda c: (-c[0], c[1]))[:3]],
    )
    return induced, alive & ~v


def _recent_unique(ids: np.ndarray, k: int) -> list[str]:
    out: list[str] = []
    for tid in ids[::-1]:
        tid = str(tid)
        if tid and tid not in out:
            out.append(tid)
            if len(out) == k:
                break
    return out[::-1]
