"""One index format: one typed manifest and one reader for `reindex`, `verify` and `plan`; the manifest
says what is true of the stored vectors (their norms are measured as the shards are written)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jmigrate.cli.app import main
from jmigrate.errors import InputError
from jmigrate.index.manifest import Manifest, Norms, parse_manifest, read_manifest
from jmigrate.index.pipeline import Settings, reindex
from jmigrate.index.sources import open_source
from jmigrate.testing.fake import FakeEncoder
from jmigrate.verify.indexes import open_index

V3 = "jina-embeddings-v3"
SETTINGS = Settings(model=V3, task="retrieval.passage", dimensions=32, encoder="fake", unit_rows=4,
                    shard_rows=10, row_group_rows=6)


def corpus(tmp_path: Path, n: int = 30) -> Path:
    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"passage {i} on topic {i % 5}"}) + "\n"
                           for i in range(n)), encoding="utf-8")
    return src


class ScaledEncoder(FakeEncoder):
    """A library user's encoder that replaces `encode` and so skips the base class's unit-length check
    (the manifest must not take the encoder's word for it): every vector of the calls listed in
    `scaled` comes out `factor` long."""

    def __init__(self, factor: float, scaled: set[int] | None = None) -> None:
        super().__init__(model=V3, batch_size=4)
        self.factor, self.scaled, self.calls = factor, scaled, 0

    def encode(self, texts: Sequence[str], **kw: Any) -> np.ndarray:
        out = super().encode(texts, **kw)
        self.calls += 1
        if self.scaled is None or self.calls in self.scaled:
            return out * np.float32(self.factor)
        return out


def build(tmp_path: Path, enc: FakeEncoder | None = None, name: str = "idx") -> Path:
    out = tmp_path / name
    reindex(open_source(str(corpus(tmp_path))), out, enc or FakeEncoder(model=V3, batch_size=4), SETTINGS)
    return out


def test_a_written_manifest_round_trips_through_the_typed_reader(tmp_path: Path) -> None:
    out = build(tmp_path)
    raw = json.loads((out / "manifest.json").read_text())
    m = read_manifest(out)
    assert isinstance(m, Manifest) and m.complete and len(m.shards) == 3
    assert m.to_json() == raw  # nothing lost, renamed or reordered
    assert list(m.to_json()) == list(raw)
    assert all(s.norms is not None and s.norms.unit for s in m.shards) and m.normalized is True


def test_keys_this_version_does_not_know_are_kept(tmp_path: Path) -> None:
    out = build(tmp_path)
    raw = json.loads((out / "manifest.json").read_text())
    raw["owner"] = {"team": "search"}
    raw["shards"][0]["note"] = "copied from backup"
    m = parse_manifest(raw, "manifest.json")
    assert m.extra == {"owner": {"team": "search"}} and m.shards[0].extra == {"note": "copied from backup"}
    assert m.to_json() == raw


def test_a_minimal_hand_written_manifest_is_read_by_verify(tmp_path: Path) -> None:
    """The documented contract needs only format, version, model, dimensions and the shard files."""
    folder = tmp_path / "hand"
    folder.mkdir()
    m = np.eye(4, 8, dtype=np.float32)
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"],
                             "vector": pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), 8)}),
                   folder / "part-00000.parquet")
    (folder / "manifest.json").write_text(json.dumps({
        "format": "jmigrate-index", "format_version": 1, "model": V3, "dimensions": 8,
        "shards": [{"file": "part-00000.parquet"}], "status": "complete"}))
    idx = open_index(folder, side="v3")
    assert idx.rows == 4 and not [i for i in idx.issues if i.severity == "error"]


DAMAGE: list[tuple[str, Any, str]] = [
    ("dimensions", "768", "'dimensions' is not a whole number"),
    ("dimensions", 0, "'dimensions' is 0"),
    ("dimensions", True, "'dimensions' is not a whole number"),
    ("model", 3, "'model' is not a string"),
    ("rows", {"source": 30, "written": "30", "rejected": 0}, "'rows.written' is not a count"),
    ("rows", [1, 2], "'rows' is not an object"),
    ("shards", {"file": "part-00000.parquet"}, "'shards' is not a list"),
    ("status", "done", "'status' is 'done'"),
    ("normalized", "false", "'normalized' is not true or false"),
    ("checkpoint", {"next_unit": -1, "rejects_bytes": 0}, "'checkpoint.next_unit' is not a count"),
]


@pytest.mark.parametrize(("key", "value", "message"), DAMAGE)
def test_a_damaged_manifest_is_one_line_for_reindex_and_verify_alike(
        tmp_path: Path, key: str, value: Any, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = build(tmp_path)
    raw = json.loads((out / "manifest.json").read_text())
    raw[key] = value
    (out / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(InputError, match="damaged") as e:
        read_manifest(out)
    assert message in str(e.value)
    src = tmp_path / "src.jsonl"
    for argv in (["reindex", str(src), "--out", str(out), "--encoder", "fake", "--dimensions", "32"],
                 ["verify", "--v2", str(out), "--v3", str(out), "--queries", str(src)]):
        capsys.readouterr()
        assert main(argv) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "damaged" in err and "Traceback" not in err


@pytest.mark.parametrize(("key", "value"), [("units", [3]), ("units", [5, 2]), ("rows", -1),
                                            ("sha256", 5), ("norms", {"min": "x"})])
def test_a_damaged_shard_record_is_one_line(tmp_path: Path, key: str, value: Any) -> None:
    out = build(tmp_path)
    raw = json.loads((out / "manifest.json").read_text())
    raw["shards"][1][key] = value
    with pytest.raises(InputError, match=f"damaged: shard part-00001.parquet '{key}'"):
        parse_manifest(raw, out / "manifest.json")


def test_a_shard_record_missing_a_resume_key_is_refused_by_reindex_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = build(tmp_path)
    raw = json.loads((out / "manifest.json").read_text())
    del raw["shards"][1]["units"]
    raw["status"] = "interrupted"
    (out / "manifest.json").write_text(json.dumps(raw))
    assert main(["reindex", str(tmp_path / "src.jsonl"), "--out", str(out), "--encoder", "fake",
                 "--dimensions", "32", "--unit-rows", "4", "--shard-rows", "10"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "shard part-00001.parquet 'units' is missing" in err and "--restart" in err
    open_index(out, side="v3")  # verify does not need the resume point


def test_unnormalised_vectors_are_recorded_as_such(tmp_path: Path) -> None:
    out = build(tmp_path, ScaledEncoder(3.0))
    m = read_manifest(out)
    assert m is not None and m.normalized is False
    assert all(s.norms is not None and s.norms.min == pytest.approx(3.0, rel=1e-4) for s in m.shards)
    assert json.loads((out / "manifest.json").read_text())["normalized"] is False


def test_one_unnormalised_batch_makes_the_index_not_normalized(tmp_path: Path) -> None:
    out = build(tmp_path, ScaledEncoder(0.5, scaled={4}))
    m = read_manifest(out)
    assert m is not None and m.normalized is False
    assert [s.norms.unit for s in m.shards if s.norms] == [True, False, True]


def test_an_api_answer_normalised_by_the_encoder_is_recorded(tmp_path: Path) -> None:
    from helpers import STUB_KEY

    from jmigrate.encoders.api import JinaAPIEncoder
    from jmigrate.testing.server import Fault, StubServer

    with StubServer(api_key=STUB_KEY) as srv, \
            JinaAPIEncoder(api_url=srv.url, api_key=STUB_KEY, batch_size=4, backoff_base=0.01) as enc:
        srv.faults.add(Fault.unnormalised(3.0))  # the first answer only
        out = tmp_path / "idx"
        reindex(open_source(str(corpus(tmp_path))), out, enc,
                Settings(model=V3, task="retrieval.passage", dimensions=32, encoder="api", unit_rows=4,
                         shard_rows=10, row_group_rows=6))
    raw = json.loads((out / "manifest.json").read_text())
    assert raw["normalized"] is True and raw["normalised_rows"] == 4
    assert all(abs(s["norms"]["min"] - 1) < 1e-3 and abs(s["norms"]["max"] - 1) < 1e-3 for s in raw["shards"])


def test_norms_are_the_same_after_a_resume(tmp_path: Path) -> None:
    """Norms are measured from the rows as written, journalled units included."""
    ref = build(tmp_path, ScaledEncoder(2.0), name="ref")
    out = tmp_path / "resumed"

    class Dies(ScaledEncoder):
        def encode_batch(self, texts: Sequence[str], **kw: Any) -> np.ndarray:
            if self.calls == 5:
                raise RuntimeError("connection reset")
            return super().encode_batch(texts, **kw)

    src = open_source(str(tmp_path / "src.jsonl"))
    with pytest.raises(RuntimeError):
        reindex(src, out, Dies(2.0), SETTINGS)
    reindex(src, out, ScaledEncoder(2.0), SETTINGS)
    a, b = read_manifest(ref), read_manifest(out)
    assert a is not None and b is not None
    assert [s.norms for s in a.shards] == [s.norms for s in b.shards] and b.normalized is False


def test_verify_flags_a_manifest_that_claims_normalized_vectors_it_does_not_hold(tmp_path: Path) -> None:
    out = build(tmp_path, ScaledEncoder(3.0))
    raw = json.loads((out / "manifest.json").read_text())
    raw["normalized"] = True  # an older jmigrate wrote this whatever the vectors were
    for s in raw["shards"]:
        del s["norms"]
    (out / "manifest.json").write_text(json.dumps(raw))
    from jmigrate.verify.indexes import VectorStats, vector_issues

    idx = open_index(out, side="v3")
    stats = VectorStats()
    for _, block in idx.iter_blocks(100):
        norms = np.linalg.norm(block, axis=1)
        stats.add(norms, np.isfinite(norms))
    found = {i.code: i for i in vector_issues(idx, stats)}
    assert found["normalized-claim"].severity == "error"
    assert "manifest says normalized" in found["normalized-claim"].message


def test_verify_flags_shard_norms_that_contradict_the_vectors(tmp_path: Path) -> None:
    out = build(tmp_path)
    raw = json.loads((out / "manifest.json").read_text())
    assert raw["normalized"] is True
    # same vectors, norms claimed for another set: the records were edited or belong to other shards
    raw["shards"][0]["norms"] = {"min": 2.0, "max": 2.0, "nonfinite": 0}
    raw["normalized"] = False
    (out / "manifest.json").write_text(json.dumps(raw))
    from jmigrate.verify.indexes import VectorStats, vector_issues

    idx = open_index(out, side="v3")
    stats = VectorStats()
    for _, block in idx.iter_blocks(100):
        norms = np.linalg.norm(block, axis=1)
        stats.add(norms, np.isfinite(norms))
    found = {i.code for i in vector_issues(idx, stats)}
    assert "shard-norms" in found and "normalized-claim" not in found


def test_norms_of_zero_and_nan_rows() -> None:
    n = Norms.of(np.array([[0, 0], [np.nan, 1], [3, 4]], dtype=np.float32))
    assert (n.min, n.max, n.nonfinite) == (0.0, 5.0, 1) and not n.unit
    assert Norms.of(np.array([[0.6, 0.8]], dtype=np.float32)).unit
    assert Norms().unit  # an empty shard holds no vector that is not unit


def test_verify_uses_the_manifest_reader_not_a_copy() -> None:
    """Issue 9 item 3: one copy of the format. verify/indexes.py reads manifests only through
    index/manifest.py (no format constants, no json parsing of manifest.json, no own sha256)."""
    import ast
    import inspect

    import jmigrate.verify.indexes as vi

    tree = ast.parse(inspect.getsource(vi))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    imported = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    assert "hashlib" not in imported and not {"format", "format_version", "shards"} & strings
    assert "read_manifest" in names and "sha256_file" in names


# ---------------------------------------------------------------- verify: damaged or odd input is one line

def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and stderr without whitespace (stderr wraps, sometimes inside a path)."""
    capsys.readouterr()
    code = main(["verify", *argv])
    return code, "".join(capsys.readouterr().err.split())


def _queries(tmp_path: Path) -> Path:
    q = tmp_path / "queries.jsonl"
    q.write_text('{"id": "q1", "text": "passage 3"}\n', encoding="utf-8")
    return q


def _sides(tmp_path: Path, v2: Path, v3: Path) -> list[str]:
    """--v2/--v3 plus precomputed query vectors (no encoder, no network)."""
    rng = np.random.default_rng(5)
    for name, model, task, dims in (("q2", "jina-embeddings-v2-base-en", None, 768),
                                    ("q3", V3, "retrieval.query", 32)):
        t = pa.table({"id": ["q1"], "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(rng.standard_normal(dims).astype(np.float32)), dims)})
        pq.write_table(t.replace_schema_metadata({"jmigrate": json.dumps({"model": model, "task": task})}),
                       tmp_path / f"{name}.parquet")
    return ["--v2", str(v2), "--v2-model", "jina-embeddings-v2-base-en", "--v3", str(v3),
            "--queries", str(_queries(tmp_path)), "--v2-query-vectors", str(tmp_path / "q2.parquet"),
            "--v3-query-vectors", str(tmp_path / "q3.parquet")]


def _v2_npy(tmp_path: Path) -> Path:
    m = np.random.default_rng(1).standard_normal((30, 768)).astype(np.float32)
    np.save(tmp_path / "v2.npy", m)
    (tmp_path / "v2.ids.txt").write_text("".join(f"d{i}\n" for i in range(30)))
    return tmp_path / "v2.npy"


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_a_truncated_shard_is_an_integrity_error_not_a_traceback(
        tmp_path: Path, cut: float, capsys: pytest.CaptureFixture[str]) -> None:
    out = build(tmp_path)
    shard = out / "part-00001.parquet"
    data = shard.read_bytes()
    shard.write_bytes(data[: int(len(data) * cut)])
    code, err = _verify(capsys, *_sides(tmp_path, _v2_npy(tmp_path), out))
    assert code == 2 and "Traceback" not in err and "ArrowInvalid" not in err
    assert "part-00001.parquetisdamaged:itssha256differs" in err and "reindex" in err


def test_an_empty_npy_is_an_input_error_not_an_interrupt(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "empty.ids.txt").write_text("")
    code, err = _verify(capsys, *_sides(tmp_path, tmp_path / "empty.npy", build(tmp_path)))
    assert code == 2 and "empty.npy" in err and "interrupted" not in err


@pytest.mark.parametrize("line", ['{"id": "a", "vector": "abc"}', '{"id": "a", "vector": [1, "x"]}',
                                  '{"id": "a", "vector": [[1, 2]]}', '{"id": "a", "vector": [1, null]}',
                                  '{"id": "a", "vector": 5}', '[1, 2]', '7', '{"id": "a", "vector": []}'])
def test_a_jsonl_index_with_a_bad_vector_names_the_line(tmp_path: Path, line: str) -> None:
    p = tmp_path / "v2.jsonl"
    good = json.dumps({"id": "z", "vector": [0.5] * 768})
    p.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"v2\.jsonl:2"):
        open_index(p, side="v2", model="jina-embeddings-v2-base-en")


def test_a_jsonl_index_that_is_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "v2.jsonl"
    p.write_bytes(b'{"id": "\xff", "vector": [1.0]}\n')
    with pytest.raises(InputError, match="UTF-8"):
        open_index(p, side="v2", model="jina-embeddings-v2-base-en")


def test_a_garbage_parquet_index_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "v2.parquet"
    p.write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(InputError, match="v2.parquet"):
        open_index(p, side="v2", model="jina-embeddings-v2-base-en")


def test_duplicate_column_names_are_one_line(tmp_path: Path) -> None:
    p = tmp_path / "v2.parquet"
    vec = pa.FixedSizeListArray.from_arrays(pa.array(np.ones(768 * 2, np.float32)), 768)
    pq.write_table(pa.Table.from_arrays([pa.array(["a", "b"]), vec, vec], names=["id", "vector", "vector"]),
                   p)
    with pytest.raises(InputError, match="vector"):
        open_index(p, side="v2", model="jina-embeddings-v2-base-en")


def test_a_huge_k_is_the_whole_index_not_a_memory_error(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _verify(capsys, *_sides(tmp_path, _v2_npy(tmp_path), build(tmp_path)), "-k", "100000000000",
                        "--format", "json")
    assert code == 0, err


def test_a_k_whose_rankings_exceed_the_memory_budget_is_refused_up_front(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from jmigrate.errors import UsageError
    from jmigrate.verify.search import check_depth, search

    idx = open_index(build(tmp_path), side="v3")
    q = np.ones((4, 32), dtype=np.float32)
    with pytest.raises(UsageError, match=r"-k 20 .*over --memory-budget"):
        search(idx, q, list("abcd"), 20, memory_budget=500)
    assert check_depth(10**11, 4, 30, 1 << 20) == 30
    with pytest.raises(UsageError, match=r"-k 100,000,000,000 keeps 10,000,000 results"):
        check_depth(10**11, 1000, 10**7, 1 << 30)


def test_k_larger_than_the_index_returns_every_document(tmp_path: Path) -> None:
    from jmigrate.verify.search import search

    idx = open_index(build(tmp_path), side="v3")
    q = np.random.default_rng(2).standard_normal((2, 32)).astype(np.float32)
    r = search(idx, q, ["a", "b"], 1000)
    assert [len(d) for d in r.doc_ids] == [30, 30]


def test_an_interrupted_index_without_shards_says_how_to_finish_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "idx"

    class DiesAtOnce(FakeEncoder):
        def encode_batch(self, texts: Sequence[str], **kw: Any) -> np.ndarray:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reindex(open_source(str(corpus(tmp_path))), out, DiesAtOnce(model=V3), SETTINGS)
    code, err = _verify(capsys, *_sides(tmp_path, _v2_npy(tmp_path), out))
    assert code == 2 and "incomplete:rerunthesame`reindex`commandtofinishit" in err


# ---------------------------------------------------------------- search: both backends, degenerate rows

def _search_index(tmp_path: Path, m: np.ndarray) -> Any:
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": [f"d{i:04d}" for i in range(len(m))],
                             "vector": pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), m.shape[1])}),
                   p, row_group_size=50)
    return open_index(p, side="v2", model="jina-embeddings-v2-small-en")


