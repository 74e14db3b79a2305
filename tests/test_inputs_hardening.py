"""Reading users' files (issue 10, and its siblings): every reader of corpus, query, qrels and run
files keeps every row, or rejects it with a reason, or stops with a one-line error naming the file.

Each test goes through the CLI (`jmigrate reindex` / `jmigrate verify`) or the library call a user
makes (`load_qrels`, `load_queries`, `read_trec_run`, `write_run`), with the fake encoder or the
loopback stub server, and reads back what was written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jmigrate.cli.app import main
from jmigrate.errors import InputError
from jmigrate.testing.server import StubServer
from jmigrate.verify.queries import load_qrels, load_queries

BOM = b"\xef\xbb\xbf"
V2 = "jina-embeddings-v2-base-en"


def reindex(src: Path | str, out: Path, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["reindex", str(src), "--out", str(out), "--encoder", "fake", "--dimensions", "32",
                     "--quiet", *extra])
    return code, err.getvalue()


def index(out: Path) -> pa.Table:
    return pq.read_table(sorted(out.glob("part-*.parquet")))


def rejects(out: Path) -> list[dict]:
    f = out / "rejects.jsonl"
    return [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines()] if f.exists() else []


def rows(out: Path) -> dict[str, int]:
    rows: dict[str, int] = json.loads((out / "manifest.json").read_text())["rows"]
    return rows


def one_line_error(code: int, err: str) -> str:
    """The message, unwrapped (the console wraps long lines at its width)."""
    assert code == 2, err
    assert "Traceback" not in err and "error: " in err, err
    msg = err[err.index("error: "):]  # after the progress lines `verify` prints
    assert "error: " not in msg[1:], err
    return " ".join(msg.split())


# --------------------------------------------------------------------------- 1. TSV has no quoting

TSV_WITH_QUOTES = b'id\ttext\n1\t"Hello, said he\n2\tsecond passage" and more\n3\tthird\n'


def test_a_tsv_passage_starting_with_a_quote_does_not_swallow_the_next_lines(tmp_path: Path) -> None:
    src = tmp_path / "c.tsv"
    src.write_bytes(TSV_WITH_QUOTES)
    code, err = reindex(src, tmp_path / "o")
    assert code == 0, err
    t = index(tmp_path / "o")
    assert t.column("id").to_pylist() == ["1", "2", "3"]
    assert t.column("text").to_pylist() == ['"Hello, said he', 'second passage" and more', "third"]
    assert rows(tmp_path / "o") == {"source": 3, "written": 3, "rejected": 0}


def test_a_tsv_row_with_the_wrong_number_of_fields_is_rejected_with_its_reason(tmp_path: Path) -> None:
    src = tmp_path / "c.tsv"
    src.write_bytes(b"id\ttext\tlang\r\n1\tgood\ten\r\n2\ttoo\tmany\tfields\r\n3\tshort\r\n"
                    b"4\t\"quoted\"\tde\r\n\r\n\n")
    code, err = reindex(src, tmp_path / "o")
    assert code == 1, err
    assert {r["id"]: r["reason"] for r in rejects(tmp_path / "o")} == {
        "2": "row has 4 fields, header has 3 (c.tsv:3)", "3": "row has 2 fields, header has 3 (c.tsv:4)"}
    t = index(tmp_path / "o")
    # CRLF is a line ending, not part of the last field; blank lines at the end are not rows
    assert t.column("text").to_pylist() == ["good", '"quoted"']
    assert t.column("lang").to_pylist() == ["en", "de"]
    assert rows(tmp_path / "o") == {"source": 4, "written": 2, "rejected": 2}


def test_verify_reads_query_tsv_without_quoting(tmp_path: Path) -> None:
    q = tmp_path / "q.tsv"
    q.write_bytes(b'id\ttext\nq1\t"what is, said he\nq2\tanother" query\nq3\tthird\n')
    assert [(x.id, x.text) for x in load_queries(q)] == [
        ("q1", '"what is, said he'), ("q2", 'another" query'), ("q3", "third")]
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"id\ttext\nq1\tone\ttwo\n")
    with pytest.raises(InputError, match=r"bad.tsv:2: row has 3 fields, header has 2"):
        load_queries(bad)


# --------------------------------------------------------------------------- 2. late JSONL fields

def test_a_jsonl_field_first_seen_after_row_1000_is_carried(tmp_path: Path) -> None:
    src = tmp_path / "late.jsonl"
    lines = [{"id": f"r{i}", "text": f"row {i}", "n": i} for i in range(1200)]
    lines[1100]["late"] = "here"
    lines[1150]["n"] = 2.5  # an int column that turns float late: widened, not a reject
    lines[1199]["tag"] = 7
    lines[1190]["tag"] = "seven"  # mixed types: kept as text
    src.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    code, err = reindex(src, tmp_path / "o")
    assert code == 0, err
    t = index(tmp_path / "o")
    assert t.num_rows == 1200
    assert t.column("late").to_pylist()[1100] == "here" and t.column("late").null_count == 1199
    assert t.schema.field("n").type == pa.float64() and t.column("n").to_pylist()[1150] == 2.5
    assert t.column("tag").to_pylist()[1190:] == ["seven"] + [None] * 8 + ["7"]
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["source"]["metadata_columns"] == ["n", "late", "tag"]


def test_a_late_key_that_cannot_be_a_column_stops_before_spending(tmp_path: Path) -> None:
    src = tmp_path / "late.jsonl"
    body = "".join(json.dumps({"id": f"r{i}", "text": "x"}) + "\n" for i in range(1500))
    src.write_text(body + '{"id": "z", "text": "y", "\\ud800": 1}\n', encoding="utf-8")
    one_line_error(*reindex(src, tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_parquet_files_with_different_columns_are_carried_as_one_schema(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["one", "two"], "n": [1, 2]}), folder / "1.parquet")
    pq.write_table(pa.table({"id": ["c"], "text": ["three"], "extra": ["e"]}), folder / "2.parquet")
    code, err = reindex(folder, tmp_path / "o")
    assert code == 0, err
    t = index(tmp_path / "o")
    assert t.column("id").to_pylist() == ["a", "b", "c"]
    assert t.column("n").to_pylist() == [1, 2, None] and t.column("extra").to_pylist() == [None, None, "e"]


def test_parquet_files_whose_columns_conflict_stop_with_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["a"], "text": ["one"], "n": [1]}), folder / "1.parquet")
    pq.write_table(pa.table({"id": ["c"], "text": ["three"], "n": [[1.0]]}), folder / "2.parquet")
    err = one_line_error(*reindex(folder, tmp_path / "o"))
    assert "'n'" in err and "2.parquet" in err
    pq.write_table(pa.table({"id": ["c"], "body": ["three"]}), folder / "2.parquet")
    err = one_line_error(*reindex(folder, tmp_path / "o"))
    assert "'text'" in err and "2.parquet" in err


def test_csv_files_with_different_headers_are_carried_as_one_schema(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "1.csv").write_text("id,text,lang\na,one,en\n", encoding="utf-8")
    (folder / "2.csv").write_text("text,id,source\ntwo,b,web\n", encoding="utf-8")
    code, err = reindex(folder, tmp_path / "o")
    assert code == 0, err
    t = index(tmp_path / "o")
    assert t.column("id").to_pylist() == ["a", "b"] and t.column("text").to_pylist() == ["one", "two"]
    assert t.column("lang").to_pylist() == ["en", None] and t.column("source").to_pylist() == [None, "web"]


# --------------------------------------------------------------------------- 3. byte order marks

def test_a_bom_in_trec_qrels_keeps_the_first_judgement(tmp_path: Path) -> None:
    f = tmp_path / "qrels.txt"
    f.write_bytes(BOM + b"q1 0 d1 1\nq1 0 d2 0\n")
    assert load_qrels(f) == {"q1": {"d1": 1, "d2": 0}}
    beir = tmp_path / "qrels.tsv"
    beir.write_bytes(BOM + b"query-id\tcorpus-id\tscore\r\nq1\td1\t2\r\n")
    assert load_qrels(beir) == {"q1": {"d1": 2}}


@pytest.mark.parametrize("name,data", [
    ("c.jsonl", b'{"id": "a", "text": "first"}\n{"id": "b", "text": "second"}\n'),
    ("c.csv", b"id,text\na,first\nb,second\n"),
    ("c.tsv", b"id\ttext\na\tfirst\nb\tsecond\n"),
])
def test_a_bom_in_a_corpus_file_is_not_part_of_the_first_row(tmp_path: Path, name: str, data: bytes) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / name).write_bytes(BOM + data)
    (folder / ("d" + name[1:])).write_bytes(BOM + data.replace(b'"a"', b'"c"').replace(b'"b"', b'"d"')
                                            .replace(b"\na", b"\nc").replace(b"\nb", b"\nd"))
    code, err = reindex(folder, tmp_path / "o")
    assert code == 0, err
    t = index(tmp_path / "o")
    assert t.column("id").to_pylist() == ["a", "b", "c", "d"]
    assert t.column("text").to_pylist() == ["first", "second"] * 2


def test_a_bom_in_a_text_file_is_not_embedded(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_bytes(BOM + b"# Title\n")
    (folder / "b.txt").write_bytes(b"\xff\xfe" + "UTF-16 text".encode("utf-16-le"))
    code, err = reindex(folder, tmp_path / "o")
    assert code == 0, err
    assert index(tmp_path / "o").column("text").to_pylist() == ["# Title\n", "UTF-16 text"]


@pytest.mark.parametrize("name,data", [
    ("q.jsonl", b'{"id": "q1", "text": "one"}\n{"id": "q2", "text": "two"}\n'),
    ("q.tsv", b"id\ttext\nq1\tone\nq2\ttwo\n"),
    ("q.csv", b"id,text\nq1,one\nq2,two\n"),
])
def test_a_bom_in_a_query_file_is_not_part_of_the_first_key(tmp_path: Path, name: str, data: bytes) -> None:
    f = tmp_path / name
    f.write_bytes(BOM + data)
    assert [(q.id, q.text) for q in load_queries(f)] == [("q1", "one"), ("q2", "two")]


def test_utf16_line_files_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    src.write_bytes(b"\xff\xfe" + '{"id": "a", "text": "x"}\n'.encode("utf-16-le"))
    err = one_line_error(*reindex(src, tmp_path / "o"))
    assert "UTF-16" in err and "c.jsonl" in err
    q = tmp_path / "q.tsv"
    q.write_bytes(b"\xfe\xff" + "id\ttext\nq\tx\n".encode("utf-16-be"))
    with pytest.raises(InputError, match="UTF-16"):
        load_queries(q)
    with pytest.raises(InputError, match="UTF-16"):
        load_qrels(q)


# --------------------------------------------------------------------------- 4. crashes in verify inputs

@pytest.mark.parametrize("rel", ["nan", "inf", "-inf", "1e400", "NaN"])
def test_non_finite_relevance_is_an_input_error_naming_the_line(tmp_path: Path, rel: str) -> None:
    f = tmp_path / "qrels.txt"
    f.write_text(f"q1 0 d1 1\nq1 0 d2 {rel}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"qrels.txt:2: relevance .* is not a finite"):
        load_qrels(f)


def test_non_utf8_qrels_and_queries_are_input_errors_naming_the_line(tmp_path: Path) -> None:
    f = tmp_path / "qrels.txt"
    f.write_bytes(b"q1 0 d1 1\nq\xe9 0 d2 1\n")
    with pytest.raises(InputError, match=r"qrels.txt:2: not valid UTF-8"):
        load_qrels(f)
    for name, data in (("q.jsonl", b'{"id": "q1", "text": "ok"}\n{"id": "q2", "text": "caf\xe9"}\n'),
                       ("q.tsv", b"id\ttext\nq1\tok\nq2\tcaf\xe9\n"),
                       ("q.csv", b"id,text\nq1,ok\nq2,caf\xe9\n")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=rf"{name}:\d: not valid UTF-8"):
            load_queries(tmp_path / name)


@pytest.mark.parametrize("vector", ['"abc"', "5", "null", '[1, "a"]', "[true, 1.0]", '{"a": 1}'])
def test_a_jsonl_index_with_a_bad_vector_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            vector: str) -> None:
    idx = tmp_path / "v2.jsonl"
    idx.write_text('{"id": "d1", "vector": [0.1, 0.2]}\n' f'{{"id": "d2", "vector": {vector}}}\n',
                   encoding="utf-8")
    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "q1", "text": "x"}\n', encoding="utf-8")
    code = main(["verify", "--v2", str(idx), "--v2-model", V2, "--v3", str(idx), "--v3-model",
                 "jina-embeddings-v3", "--queries", str(q), "--encoder", "fake"])
    err = capsys.readouterr().err
    one_line_error(code, err)
    assert "v2.jsonl:2" in err


def test_a_jsonl_source_with_a_string_vector_is_read(tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    src.write_text('{"id": "a", "text": "one", "vector": "abc"}\n{"id": "b", "text": "two", "vector": [1]}\n',
                   encoding="utf-8")
    code, err = reindex(src, tmp_path / "o")
    assert code == 0, err
    assert index(tmp_path / "o").column("id").to_pylist() == ["a", "b"]


# --------------------------------------------------------------------------- 5. one text file, globs

def test_a_single_text_file_is_stored_under_its_file_name(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# Hello\n", encoding="utf-8")
    code, err = reindex(doc, tmp_path / "o")
    assert code == 0, err
    assert index(tmp_path / "o").column("id").to_pylist() == ["doc.md"]


def test_a_glob_of_text_files_uses_ids_relative_to_its_fixed_prefix(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "a.md").write_text("alpha", encoding="utf-8")
    (notes / "sub" / "b.md").write_text("beta", encoding="utf-8")
    (notes / "c.txt").write_text("not matched", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, err = reindex("notes/*.md", tmp_path / "o1")
    assert code == 0, err
    assert index(tmp_path / "o1").column("id").to_pylist() == ["a.md"]
    code, err = reindex("notes/**/*.md", tmp_path / "o2")
    assert code == 0, err
    assert index(tmp_path / "o2").column("id").to_pylist() == ["a.md", "sub/b.md"]
    code, err = reindex(str(tmp_path / "*" / "*.md"), tmp_path / "o3")
    assert code == 0, err
    assert index(tmp_path / "o3").column("id").to_pylist() == ["notes/a.md"]
    assert json.loads((tmp_path / "o3" / "manifest.json").read_text())["status"] == "complete"


# ------------------------------------------------------------------ 6. ids with whitespace vs TREC runs

def _spaced_world(tmp_path: Path) -> list[str]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "release notes.md").write_text("what changed in the release", encoding="utf-8")
    (docs / "faq.md").write_text("frequently asked questions", encoding="utf-8")
    for side, model in (("v2", V2), ("v3", "jina-embeddings-v3")):
        code, err = reindex(docs, tmp_path / side, "--model", model, "--dimensions",
                            "768" if side == "v2" else "32")
        assert code == 0, err
    (tmp_path / "q.jsonl").write_text('{"id": "q1", "text": "what changed"}\n', encoding="utf-8")
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\trelease notes.md\t1\n",
                                        encoding="utf-8")
    return ["verify", "--v2", str(tmp_path / "v2"), "--v3", str(tmp_path / "v3"), "--queries",
            str(tmp_path / "q.jsonl"), "--qrels", str(tmp_path / "qrels.tsv"), "--encoder", "fake",
            "--format", "json"]


def test_ids_with_spaces_are_refused_before_a_malformed_run_file_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _spaced_world(tmp_path)
    capsys.readouterr()
    code = main([*argv, "--run-dir", str(tmp_path / "runs")])
    err = one_line_error(code, capsys.readouterr().err)
    assert "'release notes.md'" in err and "--run-dir" in err
    assert not (tmp_path / "runs").exists()
    # without run files, the same ids are scored (BEIR TSV qrels can hold them)
    assert main(argv) in (0, 1)
    data = json.loads(capsys.readouterr().out)
    assert data["judged_queries"] == 1


def test_write_run_and_read_trec_run_agree(tmp_path: Path) -> None:
    from jmigrate.verify.runs import read_trec_run, write_run
    from jmigrate.verify.search import Ranking

    r = Ranking(["q1", "q2"], [["d1", "d2"], ["d3"]], [[0.9, 0.5], [0.25]])
    write_run(tmp_path / "r.run", r, "jmigrate-v3")
    assert read_trec_run(tmp_path / "r.run") == {"q1": {"d1": 0.9, "d2": 0.5}, "q2": {"d3": 0.25}}
    with pytest.raises(InputError, match="'a b'"):
        write_run(tmp_path / "bad.run", Ranking(["q1"], [["a b"]], [[1.0]]), "x")
    assert not (tmp_path / "bad.run").exists()
    (tmp_path / "bom.run").write_bytes(BOM + b"q1 Q0 d1 1 0.5 x\r\n\r\n")
    assert read_trec_run(tmp_path / "bom.run") == {"q1": {"d1": 0.5}}
    (tmp_path / "m.run").write_bytes(b"q1 Q0 release notes.md 1 0.5 x\n")
    with pytest.raises(InputError, match=r"m.run:1: expected"):
        read_trec_run(tmp_path / "m.run")
    (tmp_path / "s.run").write_bytes(b"q1 Q0 d1 1\n")
    with pytest.raises(InputError, match=r"s.run:1: expected"):
        read_trec_run(tmp_path / "s.run")


# --------------------------------------------------------------------------- 7. symlinks, FIFOs

def test_a_symlink_leaving_the_text_folder_is_rejected_and_never_sent(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("SECRET-TOKEN do not send", encoding="utf-8")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.md").write_text("SECRET-FOLDER", encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("public text", encoding="utf-8")
    (docs / "notes.md").symlink_to(secret)
    (docs / "inside.md").symlink_to(docs / "a.md")  # a link within the folder is a document like any other
    (docs / "more").symlink_to(outside, target_is_directory=True)
    (docs / "dangling.md").symlink_to(tmp_path / "missing")
    with StubServer(api_key="jina_links") as srv:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["reindex", str(docs), "--out", str(tmp_path / "o"), "--api-url", srv.url,
                         "--api-key", "jina_links", "--dimensions", "32", "--quiet"])
        sent = " ".join(t for r in srv.stats.embedding_records() for t in r.inputs)
    assert code == 1, err.getvalue()
    assert "SECRET" not in sent and "public text" in sent
    t = index(tmp_path / "o")
    assert t.column("id").to_pylist() == ["a.md", "inside.md"]
    assert all("SECRET" not in x for x in t.column("text").to_pylist())
    got = {r["id"]: r["reason"] for r in rejects(tmp_path / "o")}
    assert set(got) == {"notes.md", "more", "dangling.md"}
    assert "leaves the source folder" in got["notes.md"] and "leaves the source folder" in got["more"]
    assert "broken symlink" in got["dangling.md"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("text", encoding="utf-8")
    os.mkfifo(docs / "pipe.md")
    fifo_jsonl = tmp_path / "data.jsonl"
    os.mkfifo(fifo_jsonl)
    results: list[tuple[int, str]] = []

    def go() -> None:
        results.append(reindex(docs, tmp_path / "o"))
        results.append(reindex(fifo_jsonl, tmp_path / "o2"))

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(120)
    if worker.is_alive():  # a reader blocked on a FIFO: release it so the suite can go on, then fail
        for f in (docs / "pipe.md", fifo_jsonl):
            with contextlib.suppress(OSError):
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail("reindex opened a FIFO")
    (code, err), (code2, err2) = results
    assert code == 1, err
    assert rejects(tmp_path / "o") == [{"row": 1, "id": "pipe.md", "reason": "not a regular file (FIFO)"}]
    assert "not a regular file" in one_line_error(code2, err2)


def test_a_symlinked_jsonl_file_leaving_a_source_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "other.jsonl").write_text('{"id": "s", "text": "secret"}\n', encoding="utf-8")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"id": "a", "text": "ok"}\n', encoding="utf-8")
    (folder / "b.jsonl").symlink_to(tmp_path / "other.jsonl")
    err = one_line_error(*reindex(folder, tmp_path / "o"))
    assert "b.jsonl" in err and "leaves the source folder" in err


# --------------------------------------------------------------------------- 8. duplicate Parquet columns

def test_parquet_with_duplicate_column_names_is_a_clear_error(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "dup.parquet"
    t = pa.Table.from_arrays([pa.array(["a"]), pa.array(["x"]), pa.array(["y"])],
                             names=["id", "text", "text"])
    pq.write_table(t, src)
    err = one_line_error(*reindex(src, tmp_path / "o"))
    assert "dup.parquet" in err and "'text'" in err
    q = tmp_path / "q.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["q1"]), pa.array(["x"]), pa.array(["y"])],
                                        names=["id", "text", "text"]), q)
    with pytest.raises(InputError, match="duplicate column"):
        load_queries(q)
    v = tmp_path / "v.parquet"
    vec = pa.array([[0.1, 0.2]], pa.list_(pa.float32(), 2))
    pq.write_table(pa.Table.from_arrays([pa.array(["d1"]), vec, vec], names=["id", "vector", "vector"]), v)
    code = main(["verify", "--v2", str(v), "--v2-model", V2, "--v3", str(v), "--v3-model",
                 "jina-embeddings-v3", "--queries", str(tmp_path / "q.parquet"), "--encoder", "fake"])
    assert "duplicate column" in one_line_error(code, capsys.readouterr().err)


# --------------------------------------------------------------------------- siblings

@pytest.mark.parametrize("name,data", [
    ("e.tsv", b""), ("h.tsv", b"id\ttext\n"), ("h2.tsv", b"id\ttext\r\n\r\n\n"), ("b.jsonl", BOM),
    ("b.csv", BOM + b"id,text\r\n"),
])
def test_empty_and_header_only_files_stop_before_spending(tmp_path: Path, name: str, data: bytes) -> None:
    src = tmp_path / name
    src.write_bytes(data)
    err = one_line_error(*reindex(src, tmp_path / "o"))
    assert name in err


def test_blank_lines_in_csv_are_not_rows(tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_bytes(b"id,text\r\na,one\r\n\r\nb,two\r\n\r\n\r\n")
    code, err = reindex(src, tmp_path / "o")
    assert code == 0, err
    assert rows(tmp_path / "o") == {"source": 2, "written": 2, "rejected": 0}


def test_a_very_long_tsv_line_is_one_row(tmp_path: Path) -> None:
    src = tmp_path / "c.tsv"
    long_text = "word " * 400_000
    src.write_text(f"id\ttext\nbig\t{long_text}\nsmall\tx\n", encoding="utf-8")
    code, err = reindex(src, tmp_path / "o", "--on-long", "truncate")
    assert code == 0, err
    t = index(tmp_path / "o")
    assert t.column("id").to_pylist() == ["big", "small"]
    assert long_text.startswith(t.column("text")[0].as_py())


def test_query_and_qrels_files_empty_or_header_only_are_input_errors(tmp_path: Path) -> None:
    for name, data in (("q.tsv", b"id\ttext\n"), ("q.jsonl", BOM + b"\n"), ("q.csv", b"")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match="holds no queries"):
            load_queries(tmp_path / name)
    (tmp_path / "qrels.tsv").write_bytes(BOM + b"query-id\tcorpus-id\tscore\n")
    with pytest.raises(InputError, match="holds no judgements"):
        load_qrels(tmp_path / "qrels.tsv")


def test_verify_report_snippets_come_from_a_tsv_source_read_without_quoting(tmp_path: Path) -> None:
    from jmigrate.index.sources import source_texts

    src = tmp_path / "c.tsv"
    src.write_bytes(BOM + TSV_WITH_QUOTES)
    got = source_texts(str(src), "id", "text", {"2", "3"}, 100)
    assert got == {"2": 'second passage" and more', "3": "third"}


def test_the_vector_store_reader_keeps_ids_of_a_bom_ids_file(tmp_path: Path) -> None:
    from jmigrate.verify.indexes import read_ids_file

    f = tmp_path / "ids.txt"
    f.write_bytes(BOM + b"d1\r\nd2\r\n")
    assert read_ids_file(f) == ["d1", "d2"]


def test_a_bom_in_a_config_file_is_not_part_of_the_first_key(tmp_path: Path) -> None:
    src = tmp_path / "c.jsonl"
    src.write_text('{"id": "a", "text": "one"}\n', encoding="utf-8")
    for name, body in (("c.toml", b"[reindex]\ndimensions = 32\n"),
                       ("c.json", b'{"reindex": {"dimensions": 32}}')):
        cfg = tmp_path / name
        cfg.write_bytes(BOM + body)
        out = tmp_path / f"o-{name}"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["reindex", str(src), "--config", str(cfg), "--out", str(out), "--encoder", "fake",
                         "--quiet"])
        assert code == 0, err.getvalue()
        assert json.loads((out / "manifest.json").read_text())["dimensions"] == 32


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_verify_never_opens_a_fifo_given_as_an_input(tmp_path: Path) -> None:
    from jmigrate.verify.indexes import open_index, read_ids_file
    from jmigrate.verify.queries import load_query_vectors

    calls: dict[str, Callable[[Path], object]] = {
        "index.parquet": lambda f: open_index(f, side="v2", model=V2),
        "index.jsonl": lambda f: open_index(f, side="v2", model=V2),
        "ids.json": read_ids_file, "ids.txt": read_ids_file, "ids.parquet": read_ids_file,
        "q.jsonl": load_queries, "q.tsv": load_queries, "qrels.txt": load_qrels,
        "qv.parquet": load_query_vectors,
    }
    errors: dict[str, str] = {}

    def go() -> None:
        for name, call in calls.items():
            f = tmp_path / name
            os.mkfifo(f)
            try:
                call(f)
            except InputError as e:
                errors[name] = str(e)

    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    worker.join(120)
    if worker.is_alive():
        for name in calls:
            with contextlib.suppress(OSError):
                os.close(os.open(tmp_path / name, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail(f"a reader opened a FIFO (done: {sorted(errors)})")
    assert set(errors) == set(calls)
    assert all("not a regular file (FIFO)" in e for e in errors.values()), errors


# --------------------------------------------------------------------------- property-based: qrels, runs

ID_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
TREC_ID = ID_TEXT.filter(lambda s: not any(c.isspace() for c in s) and not s.startswith("#"))
BEIR_ID = ID_TEXT.filter(lambda s: "\t" not in s and "\n" not in s and "\r" not in s and s == s.strip()
                         and not s.startswith("#"))


@settings(max_examples=60, deadline=None)
@given(judgements=st.dictionaries(st.tuples(TREC_ID, TREC_ID), st.integers(-2, 4), min_size=1, max_size=12),
       bom=st.booleans(), crlf=st.booleans(), beir=st.booleans(), blank=st.booleans())
def test_qrels_read_back_exactly_whatever_the_bom_line_endings_and_format(
        judgements: dict[tuple[str, str], int], bom: bool, crlf: bool, beir: bool, blank: bool) -> None:
    """Regression (issue 10): a BOM turned the first query id into '\\ufeffq1' (its judgement lost)."""
    eol = "\r\n" if crlf else "\n"
    if beir:
        lines_ = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{r}" for (q, d), r in judgements.items()]
    else:
        lines_ = [f"{q} 0 {d} {r}" for (q, d), r in judgements.items()]
    text = eol.join(lines_) + eol + (eol if blank else "")
    want: dict[str, dict[str, int]] = {}
    for (q, d), r in judgements.items():
        want.setdefault(q, {})[d] = r
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "qrels.txt"
        f.write_bytes((BOM if bom else b"") + text.encode("utf-8"))
        assert load_qrels(f) == want


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(BEIR_ID, min_size=1, max_size=6, unique=True), bom=st.booleans())
def test_run_files_round_trip_or_are_refused(ids: list[str], bom: bool) -> None:
    """An id a run file can hold round-trips through write_run/read_trec_run; any other is refused
    before anything is written (regression, issue 10: ids with spaces made malformed run files)."""
    from jmigrate.verify.runs import read_trec_run, write_run
    from jmigrate.verify.search import Ranking

    scores = [round(1.0 - i / 10, 6) for i in range(len(ids))]
    ranking = Ranking(["q1"], [ids], [scores])
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "r.run"
        if any(c.isspace() for i in ids for c in i):
            with pytest.raises(InputError, match="whitespace"):
                write_run(f, ranking, "x")
            assert not f.exists()
            return
        write_run(f, ranking, "x")
        if bom:
            f.write_bytes(BOM + f.read_bytes())
        assert read_trec_run(f) == {"q1": dict(zip(ids, scores, strict=True))}


@pytest.mark.parametrize("body", [b'[\n {"id": "a", "text": "x"},\n {"id": "b", "text": "y"}\n]\n',
                                  b'[{"id": "a", "text": "x"}]', b'{\n  "id": "a",\n  "text": "x"\n}\n'])
def test_a_json_document_is_not_read_as_json_lines(tmp_path: Path, body: bytes) -> None:
    """Sibling: a pretty-printed array gave rejects for '[' and ']' and rows for the lines between."""
    src = tmp_path / "docs.json"
    src.write_bytes(BOM + body)
    err = one_line_error(*reindex(src, tmp_path / "o"))
    assert "one JSON document" in err and "jq -c" in err
    assert not (tmp_path / "o").exists()
