"""Read the query set, precomputed query vectors and relevance judgements (qrels) for `verify`.

Queries: JSONL, TSV, CSV or Parquet with an id and a text (and optionally a language). Qrels: TREC
(`qid 0 docid rel`) or BEIR TSV (`query-id corpus-id score`, with a header), graded or binary.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jmigrate.columns import LANGUAGE_NAMES, QUERY_ID_NAMES, QUERY_TEXT_NAMES, VECTOR_NAMES, pick
from jmigrate.errors import InputError
from jmigrate.textio import decode_utf8_line, lines, open_regular, require_regular, require_utf8, tsv_rows


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    language: str | None = None


@dataclass
class QueryVectors:
    """Precomputed query vectors and whatever space the file declares about itself."""

    ids: list[str]
    matrix: np.ndarray
    model: str | None
    task: str | None


def _records(path: Path) -> list[dict[str, Any]]:
    """The file's records as dicts, in file order. JSONL, TSV (no quoting) and CSV go through the same
    line readers as `reindex`'s sources: a UTF-8 BOM is dropped, CRLF is a line ending, blank lines are
    not records, and a bad line is an error naming the file and the line."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            out = []
            with open_regular(path) as fh:
                for n, raw in lines(fh, path):
                    if not raw.strip():
                        continue
                    try:
                        rec = json.loads(decode_utf8_line(raw, f"{path}:{n}"))
                    except json.JSONDecodeError as e:
                        raise InputError(f"{path}:{n}: not JSON ({e.msg})") from None
                    if not isinstance(rec, dict):
                        raise InputError(f"{path}:{n}: expected a JSON object per line")
                    out.append(rec)
            return out
        if suffix in (".tsv", ".csv"):
            with open_regular(path) as fh:
                rows = list(_tsv(fh, path) if suffix == ".tsv" else _csv(fh.read(), path))
            if not rows:
                return []
            (_, header), body = rows[0], rows[1:]
            dups = sorted({c for c in header if header.count(c) > 1})
            if dups:
                raise InputError(f"{path}: duplicate column name(s) {', '.join(map(repr, dups))}")
            for n, rec in body:
                if len(rec) != len(header):
                    raise InputError(f"{path}:{n}: row has {len(rec)} fields, header has {len(header)}")
            return [dict(zip(header, rec, strict=True)) for _, rec in body]
        if suffix == ".parquet":
            _check_unique(pq.read_schema(path).names, path)
            return pq.read_table(path).to_pylist()
    except (OSError, ValueError, pa.ArrowException) as e:
        raise InputError(f"cannot read {path}: {_first_line(e)}") from e
    raise InputError(f"{path}: queries must be .jsonl, .tsv, .csv or .parquet")


def _tsv(fh: Any, path: Path) -> Any:
    for n, fields in tsv_rows(fh, path):
        for f in fields:
            decode_utf8_line(f.encode("utf-8", "surrogateescape"), f"{path}:{n}")
        yield n, fields


