"""JM403: code and settings that hard-code a v2 width (EMBEDDING_DIM = 768, return 768, asserts, shapes)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.models import MODELS
from jmigrate.rules._widths import (
    enclosing_block,
    python_widths,
    text_block_tie,
    tied,
    v3_only_elsewhere,
    width_finding,
    width_name,
)
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.text import balanced_end, legacy_model_mentions

# `KEY=768` / `KEY: 768` / `"key": 768,` / `export const KEY: number = 768;` / `- KEY=768` (compose lists),
# and the constants of other languages: `private static final int KEY = 768;`, `pub const KEY: usize = 768;`.
_SETTING = re.compile(
    r"""(?im)^[ \t]*(?:-[ \t]+)?["']?"""
    r"""(?:(?:export|ENV|ARG|const|let|var|val|readonly|static|public|private|protected|internal|final|pub|"""
    r"""int|long|Integer|def)[ \t]+)*"""
    r"""["']?([A-Za-z_][\w.-]*)["']?"""
    r"""[ \t]*(?::[ \t]*(?:number|int|integer|usize|[ui](?:16|32|64)|Int|Long)[ \t]*)?"""
    r"""[=:][ \t]*["']?(\d{3,4})["']?"""
    r"""[ \t]*[,;]?[ \t]*(?:(?:#|//).*)?$"""
)
# Keys JM402 judges with their schema context (`size: 768` may be anything else).
_SCHEMA_KEYS = {"size", "dims", "dim", "dimension", "vector_size", "dimensions"}
# A quoted v1/v2 id, then the width as the next element or argument.
_BESIDE_MODEL = re.compile(r"""["'`]([\w./:-]*jina-embedding[\w.-]*)["'`]\s*,\s*(\d{3,4})\b(?!\s*[.\w])""")
# `"dimensions": 768` / `dimensions: 768` anywhere (one-line option objects included).
_DIMENSIONS_KEY = re.compile(r"""(?i)["']?\bdimensions["']?\s*[:=]\s*(\d{3,4})\b""")
# A default parameter `name = 768` / `name: number = 768` followed by `,` or `)`.
_JS_DEFAULT = re.compile(r"""\b([A-Za-z_$][\w$]*)\s*(?::\s*number\s*)?=\s*(\d{3,4})\b(?=\s*[,)])""")
# JS/TS tests and zero vectors, judged like Python's (the file names the model): expect(emb.length).toBe(768),
# expect(vectors[0]).toHaveLength(768), assert.equal(vec.length, 768), new Array(768).fill(0).
_JS_WIDTH = re.compile(
    r"""(?i)\b(?:emb|vec)[\w$]*(?:\[[^\]\n]{0,40}\])*(?:\.length\)?\s*(?:\.to(?:Be|Equal|StrictEqual)\(\s*|[!=]==?\s*|,\s*)"""
    r"""|\)\.toHaveLength\(\s*)(\d{3,4})\b"""
    r"""|\.(?:dim|dims|dimension|dimensions|embeddingDim\w*)\)\s*\.to(?:Be|Equal|StrictEqual)\(\s*(\d{3,4})\b"""
    r"""|\b(?:new\s+)?(?:Array|Float32Array|Float64Array)\(\s*(\d{3,4})\s*\)"""
)


@rule(
    code="JM403",
    name="v2-width-in-code",
    summary="v2 width hard-coded in code or settings: EMBEDDING_DIM = 768, return 768, assert ... == 768, "
    "array shapes",
    explanation="Constants and checks written for v2's width break (or silently truncate) once v3 returns "
    "1024 dimensions. Settings named like a width (constants, `os.getenv(\"EMBED_DIM\", \"768\")` defaults, "
    "parameter defaults, settings fields `Field(default=768)`, keywords `embed_dim=768`, dict keys and the "
    "keys of width tables `{\"VECTOR_SIZES\": {768: ...}}`, pydantic vector fields `conlist(float, "
    "min_length=768)`, .env / compose / JSON / TS config entries and the constants of Java, Kotlin, Rust, "
    "Go and C#, a value whose comment says Jina, a plain name a store schema takes as its width: "
    "`d = 768; faiss.IndexFlatIP(d)`) count whenever the project uses a v1/v2 model "
    "of that width; a width next to a model in the same call, dict, class or config block belongs to "
    "that model (`{\"jina-embeddings-v2-base-en\": 768}`, `(\"<v2 id>\", 512)` tuples, struct literals and "
    "arguments that pass the id and its width together, a model table's or options object's `dimensions: "
    "768` beside a v2 id, a default `dimensions = 768` beside a default v2 model; base-code's 768 stays). "
    "`return 768` in a width function, asserts, `if len(vec) != 768` checks and unittest/jest checks of "
    "a vector's length or shape, vector slices `vec[:768]`, array shapes and zero "
    "vectors (`[0.0] * 768`) only when the same file names the model. `dimensions` (the API parameter) "
    "is never flagged.",
    example="EMBEDDING_DIM = 768",
    fix="Writes 1024 (unsafe), or keep the width and request dimensions=768 from v3.",
    applicability=Applicability.UNSAFE,
    languages=["*"],
    project_level=True,
)
def check(ctx: FileContext) -> Iterator[Finding]:
    if ctx.language == "python":
        for w in python_widths(ctx):
            if w.rule == "JM403":
                yield width_finding(ctx, w.start, w.end, w.width, w.what)
        return
    text = ctx.src.text
    seen: set[int] = set()  # digits already reported (a default `dimensions = 768` matches two patterns)
    for f in _text_findings(ctx, text):
        if f.edits and f.edits[0].start in seen:
            continue
        seen.update(e.start for e in f.edits)
        yield f