def _expected(m: np.ndarray, q: np.ndarray, k: int) -> list[list[str]]:
    """Brute force: rows that are zero or not finite are never returned; ties go to the larger id."""
    norms = np.linalg.norm(m.astype(np.float64), axis=1)
    good = np.isfinite(norms) & (norms > 0)
    out = []
    for qv in q.astype(np.float64):
        qv = qv / np.linalg.norm(qv)
        scores = [(-float(np.float32((m[i] / np.float32(norms[i])) @ qv.astype(np.float32))), f"d{i:04d}")
                  for i in np.flatnonzero(good)]
        by_id = sorted(scores, key=lambda t: t[1], reverse=True)  # then a stable sort by score
        out.append([d for _, d in sorted(by_id, key=lambda t: t[0])[:k]])
    return out


def _degenerate(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    dims = 512
    m = rng.standard_normal((300, dims)).astype(np.float32)
    q = rng.standard_normal((6, dims)).astype(np.float32)
    if kind == "zero-rows-on-top":
        # every other query scores negative against real rows, so the zero rows' 0.0 is the block's best
        m = -np.abs(m)
        q = np.abs(q)
        m[::3] = 0.0
    elif kind == "nan-rows":
        m[::4, 0] = np.nan
        m[1::7, 3] = np.inf
    elif kind == "duplicates":
        m[100:200] = m[0]  # 101 identical vectors: their scores tie
        q[0] = m[0]
    elif kind == "mostly-bad":
        m[:290] = 0.0
        m[5, 7] = np.nan
    return m, q


@pytest.mark.parametrize("kind", ["zero-rows-on-top", "nan-rows", "duplicates", "mostly-bad"])
@pytest.mark.parametrize("k", [1, 10, 250, 1000])
@pytest.mark.parametrize("block_rows", [37, 300])
def test_numpy_and_faiss_return_the_same_full_top_k(tmp_path: Path, kind: str, k: int,
                                                    block_rows: int) -> None:
    from jmigrate.verify.search import search

    m, q = _degenerate(kind, np.random.default_rng(zlib.crc32(f"{kind}-{k}".encode())))
    idx = _search_index(tmp_path, m)
    want = _expected(m, q, k)
    qids = [f"q{i}" for i in range(len(q))]
    backends = ["numpy"] + (["faiss"] if _has_faiss() else [])
    for backend in backends:
        r = search(idx, q, qids, k, block_rows=block_rows, backend=backend)
        assert r.backend == backend
        good = int(np.sum(np.isfinite(np.linalg.norm(m, axis=1)) & (np.linalg.norm(m, axis=1) > 0)))
        assert [len(d) for d in r.doc_ids] == [min(k, good)] * len(q), backend  # never fewer than k
        if kind == "duplicates":
            assert r.doc_ids == want, backend  # ties broken by id, the same way in both
        else:
            # float32 products may order two near-equal scores differently: compare the sets and scores
            assert [set(d) for d in r.doc_ids] == [set(d) for d in want] or \
                all(len(set(a) ^ set(b)) <= 2 for a, b in zip(r.doc_ids, want, strict=True)), backend
        assert all(np.isfinite(s).all() for s in map(np.asarray, r.scores))


def _has_faiss() -> bool:
    try:
        import faiss  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("block_rows", [37, 64, 600])
@pytest.mark.parametrize("k", [1, 7, 150])
def test_chunked_search_ranks_documents_by_their_best_chunk_with_id_ties(
        tmp_path: Path, block_rows: int, k: int) -> None:
    """Three chunks per document; documents 100..199 are copies of document 0 (their scores tie), some
    chunks are zero or NaN. Every block size gives brute force's answer."""
    from jmigrate.verify.search import search

    rng = np.random.default_rng(zlib.crc32(f"chunked-{k}".encode()))
    n_docs, dims = 200, 64
    m = rng.standard_normal((n_docs * 3, dims)).astype(np.float32)
    m[300:600] = np.tile(m[0:3], (100, 1))
    m[5::11] = 0.0
    m[7::13, 2] = np.nan
    ids = [f"d{i // 3:04d}" for i in range(len(m))]
    p = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": ids, "chunk_index": pa.array([i % 3 for i in range(len(m))], pa.int32()),
                             "vector": pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), dims)}), p)
    idx = open_index(p, side="v2", model="jina-embeddings-v2-small-en")
    assert idx.chunked
    q = rng.standard_normal((4, dims)).astype(np.float32)
    q[0] = m[1]
    r = search(idx, q, ["a", "b", "c", "d"], k, block_rows=block_rows)
    norms = np.linalg.norm(m, axis=1)
    for qi, qv in enumerate(q / np.linalg.norm(q, axis=1, keepdims=True)):
        best: dict[str, float] = {}
        for i in np.flatnonzero(np.isfinite(norms) & (norms > 0)):
            sc = float(np.dot(m[i] / norms[i], qv))
            best[ids[i]] = max(best.get(ids[i], -2.0), sc)
        ranked = sorted(sorted(best, reverse=True), key=lambda d: -round(best[d], 5))[:k]
        assert r.doc_ids[qi] == ranked


