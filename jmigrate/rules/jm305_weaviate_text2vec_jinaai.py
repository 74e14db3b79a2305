"""JM305: Weaviate's text2vec-jinaai vectorizer not (yet) on v3."""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.models import V3
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding

_MODULE = re.compile(r"text2vec[-_]jinaai")


@rule(
    code="JM305",
    name="weaviate-text2vec-jinaai",
    summary="Weaviate text2vec-jinaai vectorizer with a v2 or default model",
    explanation="The text2vec-jinaai module sends only model (and dimensions) to Jina; a collection keeps "
    "the vectors it was built with, so moving to v3 means a new collection and a re-import. "
    "Reported when the file does not already name jina-embeddings-v3.",
    example='vectorizer_config=Configure.Vectorizer.text2vec_jinaai(model="jina-embeddings-v2-base-en")',
    fix="None automatic: create the collection with model jina-embeddings-v3 and re-import the objects.",
    applicability=Applicability.MANUAL,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    text = ctx.src.text
    if V3 in text:
        return
    for m in _MODULE.finditer(text):
        yield ctx.finding(
            m.start(),
            m.end(),
            "Weaviate text2vec-jinaai vectorizer on a v2 model (or the module default)",
            f'Create a new collection with text2vec-jinaai model "{V3}" and re-import',
            Applicability.MANUAL,
        )
