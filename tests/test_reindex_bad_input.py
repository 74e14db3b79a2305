"""Bad input: every row that cannot be embedded lands in rejects.jsonl with its reason (exit 1);
schema problems are clear errors before anything is spent (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from helpers import read_rejects as rejects
from helpers import read_shards as index

from jmigrate.cli.app import main
from jmigrate.testing.fake import FakeEncoder

CORPUS_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "multilingual.jsonl"


def run(*args: str) -> int:
    return main(["reindex", *args, "--encoder", "fake", "--quiet"])


def test_each_bad_jsonl_row_is_rejected_with_its_reason(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    lines = [
        b'{"id": "ok1", "text": "fine"}',
        b'{"id": "e", "text": ""}',
        b'{"id": "w", "text": "   "}',
        b'{"id": "n", "text": null}',
        b'{"id": "num", "text": 42}',
        b'{"id": "miss"}',
        b'{"id": "bad-json", "text": ',
        b'{"id": "utf", "text": "caf\xe9"}',
        b'{"id": "ok1", "text": "again"}',
        b'{"id": null, "text": "no id"}',
        b'{"id": "sur", "text": "\\ud800"}',
        b'[1, 2]',
        b'{"id": 7, "text": "integer ids become strings"}',
    ]
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "o"
    assert run(str(src), "--out", str(out)) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "11 row(s) rejected" in err and "rejects.jsonl" in err
    got = {(r["row"], r["id"]): r["reason"] for r in rejects(out)}
    assert got == {
        (1, "e"): "text is empty",
        (2, "w"): "text is empty",
        (3, "n"): "text is null",
        (4, "num"): "text is int, not a string",
        (5, "miss"): "missing field 'text'",
        (6, None): "invalid JSON (bad.jsonl:7): Expecting value",
        (7, "utf"): "invalid UTF-8 at byte 26 (bad.jsonl:8)",
        (8, "ok1"): "duplicate id (its first row is kept)",
        (9, None): "id is null",
        (10, "sur"): "text is not valid Unicode (lone surrogate)",
        (11, None): "line is not a JSON object (bad.jsonl:12)",
    }
    t = index(out)
    assert t.column("id").to_pylist() == ["ok1", "7"]
    assert t.column("text").to_pylist() == ["fine", "integer ids become strings"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["rows"] == {"source": 13, "written": 2, "rejected": 11}


def test_bad_csv_rows(tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_bytes(b"id,text,lang\n1,good,en\n2,caf\xe9,fr\n3,short\n4,,de\n")
    out = tmp_path / "o"
    assert run(str(src), "--out", str(out)) == 1
    reasons = {r["id"]: r["reason"] for r in rejects(out)}
    assert reasons == {"2": "invalid UTF-8 (c.csv:3)", "3": "row has 2 fields, header has 3 (c.csv:4)",
                       "4": "text is empty"}
    assert index(out).column("id").to_pylist() == ["1"]


def test_parquet_binary_text_with_invalid_utf8(tmp_path: Path) -> None:
    src = tmp_path / "b.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": pa.array([b"ok", b"\xff\xfe"], pa.binary())}), src)
    out = tmp_path / "o"
    assert run(str(src), "--out", str(out)) == 1
    assert rejects(out) == [{"row": 1, "id": "b", "reason": "invalid UTF-8 in text at byte 0"}]


def _long_corpus(tmp_path: Path) -> tuple[Path, str]:
    long_text = " ".join(f"word{i}" for i in range(8000))  # ~48k characters: over 8192 estimated tokens
    src = tmp_path / "long.jsonl"
    src.write_text(json.dumps({"id": "short", "text": "tiny"}) + "\n"
                   + json.dumps({"id": "long", "text": long_text}) + "\n", encoding="utf-8")
    return src, long_text


def test_on_long_reject_is_the_default(tmp_path: Path) -> None:
    src, _ = _long_corpus(tmp_path)
    assert run(str(src), "--out", str(tmp_path / "o")) == 1
    [r] = rejects(tmp_path / "o")
    assert r["id"] == "long" and r["reason"].startswith("too long: ") and "--on-long" in r["reason"]


def test_on_long_truncate_embeds_a_prefix_that_fits(tmp_path: Path) -> None:
    src, long_text = _long_corpus(tmp_path)
    assert run(str(src), "--out", str(tmp_path / "o"), "--on-long", "truncate") == 0
    t = index(tmp_path / "o")
    assert t.column("id").to_pylist() == ["short", "long"]
    stored = t.column("text").to_pylist()[1]  # the stored text is what was embedded
    assert len(stored) < len(long_text) and long_text.startswith(stored)
    enc = FakeEncoder(model="jina-embeddings-v3")
    vec = np.asarray(t.column("vector")[1].as_py(), np.float32)
    limit = 8192 - enc.count_tokens(["Represent the document for retrieval: "])[0]
    assert limit * 0.9 < enc.count_tokens([stored])[0] <= limit
    np.testing.assert_allclose(vec, enc.encode([stored], task="retrieval.passage", dimensions=1024)[0],
                               atol=1e-6)


def test_on_long_chunk_splits_long_rows_only(tmp_path: Path) -> None:
    src, long_text = _long_corpus(tmp_path)
    assert run(str(src), "--out", str(tmp_path / "o"), "--on-long", "chunk") == 0
    t = index(tmp_path / "o").to_pylist()
    assert [(r["id"], r["chunk_index"]) for r in t][:2] == [("short", 0), ("long", 0)]
    chunks = [r for r in t if r["id"] == "long"]
    assert len(chunks) >= 2
    for r in chunks:
        assert r["text"] == long_text[r["chunk_start"]:r["chunk_end"]]
        assert FakeEncoder().count_tokens([r["text"]])[0] <= 8192
    assert chunks[-1]["chunk_end"] == len(long_text)


def test_missing_column_is_an_error_before_anything_is_written(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "s.jsonl"
    src.write_text('{"id": "1", "text": "x"}\n')
    assert run(str(src), "--out", str(tmp_path / "o"), "--text-column", "body") == 2
    assert "--text-column 'body' not found" in " ".join(capsys.readouterr().err.split())
    assert run(str(src), "--out", str(tmp_path / "o"), "--metadata-columns", "lang") == 2
    assert not (tmp_path / "o").exists()


def test_corrupt_parquet_and_empty_files_are_clear_errors(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    assert run(str(bad), "--out", str(tmp_path / "o")) == 2
    assert "cannot read Parquet file" in capsys.readouterr().err
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    assert run(str(empty), "--out", str(tmp_path / "o")) == 2
    assert "is empty" in " ".join(capsys.readouterr().err.split())
    assert run(str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")) == 2
    assert "source not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_non_empty_foreign_output_folder_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "s.jsonl"
    src.write_text('{"id": "1", "text": "x"}\n')
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert run(str(src), "--out", str(out)) == 2
    assert "not a jmigrate index" in " ".join(capsys.readouterr().err.split())
    assert (out / "notes.txt").read_text() == "mine"


def test_dense_text_is_judged_by_a_high_side_count_without_a_tokenizer(tmp_path: Path) -> None:
    # 12,000 CJK characters: "4 characters per token" says 3,000 tokens, a real tokenizer far more.
    from jmigrate.encoders.api import conservative_token_count

    cjk = "重置密码请打开设置账户安全" * 1000
    src = tmp_path / "zh.jsonl"
    src.write_text(json.dumps({"id": "zh", "text": cjk}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert run(str(src), "--out", str(tmp_path / "r")) == 1
    assert rejects(tmp_path / "r")[0]["reason"].startswith("too long: ")
    assert run(str(src), "--out", str(tmp_path / "c"), "--on-long", "chunk") == 0
    chunks = index(tmp_path / "c").to_pylist()
    assert len(chunks) >= 2 and "".join(r["text"] for r in chunks) == cjk
    assert all(conservative_token_count(r["text"]) <= 8192 for r in chunks)


def test_output_folder_cannot_be_the_source(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(str(CORPUS_FILE), "--out", str(tmp_path / "a")) == 0
    assert run(str(tmp_path / "a"), "--out", str(tmp_path / "a")) == 2
    assert "holds the source files" in " ".join(capsys.readouterr().err.split())


class PickyEncoder(FakeEncoder):
    """Refuses any request holding a text with POISON, like the API's 400 for an input it cannot take."""

    def encode_batch(self, texts, **kw):  # type: ignore[no-untyped-def, override]
        from jmigrate.errors import EncoderError

        if any("POISON" in t for t in texts):
            raise EncoderError("embedding request to http://x/v1 was refused: HTTP 400: input 3 is invalid")
        return super().encode_batch(texts, **kw)