def test_plan_reads_a_reindex_index_through_the_same_manifest_reader(tmp_path: Path) -> None:
    """The source was named after the old model (common: `kb-jina-embeddings-v2-base-en.jsonl`), and
    the manifest and shard metadata mention that path; the manifest's own `model` is what counts."""
    import jmigrate

    src = tmp_path / "kb-jina-embeddings-v2-base-en.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"passage {i}"}) + "\n" for i in range(12)),
                   encoding="utf-8")
    out = tmp_path / "tree" / "kb-v3"
    s = Settings(model=V3, task="retrieval.passage", dimensions=256, encoder="fake", unit_rows=4,
                 shard_rows=5)
    reindex(open_source(str(src)), out, FakeEncoder(model=V3, batch_size=4), s)
    [store] = [st for st in jmigrate.plan(tmp_path / "tree").stores if st["path"].endswith("kb-v3")]
    assert store["likely_models"] == [V3] and "manifest.json" in store["model_evidence"]
    raw = json.loads((out / "manifest.json").read_text())
    raw["status"] = "interrupted"
    (out / "manifest.json").write_text(json.dumps(raw))
    [store] = [st for st in jmigrate.plan(tmp_path / "tree").stores if st["path"].endswith("kb-v3")]
    assert any("rerun its reindex command" in n for n in store["notes"])


