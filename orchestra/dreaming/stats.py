"""Statistics for dreaming: exact tests, FDR control, and the incremental InductionStats.

`InductionStats` is what a dream keeps between nights so the next one adds new
episodes without re-reading old ones: per specialist, a compact column-major
feature matrix (float32; categories as codes), pass/fail, per-criterion
outcomes, causes and run/trace ids, bounded to the most recent
`max_episodes` rows and `max_features` names. Every drop decision (free text,
too many categories, mixed types) depends only on the set of values ever seen,
so folding episodes in one batch or many gives the same table. (Frozen
dataclasses rather than pydantic models, because they hold numpy arrays.)
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..rules import is_real
from .episodes import SAFE_NAME, SAFE_TOKEN, Episode, FailureSignature, explanation_words, is_usable_name

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # v1 had no explanation words


# --------------------------------------------------------------------------- exact tests


def log_factorials(n: int) -> np.ndarray:
    """log(k!) for k = 0..n, exact per entry (lgamma), for hypergeometric terms."""
    return np.array([math.lgamma(k + 1.0) for k in range(n + 1)], dtype=np.float64)


def log_fisher_greater(a: int, n: int, k: int, total: int, lf: np.ndarray | None = None) -> float:
    """ln P(X >= a) for X ~ Hypergeometric(total, k successes, n draws).

    One-sided Fisher exact test: `a` failures among `n` violators, `k` failures
    among `total` episodes. Computed in log space so p-values like 1e-300 survive.
    """
    if lf is None:
        lf = log_factorials(total)
    lo, hi = max(0, n - (total - k)), min(n, k)
    a = max(int(a), lo)
    if a > hi:
        return -math.inf
    x = np.arange(a, hi + 1)
    terms = lf[k] - lf[x] - lf[k - x] + lf[total - k] - lf[n - x] - lf[total - k - n + x]
    terms -= lf[total] - lf[n] - lf[total - n]
    top = float(terms.max())
    return min(0.0, top + math.log(float(np.exp(terms - top).sum())))


def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """P-value of the one-sided Fisher test on [[a, b], [c, d]] (rows: violators, others;
    columns: failed, passed), alternative: violators fail more often."""
    return math.exp(log_fisher_greater(a, a + b, a + c, a + b + c + d))


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exact (log space)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p)
        for i in range(k, n + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


# --------------------------------------------------------------------------- incremental summary


@dataclass(frozen=True)
class Column:
    """One usable feature: numeric (`num`), identifier-like category (`cat`) or `bool`."""

    name: str
    kind: str
    vocab: tuple[str, ...] = ()
    integral: bool = True


@dataclass(frozen=True)
class Table:
    """One specialist's episodes as arrays; rows are episodes in arrival order."""

    specialist: str
    columns: tuple[Column, ...] = ()
    X: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (features, rows)
    passed: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    criteria: tuple[str, ...] = ()
    C: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int8))  # 1 pass, 0 fail, -1 unscored
    causes: tuple[str, ...] = ()
    cause: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # -1 = none
    run_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U1"))
    trace_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U1"))
    words: np.ndarray = field(default_factory=lambda: np.zeros(0, "<U1"))  # each episode's explanation words, space-joined
    dropped: frozenset[str] = frozenset()
    seen: int = 0

    @property
    def n(self) -> int:
        return int(self.passed.shape[0])

    def index(self, name: str) -> int:
        for i, c in enumerate(self.columns):
            if c.name == name:
                return i
        raise KeyError(name)


@dataclass(frozen=True)
class InductionStats:
    """Everything induction needs from past episodes, bounded and serialisable."""

    tables: dict[str, Table] = field(default_factory=dict)
    max_episodes: int = 50_000
    max_features: int = 512
    max_categories: int = 16

    @classmethod
    def empty(cls, *, max_episodes: int = 50_000, max_features: int = 512, max_categories: int = 16) -> "InductionStats":
        return cls({}, max_episodes, max_features, max_categories)

    @property
    def n_episodes(self) -> int:
        return sum(t.n for t in self.tables.values())

    def to_bytes(self) -> bytes:
        """Compressed npz; metadata as a JSON array; no pickle, so loading is safe."""
        meta = {"format": FORMAT_VERSION, "max_episodes": self.max_episodes, "max_features": self.max_features,
                "max_categories": self.max_categories, "tables": []}
        arrays: dict[str, np.ndarray] = {}
        for i, t in enumerate(self.tables.values()):
            meta["tables"].append({
                "specialist": t.specialist, "criteria": list(t.criteria), "causes": list(t.causes),
                "dropped": sorted(t.dropped), "seen": t.seen,
                "columns": [[c.name, c.kind, list(c.vocab), c.integral] for c in t.columns],
            })
            for key in ("X", "passed", "C", "cause", "run_ids", "trace_ids", "words"):
                arrays[f"t{i}_{key}"] = getattr(t, key)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "InductionStats":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            if meta.get("format") not in READABLE_FORMATS:
                raise ValueError(f"unsupported InductionStats format {meta.get('format')!r}")
            tables = {}
            for i, tm in enumerate(meta["tables"]):
                cols = tuple(Column(n, k, tuple(v), bool(g)) for n, k, v, g in tm["columns"])
                arr = {key: _frozen(z[f"t{i}_{key}"]) for key in ("X", "passed", "C", "cause", "run_ids", "trace_ids")}
                n = arr["passed"].shape[0]
                arr["words"] = _frozen(z[f"t{i}_words"]) if f"t{i}_words" in z.files else _frozen(np.full(n, "", "<U1"))
                tables[tm["specialist"]] = Table(tm["specialist"], cols, criteria=tuple(tm["criteria"]),
                                                 causes=tuple(tm["causes"]), dropped=frozenset(tm["dropped"]),
                                                 seen=int(tm["seen"]), **arr)
        return cls(tables, meta["max_episodes"], meta["max_features"], meta["max_categories"])


