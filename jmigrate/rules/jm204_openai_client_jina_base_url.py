"""JM204: the OpenAI SDK pointed at Jina's API."""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding

_BASE_URL = re.compile(
    r"""(?i)\b(?:base_?url|api_base|openai_base_url|openai_api_base)["']?\s*[=:]\s*["']?https?://api\.jina\.ai"""
)


@rule(
    code="JM204",
    name="openai-client-jina-base-url",
    summary="OpenAI SDK (or OPENAI_BASE_URL) pointed at api.jina.ai",
    explanation="The OpenAI SDKs send `encoding_format` (the Python SDK sends base64 by default), which "
    "Jina's API rejects with 400 on v3; they also cannot send `task`.",
    example='client = OpenAI(base_url="https://api.jina.ai/v1", api_key=key)',
    fix="None automatic: call the API with httpx/requests (or the Jina SDK of your framework) so that "
    "`task` can be sent and `encoding_format` is not.",
    applicability=Applicability.MANUAL,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for m in _BASE_URL.finditer(ctx.src.text):
        yield ctx.finding(
            m.start(),
            m.end(),
            "OpenAI client pointed at Jina: it sends encoding_format (rejected on v3) and no task",
            'Call /v1/embeddings directly with "model": "jina-embeddings-v3" and "task"',
            Applicability.MANUAL,
        )
