"""reindex with the local ONNX backend (a tiny model with the v3 export's signature): the real tokenizer
counts tokens (dry run says so), cuts token chunks, and the vectors are the backend's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jmigrate.cli.app import main

pytest.importorskip("onnxruntime")
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "multilingual.jsonl"
DOCS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture()
def onnx_cli(tmp_path: Path, monkeypatch):  # type: ignore[no-untyped-def]
    import jmigrate.index.run as cmd
    from jmigrate.encoders.onnx import OnnxEncoder
    from jmigrate.testing.tiny_models import build_model_dir

    folder = build_model_dir(tmp_path / "tiny-v3")

    def open_encoder(settings, key=None, **kw):  # type: ignore[no-untyped-def]
        assert settings.encoder == "onnx" and settings.model_path == folder
        return OnnxEncoder.from_pretrained(settings.model, settings.model_path)

    monkeypatch.setattr(cmd, "open_encoder", open_encoder)
    return folder


def test_onnx_reindex_with_token_chunks_and_tokenizer_counts(tmp_path: Path, onnx_cli: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from jmigrate.encoders.onnx import OnnxEncoder

    out = tmp_path / "o"
    args = ["reindex", str(CORPUS), "--out", str(out), "--encoder", "onnx", "--model-path", str(onnx_cli),
            "--chunk-by", "tokens", "--chunk-size", "8", "--chunk-overlap", "2", "--dimensions", "64"]
    assert main([*args, "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tokens_counted_by"] == "the model's tokenizer"
    assert main([*args, "--quiet"]) == 0
    rows = pq.read_table(sorted(out.glob("part-*.parquet"))).to_pylist()
    assert report["output_rows"] == len(rows) > len(DOCS)
    enc = OnnxEncoder.from_pretrained("jina-embeddings-v3", onnx_cli)
    texts = {d["id"]: d["text"] for d in DOCS}
    for r in rows:
        assert r["text"] == texts[r["id"]][r["chunk_start"]:r["chunk_end"]]
        assert enc.count_tokens([r["text"]])[0] <= 8 + 2  # 8 tokens, plus <s> and </s>
    want = enc.encode([r["text"] for r in rows[:10]], task="retrieval.passage", dimensions=64)
    np.testing.assert_allclose(np.array([r["vector"] for r in rows[:10]], np.float32), want, atol=1e-5)
    assert json.loads((out / "manifest.json").read_text())["encoder"] == "onnx"
