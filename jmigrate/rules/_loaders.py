"""Shared by the local-loader rules (JM308-JM310): a loader call given a legacy model."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from jmigrate.rules._calls import embed_calls
from jmigrate.rules._sites import Site, Sites, python_sites, site_span
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import kwarg
from jmigrate.scan.tasks import infer_python, recommendation


def loader_findings(ctx: FileContext, kind: str, what: str, fix: str) -> Iterator[Finding]:
    sites, found = python_sites(ctx, kind)
    for s in found:
        assert sites is not None and s.model is not None
        if s.model.replacement is None:
            continue  # base-code stays: JM104 says so
        if _nothing_to_edit_here(ctx, sites, s):
            continue
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


def _nothing_to_edit_here(ctx: FileContext, sites: Sites, s: Site) -> bool:
    """The loader's line needs no edit for v3 and its advice is given where it applies: the model id is
    written on another line (that line is JM101's), the loader already passes what v3 needs
    (trust_remote_code=True; fastembed needs nothing), and JM504 reports every call that embeds through it
    (where v3's task goes). Reporting the line anyway was a false alarm on real code (issue 12)."""
    mod = sites.mod
    node = s.model_node
    if node is None or (isinstance(node, ast.Constant) and node.lineno == s.call.lineno):
        return False
    if s.kind != "fastembed":
        trust = kwarg(s.call, "trust_remote_code")
        if trust is None or mod.constant_value(trust.value) is not True:
            return False
    return any(ec.loader.call is s.call and ec.loader.legacy is not None for ec in embed_calls(ctx, mod))
