"""Which column (or JSON key) holds what, by name: one list per role, shared by every reader.

`reindex` (sources), `plan` (store discovery) and `verify` (indexes, queries) pick columns from these
lists, so a file one command understands the others understand the same way. Matching ignores case;
the first name in the list that a file has wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

ID_NAMES = ("id", "_id", "doc_id", "docid", "document_id", "uuid", "key", "pk", "chunk_id")
TEXT_NAMES = ("text", "content", "contents", "body", "document", "page_content", "passage", "chunk",
              "sentence", "input")
VECTOR_NAMES = ("vector", "embedding", "embeddings", "vectors", "emb", "values")
QUERY_ID_NAMES = ("id", "_id", "query_id", "query-id", "qid")
QUERY_TEXT_NAMES = ("text", "query", "question")
LANGUAGE_NAMES = ("language", "lang")


def pick(columns: Iterable[str], candidates: Sequence[str]) -> str | None:
    """The column named by the first candidate (case-insensitive; an exact match beats a case variant)."""
    cols = list(columns)
    exact = set(cols)
    lower: dict[str, str] = {}
    for c in cols:
        lower.setdefault(c.lower(), c)
    for cand in candidates:
        if cand in exact:
            return cand
        if cand in lower:
            return lower[cand]
    return None
