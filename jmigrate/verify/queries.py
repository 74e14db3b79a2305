"""Read the query set, precomputed query vectors and relevance judgements (qrels) for `verify`.

Queries: JSONL, TSV, CSV or Parquet with an id and a text (and optionally a language). Qrels: TREC
(`qid 0 docid rel`) or BEIR TSV (`query-id corpus-id score`, with a header), graded or binary.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jmigrate.errors import InputError

QUERY_ID_KEYS = ("id", "_id", "query_id", "query-id", "qid")
QUERY_TEXT_KEYS = ("text", "query", "question")
LANGUAGE_KEYS = ("language", "lang")


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
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            out = []
            with path.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if line.strip():
                        rec = json.loads(line)
                        if not isinstance(rec, dict):
                            raise InputError(f"{path}:{n}: expected a JSON object per line")
                        out.append(rec)
            return out
        if suffix in (".tsv", ".csv"):
            with path.open(encoding="utf-8", newline="") as fh:
                return list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
        if suffix == ".parquet":
            return pq.read_table(path).to_pylist()
    except (OSError, ValueError, pa.ArrowException) as e:
        raise InputError(f"cannot read {path}: {e}") from e
    raise InputError(f"{path}: queries must be .jsonl, .tsv, .csv or .parquet")


def _key(rec: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in rec), None)


def load_queries(path: str | Path) -> list[Query]:
    """Queries in file order; duplicate ids and empty texts are input errors."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"queries file not found: {p}")
    recs = _records(p)
    if not recs:
        raise InputError(f"{p} holds no queries")
    id_key, text_key = _key(recs[0], QUERY_ID_KEYS), _key(recs[0], QUERY_TEXT_KEYS)
    if id_key is None or text_key is None:
        raise InputError(f"{p}: needs an id and a text field, found {sorted(recs[0])}")
    lang_key = _key(recs[0], LANGUAGE_KEYS)
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
    try:
        t = pq.read_table(p)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"cannot read query vectors {p}: {e}") from e
    names = t.column_names
    id_key = next((k for k in QUERY_ID_KEYS if k in names), None)
    vec_key = next((k for k in ("vector", "embedding") if k in names), None)
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

    TREC lines have four fields (`qid iter docid rel`); BEIR TSV has three (`query-id corpus-id
    score`) and a header line, which is recognised because its score field is not a number.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"cannot read qrels {p}: {e}") from e
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(lines, 1):
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
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
            if n == 1:
                continue  # the BEIR header
            raise InputError(f"{p}:{n}: relevance {rel!r} is not a number") from None
        if value != int(value):
            raise InputError(f"{p}:{n}: relevance {rel!r} must be an integer grade")
        qrels.setdefault(qid, {})[doc] = int(value)
    if not qrels:
        raise InputError(f"{p} holds no judgements")
    return qrels
