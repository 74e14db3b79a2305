"""JM503: an index, collection, table or signal name that still says v2 while it will hold v3 vectors.

`apply` rewrites model ids, not the names of the stores they filled: `collection_name="docs_jina_v2"` keeps
pointing at the v2 vectors (or, reused for v3, mislabels them). Neither is safe to rename automatically
(the name is the stored data's address), so it is reported for a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.text import model_matches

_NAME = r"""(?P<name>[\w.-]*(?:jina|emb)[\w.-]*?v2[\w.-]*|[\w.-]*v2[\w.-]*?(?:jina|emb)[\w.-]*)"""
# A key that names stored vectors, then a quoted name mentioning jina/embedding(s) and v2.
_LABEL = re.compile(
    r"""(?ix)\b\w*?(?:collection(?:_?name)?|index(?:_?name)?|table(?:_?name)?|namespace|class_name|indexName|
    collectionName|tableName)["']?\s*[=:]\s*["']""" + _NAME + """["']"""
)
# A named vector inside a store (Qdrant): `using="jina-embeddings-v2"` in query_points / Prefetch,
# `vector_name=` (LangChain), NamedVector(name=...), and the first key of a `vectors_config={...}` /
# PointStruct `vector={...}` dict. The vectors stored under that name are v2's.
_NAMED_VECTOR = re.compile(
    r"""(?x)(?:\b(?:using|vector_name|vector_field)\s*[=:]\s*
    |\bNamedVector\s*\(\s*name\s*=\s*
    |\b(?:vectors_config|vector|vectors)\s*=\s*\{\s*
    |["'](?:vectors|vector)["']\s*:\s*\{\s*)["']""" + _NAME + """["']"""
)


@rule(
    code="JM503",
    name="v2-label-for-stored-data",
    summary="a collection / index / table name that says v2 (it will hold v3 vectors, or still points at v2)",
    explanation="Store names are addresses of stored vectors. After the move to v3 a name that says v2 "
    "either still points at the v2 vectors (queries embedded with v3 searched against v2: mixed spaces) "
    "or labels a v3 store as v2. The model rename does not touch it, so it is reported.",
    example='Chroma(collection_name="docs_jina_v2", embedding_function=emb)',
    fix="None automatic: name the new v3 collection (e.g. ..._v3), re-embed into it, switch the code over.",
    applicability=Applicability.MANUAL,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    text = ctx.src.text
    if "v2" not in text:
        return
    found = sorted([*_LABEL.finditer(text), *_NAMED_VECTOR.finditer(text)], key=lambda m: m.start("name"))
    seen: set[int] = set()
    for m in found:
        name = m.group("name")
        if m.start("name") in seen:
            continue
        seen.add(m.start("name"))
        if any(True for _ in model_matches(name)):
            continue  # a model id inside the name: JM1xx reports (and rewrites) it
        yield ctx.finding(
            m.start("name"),
            m.end("name"),
            f"store or vector name {name!r} says v2 but will hold v3 vectors"
            " (or still points at the v2 ones)",
            "Create a new store for v3 (a name without v2), re-embed into it, then switch reads and writes",
            Applicability.MANUAL,
        )