RATIO = "@"  # `output.a_m@input.b_m` is the ratio a/b: a decision measured against a same-unit quantity it was handed
_UNIT = re.compile(r"_([a-z]{1,4})$")


def unit_of(name: str) -> str | None:
    """The unit suffix of a feature name (`relief_m` -> `m`, `rate_mps` -> `mps`), if it has one."""
    m = _UNIT.search(name.rsplit(".", 1)[-1])
    return m.group(1) if m else None


def ratios(features: dict) -> dict[str, float]:
    """Each numeric decision divided by each positive numeric input in the same unit.

    Lets induction find relational limits ("the rejection threshold must exceed the relief") that no
    constant threshold captures; dimensional agreement keeps the family small.
    """
    outs = [(k, unit_of(k)) for k, v in features.items() if k.startswith("output.") and is_real(v)]
    ins = [(k, unit_of(k)) for k, v in features.items() if k.startswith("input.") and is_real(v) and v > 0]
    return {f"{o}{RATIO}{i}": float(features[o]) / float(features[i]) for o, uo in outs if uo for i, ui in ins if ui == uo}


def update(stats: InductionStats, new_episodes: Iterable[Episode]) -> InductionStats:
    """Fold new episodes into the summary (pure: returns a new InductionStats)."""
    groups: dict[str, list[Episode]] = {}
    for ep in new_episodes:
        extra = ratios(ep.features)
        if extra:
            ep = ep.model_copy(update={"features": {**ep.features, **extra}})
        groups.setdefault(ep.specialist, []).append(ep)
    tables = dict(stats.tables)
    for spec, eps in groups.items():
        tables[spec] = _append(tables.get(spec) or Table(spec), eps, stats)
    return InductionStats(tables, stats.max_episodes, stats.max_features, stats.max_categories)


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
                    trace_ids=recent_unique(t.trace_ids[rows], max_traces)))
    out.sort(key=lambda s: (s.specialist, -s.count, str(s.criterion), str(s.cause)))
    return out


def quantile_cuts(x: np.ndarray, bins: int) -> np.ndarray:
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


def place_threshold(lo: float, hi: float, op: str, integral: bool) -> float:
    """A round threshold inside the gap (lo, hi) between observed values, near its midpoint."""
    if integral:
        return float(round(lo)) if op == "<=" else float(round(hi))
    mid, tol = (lo + hi) / 2, (hi - lo) / 4
    for d in range(-12, 17):
        t = round(mid, d)
        if abs(t - mid) <= tol and lo < t < hi:
            return float(t)
    return float(mid)


def recent_unique(ids: np.ndarray, k: int) -> list[str]:
    out: list[str] = []
    for tid in ids[::-1]:
        tid = str(tid)
        if tid and tid not in out:
            out.append(tid)
            if len(out) == k:
                break
    return out[::-1]


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _kind_of(values: list, old: Column | None, max_cat: int) -> Column | None:
    """Classify a column from its new non-None values; None means drop the feature."""
    types = {type(v) for v in values}
    if types - {bool, int, float, str}:
        return None
    if bool in types:
        if types != {bool} or (old and old.kind != "bool"):
            return None
        return Column("", "bool")
    if str in types:
        if types != {str} or (old and old.kind != "cat"):
            return None
        vocab = list(old.vocab) if old else []
        seen = set(vocab)
        for v in dict.fromkeys(values):
            if v not in seen:
                if not SAFE_TOKEN.match(v):
                    return None
                vocab.append(v)
                seen.add(v)
        if len(vocab) > max_cat:
            return None
        return Column("", "cat", tuple(vocab))
    if old and old.kind != "num":
        return None
    integral = (old.integral if old else True) and float not in types
    return Column("", "num", (), integral)


