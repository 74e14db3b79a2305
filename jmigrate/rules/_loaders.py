"""Shared by the local-loader rules (JM308-JM310): a loader call given a legacy model."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._sites import python_sites, site_span
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.tasks import infer_python, recommendation


def loader_findings(ctx: FileContext, kind: str, what: str, fix: str) -> Iterator[Finding]:
    sites, found = python_sites(ctx, kind)
    for s in found:
        assert sites is not None and s.model is not None
        if s.model.replacement is None:
            continue  # base-code stays: JM104 says so
        guess = infer_python(sites.mod, s.call)
        rec = recommendation(s.model, guess, local=True)
        task = guess.task or "retrieval.passage (documents) / retrieval.query (queries)"
        start, end = site_span(sites, s)
        yield ctx.finding(
            start,
            end,
            f"{what} loads {s.model.name} locally",
            fix.format(task=task),
            Applicability.MANUAL,
            (),
            rec,
        )
