"""How much two rankings agree when there are no relevance judgements to say which is better.

Per query: overlap@k (Jaccard of the two top-k sets), rank-biased overlap (Webber, Moffat & Zobel
2010, extrapolated RBO for two lists cut at the same depth), and Kendall's tau / Spearman's rho on
the union of the two top-k lists (a document missing from one list takes rank k+1 there, tied).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

RBO_P = 0.9  # top-weightedness: the first 10 ranks carry ~86% of the weight


@dataclass
class QueryAgreement:
    query_id: str
    jaccard: float
    rbo: float
    kendall: float | None  # None when undefined (fewer than 2 documents, or a constant ranking)
    spearman: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def jaccard_at_k(a: Sequence[str], b: Sequence[str], k: int) -> float:
    sa, sb = set(a[:k]), set(b[:k])
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def rbo(a: Sequence[str], b: Sequence[str], p: float = RBO_P) -> float:
    """Extrapolated rank-biased overlap (RBO_ext, eq. 32 of Webber et al.) of two lists of equal depth.

    Assumes the agreement seen at the last rank continues beyond it; 1 for identical lists, 0 for
    disjoint ones. Lists of different length are cut to the shorter one.
    """
    depth = min(len(a), len(b))
    if depth == 0:
        return 1.0 if not a and not b else 0.0
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    overlap = 0
    total = 0.0
    for d in range(1, depth + 1):
        x, y = a[d - 1], b[d - 1]
        if x == y:
            overlap += 1
        else:
            overlap += (x in seen_b) + (y in seen_a)
        seen_a.add(x)
        seen_b.add(y)
        total += overlap / d * p**d
    return (1 - p) / p * total + (overlap / depth) * p**depth


def rank_correlations(a: Sequence[str], b: Sequence[str]) -> tuple[float | None, float | None]:
    """Kendall's tau-b and Spearman's rho of the two rankings over the union of their documents."""
    from scipy import stats

    union = list(dict.fromkeys([*a, *b]))
    if len(union) < 2:
        return None, None
    ra = {d: i + 1 for i, d in enumerate(a)}
    rb = {d: i + 1 for i, d in enumerate(b)}
    xa = [ra.get(d, len(a) + 1) for d in union]
    xb = [rb.get(d, len(b) + 1) for d in union]
    if len(set(xa)) < 2 or len(set(xb)) < 2:
        return None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on degenerate inputs; we return None for NaN
        tau = float(stats.kendalltau(xa, xb).statistic)
        rho = float(stats.spearmanr(xa, xb).statistic)
    return (None if math.isnan(tau) else tau), (None if math.isnan(rho) else rho)


def agreement(
    run_a: Mapping[str, Sequence[str]], run_b: Mapping[str, Sequence[str]], query_ids: Sequence[str], k: int
) -> list[QueryAgreement]:
    out = []
    for q in query_ids:
        a, b = list(run_a.get(q, []))[:k], list(run_b.get(q, []))[:k]
        tau, rho = rank_correlations(a, b)
        out.append(QueryAgreement(q, jaccard_at_k(a, b, k), rbo(a, b), tau, rho))
    return out


def summarise(rows: Sequence[QueryAgreement]) -> dict[str, float | None]:
    def mean(vals: list[float | None]) -> float | None:
        got = [v for v in vals if v is not None]
        return sum(got) / len(got) if got else None

    return {
        "overlap_jaccard": mean([r.jaccard for r in rows]),
        "rbo": mean([r.rbo for r in rows]),
        "kendall_tau": mean([r.kendall for r in rows]),
        "spearman_rho": mean([r.spearman for r in rows]),
    }


def most_different(rows: Sequence[QueryAgreement], n: int = 5) -> list[QueryAgreement]:
    """The queries where the systems disagree most: lowest RBO, then lowest overlap, then id."""
    return sorted(rows, key=lambda r: (r.rbo, r.jaccard, r.query_id))[:n]
