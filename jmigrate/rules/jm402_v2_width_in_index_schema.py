"""JM402: a vector index or collection schema declared with a v2 width."""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Iterator

from jmigrate.rules._widths import tied, width_finding
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.memo import per_text
from jmigrate.scan.python import call_name, dict_key, kwarg, last_part
from jmigrate.scan.text import balanced_end

# Python: constructor -> keyword that holds the width (and positional index as a fallback).
_KEYWORD = {
    "VectorParams": ("size", None),
    "FieldSchema": ("dim", None),
    "create_index": ("dimension", None),
    "create_collection": ("dimension", None),
    "ServerlessSpec": ("dimension", None),
    "IndexFlatIP": ("d", 0),
    "IndexFlatL2": ("d", 0),
    "IndexHNSWFlat": ("d", 0),
    "IndexFlat": ("d", 0),
    "IndexLSH": ("d", 0),
    "IndexScalarQuantizer": ("d", 0),
    "IndexPQ": ("d", 0),
    "IndexIVFFlat": ("d", 1),
    "IndexIVFPQ": ("d", 1),
    "AnnoyIndex": ("f", 0),
    "list_": ("list_size", 1),
    "Index": ("dim", None),
    "FixedSizeListArray": ("list_size", None),
}
# Other files: key = width, recognised only with a vector word nearby.
_CONFIG = re.compile(r"""(?im)["']?\b(size|dims|dim|dimension|vector_size)["']?\s*[:=]\s*(\d{3,4})\b""")
_CONTEXT = {
    "size": re.compile(r"(?i)distance|cosine|\bdot\b|euclid|qdrant|vectors?\b"),
    "vector_size": re.compile(r"(?i)."),
    "dims": re.compile(r"dense_vector"),
    "dimension": re.compile(r"(?i)pinecone|metric|createIndex|create_index|serverless|\bindex\b"),
    "dim": re.compile(r"(?i)FLOAT_VECTOR|milvus|FieldSchema|vector"),
}


@rule(
    code="JM402",
    name="v2-width-in-index-schema",
    summary="index/collection schema of a v2 width (Qdrant size, Pinecone dimension, Milvus dim, ES dims, "
    "FAISS, pyarrow)",
    explanation="Qdrant VectorParams(size=768) / `size: 768`, Pinecone dimension=768, Milvus "
    "FieldSchema(dim=768), Elasticsearch dense_vector dims: 768, FAISS IndexFlatIP(768), "
    "pyarrow/LanceDB pa.list_(pa.float32(), 768): the index holds v2-wide vectors. v3 is "
    "1024 wide unless dimensions=768 is requested.",
    example="client.create_collection('docs', vectors_config=VectorParams(size=768, distance=Distance.DOT))",
    fix="Writes 1024 (unsafe: a new index is built), or keep the width with dimensions=768. Reported only "
    "when the project uses a v1/v2 model of that width.",
    applicability=Applicability.UNSAFE,
    languages=["*"],
    project_level=True,
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    if ctx.language == "python":
        if mod is None or not mod.int_constants(ctx.legacy_dims | ctx.project.legacy_dims):
            return  # every finding below is such a literal: a module without one has none
        for call in mod.calls:
            name = last_part(call_name(call))
            if name not in _KEYWORD:
                continue
            if name == "Index" and kwarg(call, "dim") is None:
                continue
            key, pos = _KEYWORD[name]
            kw = kwarg(call, key)
            node = kw.value if kw else (call.args[pos] if pos is not None and len(call.args) > pos else None)
            yield from _literal(ctx, node, f"{name}() schema")
        for dnode in mod.of_type(ast.Dict):
            t, d = dict_key(dnode, "type"), dict_key(dnode, "dims")
            if t is not None and d is not None and mod.constant_value(dnode.values[t]) == "dense_vector":
                yield from _literal(ctx, dnode.values[d], "Elasticsearch dense_vector mapping")
        return
    text = ctx.src.text
    for m in _CONFIG.finditer(text):
        key, width = m.group(1).lower(), int(m.group(2))
        near = _enclosing_block(text, m.start())
        if _CONTEXT[key].search(near) and tied(ctx, width, strong=True):
            yield width_finding(ctx, m.start(2), m.end(2), width, f"vector schema `{m.group(1)}`")


def _literal(ctx: FileContext, node: ast.AST | None, what: str) -> Iterator[Finding]:
    mod = ctx.py
    if (
        mod is not None
        and isinstance(node, ast.Constant)
        and type(node.value) is int
        and tied(ctx, node.value, strong=True)
    ):
        start, end = mod.span(node)
        yield width_finding(ctx, start, end, node.value, what)


_BLOCK_LINES = 200


@per_text()
def _lines(text: str) -> tuple[list[str], list[int]]:
    """The text split at "\n" and each line's start offset (once per file, not once per width)."""
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    return lines, starts


def _enclosing_block(text: str, offset: int) -> str:
    """The object (`{...}` and what precedes it) or the indented block (parent key and siblings) around a
    key, so that `size: 768` counts only next to vector words of the same schema."""
    depth = 0
    for i in range(offset - 1, max(-1, offset - 2000), -1):
        c = text[i]
        if c == "}":
            depth += 1
        elif c == "{":
            if depth == 0:
                end = balanced_end(text, i)
                return text[max(0, i - 80) : end if end > 0 else offset + 300]
            depth -= 1
    lines, starts = _lines(text)
    row = bisect.bisect_right(starts, offset) - 1

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    own = indent(lines[row])
    top = row
    # At most _BLOCK_LINES lines each way: a flat file is one huge "block", and scanning all of it for
    # every width in it was quadratic.
    while top > 0 and row - top < _BLOCK_LINES:
        top -= 1
        if lines[top].strip() and (indent(lines[top]) < own or lines[top].lstrip().startswith("[")):
            break
    bottom = row
    while (
        bottom + 1 < len(lines)
        and bottom - row < _BLOCK_LINES
        and (not lines[bottom + 1].strip() or indent(lines[bottom + 1]) >= own)
    ):
        if own == 0 and lines[bottom + 1].lstrip().startswith("["):
            break
        bottom += 1
    return "\n".join(lines[top : bottom + 1])
