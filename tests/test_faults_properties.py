"""Property-based tests over corpus rows (hypothesis): whatever the rows hold (any Unicode incl. lone
surrogates where the format can carry them, NUL, RTL, emoji, CJK, very long strings, nulls, numbers,
lists and dicts where text is expected, duplicate ids, garbage lines, empty files), `reindex` either
embeds each row, rejects it with a reason in rejects.jsonl, or stops with a clear error before
spending. Never a traceback, and the counts add up: written + rejected == source rows."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jmigrate.cli.app import main
from jmigrate.testing.fake import FakeEncoder
from jmigrate.testing.server import StubServer, stub_vectors

pytestmark = pytest.mark.slow  # Hypothesis searches through the real CLI

DIMS = 32
ARGS = ["--encoder", "fake", "--dimensions", str(DIMS), "--unit-rows", "4", "--shard-rows", "7", "--quiet"]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large])
MISSING = object()  # the key is left out of the row
BOM = b"\xef\xbb\xbf"

# Every code point, lone surrogates (category Cs, which st.characters leaves out) included: JSON
# escapes them as \ud800.
ANY_CHAR = st.one_of(st.characters(codec=None), st.integers(0xD800, 0xDFFF).map(chr))
NASTY = ["", " ", "\t\n", "\x00", "a\x00b", "مرحبا بالعالم", "שלום \u202e abc \u202c", "😀👍🏽👨‍👩‍👧 emoji",
         "漢字テキスト한국어中文", "\ufeffbom", "\r\n", "x" * 60_000, "word " * 9_000, "e\u0301\u200b\u2028"]
TEXTS = st.one_of(st.text(ANY_CHAR, max_size=40), st.sampled_from(NASTY), st.none(), st.integers(),
                  st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.just(MISSING))
IDS = st.one_of(st.sampled_from(["a", "b", "dup", "7"]), st.text(ANY_CHAR, max_size=8), st.integers(-3, 9),
                st.none(), st.just(""), st.lists(st.integers(), max_size=2), st.just(MISSING))
META = st.one_of(st.integers(), st.text(ANY_CHAR, max_size=5),
                 st.lists(st.text(ANY_CHAR, max_size=2), max_size=2), st.floats(allow_nan=False), st.none(),
                 st.booleans(),
                 st.lists(st.integers(), max_size=2), st.just(MISSING))
GARBAGE = st.sampled_from([b"{", b"[]", b"null", b"42", b'"text"', b"\xff\xfe{}",
                           b'{"id": "g", "text": "caf\xe9"}', b"{'id': 1}"])


@st.composite
def jsonl_lines(draw: st.DrawFn) -> list[bytes]:
    lines = []
    for _ in range(draw(st.integers(1, 14))):
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(GARBAGE))
            continue
        row = {k: v for k, v in (("id", draw(IDS)), ("text", draw(TEXTS)), ("m", draw(META)))
               if v is not MISSING}
        if draw(st.integers(0, 29)) == 0:  # an odd extra key: a metadata column of its own
            value = draw(META)
            row[draw(st.text(ANY_CHAR, min_size=1, max_size=3))] = None if value is MISSING else value
        ascii_only = draw(st.booleans())
        try:
            lines.append(json.dumps(row, ensure_ascii=ascii_only).encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: only its \\ud800 escape can be written
            lines.append(json.dumps(row).encode("utf-8"))
    return lines


def reindex(src: Path, out: Path, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["reindex", str(src), "--out", str(out), *ARGS, *extra])
    return code, " ".join(err.getvalue().split())


def check_outcome(out: Path, code: int, err: str, source_rows: int, texts: list[Any] | None) -> None:
    """The invariants every run must keep. `texts`: the source texts by row, when known."""
    assert "Traceback" not in err
    if code == 2:  # a clear error, before anything was spent
        assert err.startswith("error: ") and "\n" not in err
        if (out / "manifest.json").exists():
            manifest = json.loads((out / "manifest.json").read_text())
            assert manifest["usage"]["requests"] == 0 and manifest["rows"]["written"] == 0
        return
    assert code in (0, 1), err
    manifest = json.loads((out / "manifest.json").read_text())
    rows = manifest["rows"]
    assert manifest["status"] == "complete"
    assert rows["written"] + rows["rejected"] == rows["source"] == source_rows
    lines = jsonl_lines_of(out / "rejects.jsonl") if rows["rejected"] else []
    rejects = [json.loads(line) for line in lines]
    assert len(rejects) == rows["rejected"] and (code == 1) == bool(rejects)
    rejected_rows = [r["row"] for r in rejects]
    assert len(set(rejected_rows)) == len(rejected_rows) and all(0 <= r < source_rows for r in rejected_rows)
    assert all(isinstance(r["reason"], str) and r["reason"] for r in rejects)
    table = pq.read_table(sorted(out.glob("part-*.parquet")))
    assert table.num_rows == rows["written"]
    ids = table.column("id").to_pylist()
    assert len(set(ids)) == len(ids) and all(isinstance(i, str) and i for i in ids)
    kept = [i for i in range(source_rows) if i not in set(rejected_rows)]
    if texts is not None:  # the embedded rows are the source rows, in order, with their own vectors
        assert table.column("text").to_pylist() == [texts[i] for i in kept]
    vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False)) if len(table) else None
    if vectors is not None:
        want = FakeEncoder(model="jina-embeddings-v3").encode(table.column("text").to_pylist(),
                                                             task="retrieval.passage", dimensions=DIMS)
        np.testing.assert_allclose(vectors, want, atol=1e-6)


def jsonl_lines_of(path: Path) -> list[str]:
    # not str.splitlines(): it also splits at U+0085, U+2028... which JSON keeps raw inside strings
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def parsed_text(line: bytes) -> Any:
    try:
        row = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return row.get("text") if isinstance(row, dict) else None


@SETTINGS
@given(lines=jsonl_lines(), newline_at_end=st.booleans(), bom=st.booleans(), crlf=st.booleans())
def test_jsonl_rows_are_embedded_or_rejected_never_a_traceback(lines: list[bytes], newline_at_end: bool,
                                                               bom: bool, crlf: bool) -> None:
    eol = b"\r\n" if crlf else b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "rows.jsonl"
        # a BOM (regression, issue 10: it made row 0 a reject) is not part of the first row
        src.write_bytes((BOM if bom else b"") + eol.join(lines) + (eol if newline_at_end else b""))
        code, err = reindex(src, Path(tmp) / "o")
        event(f"exit {code}")
        check_outcome(Path(tmp) / "o", code, err, len(lines), [parsed_text(line) for line in lines])


CSV_TEXT = st.one_of(st.text(st.characters(codec="utf-8"), max_size=30), st.sampled_from(NASTY[:-2]),
                     st.just('quote " and, comma'), st.just("multi\nline\r\nfield"))


@SETTINGS
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "", "dup"]) | st.text(max_size=6), CSV_TEXT),
                     min_size=1, max_size=12),
       bom=st.booleans(), crlf=st.booleans())
def test_csv_rows_are_embedded_or_rejected_never_a_traceback(rows: list[tuple[str, str]], bom: bool,
                                                             crlf: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "rows.csv"
        buf = io.StringIO(newline="")
        # csv quotes a field with CR/LF only when the line terminator holds them: quote all with LF
        w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n",
                       quoting=csv.QUOTE_MINIMAL if crlf else csv.QUOTE_ALL)
        w.writerow(["id", "text"])
        w.writerows(rows)
        src.write_bytes((BOM if bom else b"") + buf.getvalue().encode("utf-8", "surrogatepass"))
        code, err = reindex(src, Path(tmp) / "o")
        event(f"exit {code}")
        check_outcome(Path(tmp) / "o", code, err, len(rows), [t for _, t in rows])


# TSV has no quoting and no escapes: a field is anything without a tab or a line break, quotes included.
TSV_FIELD = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\t\n\r"), max_size=30),
    st.sampled_from(['"', '"quoted"', '"opens and never closes', 'closes"', 'a "b" c', "'single'", '""',
                     "e\u0301 \u2028 \x85 not line breaks", "\ufeffbom inside"]),
    st.sampled_from([t for t in NASTY[:-2] if not set(t) & set("\t\n\r")]))


@SETTINGS
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b", "", "dup", '"x']) | TSV_FIELD, TSV_FIELD),
                     min_size=1, max_size=12),
       bom=st.booleans(), crlf=st.booleans(), blank_tail=st.booleans())
def test_tsv_rows_with_quotes_are_one_row_per_line(rows: list[tuple[str, str]], bom: bool, crlf: bool,
                                                   blank_tail: bool) -> None:
    """Regression (issue 10): a field starting with `"` swallowed the following lines (CSV quoting)."""
    eol = "\r\n" if crlf else "\n"
    body = eol.join(["id\ttext", *(f"{i}\t{t}" for i, t in rows)]) + eol + (eol * 2 if blank_tail else "")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "rows.tsv"
        src.write_bytes((BOM if bom else b"") + body.encode("utf-8"))
        code, err = reindex(src, Path(tmp) / "o")
        event(f"exit {code}")
        check_outcome(Path(tmp) / "o", code, err, len(rows), [t for _, t in rows])
        assert code != 2, err  # every line is a row: nothing for the reader to refuse


LATE_VALUES = st.one_of(st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False, width=32),
                        st.text(st.characters(codec="utf-8"), max_size=5), st.booleans(),
                        st.lists(st.integers(0, 3), max_size=2), st.none())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 1300),
       late=st.dictionaries(st.sampled_from(["m_a", "m_b", "m_c"]),
                            st.tuples(st.integers(0, 1299), LATE_VALUES), max_size=3),
       bom=st.booleans())
def test_jsonl_fields_first_seen_late_are_carried(n: int, late: dict[str, tuple[int, Any]],
                                                  bom: bool) -> None:
    """Regression (issue 10): keys first seen after row 1,000 were dropped (schema from the first rows)."""
    rows: list[dict[str, Any]] = [{"id": f"r{i}", "text": f"row {i}"} for i in range(n)]
    placed = {k: (at % n, v) for k, (at, v) in late.items()}
    for k, (at, v) in placed.items():
        rows[at][k] = v
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "rows.jsonl", Path(tmp) / "o"
        src.write_bytes((BOM if bom else b"") + "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8"))
        code, err = reindex(src, out)
        check_outcome(out, code, err, n, [r["text"] for r in rows])
        assert code == 0, err
        table = pq.read_table(sorted(out.glob("part-*.parquet")))
        for k, (at, v) in placed.items():
            assert k in table.column_names, (k, at)
            col = table.column(k)
            got = col[at].as_py()
            if pa.types.is_string(col.type) and v is not None and not isinstance(v, str):
                want: Any = json.dumps(v, ensure_ascii=False, sort_keys=True)
            else:
                want = v
            assert got == want, (k, at, v, col.type)
            assert col.null_count == n - (v is not None)


@SETTINGS
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b", "dup"]) | st.text(max_size=6) | st.none(),
                               st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(NASTY)
                               | st.none()), min_size=1, max_size=12),
       large=st.booleans())
def test_parquet_rows_are_embedded_or_rejected_never_a_traceback(rows: list[tuple[str | None, str | None]],
                                                                 large: bool) -> None:
    string = pa.large_string() if large else pa.string()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "rows.parquet"
        pq.write_table(pa.table({"id": pa.array([r[0] for r in rows], string),
                                 "text": pa.array([r[1] for r in rows], string)}), src)
        code, err = reindex(src, Path(tmp) / "o")
        event(f"exit {code}")
        check_outcome(Path(tmp) / "o", code, err, len(rows), [t for _, t in rows])


def test_empty_files_stop_with_a_clear_error_before_spending(tmp_path: Path) -> None:
    for name, data in (("e.jsonl", b""), ("n.jsonl", b"\n\n"), ("e.csv", b""), ("h.csv", b"id,text\n")):
        src = tmp_path / name
        src.write_bytes(data)
        out = tmp_path / f"o-{name}"
        code, err = reindex(src, out)
        assert code in (1, 2), (name, err)
        check_outcome(out, code, err, 0, [])


def test_a_numeric_text_column_in_parquet_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "n.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "body": [1, 2]}), src)
    code, err = reindex(src, tmp_path / "o", "--text-column", "body")
    assert "Traceback" not in err
    check_outcome(tmp_path / "o", code, err, 2, None)


@SETTINGS
@given(lines=jsonl_lines(),
       mode=st.sampled_from([("--on-long", "truncate"), ("--on-long", "chunk"),
                             ("--chunk-by", "sentences", "--chunk-size", "8"),
                             ("--chunk-by", "tokens", "--chunk-size", "16", "--chunk-overlap", "4")]))
def test_truncating_and_chunking_keep_every_row_accounted_for(lines: list[bytes],
                                                              mode: tuple[str, ...]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "rows.jsonl", Path(tmp) / "o"
        src.write_bytes(b"\n".join(lines) + b"\n")
        code, err = reindex(src, out, *mode)
        event(f"exit {code}")
        assert "Traceback" not in err
        if code == 2:
            assert err.startswith("error: ")
            return
        assert code in (0, 1), err
        manifest = json.loads((out / "manifest.json").read_text())
        rows = manifest["rows"]
        assert manifest["status"] == "complete" and rows["source"] == len(lines)
        rejected = [json.loads(x)["row"] for x in jsonl_lines_of(out / "rejects.jsonl")] \
            if rows["rejected"] else []
        assert len(set(rejected)) == len(rejected) == rows["rejected"]
        table = pq.read_table(sorted(out.glob("part-*.parquet")))
        assert table.num_rows == rows["written"]
        texts = [parsed_text(line) for line in lines]
        kept = [i for i in range(len(lines)) if i not in set(rejected)]
        # every kept source row gives one or more output rows, whose text comes from that row
        ids = table.column("id").to_pylist()
        assert len(dict.fromkeys(ids)) == len(kept)
        by_id: dict[str, list[str]] = {}
        for rid, text in zip(ids, table.column("text").to_pylist(), strict=True):
            by_id.setdefault(rid, []).append(text)
        for (rid, chunks), row in zip(by_id.items(), kept, strict=True):
            source = texts[row]
            assert isinstance(source, str) and chunks and all(c and c in source for c in chunks), (rid, mode)
        if "--chunk-by" not in mode and "chunk" not in mode:
            assert all(len(chunks) == 1 and texts[row].startswith(chunks[0])  # type: ignore[union-attr]
                       for chunks, row in zip(by_id.values(), kept, strict=True))


def test_lone_surrogates_in_ids_metadata_and_keys_are_rejected_or_refused(tmp_path: Path) -> None:
    """Regression: these were tracebacks (UnicodeEncodeError from pyarrow or the rejects file)."""
    src = tmp_path / "s.jsonl"
    src.write_text('{"id": "\\ud800", "text": "ok", "m": "x"}\n'
                   '{"id": "a", "text": "ok", "m": "\\udc00x"}\n'
                   '{"id": "b", "text": "ok", "m": {"k": ["\\udfff"]}}\n'
                   '{"id": "c", "text": "fine", "m": "y"}\n', encoding="utf-8")
    code, err = reindex(src, tmp_path / "o")
    assert code == 1, err
    rejects = [json.loads(line) for line in (tmp_path / "o" / "rejects.jsonl").read_text().splitlines()]
    assert rejects == [
        {"row": 0, "id": "\ud800", "reason": "id is not valid Unicode (lone surrogate)"},
        {"row": 1, "id": "a", "reason": "metadata 'm' is not valid Unicode (lone surrogate)"},
        {"row": 2, "id": "b", "reason": "metadata 'm' is not valid Unicode (lone surrogate)"}]
    assert pq.read_table(tmp_path / "o" / "part-00000.parquet").column("id").to_pylist() == ["c"]
    keys = tmp_path / "k.jsonl"
    keys.write_text('{"id": "a", "text": "ok", "\\ud800k": 1}\n', encoding="utf-8")
    code, err = reindex(keys, tmp_path / "o2")
    assert code == 2 and "column name '\\ud800k' is not valid Unicode" in err
    assert not (tmp_path / "o2").exists()


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with StubServer(api_key="jina_props") as srv:
        yield srv


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(texts=st.lists(st.text(ANY_CHAR, max_size=60) | st.sampled_from(NASTY), min_size=1, max_size=20))
def test_any_text_through_the_api_stub_gets_the_servers_vector_or_a_reason(stub: StubServer,
                                                                           texts: list[str]) -> None:
    from jmigrate.encoders.api import JinaAPIEncoder
    from jmigrate.index.pipeline import Settings
    from jmigrate.index.pipeline import reindex as run_reindex
    from jmigrate.index.sources import open_source

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "rows.jsonl", Path(tmp) / "o"
        src.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts)),
                       encoding="utf-8")
        s = Settings(model="jina-embeddings-v3", task="retrieval.passage", dimensions=DIMS, encoder="api",
                     unit_rows=4, shard_rows=7)
        with JinaAPIEncoder(api_url=stub.url, api_key="jina_props", batch_size=3, concurrency=2,
                            backoff_base=0.01) as enc:
            result = run_reindex(open_source(str(src)), out, enc, s, concurrency=2)
        rows = vars(result.manifest.rows)
        assert rows["written"] + rows["rejected"] == rows["source"] == len(texts)
        rejected = {json.loads(x)["row"] for x in jsonl_lines_of(out / "rejects.jsonl")} if rows["rejected"] \
            else set()
        table = pq.read_table(sorted(out.glob("part-*.parquet")))
        # what the JSONL line holds: a surrogate pair written as two escapes reads back as one character
        assert table.column("text").to_pylist() == [json.loads(json.dumps(t)) for i, t in enumerate(texts)
                                                    if i not in rejected]
        if len(table):
            got = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
            want = stub_vectors("jina-embeddings-v3", table.column("text").to_pylist(),
                                task="retrieval.passage", dimensions=DIMS)
            np.testing.assert_allclose(got, want, atol=1e-6)