def test_a_fifo_named_manifest_json_is_refused_not_waited_on(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    import os

    folder = tmp_path / "idx"
    folder.mkdir()
    os.mkfifo(folder / "manifest.json")
    with pytest.raises(InputError, match="manifest.json"):
        read_manifest(folder)
    with pytest.raises(InputError, match="manifest.json"):
        open_index(folder, side="v3")


def _invalid_utf8_strings(values: list[bytes]) -> pa.Array:
    """A string array holding bytes that are not UTF-8 (what a damaged shard decodes to)."""
    offsets = np.cumsum([0] + [len(v) for v in values]).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), len(values),
                                 [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(values))])


@pytest.mark.parametrize("column", ["id", "text"])
def test_a_shard_whose_strings_are_not_utf8_is_one_line(tmp_path: Path, column: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Found by flipping bytes of a shard: the ids, or the texts shown as snippets, crashed (exit 3)."""
    folder = tmp_path / "v3"
    folder.mkdir()
    dims = 32
    m = np.eye(3, dims, dtype=np.float32)
    cols = {"id": pa.array(["a", "b", "c"]), "text": pa.array(["x", "y", "z"]),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(m.ravel()), dims)}
    cols[column] = _invalid_utf8_strings([b"ok", b"\xdd\x01", b"fine"])
    pq.write_table(pa.table(cols), folder / "part-00000.parquet")
    (folder / "manifest.json").write_text(json.dumps({
        "format": "jmigrate-index", "format_version": 1, "model": V3, "task": "retrieval.passage",
        "dimensions": dims, "shards": [{"file": "part-00000.parquet"}], "status": "complete"}))
    code, err = _verify(capsys, *_sides(tmp_path, _v2_npy(tmp_path), folder), "--format", "json")
    assert code == 2 and "part-00000.parquet" in err and "internalerror" not in err


def test_huge_vectors_are_counted_as_non_finite_without_a_warning() -> None:
    n = Norms.of(np.array([[3e38, 3e38], [0.6, 0.8]], dtype=np.float32))  # the norm overflows float32
    assert (n.nonfinite, n.min, n.max) == (1, pytest.approx(1.0), pytest.approx(1.0))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m["rows"].__setitem__("written", m["rows"]["written"] - 3), "'rows.written' is"),
    (lambda m: m["rows"].__setitem__("source", 7), "'rows.source' is 7"),
    (lambda m: m["checkpoint"].__setitem__("next_unit", 2), "'checkpoint.next_unit' is 2"),
    (lambda m: m["shards"][1].__setitem__("first_row", 3), "shard part-00001.parquet does not start"),
    (lambda m: m["shards"][2].__setitem__("units", [1, 8]), "shard part-00002.parquet does not start"),
    (lambda m: m.__setitem__("model", "jina-embeddings-v2-base-en"), "'model' is"),
    (lambda m: m.__setitem__("dimensions", 64), "'dimensions' is 64"),
    (lambda m: m["settings"].__setitem__("shard_rows", 99), "do not match its 'fingerprint'"),
])
def test_a_manifest_whose_parts_disagree_is_not_resumed(
        tmp_path: Path, edit: Any, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Found by mutating manifest values at random: reindex resumed from an edited count, resume point
    or model and finished an index its manifest misdescribed (exit 0)."""
    src = corpus(tmp_path)
    out = tmp_path / "idx"
    argv = ["reindex", str(src), "--out", str(out), "--encoder", "fake", "--dimensions", "32",
            "--unit-rows", "4", "--shard-rows", "10", "--quiet"]
    assert main(argv) == 0
    raw = json.loads((out / "manifest.json").read_text())
    raw["status"] = "interrupted"
    edit(raw)
    (out / "manifest.json").write_text(json.dumps(raw))
    capsys.readouterr()
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "damaged" in err and message in err and "--restart" in err
    assert main([*argv, "--restart"]) == 0
