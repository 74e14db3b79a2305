"""Every input format `reindex` reads, through the CLI, checked in the written index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import read_shards as read_index

from jmigrate.cli.app import main
from jmigrate.index.sources import open_source
from jmigrate.testing.fake import FakeEncoder

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
DOCS = [json.loads(line) for line in (CORPUS / "multilingual.jsonl").read_text(encoding="utf-8").splitlines()]


def run(args: list[str]) -> int:
    return main(["reindex", *args, "--encoder", "fake", "--quiet"])


def expected_vectors(texts: list[str], dims: int = 1024) -> np.ndarray:
    return FakeEncoder(model="jina-embeddings-v3").encode(texts, task="retrieval.passage", dimensions=dims)


def check(out: Path, ids: list[str], texts: list[str]) -> pa.Table:
    t = read_index(out)
    assert t.column("id").to_pylist() == ids
    assert t.column("text").to_pylist() == texts
    got = np.stack(t.column("vector").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(got, expected_vectors(texts), atol=1e-6)
    assert t.schema.field("vector").type == pa.list_(pa.float32(), 1024)
    return t


def test_jsonl_with_metadata(tmp_path: Path) -> None:
    assert run([str(CORPUS / "multilingual.jsonl"), "--out", str(tmp_path / "o")]) == 0
    t = check(tmp_path / "o", [d["id"] for d in DOCS], [d["text"] for d in DOCS])
    assert t.column("lang").to_pylist() == [d["lang"] for d in DOCS]
    assert t.column_names == ["id", "text", "title", "lang", "kind", "vector"]
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["source"]["metadata_columns"] == ["title", "lang", "kind"] and m["status"] == "complete"


def _parquet(path: Path, docs: list[dict]) -> None:
    pq.write_table(pa.table({"doc_id": [d["id"] for d in docs], "content": [d["text"] for d in docs],
                             "n": list(range(len(docs))),
                             "embedding": pa.array([[0.1] * 8] * len(docs), pa.list_(pa.float32(), 8))}),
                   path)


def test_parquet_file_folder_and_glob_detect_columns_and_drop_old_vectors(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    _parquet(folder / "a.parquet", DOCS[:20])
    _parquet(folder / "b.parquet", DOCS[20:])
    ids, texts = [d["id"] for d in DOCS], [d["text"] for d in DOCS]
    for i, src in enumerate([str(folder), str(folder / "*.parquet")]):
        assert run([src, "--out", str(tmp_path / f"o{i}")]) == 0
        t = check(tmp_path / f"o{i}", ids, texts)
        assert t.column_names == ["id", "text", "n", "vector"]  # old `embedding` not carried
        assert t.schema.field("n").type == pa.int64()
    assert run([str(folder / "a.parquet"), "--out", str(tmp_path / "o3")]) == 0
    check(tmp_path / "o3", ids[:20], texts[:20])


def test_csv_and_explicit_columns(tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_text("key,body,lang,extra\n" + "".join(
        f'{d["id"]},"{d["text"].replace(chr(34), chr(34) * 2)}",{d["lang"]},x\n' for d in DOCS[:10]),
        encoding="utf-8")
    assert run([str(src), "--out", str(tmp_path / "o"), "--id-column", "key", "--text-column", "body",
                "--metadata-columns", "lang"]) == 0
    t = check(tmp_path / "o", [d["id"] for d in DOCS[:10]], [d["text"] for d in DOCS[:10]])
    assert t.column_names == ["id", "text", "lang", "vector"]


def test_folder_of_text_files_uses_relative_paths_as_ids(tmp_path: Path) -> None:
    assert run([str(CORPUS / "kb_markdown"), "--out", str(tmp_path / "o")]) == 0
    files = sorted(p for p in (CORPUS / "kb_markdown").rglob("*") if p.is_file())
    check(tmp_path / "o", [p.name for p in files], [p.read_text(encoding="utf-8") for p in files])


def test_v2_npy_index_reads_texts_from_its_metadata(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    np.save(v2 / "embeddings.npy", np.zeros((5, 768), np.float32))
    (v2 / "meta.jsonl").write_text("".join(json.dumps({"id": d["id"], "text": d["text"]}) + "\n"
                                           for d in DOCS[:5]), encoding="utf-8")
    assert run([str(v2), "--out", str(tmp_path / "o")]) == 0
    check(tmp_path / "o", [d["id"] for d in DOCS[:5]], [d["text"] for d in DOCS[:5]])


def test_a_jmigrate_index_can_be_a_source(tmp_path: Path) -> None:
    assert run([str(CORPUS / "multilingual.jsonl"), "--out", str(tmp_path / "a"), "--dimensions", "256"]) == 0
    assert run([str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 0
    t = check(tmp_path / "b", [d["id"] for d in DOCS], [d["text"] for d in DOCS])
    assert "lang" in t.column_names


def test_no_id_column_uses_row_numbers(tmp_path: Path) -> None:
    src = tmp_path / "t.jsonl"
    src.write_text('{"text": "a"}\n{"text": "b"}\n', encoding="utf-8")
    assert run([str(src), "--out", str(tmp_path / "o")]) == 0
    check(tmp_path / "o", ["0", "1"], ["a", "b"])


def test_unclear_text_column_is_a_usage_error_naming_the_columns(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "t.jsonl"
    src.write_text('{"id": 1, "a": "x", "b": "y"}\n', encoding="utf-8")
    assert run([str(src), "--out", str(tmp_path / "o")]) == 2
    err = " ".join(capsys.readouterr().err.split())  # Rich wraps long lines
    assert "--text-column" in err and "a, b" in err
    assert not (tmp_path / "o").exists()


def test_jsonl_metadata_types_are_sniffed_and_nested_values_kept_as_json() -> None:
    src = open_source(str(CORPUS / "multilingual.jsonl"))
    assert src.metadata_schema.names == ["title", "lang", "kind"]
    assert all(f.type == pa.string() for f in src.metadata_schema)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_fingerprint_changes_with_content(tmp_path: Path, fmt: str) -> None:
    p = tmp_path / f"s.{fmt}"
    def write(text: str) -> None:
        if fmt == "parquet":
            pq.write_table(pa.table({"id": ["1"], "text": [text]}), p)
        elif fmt == "csv":
            p.write_text(f"id,text\n1,{text}\n")
        else:
            p.write_text(json.dumps({"id": "1", "text": text}) + "\n")
    write("hello")
    a = open_source(str(p)).fingerprint()
    write("hellp")
    assert open_source(str(p)).fingerprint() != a
