"""JM204: the OpenAI SDK pointed at Jina's API.

The SDK can send `task` (and `dimensions`, `late_chunking`) through `extra_body={...}` (openai-python
`Embeddings.create(..., extra_body=...)`, src/openai/resources/embeddings.py); what breaks is
`encoding_format`, which the Python SDK sends (base64) unless told otherwise and Jina's API rejects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from jmigrate.rules._calls import flow
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import call_name, kwarg, last_part

_BASE_URL = re.compile(
    r"""(?i)\b(?:base_?url|api_base|openai_base_url|openai_api_base)["']?\s*[=:]\s*["']?https?://api\.jina\.ai"""
)


_JINA_URL = re.compile(r"https?://api\.jina\.ai(?:[/:?#]|$)")
_CLIENTS = {"OpenAI", "AsyncOpenAI"}
MESSAGE = (
    "OpenAI client pointed at Jina: it sends encoding_format (rejected on v3) and no task unless given one "
    "in extra_body"
)
FIX = (
    'Use model "jina-embeddings-v3" with extra_body={"task": "retrieval.passage"} for documents and '
    '{"task": "retrieval.query"} for queries; verify encoding_format is not rejected, or call '
    "/v1/embeddings directly"
)


@rule(
    code="JM204",
    name="openai-client-jina-base-url",
    summary="OpenAI SDK (or OPENAI_BASE_URL) pointed at api.jina.ai",
    explanation="The OpenAI SDKs send `encoding_format` (the Python SDK sends base64 by default), which "
    "Jina's API rejects with 400 on v3. `task` is not an SDK parameter but goes through "
    "`extra_body={\"task\": ...}`.",
    example='client = OpenAI(base_url="https://api.jina.ai/v1", api_key=key)',
    fix="None automatic: send the task with extra_body (retrieval.passage for documents, retrieval.query "
    "for queries) and check a v3 call succeeds despite encoding_format; or call /v1/embeddings directly.",
    applicability=Applicability.MANUAL,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    text = ctx.src.text
    lines: set[int] = set()
    for m in _BASE_URL.finditer(text):
        found = ctx.finding(m.start(), m.end(), MESSAGE, FIX, Applicability.MANUAL)
        lines.add(found.line)
        yield found
    # The client is configured on its constructor's line (`client = OpenAI(` with base_url on the next line,
    # or a URL constant / default / env default): the finding sits there too.
    mod = ctx.py if ctx.language == "python" else None
    if mod is None or "api.jina.ai" not in text:
        return
    for call in mod.calls:
        if last_part(call_name(call)) not in _CLIENTS:
            continue
        kw = kwarg(call, "base_url", "api_base")
        if kw is None:
            continue
        values, _ = flow(ctx, mod).values(kw.value)
        if not values or not all(_JINA_URL.match(v) for v in values):
            continue
        found = ctx.finding(*mod.span(call.func), MESSAGE, FIX, Applicability.MANUAL)
        if found.line not in lines:
            lines.add(found.line)
            yield found
