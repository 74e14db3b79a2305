"""JM303: Haystack's JinaTextEmbedder / JinaDocumentEmbedder on a v2 model without a task."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._sites import add_keyword, python_sites, site_span
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import call_name, kwarg, last_part
from jmigrate.scan.tasks import PASSAGE, QUERY, TaskGuess, recommendation


@rule(
    code="JM303",
    name="haystack-jina-embedder",
    summary="Haystack JinaTextEmbedder / JinaDocumentEmbedder on a v2 model without a task",
    explanation="Haystack splits the two sides already: JinaDocumentEmbedder embeds what the document "
    "store keeps, JinaTextEmbedder embeds the query. On v3 each needs its task.",
    example='JinaDocumentEmbedder(model="jina-embeddings-v2-base-en")',
    fix='Adds task="retrieval.passage" to JinaDocumentEmbedder and task="retrieval.query" to '
    "JinaTextEmbedder (unsafe, with JM101's model change).",
    applicability=Applicability.UNSAFE,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    sites, found = python_sites(ctx, "haystack-text", "haystack-document")
    for site in found:
        assert sites is not None and site.model is not None
        if kwarg(site.call, "task") is not None:
            continue
        task, side = (QUERY, "queries") if site.kind == "haystack-text" else (PASSAGE, "documents")
        guess = TaskGuess(task, f"{last_part(call_name(site.call))} embeds {side}")
        start, end = site_span(sites, site)
        yield ctx.finding(
            start,
            end,
            f"Haystack Jina embedder on {site.model.name} without a task",
            f'Pass task="{task}" (this component embeds {side})',
            Applicability.UNSAFE,
            [add_keyword(sites.mod, site.call, "task", task)],
            recommendation(site.model, guess),
        )
