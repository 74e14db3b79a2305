"""IR metrics per query through pytrec_eval (trec_eval's own C code), never hand-written formulas.

Decisions (see docs/verify.md):
- A query with qrels but no retrieved documents scores 0 on every metric (trec_eval -c behaviour);
  pytrec_eval on its own would silently drop it and flatter the system that found nothing.
- Queries with results but no qrels cannot be judged and are left out of the means.
- Tied scores: `search` ranks ties by document id descending, trec_eval's own rule, and the metrics
  are computed from the exact scores the run files carry, so trec_eval on those files gives the
  report's numbers to the last digit (tests/test_verify_reproducible.py).
- MRR@10 is trec_eval's `recip_rank` on the run cut to its first 10 documents (trec_eval's recip_rank
  has no cutoff); MAP is over the retrieved depth (100 by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jmigrate.errors import UsageError

MAIN_METRIC = "nDCG@10"
# Our name → (trec_eval measure to request, key in pytrec_eval's output, run depth to evaluate).
METRICS: dict[str, tuple[str, str, int | None]] = {
    "nDCG@10": ("ndcg_cut.10", "ndcg_cut_10", None),
    "Recall@10": ("recall.10", "recall_10", None),
    "Recall@100": ("recall.100", "recall_100", None),
    "MRR@10": ("recip_rank", "recip_rank", 10),
    "MAP": ("map", "map", None),
}
RECALL_CURVE = (1, 2, 5, 10, 20, 50, 100)
DEPTH = 100  # documents retrieved per query when qrels are given: Recall@100 needs 100


def _pytrec_eval() -> Any:
    try:
        import pytrec_eval
    except ImportError as e:
        raise UsageError("metrics need pytrec_eval: pip install 'jmigrate[verify]'") from e
    return pytrec_eval


def require_metric_libraries() -> None:
    """Fail now, with the install hint, if scoring could not run later (pytrec_eval, scipy)."""
    _pytrec_eval()
    from jmigrate.verify.stats import _scipy_stats

    _scipy_stats()


@dataclass
class Evaluation:
    """Per-query scores of one system: {metric: {query id: value}} over the judged queries."""

    per_query: dict[str, dict[str, float]]
    recall_curve: dict[int, float]
    judged: list[str]  # queries with qrels, in query order
    empty: list[str]  # judged queries for which the system returned nothing

    def mean(self, metric: str) -> float:
        vals = self.per_query[metric]
        return sum(vals.values()) / len(vals) if vals else 0.0


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    query_ids: Sequence[str] | None = None,
) -> Evaluation:
    """Score `run` ({qid: {docid: score}}) against `qrels` with trec_eval's code.

    `query_ids` limits evaluation to those queries (default: every query in the qrels). Judged
    queries missing from the run, or with an empty result list, score 0.
    """
    pe = _pytrec_eval()
    judged = [q for q in (query_ids if query_ids is not None else sorted(qrels)) if q in qrels]
    qrels_j = {q: dict(qrels[q]) for q in judged}
    run_j = {q: dict(run[q]) for q in judged if run.get(q)}
    empty = [q for q in judged if q not in run_j]
    per_query: dict[str, dict[str, float]] = {m: {} for m in METRICS}
    curve_measure = "recall." + ",".join(str(c) for c in RECALL_CURVE)
    full_measures = {spec for spec, _, depth in METRICS.values() if depth is None} | {curve_measure}
    full = pe.RelevanceEvaluator(qrels_j, full_measures).evaluate(run_j) if run_j else {}
    cut: dict[int, dict[str, dict[str, float]]] = {}
    for spec, _, depth in METRICS.values():
        if depth is not None and depth not in cut:
            cut_run = {q: _top(docs, depth) for q, docs in run_j.items()}
            cut[depth] = pe.RelevanceEvaluator(qrels_j, {spec}).evaluate(cut_run) if cut_run else {}
    curve: dict[int, list[float]] = {c: [] for c in RECALL_CURVE}
    for q in judged:
        for name, (_, key, depth) in METRICS.items():
            source = full if depth is None else cut[depth]
            per_query[name][q] = float(source.get(q, {}).get(key, 0.0))
        for c in RECALL_CURVE:
            curve[c].append(float(full.get(q, {}).get(f"recall_{c}", 0.0)))
    recall_curve = {c: (sum(v) / len(v) if v else 0.0) for c, v in curve.items()}
    return Evaluation(per_query, recall_curve, judged, empty)


def _top(docs: Mapping[str, float], depth: int) -> dict[str, float]:
    """The first `depth` documents in trec_eval's order: score descending, then docno descending."""
    ordered = sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    return dict(ordered[:depth])
