"""Units of work for `reindex`: source rows cut into fixed-size units, validated, chunked and ready to embed.

A unit is `unit_rows` consecutive source rows. Its boundaries depend only on the source and the
settings, so a rerun sees the same units (resume depends on it). `Preparer` turns raw rows into a unit:
rejects with reasons, ids, the texts to embed (chunks when chunking), carried metadata.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from jmigrate.encoders.base import Encoder
from jmigrate.encoders.chunking import chunk_spans, safe_counter, truncate_to
from jmigrate.errors import InputError
from jmigrate.index.idset import IdSet
from jmigrate.index.rejects import reject
from jmigrate.index.settings import Settings
from jmigrate.index.sources import RawBatch, RowProblem, Source, empty_table
from jmigrate.textio import is_unicode

__all__ = ["Preparer", "Settings", "Unit", "keep_rows", "rebatch", "refused_input", "token_limit"]


@dataclass
class Unit:
    index: int
    first_row: int
    n_rows: int
    digest: str
    skip: bool = False  # committed by an earlier run: read only for ids and digest
    rejects: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    chunks: list[tuple[int, int, int]] | None = None  # (chunk_index, start, end) per output row
    docs: list[int] = field(default_factory=list)  # late chunking: output rows per document, in order
    src: list[int] = field(default_factory=list)  # per output row: its source row's index in the unit
    refused: list[dict[str, Any]] = field(default_factory=list)  # rows the encoder refused (journalled)
    meta: pa.Table | None = None
    tokens: int = 0
    truncated: int = 0
    journal: Path | None = None
    table: pa.Table | None = None


# --------------------------------------------------------------------------- reading and validation

def rebatch(batches: Iterator[RawBatch], n: int, limit: int | None) -> Iterator[RawBatch]:
    """Exactly `n` rows per batch (the last may be short), stopping after `limit` rows."""
    parts: list[RawBatch] = []
    have = 0
    seen = 0
    for b in batches:
        start = 0
        if limit is not None and seen + len(b) > limit:
            b = _slice(b, 0, limit - seen)
        seen += len(b)
        while start < len(b):
            take = min(n - have, len(b) - start)
            parts.append(_slice(b, start, start + take))
            have += take
            start += take
            if have == n:
                yield _concat(parts)
                parts, have = [], 0
        if limit is not None and seen >= limit:
            break
    if parts:
        yield _concat(parts)


def _slice(b: RawBatch, a: int, z: int) -> RawBatch:
    meta = b.metadata.slice(a, z - a) if b.metadata.num_columns else empty_table(z - a)
    return RawBatch(b.ids[a:z], b.texts[a:z], meta, b.problems[a:z] if b.problems else [None] * (z - a))


def _concat(parts: list[RawBatch]) -> RawBatch:
    if len(parts) == 1:
        return parts[0]
    n = sum(len(p) for p in parts)
    meta = pa.concat_tables([p.metadata for p in parts]) if parts[0].metadata.num_columns else empty_table(n)
    return RawBatch([i for p in parts for i in p.ids], [t for p in parts for t in p.texts], meta,
                    [q for p in parts for q in p.problems])


def _digest(raw: RawBatch) -> str:
    """What the unit's ids and texts hash to: compared on resume to catch an edited source."""
    h = hashlib.blake2b(digest_size=16)
    h.update("\x1f".join(map(str, raw.ids)).encode("utf-8", "surrogatepass"))
    h.update("\x1e".join(t if isinstance(t, str) else repr(t) for t in raw.texts)
             .encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _norm_id(rid: Any, row: int, has_column: bool) -> tuple[str | None, str | None]:
    """(id, problem)."""
    if type(rid) is str and has_column and rid.strip():
        return (rid, None) if is_unicode(rid) else (None, "id is not valid Unicode (lone surrogate)")
    if not has_column:
        return str(row), None
    if rid is None:
        return None, "id is null"
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        return None, f"id is {type(rid).__name__}, not a string or integer"
    rid = str(rid)
    if not rid.strip():
        return None, "id is empty"
    return rid, None



def token_limit(settings: Settings, encoder: Encoder) -> int:
    """The most tokens a text may have: the model's limit minus the task's instruction, which the
    API (or the local backend, or the OpenAI-compatible client) puts in front of it. Shared by the
    run and the dry run, so both reject the same rows."""
    from jmigrate.models import API_MAX_TOKENS, TASKS

    info = settings.model_info
    limit = info.max_tokens if info else API_MAX_TOKENS
    task = TASKS.get(settings.task or "")
    if task and task.prefix:
        limit -= encoder.count_tokens([task.prefix])[0]
    return limit


class Preparer:
    """Turns raw rows into a unit: rejects with reasons, ids, the texts to embed, chunk spans."""

    def __init__(self, source: Source, settings: Settings, encoder: Encoder, max_tokens: int) -> None:
        self.source = source
        self.s = settings
        self.encoder = encoder
        self.ids = IdSet()
        self.max_tokens = max_tokens
        self.safe_count = safe_counter(encoder)


    def unit(self, index: int, first_row: int, raw: RawBatch, skip: bool) -> Unit:
        u = Unit(index, first_row, len(raw), _digest(raw), skip=skip)
        has_id = self.source.id_column is not None
        normed = [_norm_id(r, first_row + i, has_id) for i, r in enumerate(raw.ids)]
        fresh = self.ids.add_many([rid for rid, _ in normed])
        if skip:
            return u
        keep: list[int] = []
        texts: list[str] = []
        for i, ((rid, problem), new) in enumerate(zip(normed, fresh, strict=True)):
            text = raw.texts[i]
            if not new:
                problem = problem or "duplicate id (its first row is kept)"
            problem = raw.problems[i] or problem or _text_problem(text)
            if problem:
                u.rejects.append(reject(first_row + i, rid if rid is not None else raw.ids[i], problem))
                continue
            keep.append(i)
            texts.append(text)
            u.ids.append(rid)  # type: ignore[arg-type]  # rid is set when there is no problem
        self._shape(u, raw, keep, texts)
        return u

    def _shape(self, u: Unit, raw: RawBatch, keep: list[int], texts: list[str]) -> None:
        """Apply the token limit and chunking; fills the unit's output rows."""
        s = self.s
        ids, u.ids = u.ids, []
        rows: list[int] = []  # source index within the unit, per output row
        if s.chunk_by is not None:
            u.chunks = []
            for i, rid, text in zip(keep, ids, texts, strict=True):
                spans = chunk_spans(text, s.chunk_by, s.chunk_size, s.chunk_overlap, self.encoder)
                if not spans:
                    u.rejects.append(reject(u.first_row + i, rid, "no chunks (nothing but whitespace)"))
                    continue
                for c, (a, z) in enumerate(spans):
                    u.ids.append(rid)
                    u.texts.append(text[a:z])
                    u.chunks.append((c, a, z))
                    rows.append(i)
                u.docs.append(len(spans))
            u.tokens = sum(self.encoder.count_tokens(u.texts)) if u.texts else 0
        else:
            counts = self.encoder.count_tokens(texts) if texts else []
            limit_counts = [max(n, self.safe_count(t)) if len(t) > self.max_tokens else n
                            for t, n in zip(texts, counts, strict=True)]
            chunks: list[tuple[int, int, int]] | None = [] if s.on_long == "chunk" else None
            u.chunks = chunks
            for i, rid, text, n, n_limit in zip(keep, ids, texts, counts, limit_counts, strict=True):
                if n_limit > self.max_tokens:
                    n = n_limit
                    if s.on_long == "reject":
                        u.rejects.append(reject(u.first_row + i, rid,
                                                f"too long: {n} tokens > {self.max_tokens} "
                                                "(use --on-long truncate or chunk)"))
                        continue
                    if s.on_long == "truncate":
                        text, n = truncate_to(text, self.max_tokens, self.safe_count)
                        u.truncated += 1
                    else:
                        spans = chunk_spans(text, "tokens", self.max_tokens, 0, self.encoder,
                                            self.safe_count)
                        for c, (a, z) in enumerate(spans):
                            u.ids.append(rid)
                            u.texts.append(text[a:z])
                            assert chunks is not None
                            chunks.append((c, a, z))
                            rows.append(i)
                        u.tokens += sum(self.encoder.count_tokens([text[a:z] for a, z in spans]))
                        continue
                u.ids.append(rid)
                u.texts.append(text)
                if chunks is not None:
                    chunks.append((0, 0, len(text)))
                rows.append(i)
                u.tokens += n
        u.src = rows
        u.meta = raw.metadata.take(pa.array(rows, pa.int64())) if raw.metadata.num_columns else None
        u.rejects.sort(key=lambda r: r["row"])


def refused_input(e: BaseException) -> bool:
    """An error about the inputs themselves (the API's 400/413/422, a local backend's InputError),
    as opposed to the key, the credit or the network, which must stop the run."""
    return isinstance(e, InputError) or re.search(r"HTTP (400|413|422)\b", str(e)) is not None


def keep_rows(u: Unit, keep: list[bool]) -> None:
    """Drop the output rows of refused source rows from a unit (before its table is built)."""
    if all(keep):
        return
    idx = [i for i, k in enumerate(keep) if k]
    u.ids = [u.ids[i] for i in idx]
    u.texts = [u.texts[i] for i in idx]
    u.src = [u.src[i] for i in idx]
    if u.chunks is not None:
        u.chunks = [u.chunks[i] for i in idx]
    if u.meta is not None:
        u.meta = u.meta.take(pa.array(idx, pa.int64()))


def _text_problem(text: Any) -> str | None:
    if type(text) is str and text.strip() and text.isprintable() and text.isascii():
        return None  # the common case, without encoding the text
    if isinstance(text, RowProblem):
        return str(text)
    if text is None:
        return "text is null"
    if not isinstance(text, str):
        return f"text is {type(text).__name__}, not a string"
    if not text.strip():
        return "text is empty"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text is not valid Unicode (lone surrogate)"
    return None
