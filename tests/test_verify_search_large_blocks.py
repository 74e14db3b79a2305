"""Blocks wide enough for the sampled first threshold and the reader thread still equal brute force.

The other search tests use blocks of a few thousand rows; the sampled threshold only starts above
16,384 columns per block, so these indexes have 20,000 rows, many of them exact duplicates (ties that
only the id order decides). Each index is scored as one block: BLAS may round a duplicate's score
differently in another block shape, which would turn a tie into a 1-ulp difference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jmigrate.verify.indexes import open_index
from jmigrate.verify.search import search

V2 = "jina-embeddings-v2-small-en"
ROWS, DIMS = 20_000, 16


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    distinct = rng.standard_normal((300, DIMS)).astype(np.float32)
    docs = distinct[rng.integers(0, len(distinct), ROWS)]  # ~67 copies of each vector: ties everywhere
    return docs, rng.standard_normal((40, DIMS)).astype(np.float32)


def _brute(docs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    dn = docs / np.linalg.norm(docs, axis=1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    # trec_eval's tie rule: the larger id (here: the later row) first; a stable sort of the
    # reversed columns keeps ties in that order
    s = qn @ dn.T
    return (s.shape[1] - 1 - np.argsort(-s[:, ::-1], axis=1, kind="stable"))[:, :k]


@pytest.mark.parametrize("kind", ["npy", "parquet"])
@pytest.mark.parametrize("block_rows", [None, 20_000])
def test_wide_blocks_with_ties_equal_brute_force(tmp_path: Path, data, kind: str, block_rows) -> None:  # type: ignore[no-untyped-def]
    docs, queries = data
    ids = [f"doc{i:05d}" for i in range(ROWS)]
    if kind == "npy":
        path = tmp_path / "x.npy"
        np.save(path, docs)
        (tmp_path / "x.ids.txt").write_text("\n".join(ids))
    else:
        path = tmp_path / "x.parquet"
        vec = pa.FixedSizeListArray.from_arrays(pa.array(docs.ravel()), DIMS)
        pq.write_table(pa.table({"id": ids, "vector": vec}), path, row_group_size=3000)
    idx = open_index(path, side="v2", model=V2)
    r = search(idx, queries, [str(i) for i in range(len(queries))], 10, block_rows=block_rows)
    got = np.array([[int(d[3:]) for d in row] for row in r.doc_ids])
    assert (got == _brute(docs, queries, 10)).all()
    assert r.stats.rows == ROWS