def _append(t: Table, eps: list[Episode], stats: InductionStats) -> Table:
    m = len(eps)
    # Pass 1: gather values per feature name in first-seen order.
    raw: dict[str, list] = {}
    skip: set[str] = set(t.dropped)
    for r, ep in enumerate(eps):
        for k, v in ep.features.items():
            lst = raw.get(k)
            if lst is None:
                if k in skip:
                    continue
                if not all(is_usable_name(part) for part in k.split(RATIO, 1)):
                    skip.add(k)
                    continue
                lst = raw[k] = [None] * m
            lst[r] = v
    old_cols = {c.name: (i, c) for i, c in enumerate(t.columns)}
    dropped = set(t.dropped)
    new_cols: list[Column] = []
    new_rows: list[np.ndarray] = []
    old_rows: list[np.ndarray] = []
    budget = stats.max_features - len(t.columns) - len(t.dropped)
    for name in list(old_cols) + [k for k in raw if k not in old_cols]:
        i_old, old = old_cols.get(name, (None, None))
        vals = raw.get(name)
        if vals is None:
            col, nonnull = old, []
        else:
            nonnull = [v for v in vals if v is not None and not (isinstance(v, float) and not math.isfinite(v))]
            if old is None and not nonnull:
                continue
            if old is None:
                if budget <= 0:
                    continue
                budget -= 1
            col = _kind_of(nonnull, old, stats.max_categories) if nonnull else old
        if col is None:
            dropped.add(name)
            continue
        col = Column(name, col.kind, col.vocab, col.integral)
        new_cols.append(col)
        old_rows.append(t.X[i_old] if i_old is not None else np.full(t.n, np.nan, np.float32))
        new_rows.append(_encode(vals, col, m))
    X = np.vstack([np.concatenate([o, n]) for o, n in zip(old_rows, new_rows)]) if new_cols else np.zeros((0, t.n + m), np.float32)
    # Criteria and causes.
    crit = list(t.criteria)
    for ep in eps:
        for c in ep.criteria:
            if c not in crit and len(crit) < 64 and SAFE_NAME.match(c):
                crit.append(c)
    C = np.full((len(crit), t.n + m), -1, np.int8)
    C[: len(t.criteria), : t.n] = t.C
    ci = {c: i for i, c in enumerate(crit)}
    for r, ep in enumerate(eps):
        for c, v in ep.criteria.items():
            if c in ci and v is not None:
                C[ci[c], t.n + r] = 1 if v else 0
    causes = list(t.causes)
    cause_new = np.full(m, -1, np.int16)
    for r, ep in enumerate(eps):
        if ep.cause is None:
            continue
        c = ep.cause if SAFE_TOKEN.match(ep.cause) else "other"
        if c not in causes:
            if len(causes) >= 63:
                c = "other"
            if c not in causes:
                causes.append(c)
        cause_new[r] = causes.index(c)
    keep = slice(max(0, t.n + m - stats.max_episodes), None)
    return Table(
        specialist=t.specialist,
        columns=tuple(new_cols),
        X=_frozen(np.ascontiguousarray(X[:, keep])),
        passed=_frozen(np.concatenate([t.passed, np.array([e.passed for e in eps], bool)])[keep]),
        criteria=tuple(crit),
        C=_frozen(np.ascontiguousarray(C[:, keep])),
        causes=tuple(causes),
        cause=_frozen(np.concatenate([t.cause, cause_new])[keep]),
        run_ids=_frozen(np.concatenate([t.run_ids, np.array([e.run_id for e in eps], dtype=str)])[keep]),
        trace_ids=_frozen(np.concatenate([t.trace_ids, np.array([e.trace_id for e in eps], dtype=str)])[keep]),
        words=_frozen(np.concatenate([t.words, np.array([" ".join(explanation_words(e.explanation)) for e in eps], dtype=str)])[keep]),
        dropped=frozenset(dropped),
        seen=t.seen + m,
    )


def _encode(vals: list | None, col: Column, m: int) -> np.ndarray:
    out = np.full(m, np.nan, np.float32)
    if vals is None:
        return out
    if col.kind == "num":
        for r, v in enumerate(vals):
            if v is not None:
                out[r] = v
        out[~np.isfinite(out)] = np.nan
    elif col.kind == "bool":
        for r, v in enumerate(vals):
            if v is not None:
                out[r] = 1.0 if v else 0.0
    else:
        code = {v: float(i) for i, v in enumerate(col.vocab)}
        for r, v in enumerate(vals):
            if v is not None:
                out[r] = code[v]
    return out
