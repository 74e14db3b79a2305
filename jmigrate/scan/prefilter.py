"""Byte tests that decide which files `plan` decodes and parses, and the per-file work of large trees run
in worker processes.

Most files of a large tree name no Jina model and hold no vector width: they are read, tested with
substring searches (memchr speed) and dropped. Reading from Python costs about 3x `grep -rnI` on one core,
so on large trees the reading and testing is split across processes (results in walk order either way).
"""

from __future__ import annotations

import os
import re
import threading
from collections import deque
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

from jmigrate.models import legacy_models
from jmigrate.scan.context import replaced_dims
from jmigrate.scan.finding import SkippedFile
from jmigrate.scan.text import mentions_jina
from jmigrate.scan.walk import FilePath, RawFile, language_of, read_file, walk_paths

# Trees with more files than this are read by worker processes; smaller ones (tests, single projects)
# in-process, where starting processes would cost more than it saves.
PARALLEL_MIN_FILES = 2000
_BATCH = 256  # files per task: large enough to amortise pickling, small enough to balance the workers

# What stands before a width that one of JM401-JM403 can report in a file that names no model (so only the
# project-wide "strong" contexts count there). Either (1) a key on the same line, the width right after
# its `=` / `:` (quotes, an annotation or an opening parenthesis allowed): a schema keyword or key
# (`list_size`, `dim`, `dims`, `dimension(s)`, FAISS `d`, Annoy `f`; `size` below) or a constant/setting
# named like WIDTH_NAME in rules/_widths.py (EMBEDDING_DIM, vector_size, emb_dim, n_dims, d_model_out); or
# (2) a vector column `vector(768` / `halfvec(768` / Arrow `FixedSizeList(768`; or (3) a positional argument
# of `Index...(` (FAISS, Annoy, Pinecone create_index) or pyarrow `list_(`, possibly over several lines; or
# (4) a width name, then the width as a later argument (an env default, a settings field); or (5) Redis
# `... VECTOR HNSW 6 ... DIM 768`; or (6) the column types listed at (6) below. A rule that learns a new
# spelling must add it here, or files without a model name never reach it (tests/test_plan_widths.py runs
# the spellings through `plan`).
_KEY_TAIL = rb"""\b[^\n]{0,80}?[:=]\s*\(?\s*["']?"""
_WIDTH_WORDS = rb"""\w*dim\w*|\w*vec(?:tor)?_?(?:size|width|len)\w*|\w*emb\w*?(?:size|width|len)\w*"""
_BEFORE_WIDTH = re.compile(
    rb"""(?i)(?:\b(?:""" + _WIDTH_WORDS + rb"""|list_size|d_?model_out|d|f)"""
    + _KEY_TAIL
    # (4) a width name, then the width as a later argument: os.getenv("EMBED_DIM", "768"),
    # `vector_size: int = Field(768)`.
    + rb"""|\b(?:""" + _WIDTH_WORDS + rb""")\b[^\n]{0,80}?[,(]\s*["']?"""
    + rb"""|\b(?:vector|halfvec)\s*\(\s*|FixedSizeList\s*\(\s*"""
    # (6) other column types: CQL VECTOR<FLOAT, 768>, DuckDB/sqlite-vec FLOAT[768], Vespa
    # tensor<float>(x[768]), and a pydantic vector field `embedding: conlist(float, min_length=768)`.
    rb"""|\bvector\s*<\s*float\s*,\s*|(?<![\w.])(?:float|double|real)[48]?\s*\[\s*"""
    rb"""|\btensor\s*<\s*\w+\s*>\s*\(\s*\w+\s*\[\s*"""
    rb"""|\b(?:emb|vec)\w*\b[^\n]{0,60}?\b(?:min|max)_(?:length|items)\s*=\s*"""
    rb"""|(?:index\w*|list_)\s*\([^;]{0,100}?[(,]\s*)\Z"""
)
# (5) Redis: `VECTOR HNSW 6 TYPE FLOAT32 DIM 768` (no separator before the width).
_REDIS_DIM = re.compile(rb"\bVECTOR\s+(?:HNSW|FLAT|SVS-VAMANA)\s+\d+\b[^\n]{0,200}?\bDIM\s+\Z")
# A bare `size` key: YAML/JSON schemas (JM402 judges the block around it), but in Python only Qdrant's
# VectorParams(size=...) (buffer and shared-memory sizes are everywhere in Python code).
_SIZE_KEY = re.compile(rb"(?i)\bsize" + _KEY_TAIL + rb"\Z")
_VECTOR_PARAMS = re.compile(rb"""VectorParams\s*\(|["']vectors?["']\s*:|["']distance["']""")
# How far before the width the key may start; how far from it a VectorParams( call (or a schema body) may be:
# `size = 768` a few lines above the VectorParams(size=size) that uses it.
_WINDOW = 120
_CALL_WINDOW = 1000


_SEPARATORS = frozenset(b"=:(,[")
_WORD_BYTES = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


@lru_cache(maxsize=8)
def width_number(widths: frozenset[int]) -> re.Pattern[bytes]:
    """Any of `widths` followed by a word boundary (callers check what precedes: see `width_in_context`)."""
    return re.compile(b"(?:" + b"|".join(str(w).encode() for w in sorted(widths)) + rb")\b")


