"""Exact top-k search by inner product over normalised vectors, streamed block by block.

The index is read in row blocks sized from a memory budget; each block is scored with one matrix
product and merged into a running top-k, so an index larger than memory works. Ties are broken by
document id, descending (trec_eval's rule), so two runs always agree and trec_eval keeps the order.
Chunked indexes (several rows per id) are ranked
per document by the best chunk's score (max-pooling). faiss, when installed, scores the blocks.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jmigrate.errors import InputError, UsageError
from jmigrate.verify.indexes import VectorIndex, VectorStats

DEFAULT_MEMORY_BUDGET = 1 << 30  # 1 GiB for the vector block and its score matrix
_NEG = np.float32(-np.inf)
_SAMPLE_COLUMNS = 4096  # columns used to estimate an empty top-k's threshold (see _candidates)
_NORM_SLICE_BYTES = 4 << 20  # rows whose norms are taken at once (np.linalg.norm's temporary)


@dataclass
class Ranking:
    """Top-k documents per query, best first, with their scores."""

    query_ids: list[str]
    doc_ids: list[list[str]]
    scores: list[list[float]]
    stats: VectorStats = field(default_factory=VectorStats)
    block_rows: int = 0
    passes: int = 0
    backend: str = "numpy"

    def as_run(self) -> dict[str, list[str]]:
        return dict(zip(self.query_ids, self.doc_ids, strict=True))

    def as_scored_run(self) -> dict[str, dict[str, float]]:
        """{query: {doc: score}} with the exact scores the run files carry (what trec_eval reads)."""
        return {q: dict(zip(docs, scores, strict=True))
                for q, docs, scores in zip(self.query_ids, self.doc_ids, self.scores, strict=True)}


def parse_size(text: str) -> int:
    """'512MB', '2G', '1.5GiB' or plain bytes → bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b?)\s*", text.lower())
    if not m:
        raise UsageError(f"cannot read the size {text!r}; use e.g. 512MB or 2GB")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2)]
    return int(float(m.group(1)) * scale)


VECTOR_COPIES = 3  # blocks of vectors alive at once: being read, queued, being scored


