"""Streamed exact search equals brute force, on every index kind, in blocks smaller than the index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jmigrate.verify.indexes import open_index
from jmigrate.verify.runs import write_run
from jmigrate.verify.search import parse_size, plan_blocks, search

V2 = "jina-embeddings-v2-small-en"  # 512 dims
DIMS = 512


def _fsl(m: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(m.astype(np.float32).ravel()), m.shape[1])


def _brute(docs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    dn = docs / np.linalg.norm(docs, axis=1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    # trec_eval's tie rule: the larger id (here: the later row) first; a stable sort of the
    # reversed columns keeps ties in that order
    s = qn @ dn.T
    return (s.shape[1] - 1 - np.argsort(-s[:, ::-1], axis=1, kind="stable"))[:, :k]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.standard_normal((3000, DIMS)).astype(np.float32), rng.standard_normal((25, DIMS)).astype(
        np.float32
    )


def _ids(n: int) -> list[str]:
    return [f"doc{i:05d}" for i in range(n)]


def _as_positions(doc_ids: list[list[str]]) -> np.ndarray:
    return np.array([[int(d[3:]) for d in row] for row in doc_ids])


@pytest.mark.parametrize("block_rows", [None, 97, 1000])
def test_parquet_streamed_in_blocks_equals_brute_force(tmp_path: Path, data, block_rows) -> None:  # type: ignore[no-untyped-def]
    docs, queries = data
    f = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": _ids(len(docs)), "vector": _fsl(docs)}), f, row_group_size=400)
    idx = open_index(f, side="v2", model=V2)
    r = search(idx, queries, [str(i) for i in range(len(queries))], 10, block_rows=block_rows)
    assert (_as_positions(r.doc_ids) == _brute(docs, queries, 10)).all()
    assert r.stats.rows == len(docs)
    ref_scores = np.sort(
        (queries / np.linalg.norm(queries, axis=1, keepdims=True))
        @ (docs / np.linalg.norm(docs, axis=1, keepdims=True)).T,
        axis=1,
    )[:, ::-1][:, :10]
    assert np.allclose(np.array(r.scores), ref_scores, atol=1e-5)


def test_memory_budget_smaller_than_index_streams_and_splits_queries(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    docs, queries = data
    f = tmp_path / "x.npy"
    np.save(f, docs)
    (tmp_path / "x.ids.txt").write_text("\n".join(_ids(len(docs))))
    idx = open_index(f, side="v2", model=V2)
    index_bytes = docs.nbytes
    budget = index_bytes // 4
    r = search(idx, queries, [str(i) for i in range(len(queries))], 10, memory_budget=budget)
    assert r.block_rows < len(docs)
    assert (_as_positions(r.doc_ids) == _brute(docs, queries, 10)).all()
    # A budget too small for all queries at 1,024 rows per block: several passes, same answer.
    rows, per_pass = plan_blocks(1024 * (12 * DIMS + 20 * 5), DIMS, len(queries))
    assert rows == 1024 and per_pass == 5
    r2 = search(
        idx, queries, [str(i) for i in range(len(queries))], 10, memory_budget=1024 * (12 * DIMS + 20 * 5)
    )
    assert r2.passes == 5 and r2.doc_ids == r.doc_ids


def test_faiss_backend_agrees(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("faiss")
    docs, queries = data
    f = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": _ids(len(docs)), "vector": _fsl(docs)}), f)
    idx = open_index(f, side="v2", model=V2)
    qids = [str(i) for i in range(len(queries))]
    a = search(idx, queries, qids, 10, block_rows=700, backend="faiss")
    b = search(idx, queries, qids, 10, block_rows=700)
    assert a.backend == "faiss" and a.doc_ids == b.doc_ids


def test_ties_broken_by_id_whatever_the_blocks(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    base = rng.standard_normal((20, DIMS)).astype(np.float32)
    docs = np.repeat(base, 3, axis=0)  # every vector three times → exact ties
    ids = [f"z{i:03d}" for i in range(len(docs))][::-1]  # ids descending in row order
    f = tmp_path / "t.jsonl"
    lines = [json.dumps({"id": i, "embedding": v.tolist()}) + "\n" for i, v in zip(ids, docs, strict=True)]
    f.write_text("".join(lines))
    idx = open_index(f, side="v2", model=V2)
    for block_rows in (2, 5, 60):
        r = search(idx, base[:1], ["q"], 4, block_rows=block_rows)
        # the three copies of row 0, largest id first (trec_eval's docno descending)
        assert r.doc_ids[0][:3] == sorted(ids[:3], reverse=True)


def test_chunked_index_ranks_documents_by_best_chunk(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    docs, queries = data
    n = 1200
    f = tmp_path / "c.parquet"
    pq.write_table(
        pa.table(
            {
                "id": [f"d{i // 4:04d}" for i in range(n)],
                "chunk_index": [i % 4 for i in range(n)],
                "vector": _fsl(docs[:n]),
            }
        ),
        f,
    )
    idx = open_index(f, side="v2", model=V2)
    assert idx.chunked
    dn = docs[:n] / np.linalg.norm(docs[:n], axis=1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best_chunk = (qn @ dn.T).reshape(len(queries), -1, 4).max(axis=2)
    expected = np.argsort(-best_chunk, axis=1)[:, :10]
    for block_rows in (7, 130, n):  # 7 and 130 split documents across blocks
        r = search(idx, queries, [str(i) for i in range(len(queries))], 10, block_rows=block_rows)
        got = np.array([[int(d[1:]) for d in row] for row in r.doc_ids])
        assert (got == expected).all()
        assert all(len(set(row)) == 10 for row in r.doc_ids)


def test_nan_and_zero_vectors_are_counted_and_never_returned(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    docs, queries = data
    bad = docs[:200].copy()
    bad[3, 5] = np.nan
    bad[4] = 0.0
    bad[9, 0] = np.inf
    f = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": _ids(200), "vector": pa.array(bad.tolist(), pa.list_(pa.float32()))}), f)
    idx = open_index(f, side="v2", model=V2)
    r = search(idx, queries, [str(i) for i in range(len(queries))], 200, block_rows=50)
    assert r.stats.nonfinite_rows == 2 and r.stats.zero_rows == 1
    returned = {d for row in r.doc_ids for d in row}
    assert {"doc00003", "doc00004", "doc00009"}.isdisjoint(returned)
    assert all(len(row) == 197 for row in r.doc_ids)  # every other document is still ranked


def test_run_file_is_trec_format(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    docs, queries = data
    f = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": _ids(100), "vector": _fsl(docs[:100])}), f)
    r = search(open_index(f, side="v2", model=V2), queries[:2], ["q1", "q2"], 3)
    write_run(tmp_path / "runs" / "v2.run", r, "jmigrate-v2")
    lines = (tmp_path / "runs" / "v2.run").read_text().splitlines()
    assert len(lines) == 6
    qid, q0, doc, rank, score, run = lines[0].split()
    assert (qid, q0, rank, run) == ("q1", "Q0", "1", "jmigrate-v2") and doc == r.doc_ids[0][0]
    assert float(score) == pytest.approx(r.scores[0][0], abs=1e-6)


def test_parse_size() -> None:
    assert parse_size("512MB") == 512 << 20 and parse_size("2g") == 2 << 30 and parse_size("1000") == 1000
