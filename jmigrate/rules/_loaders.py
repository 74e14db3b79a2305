"""Shared by the local-loader rules (JM308-JM310): a loader call given a legacy model.

A finding sits on a line that must be edited (issue 12: a finding on a line that needs no edit is a false
alarm). The loader's own line must change when it holds the model id or lacks what v3 needs
(`trust_remote_code=True` for sentence-transformers and transformers; fastembed needs nothing). Otherwise
the id is written elsewhere: the advice (task per side, licence) goes to the line of this module that
writes it (a constant, a default, the next line of a multi-line call), the line JM101 rewrites. An id
written in another module of the repository is that module's JM101 line, and the calls embedding through
the loader are JM504's: nothing is left to say here then, unless no such call is found (the advice stays
on the loader). An id from outside the repository (an environment variable without default) keeps the
finding on the loader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from jmigrate.models import Model
from jmigrate.rules._calls import ELSEWHERE, embed_calls, flow
from jmigrate.rules._sites import Site, Sites, python_sites, site_span
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import dotted, kwarg, last_part
from jmigrate.scan.tasks import infer_python, recommendation
from jmigrate.scan.text import model_matches


def loader_findings(ctx: FileContext, kind: str, what: str, fix: str) -> Iterator[Finding]:
    sites, found = python_sites(ctx, kind)
    moved: dict[int, list[Site]] = {}  # id line (start offset of the literal) -> loaders it feeds
    literals: dict[int, ast.Constant] = {}
    for s in found:
        assert sites is not None and s.model is not None
        if s.model.replacement is None:
            continue  # base-code stays: JM104 says so
        if _tokenizer(s):
            continue  # a tokenizer embeds nothing: its id is JM101's
        anchor = _anchor(ctx, sites, s)
        if anchor == "drop":
            continue
        if isinstance(anchor, list):
            for lit in anchor:
                offset = sites.mod.start(lit)
                literals[offset] = lit
                moved.setdefault(offset, []).append(s)
            continue
        guess = infer_python(sites.mod, s.call)
        rec = recommendation(s.model, guess, local=True)
        task = guess.task or "retrieval.passage (documents) / retrieval.query (queries)"
        start, end = site_span(sites, s)
        yield ctx.finding(
            start, end, f"{what} loads {s.model.name} locally", fix.format(task=task), Applicability.MANUAL,
            (), rec,
        )
    by_line: dict[int, int] = {}  # one finding per id line (a tokenizer and a model fed by one constant)
    for offset in sorted(moved):
        line = ctx.src.position(offset)[0]
        if line in by_line:
            moved[by_line[line]] += moved.pop(offset)
        else:
            by_line[line] = offset
    for offset in sorted(moved):
        assert sites is not None
        loaders = moved[offset]
        model = loaders[0].model
        assert model is not None
        guess = infer_python(sites.mod, loaders[0].call)
        rec = recommendation(model, guess, local=True)
        task = guess.task or "retrieval.passage (documents) / retrieval.query (queries)"
        yield ctx.finding(
            *sites.mod.span(literals[offset]),
            f"{what} on {_lines(ctx, sites, loaders)} loads {model.name} locally (the id written here)",
            fix.format(task=task),
            Applicability.MANUAL,
            (),
            rec,
        )


def _lines(ctx: FileContext, sites: Sites, loaders: list[Site]) -> str:
    where = [ctx.src.where(sites.mod.start(s.call)) for s in loaders]
    return ", ".join(dict.fromkeys(where))


def _tokenizer(s: Site) -> bool:
    func = s.call.func
    return s.kind == "transformers" and isinstance(func, ast.Attribute) and "Tokenizer" in last_part(
        dotted(func.value)
    )


def _anchor(ctx: FileContext, sites: Sites, s: Site) -> str | list[ast.Constant] | None:
    """None: the finding stays on the loader; "drop": nothing to say here; else the literals (of this
    module) that write the id, where the finding goes."""
    mod = sites.mod
    node = s.model_node
    if node is None:
        return None
    if s.kind != "fastembed":
        trust = kwarg(s.call, "trust_remote_code")
        if trust is None or mod.constant_value(trust.value) is not True:
            return None  # the loader line changes: v3 needs trust_remote_code=True
    model = s.model
    assert model is not None
    origin = flow(ctx, mod).origin(node)
    here = sorted(
        (o for o in origin if isinstance(o, ast.Constant) and _names(o, model)),
        key=lambda c: (c.lineno, c.col_offset),
    )
    if any(c.lineno == s.call.lineno for c in here):
        return None  # the id is on the loader's own line
    if here:
        return here
    if ELSEWHERE in origin and any(
        ec.loader.call is s.call and ec.loader.legacy is not None for ec in embed_calls(ctx, mod)
    ):
        return "drop"
    return None


def _names(node: ast.Constant, model: Model) -> bool:
    return isinstance(node.value, str) and any(m.model == model for m in model_matches(node.value))
