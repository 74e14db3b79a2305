"""JM307: a LiteLLM `jina_ai/<v1/v2 model>` id."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._model_names import guess_for, site
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Edit, Finding
from jmigrate.scan.tasks import recommendation
from jmigrate.scan.text import model_matches


@rule(
    code="JM307",
    name="litellm-jina-ai-model",
    summary="LiteLLM model id jina_ai/<v1 or v2 model>",
    explanation="LiteLLM routes `jina_ai/<model>` to Jina's API. The id names a v1/v2 model; v3 also needs "
    "a task per side, which LiteLLM forwards as a provider parameter.",
    example='litellm.embedding(model="jina_ai/jina-embeddings-v2-base-en", input=texts)',
    fix="Replaces the id with jina_ai/jina-embeddings-v3 (unsafe: the vectors change); add task= to the "
    "call (retrieval.passage for documents, retrieval.query for queries).",
    applicability=Applicability.UNSAFE,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    for match in model_matches(ctx.src.text):
        if match.org != "jina_ai" or match.model.replacement is None:
            continue
        guess = guess_for(ctx, site(ctx, match)[0])
        task = f'task="{guess.task}"' if guess.task else "task= (retrieval.passage / retrieval.query)"
        edits = [Edit(match.name_start, match.end, match.replacement())] if match.rewritable else []
        yield ctx.finding(
            match.start,
            match.end + len(match.tail),
            f"LiteLLM id jina_ai/{match.model.name} names a {match.model.generation} model",
            f"Use jina_ai/jina-embeddings-v3 and pass {task}",
            Applicability.UNSAFE,
            edits,
            recommendation(match.model, guess),
        )