def _text_findings(ctx: FileContext, text: str) -> Iterator[Finding]:
    for m in _SETTING.finditer(text):
        name, width = m.group(1), int(m.group(2))
        if v3_only_elsewhere(ctx, width) and not re.search(r"(?i)emb|vec", name):
            continue  # a project on v3: only settings that say what they size (see v3_only_elsewhere)
        if ctx.language == "markdown" and text[m.start(1) - 1 : m.start(1)] in "\"'" and m.start(1):
            continue  # a JSON sample in a README is a captured response more often than a setting
        if name.lower() in _SCHEMA_KEYS or not width_name(name.rsplit(".", 1)[-1]):
            continue
        # A setting next to the model it describes belongs to that model (base-code's 768 stays).
        verdict = text_block_tie(ctx, enclosing_block(text, m.start(), lead=0), width)
        if verdict or (verdict is None and tied(ctx, width, strong=True)):
            yield width_finding(ctx, m.start(2), m.end(2), width, f"setting {name}")
    for m in _BESIDE_MODEL.finditer(text):
        # {"jina-embeddings-v2-base-en", 768} (Go), builder("<v2 id>", 512) (Java), run("<v2 id>", 512).
        width = int(m.group(2))
        if _names_replaced_model(m.group(1), width) and tied(ctx, width, True):
            yield width_finding(ctx, m.start(2), m.end(2), width, "width beside its model")
    for m in _DIMENSIONS_KEY.finditer(text):
        # A model table's (or a factory's options') `dimensions` beside a v2 id is that model's width; a
        # request's `dimensions` beside v3 is the v3 parameter and is never reported.
        width = int(m.group(1))
        block = enclosing_block(text, m.start(), lead=0)
        if _names_replaced_model(block, width) and "knnVector" not in block and tied(ctx, width, True):
            yield width_finding(ctx, m.start(1), m.end(1), width, "model width")
    if ctx.language != "js":
        return
    for m in _JS_DEFAULT.finditer(text):
        # constructor(apiKey, model = "jina-embeddings-v2-base-en", dimensions = 768): the default width
        # of the default model.
        name, width = m.group(1), int(m.group(2))
        if not (width_name(name) or name.lower() in ("dimensions", "dims", "dim", "dimension")):
            continue
        params = _parameter_list(text, m.start())
        if params is not None and _names_replaced_model(params, width) and tied(ctx, width, True):
            yield width_finding(ctx, m.start(2), m.end(2), width, f"default of {name}")
    for m in _JS_WIDTH.finditer(text):
        group = next(g for g in (1, 2, 3) if m.group(g))
        width = int(m.group(group))
        if tied(ctx, width, strong=False):
            yield width_finding(ctx, m.start(group), m.end(group), width, "vector length")


def _parameter_list(text: str, at: int) -> str | None:
    """The `( ... )` around `at` (a parameter list), looking back at most 500 characters."""
    depth = 0
    for i in range(at - 1, max(-1, at - 500), -1):
        c = text[i]
        if c == ")":
            depth += 1
        elif c == "(":
            if depth == 0:
                end = balanced_end(text, i)
                return text[i:end] if end > 0 else None
            depth -= 1
        elif c in "{};":
            return None
    return None


def _names_replaced_model(block: str, width: int) -> bool:
    return any(MODELS[m].replacement and MODELS[m].dims == width for m, _, _ in legacy_model_mentions(block))
