"""JM305: Weaviate's text2vec-jinaai vectorizer on a v2 model (or a default that may be v2).

Weaviate's module (usecases/modulecomponents/clients/jinaai in weaviate/weaviate, >= 1.26) sends
retrieval.passage when vectorizing objects and retrieval.query for queries with v3 models, and dimensions:
moving to v3 is the model name plus a new collection. Its default model is jina-embeddings-v4 since
Weaviate 1.31.6 (jina-embeddings-v2-base-en before): a configuration that names a v3/v4 (or any non-v2)
model is not a finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.models import V3
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.text import balanced_end, model_matches

_MODULE = re.compile(r"text2vec[-_]jinaai")
# A Jina model id given to the module: `model="..."`, `model: ...`, `"model": "..."`.
_MODEL = re.compile(r"""(?i)\bmodel["']?\s*[=:]\s*["']?(jina-[\w.-]+)""")
_WINDOW = 400  # a YAML/JSON block or config call: the model key sits just after the module name


def _configured_model(text: str, at: int) -> str | None:
    """The model id configured next to the module name at `at`, if any."""
    rest = text[at : at + _WINDOW]
    paren = re.match(r"[\w-]*\s*\(", rest)
    if paren:  # Configure.Vectorizer.text2vec_jinaai(model=...): only inside the call
        open_at = at + paren.end() - 1
        end = balanced_end(text, open_at)
        rest = text[open_at : end if end > 0 else open_at + _WINDOW]
    m = _MODEL.search(rest)
    return m.group(1) if m else None


@rule(
    code="JM305",
    name="weaviate-text2vec-jinaai",
    summary="Weaviate text2vec-jinaai vectorizer with a v2 model (or its default, v2 before Weaviate 1.31.6)",
    explanation="A Weaviate collection keeps the vectors it was built with, so moving to v3 means a new "
    "collection and a re-import. With a v3 model the module sends retrieval.passage for objects and "
    "retrieval.query for queries itself. Its default model is jina-embeddings-v4 since Weaviate 1.31.6 "
    "(jina-embeddings-v2-base-en before); a configuration naming a v3 or v4 model is not reported.",
    example='vectorizer_config=Configure.Vectorizer.text2vec_jinaai(model="jina-embeddings-v2-base-en")',
    fix="None automatic: create the collection with model jina-embeddings-v3 and re-import the objects.",
    applicability=Applicability.MANUAL,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    text = ctx.src.text
    names_newer = re.search(r"jina-embeddings-v[3-9]", text) is not None
    for m in _MODULE.finditer(text):
        model = _configured_model(text, m.end())
        if model is not None:
            legacy = [x.model for x in model_matches(model)]
            if not legacy or legacy[0].replacement is None:
                continue  # v3, v4, CLIP... or v2-base-code (JM104): not a v2 text finding here
            what = f"on {legacy[0].name}"
        elif names_newer:
            continue  # the file configures a newer model elsewhere (e.g. a module-level default)
        else:
            what = "on its default model (jina-embeddings-v2-base-en before Weaviate 1.31.6)"
        yield ctx.finding(
            m.start(),
            m.end(),
            f"Weaviate text2vec-jinaai vectorizer {what}",
            f'Create a new collection with text2vec-jinaai model "{V3}" (the module then sends the '
            "retrieval tasks itself) and re-import the objects",
            Applicability.MANUAL,
        )
