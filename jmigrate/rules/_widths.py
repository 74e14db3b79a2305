"""Shared by the vector-width rules (JM401-JM403): is this 768/512 the width of a v2 model in use?

A width counts only when a v1/v2 model that v3 replaces is named in the same file (any context) or, for
contexts that are unmistakably a vector schema (a vector column, an index definition, an EMBEDDING_DIM
setting), anywhere in the scanned project. Other 768s and 512s (chunk sizes, token limits, image sizes,
HNSW parameters, hidden sizes) are never findings.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache

from jmigrate.models import MODELS, V3, legacy_models
from jmigrate.scan.context import FileContext, replaced_dims
from jmigrate.scan.finding import Applicability, Edit, Finding
from jmigrate.scan.walk import language_of

# What stands before a width that one of JM401-JM403 can report in a file that names no model (so only the
# project-wide "strong" contexts count there). Either (1) a key on the same line, the width right after
# its `=` / `:` (quotes, an annotation or an opening parenthesis allowed): a schema keyword or key
# (`list_size`, `dim`, `dims`, `dimension(s)`, FAISS `d`, Annoy `f`; `size` below) or a constant/setting
# named like _WIDTH_NAME in JM403 (EMBEDDING_DIM, vector_size, emb_dim, n_dims, d_model_out); or (2) a
# vector column `vector(768` / `halfvec(768`; or (3) a positional argument of `Index...(` (FAISS, Annoy) or
# pyarrow `list_(`, possibly over several lines. A rule that learns a new spelling must add it here, or
# files without a model name never reach it (tests/test_plan_widths.py runs the spellings through `plan`).
_KEY_TAIL = rb"""\b[^\n]{0,80}?[:=]\s*\(?\s*["']?"""
_BEFORE_WIDTH = re.compile(
    rb"""(?i)(?:\b(?:\w*dim\w*|list_size|\w*vec(?:tor)?_?(?:size|width)\w*|\w*emb\w*?(?:size|width)\w*|"""
    rb"""d_?model_out|d|f)"""
    + _KEY_TAIL
    + rb"""|\b(?:vector|halfvec)\s*\(\s*"""
    rb"""|(?:index\w*|list_)\s*\([^;]{0,100}?[(,]\s*)\Z"""
)
# A bare `size` key: YAML/JSON schemas (JM402 judges the block around it), but in Python only Qdrant's
# VectorParams(size=...) (buffer and shared-memory sizes are everywhere in Python code).
_SIZE_KEY = re.compile(rb"(?i)\bsize" + _KEY_TAIL + rb"\Z")
_VECTOR_PARAMS = re.compile(rb"VectorParams\s*\(")
# How far before the width the key may start; how far back a VectorParams( call may open.
_WINDOW = 120
_CALL_WINDOW = 1000


_WORD_BYTES = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


@lru_cache(maxsize=8)
def width_number(widths: frozenset[int]) -> re.Pattern[bytes]:
    """Any of `widths` followed by a word boundary (callers check what precedes: see `width_in_context`)."""
    return re.compile(b"(?:" + b"|".join(str(w).encode() for w in sorted(widths)) + rb")\b")


def legacy_widths() -> frozenset[int]:
    """Every width a legacy model could make a finding of (the project's models are not known yet)."""
    return frozenset(replaced_dims({m.name for m in legacy_models()}))


def width_in_context(data: bytes, widths: Collection[int], path: str = "") -> bool:
    """Byte test for a file that names no model: could JM401-JM403 report one of `widths` in it?

    512 alone is in thousands of files (buffer sizes); a width right after a vector/schema key is rare.
    Plain substring tests first (memchr speed), then the key only in the bytes just before each number.
    """
    if not any(str(w).encode() in data for w in widths):
        return False
    for m in width_number(frozenset(widths)).finditer(data):
        # A whole number, leading zeros allowed as int() reads them (`DIM=0768`); checked by hand because
        # a look-behind in the pattern makes the regex scan several times slower.
        start = m.start()
        while start > 0 and data[start - 1] == 0x30:  # "0"
            start -= 1
        if start > 0 and data[start - 1] in _WORD_BYTES:
            continue
        if _BEFORE_WIDTH.search(data, max(0, start - _WINDOW), start):
            return True
        if _SIZE_KEY.search(data, max(0, start - _WINDOW), start) and (
            language_of(path) != "python" or _VECTOR_PARAMS.search(data, max(0, start - _CALL_WINDOW), start)
        ):
            return True
    return False


def tied(ctx: FileContext, width: int, strong: bool) -> bool:
    return width in ctx.legacy_dims or (strong and width in ctx.project.legacy_dims)


def width_finding(ctx: FileContext, code: str, start: int, end: int, width: int, what: str) -> Finding:
    """Finding for the digits of `width` at text[start:end]; the fix writes v3's default width."""
    models = sorted(
        m
        for m in (ctx.models or ctx.project.legacy_models)
        if MODELS[m].dims == width and MODELS[m].replacement
    )
    v3 = MODELS[V3].dims
    return ctx.finding(
        code,
        start,
        end,
        f"{what} of width {width}, the width of {', '.join(models) or 'a v2 model'}",
        f"Change it to {v3} and rebuild the index (schema migration), or keep {width} and request "
        f"dimensions={width} from v3; either way re-embed everything",
        Applicability.UNSAFE,
        [Edit(start, end, str(v3))],
        {"dimensions": {"default": v3, "keep_schema": width}, "model": V3},
    )
