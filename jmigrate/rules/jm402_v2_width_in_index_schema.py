"""JM402: a vector index or collection schema declared with a v2 width."""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.rules._widths import enclosing_block, python_widths, text_block_tie, tied, width_finding
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding

# Other files: key = width, recognised only with a vector word nearby.
_CONFIG = re.compile(
    r"""(?im)["'`]?\b(size|dims|dim|dimensions|dimension|vector_size|numDimensions|vector\.dimensions)["'`]?"""
    r"""\s*[:=]\s*(\d{3,4})\b"""
)
_CONTEXT = {
    "size": re.compile(r"(?i)distance|cosine|\bdot\b|euclid|qdrant|vectors?\b"),
    "vector_size": re.compile(r"(?i)."),
    "dims": re.compile(r"(?i)dense_vector|knn_vector|hnsw|distance|similarity"),
    "dimension": re.compile(
        r"(?i)pinecone|metric|createIndex|create_index|createCollection|create_collection|collectionName|"
        r"serverless|\bindex\b|knn_vector|space_type|vector"
    ),
    # MongoDB Atlas: {"type": "vector", "numDimensions": 768}; old knnVector mappings say "dimensions" (a
    # request's "dimensions" is the v3 parameter: only inside a knnVector mapping here).
    "numdimensions": re.compile(r"."),
    "dimensions": re.compile(r"knnVector"),
    "vector.dimensions": re.compile(r"."),  # Neo4j vector index options
    "dim": re.compile(r"(?i)FLOAT_VECTOR|milvus|FieldSchema|vector"),
}
# Redis (FT.CREATE in redis-cli, a Python/JS string or a client call): `VECTOR HNSW 6 TYPE FLOAT32 DIM 768`.
_REDIS = re.compile(r"\bVECTOR\s+(?:HNSW|FLAT|SVS-VAMANA)\s+\d+\b[^\n]{0,200}?\bDIM\s+(\d{3,4})\b")
# Arrow schemas in JS/TS (LanceDB): new FixedSizeList(768, new Field("item", new Float32())); Neo4j's
# db.index.vector.createNodeIndex(name, label, property, 768, similarity).
_FIXED_LIST = re.compile(
    r"\bFixedSizeList\s*\(\s*(\d{3,4})\b|\bcreate(?:Node|Relationship)Index\s*\((?:[^(),]*,){3}\s*(\d{3,4})\b"
)


@rule(
    code="JM402",
    name="v2-width-in-index-schema",
    summary="index/collection schema of a v2 width (Qdrant size, Pinecone dimension, Milvus dim, "
    "ES/OpenSearch dims, Redis DIM, FAISS, pyarrow)",
    explanation="Qdrant VectorParams(size=768) / `size: 768` / a REST body {\"size\": 768, \"distance\": "
    "...}, Pinecone dimension=768, Milvus FieldSchema(dim=768) / schema.add_field(dim=768), Elasticsearch "
    "dense_vector dims: 768, OpenSearch knn_vector dimension: 768, Redis VECTOR HNSW ... DIM 768 (in a "
    "command or a field's attributes), Neo4j `vector.dimensions`: 768 / createNodeIndex(..., 768, ...), "
    "MongoDB Atlas numDimensions: 768 (knnVector dimensions: 768), FAISS IndexFlatIP(768), "
    "pyarrow/LanceDB pa.list_(pa.float32(), 768) "
    "and FixedSizeList(768, ...): the index holds v2-wide vectors. A `dim`/`size` key of a config section "
    "that names a v2 model is that model's width (the same key next to base-code is not). v3 is 1024 wide "
    "unless dimensions=768 is requested.",
    example="client.create_collection('docs', vectors_config=VectorParams(size=768, distance=Distance.DOT))",
    fix="Writes 1024 (unsafe: a new index is built), or keep the width with dimensions=768. Reported only "
    "when the project uses a v1/v2 model of that width.",
    applicability=Applicability.UNSAFE,
    languages=["*"],
    project_level=True,
)
def check(ctx: FileContext) -> Iterator[Finding]:
    text = ctx.src.text
    for m in _REDIS.finditer(text):  # any file: the command is often a string in code
        width = int(m.group(1))
        if tied(ctx, width, strong=True):
            yield width_finding(ctx, m.start(1), m.end(1), width, "Redis VECTOR field DIM")
    if ctx.language == "python":
        for w in python_widths(ctx):
            if w.rule == "JM402":
                yield width_finding(ctx, w.start, w.end, w.width, w.what)
        return
    for m in _FIXED_LIST.finditer(text):
        group = 1 if m.group(1) else 2
        width = int(m.group(group))
        if tied(ctx, width, strong=True):
            what = "Arrow FixedSizeList schema" if group == 1 else "Neo4j vector index"
            yield width_finding(ctx, m.start(group), m.end(group), width, what)
    for m in _CONFIG.finditer(text):
        key, width = m.group(1).lower(), int(m.group(2))
        near = enclosing_block(text, m.start())
        # The block's own model decides first: base-code's 768 stays, a v2 model's 768 goes.
        verdict = text_block_tie(ctx, enclosing_block(text, m.start(), lead=0), width)
        if verdict is False or (key == "dimensions" and not _CONTEXT[key].search(near)):
            continue
        schema = _CONTEXT[key].search(near) or _comment_says_jina(text, m.end())
        if verdict or (schema and tied(ctx, width, strong=True)):
            yield width_finding(ctx, m.start(2), m.end(2), width, f"vector schema `{m.group(1)}`")


def _comment_says_jina(text: str, at: int) -> bool:
    """`dim: 768  # jina v2 width`: a trailing comment on the line ties the number to Jina."""
    end = text.find("\n", at)
    rest = text[at : end if end >= 0 else len(text)]
    m = re.search(r"(?:#|//|--)(.*)$", rest)
    return m is not None and "jina" in m.group(1).lower()
