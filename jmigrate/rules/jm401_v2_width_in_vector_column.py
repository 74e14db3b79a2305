"""JM401: a vector column typed with a v2 width (pgvector `vector(768)`, `Vector(768)`, `VectorField`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.rules._widths import tied, width_finding
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding

# SQL DDL and the ORM/LanceDB column types spelled the same way, in any file (SQL often sits in strings).
_COLUMN = re.compile(
    r"(?i)\b(?:vector|halfvec)\s*\(\s*(\d{3,4})\s*[,)]|\bVectorField\s*\([^)]*?dimensions\s*=\s*(\d{3,4})"
    # Drizzle ORM: vector("embedding", { dimensions: 768 }).
    r"""|\b(?:vector|halfvec)\s*\(\s*["'`][\w-]*["'`]\s*,\s*\{[^}]{0,200}?\bdimensions\s*:\s*(\d{3,4})"""
    # Cassandra / Astra CQL: VECTOR<FLOAT, 768>.
    r"|\bvector\s*<\s*float\s*,\s*(\d{3,4})\s*>"
    # DuckDB / sqlite-vec: FLOAT[768] (one dimension: FLOAT[768][768] is a matrix).
    r"|(?<![\w.])(?:float|double|real)[48]?\s*\[\s*(\d{3,4})\s*\](?!\s*\[)"
    # Vespa: tensor<float>(x[768]) (one indexed dimension).
    r"|\btensor\s*<\s*\w+\s*>\s*\(\s*\w+\s*\[\s*(\d{3,4})\s*\]\s*\)"
)


@rule(
    code="JM401",
    name="v2-width-in-vector-column",
    summary="vector column of a v2 width: pgvector vector(768) / halfvec, Vector(768), "
    "VectorField(dimensions=768), Drizzle vector(..., { dimensions: 768 }), CQL VECTOR<FLOAT, 768>, "
    "FLOAT[768], Vespa tensor<float>(x[768])",
    explanation="A vector column is as wide as the model that fills it. v3 returns 1024 dimensions by "
    "default; a 768 (512 for small-en) column either changes or v3 is asked for "
    "dimensions=768 (Matryoshka), and in both cases every row is re-embedded.",
    example="CREATE TABLE docs (id bigserial, embedding vector(768));",
    fix="Writes 1024 (unsafe: it is a schema migration; keep the width with dimensions=768 instead if "
    "you prefer). Reported only when the project uses a v1/v2 model of that width.",
    applicability=Applicability.UNSAFE,
    languages=["*"],
    project_level=True,
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for m in _COLUMN.finditer(ctx.src.text):
        group = next(g for g in range(1, (m.re.groups or 0) + 1) if m.group(g))
        width = int(m.group(group))
        if tied(ctx, width, strong=True):
            yield width_finding(ctx, m.start(group), m.end(group), width, "vector column")
