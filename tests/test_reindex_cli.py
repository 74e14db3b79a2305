"""`jmigrate reindex` through the CLI: schema read by DuckDB, summary, chunking, config, dry run."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jmigrate.cli.app import main
from jmigrate.testing.fake import FakeEncoder

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "multilingual.jsonl"
DOCS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def test_duckdb_reads_the_index_with_the_exact_schema(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "idx"
    assert main(["reindex", str(CORPUS), "--out", str(out), "--encoder", "fake", "--dimensions", "768",
                 "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "complete" and summary["rows"] == {"source": 36, "written": 36, "rejected": 0}
    assert summary["dimensions"] == 768 and summary["rejects_file"] is None
    schema = pq.read_schema(out / "part-00000.parquet")
    assert [(f.name, str(f.type)) for f in schema] == [
        ("id", "string"), ("text", "string"), ("title", "string"), ("lang", "string"), ("kind", "string"),
        ("vector", "fixed_size_list<element: float>[768]")]
    con = duckdb.connect()
    rows = con.execute(f"SELECT id, lang, len(vector) FROM read_parquet('{out}/part-*.parquet') "
                       "WHERE lang = 'zh' ORDER BY id").fetchall()
    assert rows == [(d["id"], "zh", 768) for d in sorted(DOCS, key=lambda d: d["id"]) if d["lang"] == "zh"]
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                             f"read_parquet('{out}/part-*.parquet'))").fetchall())
    assert types["id"] == "VARCHAR" and types["vector"] in ("FLOAT[]", "FLOAT[768]")
    vec = np.asarray(con.execute(f"SELECT vector FROM read_parquet('{out}/part-*.parquet') WHERE id = 'd1'")
                     .fetchone()[0], np.float32)  # type: ignore[index]
    want = FakeEncoder(model="jina-embeddings-v3").encode([DOCS[0]["text"]], task="retrieval.passage",
                                                          dimensions=768)[0]
    np.testing.assert_allclose(vec, want, atol=1e-6)
    assert abs(np.linalg.norm(vec) - 1) < 1e-5
    # the manifest rides along in every shard
    kv = pq.read_metadata(out / "part-00000.parquet").metadata
    meta = json.loads(kv[b"jmigrate.manifest"])
    assert meta["format"] == "jmigrate-index" and meta["dimensions"] == 768
    m = json.loads((out / "manifest.json").read_text())
    for key in ("format", "format_version", "tool_version", "model", "task", "dimensions", "normalized",
                "late_chunking", "chunking", "encoder", "source", "rows", "shards", "started_at",
                "finished_at", "status"):
        assert key in m
    assert m["shards"][0]["rows"] == 36 and len(m["shards"][0]["sha256"]) == 64


@pytest.mark.parametrize("by", ["tokens", "sentences"])
def test_late_chunking_writes_chunk_rows_encoded_one_document_per_request(tmp_path: Path, by: str,
                                                                          monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import jmigrate.index.run as cmd

    enc = FakeEncoder(model="jina-embeddings-v3")
    monkeypatch.setattr(cmd, "open_encoder", lambda settings, key=None, **kw: enc)
    out = tmp_path / "o"
    assert main(["reindex", str(CORPUS), "--out", str(out), "--late-chunking", "--chunk-by", by,
                 "--chunk-size", "12", "--dimensions", "64", "--quiet"]) == 0
    t = pq.read_table(out / "part-00000.parquet").to_pylist()
    texts = {d["id"]: d["text"] for d in DOCS}
    by_doc: dict[str, list[dict]] = {}
    for r in t:
        assert r["text"] == texts[r["id"]][r["chunk_start"]:r["chunk_end"]]
        by_doc.setdefault(r["id"], []).append(r)
    assert list(by_doc) == [d["id"] for d in DOCS]
    assert any(len(rows) > 1 for rows in by_doc.values())
    # one late-chunking request per document, holding exactly that document's chunks in order
    assert enc.batches == [len(rows) for rows in by_doc.values()]
    rows = by_doc["d13"]
    assert [r["chunk_index"] for r in rows] == list(range(len(rows)))
    want = FakeEncoder(model="jina-embeddings-v3").encode([r["text"] for r in rows], task="retrieval.passage",
                                                          dimensions=64, late_chunking=True)
    np.testing.assert_allclose(np.array([r["vector"] for r in rows], np.float32), want, atol=1e-6)
    m = json.loads((out / "manifest.json").read_text())
    assert m["late_chunking"] is True and m["chunking"] == {"by": by, "size": 12, "overlap": 0}
    assert pq.read_schema(out / "part-00000.parquet").field("chunk_index").type == pa.int32()


def test_settings_from_a_toml_config_and_flags_win(tmp_path: Path) -> None:
    cfg = tmp_path / "jmigrate.toml"
    cfg.write_text('[reindex]\nencoder = "fake"\ndimensions = 128\ntask = "text-matching"\n'
                   f'out = "{tmp_path / "from-config"}"\n')
    assert main(["reindex", str(CORPUS), "--config", str(cfg), "--dimensions", "32", "--quiet"]) == 0
    m = json.loads((tmp_path / "from-config" / "manifest.json").read_text())
    assert (m["dimensions"], m["task"], m["encoder"]) == (32, "text-matching", "fake")


def test_settings_from_a_plan_json_file(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"findings": [], "reindex": {"encoder": "fake", "dimensions": 64,
                                                            "late-chunking": False}}))
    assert main(["reindex", str(CORPUS), "--config", str(plan), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["dimensions"] == 64


def test_config_errors_are_usage_errors(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.toml"
    cfg.write_text('[reindex]\ndimensons = 5\n')
    assert main(["reindex", str(CORPUS), "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "unknown reindex setting 'dimensons' (did you mean 'dimensions'?)" in " ".join(
        capsys.readouterr().err.split())
    cfg.write_text('[reindex]\napi_key = "jina_secret"\n')
    assert main(["reindex", str(CORPUS), "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "jina_secret" not in capsys.readouterr().err
    assert main(["reindex", str(CORPUS)]) == 2
    assert "--out" in capsys.readouterr().err


def test_dry_run_counts_and_estimates_without_writing(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    assert main(["reindex", str(CORPUS), "--out", str(out), "--dry-run", "--json", "--price-per-mtok", "0.02",
                 "--rpm", "60", "--tpm", "1000"]) == 0
    report = json.loads(capsys.readouterr().out)
    enc = FakeEncoder()
    tokens = sum(enc.count_tokens([d["text"] for d in DOCS]))
    assert report["rows"]["source"] == 36 and report["tokens"] == tokens
    assert report["cost"] == pytest.approx(tokens / 1e6 * 0.02)
    assert report["tokens_counted_by"].startswith("estimate")
    assert report["bound_by"] == "tpm"
    assert report["duration_seconds"] == pytest.approx(tokens / 1000 * 60, 0.01)
    assert report["output_bytes_by_dimensions"]["1024"] > report["output_bytes_by_dimensions"]["256"]
    assert not out.exists()
    assert main(["reindex", str(CORPUS), "--out", str(out), "--dry-run"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "nothing was sent" in err and "36 source rows" in err


def test_every_visible_option_is_documented() -> None:
    import typer

    from jmigrate.cli.app import app

    command = typer.main.get_command(app).commands["reindex"]  # type: ignore[attr-defined]
    docs = (Path(__file__).resolve().parents[1] / "docs" / "reindex.md").read_text(encoding="utf-8")
    missing = [name for p in command.params if not getattr(p, "hidden", False)
               for name in getattr(p, "opts", []) if name.startswith("--") and name not in docs]
    assert missing == []


def test_dimensions_must_fit_the_model(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["reindex", str(CORPUS), "--out", str(tmp_path / "o"), "--encoder", "fake",
                 "--dimensions", "2048"]) == 2
    assert "at most 1024" in capsys.readouterr().err
    assert main(["reindex", str(CORPUS), "--out", str(tmp_path / "o"), "--encoder", "fake", "--model",
                 "jina-embeddings-v2-base-en", "--dimensions", "512"]) == 2
    assert "768 (no Matryoshka)" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "o").exists()


def test_manifest_records_what_the_server_called_its_model(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A rehearsal against the stub must not leave an index that passes for real v3 vectors.
    from jmigrate.testing.server import StubServer

    with StubServer(api_key="jina_provenance") as srv:
        monkeypatch.setenv("JINA_API_KEY", "jina_provenance")
        out = tmp_path / "idx"
        assert main(["reindex", str(CORPUS), "--out", str(out), "--api-url", srv.url, "--limit", "5",
                     "--quiet"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["model"] == "jina-embeddings-v3"
    assert m["served_model"].startswith("jina-embeddings-v3") and "not real v3" in m["served_model"]
