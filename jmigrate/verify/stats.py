"""Paired comparison of two systems' per-query scores: randomisation test, bootstrap CI, wins/losses.

Method (docs/verify.md): the difference is v3 − v2 per query. The p-value comes from a paired
randomisation (sign-flip permutation) test on the mean difference via `scipy.stats.permutation_test`
(exact when 2^n is at most the resample count); the 95% interval is a BCa bootstrap of the mean
difference via `scipy.stats.bootstrap`. A paired t-test is reported beside them for reference.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from jmigrate.errors import UsageError

RESAMPLES = 10_000
SEED = 20240917  # fixed: the same inputs always give the same p-value and interval
TIE_TOLERANCE = 1e-9


@dataclass
class Comparison:
    metric: str
    n: int
    v2_mean: float
    v3_mean: float
    difference: float  # v3 − v2
    ci_low: float
    ci_high: float
    p_value: float  # two-sided, paired randomisation test
    p_value_t: float | None  # two-sided paired t-test (None when undefined: all differences equal)
    wins: int  # queries where v3 scores higher
    losses: int
    ties: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scipy_stats() -> Any:
    try:
        from scipy import stats
    except ImportError as e:
        raise UsageError("statistics need scipy: pip install 'jmigrate[verify]'") from e
    return stats


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def compare(
    metric: str,
    v2: Sequence[float],
    v3: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Comparison:
    """Paired comparison of per-query scores given in the same query order."""
    a, b = np.asarray(v2, dtype=float), np.asarray(v3, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired scores must have the same length")
    n = len(a)
    d = b - a
    wins = int((d > TIE_TOLERANCE).sum())
    losses = int((d < -TIE_TOLERANCE).sum())
    diff = float(d.mean()) if n else 0.0
    base = dict(
        metric=metric,
        n=n,
        v2_mean=float(a.mean()) if n else 0.0,
        v3_mean=float(b.mean()) if n else 0.0,
        difference=diff,
        wins=wins,
        losses=losses,
        ties=n - wins - losses,
    )
    if n < 2 or (np.abs(d) <= TIE_TOLERANCE).all():
        # Nothing to resample: identical systems (or a single query) give no evidence of a difference.
        return Comparison(ci_low=diff, ci_high=diff, p_value=1.0, p_value_t=None, **base)  # type: ignore[arg-type]
    st = _scipy_stats()
    perm = st.permutation_test(
        (b, a),
        _mean_diff,
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="two-sided",
        random_state=np.random.default_rng(seed),
    )
    if np.ptp(d) <= TIE_TOLERANCE:
        # Every query moved by the same amount: the interval of the mean is that amount, and the
        # t statistic is undefined (zero variance).
        low, high, p_t = diff, diff, None
    else:
        low, high = _bootstrap_ci(st, d, confidence, resamples, seed)
        p_t = float(st.ttest_rel(b, a).pvalue)
    return Comparison(ci_low=low, ci_high=high, p_value=float(min(1.0, perm.pvalue)), p_value_t=p_t, **base)  # type: ignore[arg-type]


def _bootstrap_ci(
    st: Any, d: np.ndarray, confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    with warnings.catch_warnings():
        # BCa is undefined on some small or lumpy samples (scipy warns and returns NaN): fall back
        # to the percentile interval then, which is always defined.
        warnings.simplefilter("ignore")
        res = st.bootstrap(
            (d,),
            np.mean,
            confidence_level=confidence,
            n_resamples=resamples,
            method="BCa",
            random_state=np.random.default_rng(seed),
        )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (np.isfinite(low) and np.isfinite(high)):
            res = st.bootstrap(
                (d,),
                np.mean,
                confidence_level=confidence,
                n_resamples=resamples,
                method="percentile",
                random_state=np.random.default_rng(seed),
            )
            low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return low, high


def compare_all(
    metrics: Sequence[str],
    v2: Mapping[str, Mapping[str, float]],
    v3: Mapping[str, Mapping[str, float]],
    queries: Sequence[str],
) -> list[Comparison]:
    """One Comparison per metric over `queries` (both systems scored on each of them)."""
    return [compare(m, [v2[m][q] for q in queries], [v3[m][q] for q in queries]) for m in metrics]


def language_slices(
    metric: str, v2: Mapping[str, float], v3: Mapping[str, float], languages: Mapping[str, str | None]
) -> list[Comparison]:
    """The comparison per query language, for languages given in the query file (no detection)."""
    groups: dict[str, list[str]] = {}
    for q in v2:
        lang = languages.get(q)
        if lang:
            groups.setdefault(lang, []).append(q)
    out = []
    for lang, qs in sorted(groups.items()):
        c = compare(metric, [v2[q] for q in qs], [v3[q] for q in qs])
        c.metric = f"{metric} [{lang}]"
        out.append(c)
    return out