def plan_blocks(budget: int, dims: int, n_queries: int) -> tuple[int, int]:
    """(index rows per block, queries per pass) that keep the search's working set within `budget`.

    Per block row: the vectors of the three blocks the reader thread and the scorer hold at once
    (being read, queued, being scored; each normalised in place, 4 * dims bytes) and, per query, a
    float32 score, an int64 partition index and a bool mask (~20 bytes). Many queries on a tight
    budget are split into passes over the index rather than shrinking blocks below 1,024 rows.
    """
    per_query = 20
    per_row = VECTOR_COPIES * 4 * dims
    rows = budget // (per_row + per_query * max(1, n_queries))
    if rows >= 1024 or n_queries <= 1:
        return max(1, int(rows)), max(1, n_queries)
    rows = 1024
    q = max(1, (budget // rows - per_row) // per_query)
    return rows, int(q)


RANKING_BYTES = 12  # per kept result: a float32 score and an int64 document code


def check_depth(k: int, n_queries: int, n_docs: int, memory_budget: int) -> int:
    """The number of results to keep per query: `k`, or every document when the index has fewer (a
    top-k deeper than the index is the whole index). UsageError when the rankings alone would not fit
    in the memory budget, before anything is read or spent, instead of a MemoryError mid-search."""
    if k < 1:
        raise UsageError("-k must be at least 1")
    depth = min(k, max(1, n_docs))
    need = depth * max(1, n_queries) * RANKING_BYTES
    if need > memory_budget:
        raise UsageError(f"-k {k:,} keeps {depth:,} results for each of {n_queries:,} queries: "
                         f"{_size(need)} for the rankings alone, over --memory-budget "
                         f"{_size(memory_budget)}; "
                         "lower -k or raise --memory-budget")
    return depth


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} bytes"


def _faiss() -> Any | None:
    try:
        import faiss  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return faiss


def search(
    index: VectorIndex,
    queries: np.ndarray,
    query_ids: Sequence[str],
    k: int,
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    block_rows: int | None = None,
    backend: str = "numpy",
) -> Ranking:
    """Exact top-`k` documents of `index` for each query row (inner product of normalised vectors)."""
    if queries.ndim != 2 or queries.shape[1] != index.dimensions:
        raise InputError(
            f"query vectors have shape {queries.shape}; the {index.side} index has "
            f"{index.dimensions} dimensions"
        )
    if len(query_ids) != len(queries):
        raise InputError("query ids and query vectors differ in number")
    if k < 1:
        raise UsageError("-k must be at least 1")
    fa = None
    if backend == "faiss":
        fa = _faiss()
        if fa is None:
            raise UsageError("--search-backend faiss needs faiss-cpu (pip install 'jmigrate[faiss]')")
    elif backend != "numpy":
        raise UsageError(f"unknown search backend {backend!r}; use numpy or faiss")
    if index.chunked:
        fa = None  # faiss returns rows, not documents: several chunks of one id would crowd others out
    q = _normalise_queries(queries)
    # Codes number the unique ids in DESCENDING order: a smaller code wins a tie, so tied scores rank
    # by id descending, which is trec_eval's own rule (score desc, then docno desc): the run files
    # verify writes are then ordered exactly as trec_eval orders them, and the metrics agree.
    uniq, codes = np.unique(index.row_ids, return_inverse=True)
    uniq = uniq[::-1]
    codes = (len(uniq) - 1 - codes.astype(np.int64)).ravel()
    k = check_depth(k, len(q), len(uniq), memory_budget)
    rows_per_block, q_per_pass = plan_blocks(memory_budget, index.dimensions, len(q))
    if block_rows is not None:
        rows_per_block = block_rows
    eps = _score_error(index.dimensions)
    best_s = np.full((len(q), k), _NEG, dtype=np.float32)
    best_c = np.full((len(q), k), -1, dtype=np.int64)
    stats = VectorStats()
    passes = 0
    for q0 in range(0, len(q), q_per_pass):
        passes += 1
        qs = slice(q0, q0 + q_per_pass)
        for start, xn, bad in _prefetched(index, rows_per_block, stats if q0 == 0 else None):
            c = codes[start : start + len(xn)]
            if fa is not None:
                cand_s, cand_c = _faiss_candidates(fa, q[qs], xn, bad, c, k, eps)
            else:
                cand_s, cand_c = _block_candidates(q[qs], xn, bad, c, best_s[qs, -1], k, index.chunked, eps)
            best_s[qs], best_c[qs] = _merge(best_s[qs], best_c[qs], cand_s, cand_c, k, index.chunked)
            # Let go of this block before asking for the next: held by the loop variable while the
            # reader fills another, it would make a fourth block where plan_blocks counts three.
            del xn, bad, c, cand_s, cand_c
    doc_ids: list[list[str]] = []
    scores: list[list[float]] = []
    for srow, crow in zip(best_s, best_c, strict=True):
        keep = np.isfinite(srow) & (crow >= 0)
        doc_ids.append([str(uniq[i]) for i in crow[keep]])
        scores.append([float(x) for x in srow[keep]])
    return Ranking(
        list(query_ids),
        doc_ids,
        scores,
        stats,
        rows_per_block,
        passes,
        "faiss" if fa is not None else "numpy",
    )


def _normalise_queries(queries: np.ndarray) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    if not np.isfinite(norms).all() or (norms == 0).any():
        raise InputError("some query vectors are zero or contain NaN/inf")
    return np.ascontiguousarray(q / norms, dtype=np.float32)


def _prefetched(
    index: VectorIndex, block_rows: int, stats: VectorStats | None
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first row, normalised block, bad rows) in row order, read and normalised by a helper thread.

    Decoding Parquet and normalising run in pyarrow/numpy code that releases the GIL, so the next
    block is prepared while this one is scored. One finished block waits in the queue at most.
    """
    out: queue.Queue[tuple[int, np.ndarray, np.ndarray] | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[int, np.ndarray, np.ndarray] | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for start, block in index.iter_blocks(block_rows):
                xn, bad = _normalise_block(block, stats)
                del block  # normalised in place: xn is the same array
                if not put((start, xn, bad)):
                    return
            put(None)
        except BaseException as e:  # re-raised in the consumer
            put(e)

    t = threading.Thread(target=work, name="jmigrate-search-reader", daemon=True)
    t.start()
    try:
        while True:
            item = out.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
            del item  # drop the consumer's reference before waiting for the next block
    finally:
        stop.set()
        t.join()


def _normalise_block(block: np.ndarray, stats: VectorStats | None) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length rows, in place (the block is the reader's own array: no second full-size copy);
    rows with NaN/inf or zero norm are zeroed and flagged `bad` (never returned).

    Norms are taken a slice of rows at a time (np.linalg.norm squares into a temporary the size of
    its input); per row the arithmetic is the same, so scores are bit for bit what they were."""
    block = np.ascontiguousarray(block, dtype=np.float32)
    norms = np.empty(len(block), dtype=np.float32)
    step = max(1, _NORM_SLICE_BYTES // (4 * max(1, block.shape[1])))
    with np.errstate(over="ignore", invalid="ignore"):  # huge or NaN rows: counted, not warned about
        for i in range(0, len(block), step):
            norms[i : i + step] = np.linalg.norm(block[i : i + step], axis=1)
    finite = np.isfinite(norms)
    if stats is not None:
        stats.add(norms, finite)
    bad = ~finite | (norms == 0)
    safe = np.where(bad, 1.0, norms).astype(np.float32)
    if (safe != 1.0).any():  # dividing by exactly 1 changes nothing: unit vectors skip the pass
        with np.errstate(over="ignore", invalid="ignore"):
            np.divide(block, safe[:, None], out=block)
    if bad.any():
        block[bad] = 0.0
    return block, bad


def _max_per_doc(s: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Collapse chunk columns to one column per document holding its best chunk's score."""
    order = np.argsort(c, kind="stable")
    cs = c[order]
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    return np.maximum.reduceat(s[:, order], starts, axis=1), cs[starts]


def _candidates(s: np.ndarray, c: np.ndarray, threshold: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of `s` that may enter each row's top-k: (scores, codes) padded with -inf / -1.

    Anything below the running k-th best score cannot enter; once the running top-k has filled up
    that removes almost every column without sorting. Scores equal to the threshold stay candidates
    because a smaller code (a larger id) wins the tie.
    """
    threshold = _sample_threshold(s, threshold, k)
    mask = s >= threshold[:, None]
    total = int(np.count_nonzero(mask))
    if total <= 32 * k * len(s):
        rows, cols = _nonzero(mask)
    else:
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        kth = np.take_along_axis(s, part, axis=1).min(axis=1)
        ties = np.count_nonzero(s >= kth[:, None], axis=1) > kk
        if not ties.any():
            return np.take_along_axis(s, part, axis=1), c[part]
        # A tie across the k-th place: keep every tied column of those rows so ids can decide.
        keep = np.zeros_like(mask)
        np.put_along_axis(keep, part, True, axis=1)
        keep[ties] = s[ties] >= kth[ties, None]
        rows, cols = _nonzero(keep)
    return _pack(len(s), rows, s[rows, cols], c[cols])


def _pack(n: int, rows: np.ndarray, scores: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entries given as (row, score, code), rows ascending, as per-row lists padded with -inf / -1."""
    counts = np.bincount(rows, minlength=n)
    width = max(1, int(counts.max()) if len(counts) else 1)
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    out_s = np.full((n, width), _NEG, dtype=np.float32)
    out_c = np.full((n, width), -1, dtype=np.int64)
    out_s[rows, pos] = scores
    out_c[rows, pos] = codes
    return out_s, out_c


def _nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero of a 2-D mask, same order; flatnonzero + divmod is ~10x faster on wide score blocks."""
    rows, cols = np.divmod(np.flatnonzero(mask), max(1, mask.shape[1]))
    return rows, cols


def _sample_threshold(s: np.ndarray, threshold: np.ndarray, k: int) -> np.ndarray:
    """Raise an unfilled running threshold to the k-th best score among the first columns.

    The k-th best of a subset is never above the k-th best of the whole block, so nothing that can
    enter the top-k is dropped; it saves a full argpartition of the first block (~1 s at 1,000 x 38k).
    """
    m = min(s.shape[1], _SAMPLE_COLUMNS)
    empty = threshold == _NEG
    if m <= k or not empty.any() or s.shape[1] <= 4 * m:
        return threshold
    kth = np.partition(s[empty, :m], m - k, axis=1)[:, m - k]
    out = threshold.copy()
    out[empty] = kth
    return out


def _faiss_candidates(
    fa: Any, q: np.ndarray, xn: np.ndarray, bad: np.ndarray, c: np.ndarray, k: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """faiss finds each query's k+1 best rows of the block; they are rescored exactly. Queries whose
    (k+1)-th score is within rounding of the k-th (a tie the id must decide) are redone with numpy.

    Rows that are zero or not finite are left out of the faiss index: scored 0 they could fill a
    query's k+1 places and leave it with fewer than k results.
    """
    good = np.flatnonzero(~bad)
    if not len(good):
        return np.full((len(q), 1), _NEG, dtype=np.float32), np.full((len(q), 1), -1, dtype=np.int64)
    kk = min(k + 1, len(good))
    ix = fa.IndexFlatIP(xn.shape[1])
    ix.add(xn if len(good) == len(xn) else np.ascontiguousarray(xn[good]))  # copy only when rows are bad
    d, i = ix.search(q, kk)
    valid = i >= 0  # always, with kk <= rows; kept for safety
    cols = good[np.where(valid, i, 0)]
    tied = np.zeros(len(q), dtype=bool)
    if kk > k:
        tied = d[:, k] >= d[:, k - 1] - 2 * eps
        cols, valid = cols[:, :k], valid[:, :k]
    width = cols.shape[1]
    rows = np.repeat(np.arange(len(q)), width).reshape(len(q), width)
    keep = valid & ~tied[:, None]
    out_s = np.full((len(q), width), _NEG, dtype=np.float32)
    out_s[keep] = _exact_scores(q, xn, rows[keep], cols[keep])
    out_c = np.where(keep, c[cols], -1)
    if tied.any():
        ts, tc = _block_candidates(q[tied], xn, bad, c, np.full(int(tied.sum()), _NEG, np.float32), k,
                                   False, eps)
        if ts.shape[1] > width:
            pad = ts.shape[1] - width
            out_s = np.pad(out_s, ((0, 0), (0, pad)), constant_values=_NEG)
            out_c = np.pad(out_c, ((0, 0), (0, pad)), constant_values=-1)
        out_s[tied], out_c[tied] = _NEG, -1
        out_s[tied, : ts.shape[1]], out_c[tied, : ts.shape[1]] = ts, tc
    return out_s, out_c


def _score_error(dims: int) -> float:
    """A bound on how far a float32 matrix product of unit vectors can be from the exact product
    (n·u with u = 2^-24, doubled for the normalisation); BLAS kernels round differently by a row's
    position in the block, so the same vector can score a few ulps apart in two blocks."""
    return 2.0 * max(1, dims) * 2.0**-24


def _exact_scores(q: np.ndarray, xn: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """q[rows] . xn[cols], one dot product per pair, summed in the same order whatever the pair's
    position in the block (unlike a BLAS matrix product, whose kernels round edge rows differently):
    the same vectors always get the same score, so ties between duplicates are decided by id."""
    out = np.empty(len(rows), dtype=np.float32)
    step = max(1, (1 << 23) // max(1, q.shape[1]))  # ~32 MB of float32 per gathered operand
    for i in range(0, len(rows), step):
        out[i : i + step] = np.einsum("ij,ij->i", q[rows[i : i + step]], xn[cols[i : i + step]])
    return out


def _near_top(s: np.ndarray, threshold: np.ndarray, k: int, eps: float) -> np.ndarray:
    """Mask of the columns whose approximate score may still enter each row's top-k given rounding
    `eps`: within eps of the running threshold, or of the block's own k-th best."""
    threshold = _sample_threshold(s, threshold, k)
    floor = threshold - eps
    mask = s >= floor[:, None]
    # Every column above the floor is rescored (a gather of its vector): past a few per place in
    # the top-k (~16 measured: a gather of 1,024 float64 costs ~1/150 of a row's argpartition over
    # 30k columns), one argpartition to find the block's own k-th best costs less.
    if int(np.count_nonzero(mask)) <= 16 * k * len(s):
        return mask
    kk = min(k, s.shape[1])
    part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
    kth = np.take_along_axis(s, part, axis=1).min(axis=1)
    # the block's exact k-th best is at least kth - eps; a column must be within eps of that
    return s >= np.maximum(floor, kth - 2 * eps)[:, None]


def _block_candidates(
    qb: np.ndarray, xn: np.ndarray, bad: np.ndarray, c: np.ndarray, threshold: np.ndarray, k: int,
    chunked: bool, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, codes) of the block's columns that may enter each query's top-k, scored exactly.

    The float32 product finds the columns near the top (within rounding of the running threshold or
    of the block's k-th best); only those are rescored exactly, everything else is -inf.
    """
    s = qb @ xn.T
    if bad.any():
        s[:, bad] = _NEG
    if chunked:
        # a document's score is its best chunk: find the documents near the top first, so the k best
        # chunks of one document cannot crowd out the others
        sd, cd = _max_per_doc(s, c)
        near_docs = _near_top(sd, threshold, k, eps)
        # the chunks that can be a near-top document's best: within rounding of the lowest such
        # document's approximate score (two chunks of one document may swap places when rescored)
        floor = np.where(near_docs, sd, np.inf).min(axis=1) - 2 * eps
        mask = s >= floor[:, None]
    else:
        mask = _near_top(s, threshold, k, eps)
    rows, cols = _nonzero(mask)
    approx = s[rows, cols]
    keep = approx > _NEG  # a bad row is never a candidate, even while the top-k is empty
    rows, cols, approx = rows[keep], cols[keep], approx[keep]
    if chunked:
        s.fill(_NEG)
        s[rows, cols] = _exact_scores(qb, xn, rows, cols)
        s, c = _max_per_doc(s, c)
        return _candidates(s, c, threshold, k)
    # Only what can still be in this block's own top-k is rescored: a column more than rounding below
    # the block's k-th best candidate has k better ones here already.
    ps, pcol = _pack(len(s), rows, approx, cols)
    if ps.shape[1] > k:
        kth = -np.partition(-ps, k - 1, axis=1)[:, k - 1]
        ps[ps < (kth - 2 * eps)[:, None]] = _NEG
    live = ps > _NEG
    r = np.nonzero(live)[0]
    out_s = np.full(ps.shape, _NEG, dtype=np.float32)
    out_s[live] = _exact_scores(qb, xn, r, pcol[live])
    return out_s, np.where(live, c[np.where(live, pcol, 0)], -1)


def _merge(
    best_s: np.ndarray, best_c: np.ndarray, cand_s: np.ndarray, cand_c: np.ndarray, k: int, dedupe: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Running top-k ∪ candidates → new top-k, sorted by score descending then code ascending (id
    descending)."""
    s = np.concatenate([best_s, cand_s], axis=1)
    c = np.concatenate([best_c, cand_c], axis=1)
    if dedupe:
        # A document split across blocks can arrive twice: keep its best score only.
        o = np.lexsort((-s, c), axis=-1)
        s, c = np.take_along_axis(s, o, axis=1), np.take_along_axis(c, o, axis=1)
        dup = np.zeros_like(c, dtype=bool)
        dup[:, 1:] = (c[:, 1:] == c[:, :-1]) & (c[:, 1:] >= 0)
        s = np.where(dup, _NEG, s)
        c = np.where(dup, -1, c)
    # Padding (code -1) sorts after real documents with the same -inf score.
    o = np.lexsort((np.where(c < 0, np.iinfo(np.int64).max, c), -s), axis=-1)[:, :k]
    return np.take_along_axis(s, o, axis=1), np.take_along_axis(c, o, axis=1)
