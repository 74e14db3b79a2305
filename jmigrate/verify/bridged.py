"""`verify --bridge`: a third system, v3 queries mapped through a query bridge and searched in the v2 index.

It is scored with the same metrics as v2 and v3, compared (paired, same tests and intervals) with both,
and summarised by the recovered fraction: (bridged − v2) / (v3 − v2) of the main metric, with a paired
bootstrap interval. The bridge must have been fitted on this v2 index (fingerprint) and for these v3
query vectors (model, task, width); otherwise `verify` stops before searching.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jmigrate.errors import UsageError
from jmigrate.verify.guard import Space
from jmigrate.verify.indexes import VectorIndex
from jmigrate.verify.metrics import MAIN_METRIC, METRICS, Evaluation, evaluate_run
from jmigrate.verify.queries import Query
from jmigrate.verify.search import Ranking, search
from jmigrate.verify.stats import RESAMPLES, SEED, Comparison, compare_all, language_slices

NAME = "bridged"


@dataclass
class BridgedSystem:
    """v3 queries through the bridge against the v2 index, and how it compares with v2 and v3."""

    bridge_path: str
    manifest: dict[str, Any]
    query_source: str
    ranking: Ranking
    evaluation: Evaluation | None = None
    # Comparison names its two systems v2 and v3: here "v2" is the baseline and "v3" the bridged system,
    # so `difference` is bridged − v2 (vs_v2) and bridged − v3 (vs_v3).
    vs_v2: list[Comparison] = field(default_factory=list)
    vs_v3: list[Comparison] = field(default_factory=list)
    languages: list[Comparison] = field(default_factory=list)  # main metric, bridged − v2, per language
    recovered: dict[str, float | None] = field(default_factory=dict)
    recovered_ci: tuple[float, float] | None = None  # of the main metric
    agreement_with_v3: dict[str, float | None] = field(default_factory=dict)  # top-k lists vs full v3

    def main_vs_v2(self) -> Comparison | None:
        return next((c for c in self.vs_v2 if c.metric == MAIN_METRIC), None)

    def worse_than_v2(self, alpha: float) -> bool:
        c = self.main_vs_v2()
        return c is not None and c.difference < 0 and c.p_value < alpha


def open_bridge(bridge_path: str, v2: VectorIndex, progress: Callable[[str], None]) -> Any:
    """Load the bridge and check it belongs to this v2 index (before any query is embedded or searched)."""
    from jmigrate.bridge.apply import PoorBridgeWarning, load

    with warnings.catch_warnings():
        # A poor fit is not an error here: it is measured and shown in the report.
        warnings.simplefilter("ignore", PoorBridgeWarning)
        bridge = load(bridge_path)
    bridge.check_index(v2, progress=progress)
    return bridge


def run_bridged(
    bridge: Any,
    v2: VectorIndex,
    queries: list[Query],
    v3_vectors: np.ndarray,
    v3_space: Space,
    v3_source: str,
    depth: int,
    *,
    memory_budget: int,
    backend: str,
    encoder_factory: Callable[[str], Any] | None,
    progress: Callable[[str], None],
) -> BridgedSystem:
    """Map the v3 queries (embedded again if the bridge wants another width or task), search the v2 index."""
    src = bridge.source
    vectors, source = v3_vectors, v3_source
    same_space = (
        v3_space.model is not None
        and v3_space.model.rsplit("/", 1)[-1] == src.model
        and v3_space.dimensions == src.dimensions
        and (v3_space.task is None or src.task is None or v3_space.task == src.task)
    )
    if not same_space:
        if encoder_factory is None:
            raise UsageError(
                f"the bridge maps {src.describe()} query vectors; the v3 queries are "
                f"{v3_space.describe()} and there is no encoder to embed them as the bridge needs"
            )
        progress(f"embedding {len(queries)} queries for the bridge with {src.model} ({src.task}, "
                 f"{src.dimensions} dims)")
        with encoder_factory(src.model) as enc:
            vectors = enc.encode([q.text for q in queries], task=src.task, dimensions=src.dimensions)
        source = f"encoded: {src.model}"
    else:
        bridge.check_source(src.model if v3_space.model is None else v3_space.model, vectors.shape[1],
                            v3_space.task)
    mapped = np.asarray(bridge.apply(vectors))  # a plain array from here: it only ever meets the v2 index
    progress(f"searching the v2 index ({v2.rows:,} vectors) with {len(queries)} bridged queries")
    ranking = search(v2, mapped, [q.id for q in queries], depth, memory_budget=memory_budget, backend=backend)
    return BridgedSystem(str(bridge.path), bridge.manifest.to_dict(), f"{source} -> bridge {bridge.path}",
                         ranking)


def score_bridged(
    system: BridgedSystem,
    qrels: dict[str, dict[str, int]],
    queries: list[Query],
    judged: list[str],
    v2: Evaluation,
    v3: Evaluation,
) -> None:
    """Metrics of the bridged system, paired comparisons with v2 and v3, the recovered fraction."""
    qids = [q.id for q in queries]
    ev = evaluate_run(qrels, system.ranking.as_scored_run(), qids)
    system.evaluation = ev
    system.vs_v2 = compare_all(list(METRICS), v2.per_query, ev.per_query, judged)
    system.vs_v3 = compare_all(list(METRICS), v3.per_query, ev.per_query, judged)
    for m in METRICS:
        system.recovered[m] = recovered_fraction(
            [v2.per_query[m][q] for q in judged], [v3.per_query[m][q] for q in judged],
            [ev.per_query[m][q] for q in judged],
        )
    system.recovered_ci = recovered_interval(
        np.array([v2.per_query[MAIN_METRIC][q] for q in judged]),
        np.array([v3.per_query[MAIN_METRIC][q] for q in judged]),
        np.array([ev.per_query[MAIN_METRIC][q] for q in judged]),
    )
    langs = {q.id: q.language for q in queries}
    if any(langs[q] for q in judged):
        system.languages = language_slices(
            MAIN_METRIC, {q: v2.per_query[MAIN_METRIC][q] for q in judged},
            {q: ev.per_query[MAIN_METRIC][q] for q in judged}, langs,
        )


# Below this gap between v3 and v2 the fraction is a ratio of two noises: not reported.
MIN_GAP = 1e-6


def recovered_fraction(v2: list[float], v3: list[float], bridged: list[float]) -> float | None:
    """(mean bridged − mean v2) / (mean v3 − mean v2): 1 = all of v3's gain, 0 = none, <0 = worse than v2.
    None when v3 does not beat v2 (there is no gain to recover)."""
    gap = float(np.mean(v3) - np.mean(v2)) if v2 else 0.0
    if gap <= MIN_GAP:
        return None
    return float((np.mean(bridged) - np.mean(v2)) / gap)


def recovered_interval(v2: np.ndarray, v3: np.ndarray, bridged: np.ndarray, confidence: float = 0.95,
                       resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the recovered fraction, resampling queries (paired)."""
    n = len(v2)
    if n < 2 or recovered_fraction(list(v2), list(v3), list(bridged)) is None:
        return None
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    gap = v3[idx].mean(axis=1) - v2[idx].mean(axis=1)
    gain = bridged[idx].mean(axis=1) - v2[idx].mean(axis=1)
    ok = gap > MIN_GAP
    if ok.sum() < resamples // 2:
        return None  # v3's gain itself is not stable enough for a ratio
    ratios = gain[ok] / gap[ok]
    tail = (1 - confidence) / 2 * 100
    return float(np.percentile(ratios, tail)), float(np.percentile(ratios, 100 - tail))
