"""JM306: an Elasticsearch `_inference` endpoint with the jinaai service on a v2 model."""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.models import V3
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.text import legacy_model_mentions, window

_SERVICE = re.compile(r"""["']?service["']?\s*[:=]\s*["']jinaai["']""")


@rule(
    code="JM306",
    name="elasticsearch-jinaai-inference",
    summary='Elasticsearch _inference endpoint with "service": "jinaai" on a v2 model',
    explanation="An inference endpoint is bound to one model_id; the semantic_text / dense_vector fields "
    "filled through it hold v2 vectors. v3 needs a new endpoint and a reindex into a new field "
    "or index (1024 dims unless dimensions is set). Reported when a v1/v2 model is named near the service.",
    example='PUT _inference/text_embedding/jina {"service": "jinaai", "service_settings": '
    '{"model_id": "jina-embeddings-v2-base-en"}}',
    fix="None automatic: create a new endpoint with model_id jina-embeddings-v3, then reindex.",
    applicability=Applicability.MANUAL,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    text = ctx.src.text
    for m in _SERVICE.finditer(text):
        near = window(text, m.start(), 600, 600)
        if V3 in near or not legacy_model_mentions(near):
            continue
        yield ctx.finding(
            m.start(),
            m.end(),
            "Elasticsearch inference endpoint with the jinaai service on a v2 model",
            f"Create a new _inference endpoint with model_id {V3} and reindex into a new field",
            Applicability.MANUAL,
        )