@lru_cache(maxsize=8)
def _needles(widths: frozenset[int]) -> tuple[bytes, ...]:
    return tuple(str(w).encode() for w in sorted(widths))


def legacy_widths() -> frozenset[int]:
    """Every width a legacy model could make a finding of (the project's models are not known yet)."""
    return frozenset(replaced_dims({m.name for m in legacy_models()}))


def width_in_context(data: bytes, widths: Collection[int], path: str = "") -> bool:
    """Byte test for a file that names no model: could JM401-JM403 report one of `widths` in it?

    512 alone is in thousands of files (buffer sizes); a width right after a vector/schema key is rare.
    Plain substring tests first (memchr speed), then the key only in the bytes just before each number.
    """
    widths = frozenset(widths)
    if not any(needle in data for needle in _needles(widths)):
        return False
    for m in width_number(widths).finditer(data):
        # A whole number, leading zeros allowed as int() reads them (`DIM=0768`); checked by hand because
        # a look-behind in the pattern makes the regex scan several times slower.
        start = m.start()
        while start > 0 and data[start - 1] == 0x30:  # "0"
            start -= 1
        if start > 0 and data[start - 1] in _WORD_BYTES:
            continue
        # Every key pattern ends in `=`, `:`, `(`, `,` or `[` (then blanks, a quote): most numbers fail here.
        before = data[max(0, start - 8) : start].rstrip(b" \t\r\n\"'")
        if before.endswith(b"DIM") and _REDIS_DIM.search(data, max(0, start - 300), start):
            return True
        if before and before[-1] not in _SEPARATORS:
            continue  # (only blanks in these 8 bytes: the regex below decides)
        if _BEFORE_WIDTH.search(data, max(0, start - _WINDOW), start):
            return True
        if _SIZE_KEY.search(data, max(0, start - _WINDOW), start) and (
            language_of(path) != "python"
            or _VECTOR_PARAMS.search(data, max(0, start - _CALL_WINDOW), start + _CALL_WINDOW)
        ):
            return True
    return False


@dataclass
class Sniffed:
    """A file read and tested: its bytes are kept only when it names Jina (the rest need no decoding)."""

    path: str
    abs_path: str
    size: int
    data: bytes | None  # the bytes when the file says "jina", else None
    # Named Jina: holds any legacy width at all. Did not: holds one next to a vector/schema key.
    width_hint: bool

    def raw(self) -> RawFile:
        return RawFile(self.path, self.abs_path, self.data or b"")


def sniff(item: RawFile, widths: frozenset[int]) -> Sniffed:
    """The byte tests for one file; `widths` empty when no width rule is selected."""
    data = item.data
    if mentions_jina(data):
        hint = bool(widths) and width_number(widths).search(data) is not None
        return Sniffed(item.path, item.abs_path, len(data), data, hint)
    hint = bool(widths) and width_in_context(data, widths, item.path)
    return Sniffed(item.path, item.abs_path, len(data), None, hint)


def _sniff_batch(
    batch: list[FilePath | SkippedFile], max_file_size: int, widths: frozenset[int]
) -> list[Sniffed | SkippedFile]:
    out: list[Sniffed | SkippedFile] = []
    for entry in batch:
        item = entry if isinstance(entry, SkippedFile) else read_file(entry, max_file_size)
        out.append(item if isinstance(item, SkippedFile) else sniff(item, widths))
    return out


def sniff_tree(
    root: str | Path, max_file_size: int, widths: frozenset[int], workers: int | None = None
) -> Iterator[Sniffed | SkippedFile]:
    """Read and test every file `walk` accepts, in walk order; in worker processes for large trees."""
    entries = walk_paths(root)
    head: list[FilePath | SkippedFile] = []
    for entry in entries:
        head.append(entry)
        if len(head) > PARALLEL_MIN_FILES:
            break
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    # Workers are forked: "spawn"/"forkserver" would re-run the caller's main script in every worker
    # (a script without an `if __name__ == "__main__"` guard breaks). Forking copies the caller's threads'
    # locks in whatever state they are, so a caller running threads gets the in-process path instead.
    forkable = "fork" in get_all_start_methods() and threading.active_count() == 1
    if len(head) <= PARALLEL_MIN_FILES or workers < 2 or not forkable:
        yield from _sniff_batch(head, max_file_size, widths)
        for entry in entries:
            yield from _sniff_batch([entry], max_file_size, widths)
        return
    pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"))
    try:
        pending: deque[Future[list[Sniffed | SkippedFile]]] = deque()
        batch: list[FilePath | SkippedFile] = []
        for entry in chain(head, entries):  # the listing goes on while the workers read
            batch.append(entry)
            if len(batch) >= _BATCH:
                pending.append(pool.submit(_sniff_batch, batch, max_file_size, widths))
                batch = []
                while pending and pending[0].done():  # hand back what is ready, in order
                    yield from pending.popleft().result()
        if batch:
            pending.append(pool.submit(_sniff_batch, batch, max_file_size, widths))
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)
