"""`verify` as one library call: open both indexes, embed or load queries, search, score, compare.

The CLI parses flags into `VerifyOptions`, calls `run_verify`, and renders the `VerifyResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jmigrate.encoders.base import Encoder
from jmigrate.errors import UsageError
from jmigrate.models import get_model
from jmigrate.verify import agreement as agr
from jmigrate.verify.bridged import BridgedSystem, open_bridge, run_bridged, score_bridged
from jmigrate.verify.guard import Space, check_space, query_task_for
from jmigrate.verify.indexes import Issue, VectorIndex, compare_indexes, open_index, vector_issues
from jmigrate.verify.metrics import (
    DEPTH,
    MAIN_METRIC,
    METRICS,
    Evaluation,
    evaluate_run,
    require_metric_libraries,
)
from jmigrate.verify.queries import Query, align_query_vectors, load_qrels, load_queries, load_query_vectors
from jmigrate.verify.runs import check_trec_ids, write_run
from jmigrate.verify.search import DEFAULT_MEMORY_BUDGET, Ranking, check_depth, search
from jmigrate.verify.stats import Comparison, compare_all, language_slices

SIDES = ("v2", "v3")
EncoderFactory = Callable[[str], Encoder]  # model name → encoder


@dataclass
class SideOptions:
    index: str
    model: str | None = None
    task: str | None = None
    ids: str | None = None
    query_vectors: str | None = None


@dataclass
class VerifyOptions:
    v2: SideOptions
    v3: SideOptions
    queries: str
    qrels: str | None = None
    k: int = 10
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    backend: str = "numpy"
    run_dir: str | None = None
    alpha: float = 0.05
    examples: int = 5
    verify_checksums: bool = True
    bridge: str | None = None  # a `jmigrate bridge fit` folder: adds v3 queries through it on the v2 index
    # Judged documents absent from both indexes make the metrics meaningless beyond a small share:
    # an error unless the user accepts it knowingly.
    allow_missing_judged: bool = False


@dataclass
class Side:
    name: str
    index: VectorIndex
    query_space: Space
    query_source: str  # "precomputed: FILE" or "encoded: MODEL"
    ranking: Ranking
    evaluation: Evaluation | None = None
    query_vectors: Any = None  # the (queries, dims) matrix searched (verify --search-in-store reuses it)


@dataclass
class VerifyResult:
    options: VerifyOptions
    queries: list[Query]
    sides: dict[str, Side]
    comparisons: list[Comparison] = field(default_factory=list)
    languages: list[Comparison] = field(default_factory=list)
    agreement: list[agr.QueryAgreement] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    judged: list[str] = field(default_factory=list)
    bridged: BridgedSystem | None = None

    @property
    def has_qrels(self) -> bool:
        return self.options.qrels is not None

    def main(self) -> Comparison | None:
        return next((c for c in self.comparisons if c.metric == MAIN_METRIC), None)

    @property
    def integrity_errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def v3_worse(self) -> bool:
        c = self.main()
        return c is not None and c.difference < 0 and c.p_value < self.options.alpha

    @property
    def bridge_worse(self) -> bool:
        """With --bridge: the bridged system is significantly worse than v2 alone (do not deploy it)."""
        return self.bridged is not None and self.bridged.worse_than_v2(self.options.alpha)

    @property
    def exit_code(self) -> int:
        """1 when v3 (or, with --bridge, the bridged system) is significantly worse than v2 on the main
        metric, or an index failed its integrity checks."""
        return 1 if self.v3_worse or self.bridge_worse or self.integrity_errors else 0


def run_verify(
    opts: VerifyOptions,
    encoder_factory: EncoderFactory | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> VerifyResult:
    if opts.k < 1:
        raise UsageError("-k must be at least 1")
    if not 0 < opts.alpha < 1:
        raise UsageError("--alpha must be between 0 and 1")
    indexes = {}
    for name in SIDES:
        so: SideOptions = getattr(opts, name)
        progress(f"opening the {name} index {so.index}")
        indexes[name] = open_index(
            so.index,
            side=name,
            model=so.model,
            task=so.task,
            ids_path=so.ids,
            verify_checksums=opts.verify_checksums,
        )
    _check_generations(indexes)
    bridge = open_bridge(opts.bridge, indexes["v2"], progress) if opts.bridge else None
    queries = load_queries(opts.queries)
    qrels = load_qrels(opts.qrels) if opts.qrels else None
    if qrels is not None:
        # Every dependency of the scoring is checked before a query is embedded (paid calls).
        require_metric_libraries()
        check_judgements(qrels, queries, indexes, allow_missing=opts.allow_missing_judged)
    if opts.run_dir:  # refuse before any query is embedded, not after the search
        check_trec_ids((q.id for q in queries), "query id")
        for name in SIDES:
            check_trec_ids(indexes[name].row_ids.tolist(), f"{name} document id")
    depth = max(opts.k, DEPTH) if qrels else opts.k
    for idx in indexes.values():  # before any query is embedded (paid) or any vector read
        check_depth(depth, len(queries), len(idx.doc_ids()), opts.memory_budget)
    qids = [q.id for q in queries]
    sides: dict[str, Side] = {}
    v3_queries: tuple[np.ndarray, Space, str] | None = None
    for name in SIDES:
        so = getattr(opts, name)
        idx = indexes[name]
        vectors, space, source = _query_vectors(name, so, idx, queries, encoder_factory, progress)
        if name == "v3":
            v3_queries = (vectors, space, source)
        progress(f"searching the {name} index ({idx.rows:,} vectors) for {len(queries)} queries")
        ranking = search(idx, vectors, qids, depth, memory_budget=opts.memory_budget, backend=opts.backend)
        idx.issues.extend(vector_issues(idx, ranking.stats))
        sides[name] = Side(name, idx, space, source, ranking, query_vectors=vectors)
    result = VerifyResult(opts, queries, sides)
    if bridge is not None and v3_queries is not None:
        result.bridged = run_bridged(bridge, indexes["v2"], queries, *v3_queries, depth,
                                     memory_budget=opts.memory_budget, backend=opts.backend,
                                     encoder_factory=encoder_factory, progress=progress)
    result.issues = [
        *indexes["v2"].issues,
        *indexes["v3"].issues,
        *compare_indexes(indexes["v2"], indexes["v3"]),
    ]
    if opts.run_dir:
        for name, side in sides.items():
            _write_run(Path(opts.run_dir) / f"{name}.run", side.ranking, f"jmigrate-{name}")
        if result.bridged is not None:
            _write_run(Path(opts.run_dir) / "bridged.run", result.bridged.ranking, "jmigrate-bridged")
    if qrels is not None:
        _score(result, qrels)
    runs = {n: s.ranking.as_run() for n, s in sides.items()}
    result.agreement = agr.agreement(runs["v2"], runs["v3"], qids, opts.k)
    if result.bridged is not None:  # how close the bridged lists are to full v3's, with or without qrels
        result.bridged.agreement_with_v3 = agr.summarise(
            agr.agreement(result.bridged.ranking.as_run(), runs["v3"], qids, opts.k))
    result.examples = _examples(result, qrels, runs)
    return result


def _write_run(path: Path, ranking: Ranking, run_id: str) -> None:
    try:
        write_run(path, ranking, run_id)
    except OSError as e:  # a full disk, a folder removed meanwhile: one line, not a traceback
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e


def _check_generations(indexes: dict[str, VectorIndex]) -> None:
    """Any two indexes can be compared (v2 vs v3, or two v3 indexes: 1024 vs 256 dimensions, two
    tasks), but a v3 index on --v2 with an older one on --v3 is swapped flags, which would invert the
    verdict: refuse that one case."""
    gens = {name: get_model(idx.model).generation for name, idx in indexes.items()}
    if gens["v2"] == "v3" and gens["v3"] != "v3":
        raise UsageError(
            f"the --v2 index holds {indexes['v2'].model} (v3) and the --v3 index "
            f"{indexes['v3'].model} ({gens['v3']}): the flags look swapped; --v2 takes the baseline, "
            "--v3 the candidate"
        )


def side_label(index: VectorIndex) -> str:
    """What an index is, for verdicts comparing two indexes of one generation: model, width, task."""
    task = f", {index.task}" if index.task else ""
    return f"{get_model(index.model).name} {index.dimensions}d{task}"


def _query_vectors(
    name: str,
    so: SideOptions,
    idx: VectorIndex,
    queries: list[Query],
    encoder_factory: EncoderFactory | None,
    progress: Callable[[str], None],
) -> tuple[np.ndarray, Space, str]:
    index_space = Space(idx.model, idx.task, idx.dimensions)
    if so.query_vectors:
        qv = load_query_vectors(so.query_vectors)
        space = Space(qv.model, qv.task, qv.matrix.shape[1])
        check_space(name, index_space, space, query_task_known=qv.task is not None)
        return align_query_vectors(qv, queries, name), space, f"precomputed: {so.query_vectors}"
    if encoder_factory is None:
        raise UsageError(f"no --{name}-query-vectors and no encoder to embed the {name} queries")
    model = get_model(idx.model)
    task = query_task_for(idx.task) if model.generation == "v3" else None
    # Matryoshka: v3 queries are cut to the index's size; older models have one size only.
    dims = idx.dimensions if model.generation == "v3" else None
    progress(
        f"embedding {len(queries)} queries for {name} with {model.name}" + (f" ({task})" if task else "")
    )
    with encoder_factory(model.name) as enc:
        vectors = enc.encode([q.text for q in queries], task=task, dimensions=dims)
    space = Space(model.name, task, vectors.shape[1])
    check_space(name, index_space, space)
    return vectors, space, f"encoded: {model.name}"


def _score(result: VerifyResult, qrels: dict[str, dict[str, int]]) -> None:
    qids = [q.id for q in result.queries]
    for side in result.sides.values():
        side.evaluation = evaluate_run(qrels, side.ranking.as_scored_run(), qids)
    ev2, ev3 = result.sides["v2"].evaluation, result.sides["v3"].evaluation
    assert ev2 is not None and ev3 is not None
    result.judged = ev2.judged
    if not result.judged:
        raise UsageError("none of the queries has a judgement in --qrels (do the query ids match?)")
    result.comparisons = compare_all(list(METRICS), ev2.per_query, ev3.per_query, result.judged)
    if result.bridged is not None:
        score_bridged(result.bridged, qrels, result.queries, result.judged, ev2, ev3)
    langs = {q.id: q.language for q in result.queries}
    if any(langs[q] for q in result.judged):
        result.languages = language_slices(
            MAIN_METRIC, ev2.per_query[MAIN_METRIC], ev3.per_query[MAIN_METRIC], langs
        )
    unjudged = len(result.queries) - len(result.judged)
    if unjudged:
        result.issues.append(
            Issue(
                "warning",
                "both",
                "unjudged-queries",
                f"{unjudged} quer(ies) have no qrels and are left out of the metrics",
            )
        )
    orphans = len(set(qrels) - {q.id for q in result.queries})
    if orphans:
        result.issues.append(
            Issue(
                "warning",
                "both",
                "qrels-without-queries",
                f"{orphans} query id(s) in the qrels are not in the queries file",
            )
        )

MISSING_JUDGED_SHARE = 0.05  # judged-relevant documents absent from both indexes: above this, an error


def check_judgements(
    qrels: dict[str, dict[str, int]], queries: list[Query], indexes: dict[str, VectorIndex], *,
    allow_missing: bool,
) -> None:
    """Refuse an evaluation the qrels cannot support: judged-relevant documents missing from both
    indexes over MISSING_JUDGED_SHARE, or a query none of whose relevant documents is indexed (such a
    query scores 0 on both sides, whatever the models do). Runs before anything is embedded."""
    asked = {q.id for q in queries}
    corpus = indexes["v2"].doc_ids() | indexes["v3"].doc_ids()
    pairs = [(q, d) for q, docs in qrels.items() if q in asked for d, rel in docs.items() if rel > 0]
    if not pairs:
        return  # no judged query at all: _score says so in its own words
    missing = [(q, d) for q, d in pairs if d not in corpus]
    found_per_query: dict[str, int] = {}
    for q, d in pairs:
        found_per_query[q] = found_per_query.get(q, 0) + (d in corpus)
    blind = sorted(q for q, n in found_per_query.items() if n == 0)
    share = len(missing) / len(pairs)
    if allow_missing or (share <= MISSING_JUDGED_SHARE and not blind):
        return
    example = missing[0]
    problem = (f"{len(missing)} of {len(pairs)} relevant judgements ({share:.0%}) name documents in "
               f"neither index (e.g. {example[1]!r} for query {example[0]!r})")
    if blind:
        problem += (f"; {len(blind)} quer(ies) have none of their relevant documents indexed "
                    f"(e.g. {blind[0]!r})")
    raise UsageError(
        f"{problem}: the metrics would not measure the models (do the qrels belong to these indexes? "
        "do the document ids match?); pass --allow-missing-judged to evaluate anyway"
    )


def _examples(
    result: VerifyResult, qrels: dict[str, dict[str, int]] | None, runs: dict[str, dict[str, list[str]]]
) -> list[dict[str, Any]]:
    """The queries where the systems disagree most, with both top lists and document snippets."""
    k = min(result.options.k, 10)
    worst = agr.most_different(result.agreement, result.options.examples)
    wanted = {d for a in worst for n in SIDES for d in runs[n][a.query_id][:k]}
    snippets: dict[str, str] = {}
    for n in SIDES:
        missing = wanted - set(snippets)
        snippets.update(result.sides[n].index.texts(missing))
    texts = {q.id: q.text for q in result.queries}
    out = []
    for a in worst:
        ex: dict[str, Any] = {
            "query_id": a.query_id,
            "query": texts[a.query_id],
            "jaccard": a.jaccard,
            "rbo": a.rbo,
        }
        for n in SIDES:
            r = result.sides[n].ranking
            i = r.query_ids.index(a.query_id)
            ex[n] = [
                {
                    "id": d,
                    "score": s,
                    "snippet": snippets.get(d),
                    "relevance": (qrels or {}).get(a.query_id, {}).get(d),
                }
                for d, s in zip(r.doc_ids[i][:k], r.scores[i][:k], strict=True)
            ]
        out.append(ex)
    return out
