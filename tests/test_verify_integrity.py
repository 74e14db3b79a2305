"""Integrity findings a user must see before trusting a comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jmigrate.errors import InputError, UsageError
from jmigrate.verify.indexes import VectorStats, open_index, vector_issues

V3 = "jina-embeddings-v3"


def _index(folder: Path, n: int = 20, dims: int = 64, **manifest_changes: object) -> Path:
    folder.mkdir()
    m = np.random.default_rng(0).standard_normal((n, dims)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    vec = pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), dims)
    pq.write_table(
        pa.table({"id": [f"d{i}" for i in range(n)], "vector": vec}), folder / "part-00000.parquet"
    )
    manifest = {
        "format": "jmigrate-index",
        "format_version": 1,
        "model": V3,
        "task": "retrieval.passage",
        "dimensions": dims,
        "normalized": True,
        "rows": {"source": n, "written": n, "rejected": 0},
        "shards": [{"file": "part-00000.parquet", "rows": n}],
        "status": "complete",
    }
    manifest.update(manifest_changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _codes(path: Path) -> set[str]:
    return {i.code for i in open_index(path, side="v3").issues}


def test_clean_index_has_no_findings(tmp_path: Path) -> None:
    assert _codes(_index(tmp_path / "i")) == set()


def test_incomplete_reindex_and_row_counts(tmp_path: Path) -> None:
    p = _index(
        tmp_path / "i",
        status="running",
        rows={"source": 25, "written": 19, "rejected": 2},
        shards=[{"file": "part-00000.parquet", "rows": 18}],
    )
    assert _codes(p) == {"incomplete-index", "row-count", "shard-rows", "rejected-rows", "source-rows"}


def test_unlisted_shard_is_reported(tmp_path: Path) -> None:
    p = _index(tmp_path / "i")
    (p / "part-00001.parquet").write_bytes((p / "part-00000.parquet").read_bytes())
    assert _codes(p) == {"unlisted-shards"}


def test_manifest_dimensions_must_match_vectors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="manifest says 128 dimensions, the vectors have 64"):
        open_index(_index(tmp_path / "i", dimensions=128), side="v3")


def test_flag_contradicting_manifest_and_missing_shard(tmp_path: Path) -> None:
    p = _index(tmp_path / "i")
    with pytest.raises(UsageError, match="contradicts"):
        open_index(p, side="v3", model="jina-embeddings-v2-base-en")
    (p / "part-00000.parquet").unlink()
    with pytest.raises(InputError, match="missing"):
        open_index(p, side="v3")


def test_vector_findings_from_the_search_pass(tmp_path: Path) -> None:
    idx = open_index(_index(tmp_path / "i"), side="v3")
    stats = VectorStats()
    norms = np.array([1.0, 1.0, 0.0, np.nan, 3.0], dtype=np.float32)
    stats.add(norms, np.isfinite(norms))
    found = {i.code: i for i in vector_issues(idx, stats)}
    # the manifest claims normalized vectors: a false claim is an error of its own (issue 10 item 8)
    assert set(found) == {"non-finite", "zero-vectors", "norms", "normalized-claim"}
    assert found["normalized-claim"].severity == "error"
    assert found["non-finite"].severity == "error" and found["norms"].severity == "warning"
    assert "1 vector(s) are not unit length" in found["norms"].message


def test_npy_without_ids_asks_for_them(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.ones((3, 768), dtype=np.float32))
    with pytest.raises(UsageError, match="--v2-ids"):
        open_index(tmp_path / "v.npy", side="v2", model="jina-embeddings-v2-base-en")
    (tmp_path / "ids.json").write_text('["a", "b", "c"]')
    idx = open_index(
        tmp_path / "v.npy", side="v2", model="jina-embeddings-v2-base-en", ids_path=tmp_path / "ids.json"
    )
    assert idx.row_ids.tolist() == ["a", "b", "c"] and idx.dimensions == 768


def test_pickled_npy_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError):
        open_index(tmp_path / "o.npy", side="v2", model="jina-embeddings-v2-base-en")