def test_rows_the_encoder_refuses_are_isolated_and_rejected(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import jmigrate.index.run as cmd

    docs = [{"id": f"r{i}", "text": f"text {i}" + (" POISON" if i in (3, 17) else "")} for i in range(40)]
    src = tmp_path / "s.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    enc = PickyEncoder(model="jina-embeddings-v3")
    monkeypatch.setattr(cmd, "open_encoder", lambda settings, key=None, **kw: enc)
    out = tmp_path / "o"
    assert run(str(src), "--out", str(out), "--dimensions", "32") == 1
    assert [(r["row"], r["id"]) for r in rejects(out)] == [(3, "r3"), (17, "r17")]
    reason = rejects(out)[0]["reason"]
    assert reason.startswith("refused by the encoder: ") and "HTTP 400" in reason
    t = index(out)
    assert t.column("id").to_pylist() == [d["id"] for d in docs if "POISON" not in d["text"]]
    good = [d["text"] for d in docs if "POISON" not in d["text"]]
    want = FakeEncoder(model="jina-embeddings-v3").encode(good, task="retrieval.passage", dimensions=32)
    np.testing.assert_allclose(np.stack(t.column("vector").to_numpy(zero_copy_only=False)), want, atol=1e-6)


def test_a_refused_key_is_not_isolated_but_stops_the_run(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import jmigrate.index.run as cmd
    from jmigrate.errors import EncoderError

    class NoCredit(FakeEncoder):
        def encode_batch(self, texts, **kw):  # type: ignore[no-untyped-def, override]
            self.batches.append(len(texts))
            raise EncoderError("embedding request to http://x/v1 was refused: HTTP 402: insufficient balance")

    enc = NoCredit(model="jina-embeddings-v3")
    monkeypatch.setattr(cmd, "open_encoder", lambda settings, key=None, **kw: enc)
    src = tmp_path / "s.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"t{i}"}) + "\n" for i in range(30)))
    assert run(str(src), "--out", str(tmp_path / "o")) == 2
    assert "HTTP 402" in " ".join(capsys.readouterr().err.split())
    assert len(enc.batches) == 1  # no bisection storm against a dead key