def _csv(data: bytes, path: Path) -> Any:
    require_utf8(path, data[:4])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(f"{path}:{line}: not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    for rec in reader:
        if rec:
            yield reader.line_num, rec


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def _check_unique(names: list[str], path: Path) -> None:
    dups = sorted({c for c in names if names.count(c) > 1})
    if dups:
        raise InputError(f"{path} has duplicate column name(s) {', '.join(map(repr, dups))}; rename them")


def load_queries(path: str | Path) -> list[Query]:
    """Queries in file order; duplicate ids and empty texts are input errors."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"queries file not found: {p}")
    require_regular(p)
    recs = _records(p)
    if not recs:
        raise InputError(f"{p} holds no queries")
    # Keys from every record, not the first one: a language given from the second query on counts.
    keys = list(dict.fromkeys(k for rec in recs for k in rec))
    id_key, text_key = pick(keys, QUERY_ID_NAMES), pick(keys, QUERY_TEXT_NAMES)
    if id_key is None or text_key is None:
        raise InputError(f"{p}: needs an id and a text field, found {sorted(keys)}")
    lang_key = pick(keys, LANGUAGE_NAMES)
    seen: set[str] = set()
    out = []
    for n, rec in enumerate(recs, 1):
        qid, text = rec.get(id_key), rec.get(text_key)
        if qid is None or text is None or not str(text).strip():
            raise InputError(f"{p}: query #{n} has no id or an empty text")
        qid = str(qid)
        if qid in seen:
            raise InputError(f"{p}: duplicate query id {qid!r}")
        seen.add(qid)
        lang = rec.get(lang_key) if lang_key else None
        out.append(Query(qid, str(text), str(lang) if lang not in (None, "") else None))
    return out


def load_query_vectors(path: str | Path) -> QueryVectors:
    """Parquet with `id` and `vector` (list or fixed_size_list of floats).

    The file may declare its space in the schema metadata (`model`, `task` keys, or a JSON object
    under `jmigrate`); the guard then checks it against the index.
    """
    from jmigrate.verify.indexes import vectors_from_arrow

    p = Path(path)
    require_regular(p)
    try:
        _check_unique(pq.read_schema(p).names, p)
        t = pq.read_table(p)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"cannot read query vectors {p}: {_first_line(e)}") from e
    names = t.column_names
    id_key = pick(names, QUERY_ID_NAMES)
    vec_key = pick(names, VECTOR_NAMES)
    if id_key is None or vec_key is None:
        raise InputError(f"{p}: query vectors need an id and a vector column, found {names}")
    col = t.column(vec_key)
    vtype = col.type
    if pa.types.is_fixed_size_list(vtype):
        dims = vtype.list_size
    elif t.num_rows:
        dims = len(col[0].values)
    else:
        raise InputError(f"{p} holds no query vectors")
    matrix = vectors_from_arrow(col, dims, p)
    meta = {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()}
    info: dict[str, Any] = {}
    if "jmigrate" in meta:
        try:
            info = json.loads(meta["jmigrate"])
        except ValueError:
            info = {}
    model = info.get("model") or meta.get("model")
    task = info.get("task") or meta.get("task")
    return QueryVectors([str(x) for x in t.column(id_key).to_pylist()], matrix, model, task)


def align_query_vectors(qv: QueryVectors, queries: list[Query], side: str) -> np.ndarray:
    """Rows of `qv` in the order of `queries`; every query needs a vector."""
    pos = {q: i for i, q in enumerate(qv.ids)}
    missing = [q.id for q in queries if q.id not in pos]
    if missing:
        raise InputError(
            f"--{side}-query-vectors has no vector for {len(missing)} query id(s), e.g. {missing[0]!r}"
        )
    return qv.matrix[[pos[q.id] for q in queries]]


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Judgements as {query id: {doc id: relevance}}.

    TREC lines have four whitespace-separated fields (`qid iter docid rel`); BEIR TSV has three
    tab-separated ones (`query-id corpus-id score`, so its ids may hold spaces) and a header line,
    recognised because its score field is not a number. Grades are integers (negative ones included,
    as trec_eval allows); NaN, infinities and fractions are errors naming the line.
    """
    p = Path(path)
    try:
        with open_regular(p) as fh:
            raw_lines = list(lines(fh, p))
    except OSError as e:
        raise InputError(f"cannot read qrels {p}: {e}") from e
    qrels: dict[str, dict[str, int]] = {}
    for n, raw in raw_lines:
        line = decode_utf8_line(raw, f"{p}:{n}")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if len(fields) == 4:
            qid, _, doc, rel = fields
        elif len(fields) == 3:
            qid, doc, rel = fields
        else:
            raise InputError(
                f"{p}:{n}: expected 'qid 0 docid rel' (TREC) or 'query-id corpus-id score' (BEIR)"
            )
        try:
            value = float(rel)
        except ValueError:
            if not qrels and n == _first_content_line(raw_lines):
                continue  # the BEIR header
            raise InputError(f"{p}:{n}: relevance {rel!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"{p}:{n}: relevance {rel!r} is not a finite number")
        if value != int(value):
            raise InputError(f"{p}:{n}: relevance {rel!r} must be an integer grade")
        qrels.setdefault(qid, {})[doc] = int(value)
    if not qrels:
        raise InputError(f"{p} holds no judgements")
    return qrels


def _first_content_line(raw_lines: list[tuple[int, bytes]]) -> int:
    return next((n for n, raw in raw_lines if raw.strip() and not raw.lstrip().startswith(b"#")), 0)
