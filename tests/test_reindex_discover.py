"""Vector stores found on disk for `jmigrate plan`: rows, dims, likely model, command; headers only."""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jmigrate.scan.stores import discover_stores


class _Trap:
    """Unpickling this writes a marker file: discover must never unpickle anything."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (Path(self.marker), "unpickled!"))


def build_tree(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "data").mkdir(parents=True)
    vecs = rng.standard_normal((10, 768)).astype(np.float32)
    table = pa.table({"id": [f"d{i}" for i in range(10)], "text": ["hello world " * 10] * 10,
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 768)})
    table = table.replace_schema_metadata({"embedder": "jinaai/jina-embeddings-v2-base-de"})
    pq.write_table(table, root / "data" / "kb.parquet")
    np.save(root / "data" / "small.npy", rng.standard_normal((7, 512)).astype(np.float32))
    np.save(root / "data" / "labels.npy", np.arange(7))  # not a matrix of floats: ignored
    (root / "data" / "texts.jsonl").write_text('{"id": "a", "text": "x"}\n')
    np.savez(root / "data" / "bundle.npz", ids=np.arange(3), emb=np.zeros((3, 1024), np.float32))
    with open(root / "data" / "rows.jsonl", "w") as f:
        for i in range(4):
            f.write(json.dumps({"id": i, "text": "some text", "embedding": [0.1] * 768,
                                "model": "jina-embeddings-v2-base-en"}) + "\n")
    faiss = pytest.importorskip("faiss")
    idx = faiss.IndexFlatIP(768)
    idx.add(rng.standard_normal((25, 768)).astype(np.float32))
    (root / "lc").mkdir()
    faiss.write_index(idx, str(root / "lc" / "index.faiss"))
    with open(root / "lc" / "index.pkl", "wb") as f:
        pickle.dump(_Trap(str(root / "UNPICKLED")), f)
    (root / "lancedb" / "docs.lance" / "data").mkdir(parents=True)
    (root / "chroma").mkdir()
    con = sqlite3.connect(root / "chroma" / "chroma.sqlite3")
    con.executescript("""
        CREATE TABLE collections (id TEXT, name TEXT, dimension INTEGER);
        CREATE TABLE embeddings (id INTEGER, segment_id TEXT, embedding_id TEXT, seq_id BLOB);
        CREATE TABLE collection_metadata (collection_id TEXT, key TEXT, str_value TEXT);
        INSERT INTO collections VALUES ('c1', 'support', 768);
        INSERT INTO embeddings VALUES (1, 's', 'a', 1), (2, 's', 'b', 2), (3, 's', 'c', 3);
        INSERT INTO collection_metadata VALUES ('c1', 'embedding_model', 'jina-embeddings-v2-base-en');
    """)
    con.commit()
    con.close()
    (root / ".venv" / "lib").mkdir(parents=True)
    np.save(root / ".venv" / "lib" / "ignored.npy", np.zeros((3, 768), np.float32))


def test_discover_finds_each_kind_with_rows_dims_and_model(tmp_path: Path) -> None:
    build_tree(tmp_path)
    found = {Path(s.path).relative_to(tmp_path).as_posix(): s for s in discover_stores(tmp_path)}
    assert set(found) == {"data/kb.parquet", "data/small.npy", "data/bundle.npz", "data/rows.jsonl",
                          "lc/index.faiss", "lancedb", "chroma"}
    kb = found["data/kb.parquet"]
    assert (kb.kind, kb.rows, kb.dims, kb.vector_column, kb.text_column) == ("parquet", 10, 768, "embedding",
                                                                            "text")
    assert kb.likely_models == ["jina-embeddings-v2-base-de"] and kb.model_evidence == "Parquet metadata"
    assert kb.reindex_command.startswith("jmigrate reindex ") and "--dimensions 768" in kb.reindex_command
    assert kb.estimates["rows"] == 10 and kb.estimates["tokens"] == 10 * 30
    small = found["data/small.npy"]
    assert (small.rows, small.dims) == (7, 512)
    assert "jina-embeddings-v2-small-en" in small.likely_models and small.model_evidence == "dims"
    assert (found["data/bundle.npz"].rows, found["data/bundle.npz"].dims) == (3, 1024)
    rows = found["data/rows.jsonl"]
    assert (rows.rows, rows.dims, rows.likely_models) == (4, 768, ["jina-embeddings-v2-base-en"])
    fa = found["lc/index.faiss"]
    assert (fa.kind, fa.rows, fa.dims) == ("faiss", 25, 768)
    assert any("index.pkl" in n for n in fa.notes)
    assert not (tmp_path / "UNPICKLED").exists()
    ch = found["chroma"]
    assert (ch.kind, ch.rows, ch.dims, ch.likely_models) == ("chroma", 3, 768, ["jina-embeddings-v2-base-en"])
    assert found["lancedb"].kind == "lancedb" and "docs" in found["lancedb"].notes[0]


def test_the_suggested_command_runs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import shlex

    from jmigrate.cli.app import main

    build_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    [kb] = [s for s in discover_stores(tmp_path) if s.path.endswith("kb.parquet")]
    args = shlex.split(kb.reindex_command)[1:]
    assert main([*args, "--encoder", "fake", "--quiet"]) == 0
    t = pq.read_table(tmp_path / "data" / "kb-v3" / "part-00000.parquet")
    assert t.num_rows == 10 and "embedding" not in t.column_names


def test_unreadable_store_is_a_note_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    [s] = discover_stores(tmp_path)
    assert s.kind == "unreadable" and s.notes[0].startswith("cannot read")


def test_describe_gives_a_readable_summary(tmp_path: Path) -> None:
    np.save(tmp_path / "vectors.npy", np.zeros((12, 768), np.float32))
    [s] = discover_stores(tmp_path, price_per_mtok=0.02)
    lines = s.describe()
    assert lines[0].endswith(
        "npy, 12 rows, 768 dims; likely jina-embedding-b-en-v1, jina-embeddings-v2-base-en, "
        "jina-embeddings-v2-base-de, jina-embeddings-v2-base-es, jina-embeddings-v2-base-zh, "
        "jina-embeddings-v2-base-code (from dims)")
    assert lines[-1].startswith("  re-embed: jmigrate reindex ")
