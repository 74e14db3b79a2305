"""Shared by the local-loader rules (JM308-JM310): a loader call given a legacy model.

A finding sits on a line that must be edited (issue 12: a finding on a line that needs no edit is a false
alarm). The loader's own line must change when it holds the model id or lacks what v3 needs
(`trust_remote_code=True` for sentence-transformers and transformers; fastembed needs nothing). Otherwise
the id is written elsewhere: the advice (task per side, licence) goes to the line of this module that
writes it (a constant, a default, the next line of a multi-line call), the line JM101 rewrites. An id
written in another module of the repository is that module's JM101 line, and the calls embedding through
the loader are JM504's: nothing is left to say here. An id from outside the repository (an environment
variable without default) keeps the finding on the loader.

Loaders are those `Sites` resolves to one v1/v2 id, plus those the value flow says may load one and never
v3 (a parameter default of another model while the module's only instantiation passes the v2 id): "may load".
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from jmigrate.models import Model
from jmigrate.rules._calls import ELSEWHERE, LOADERS, MODEL_KWARGS, flow, loader_of
from jmigrate.rules._sites import Site, Sites, python_sites, site_span
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import call_name, dotted, kwarg, last_part
from jmigrate.scan.tasks import infer_python, recommendation
from jmigrate.scan.text import model_matches


def loader_findings(ctx: FileContext, kind: str, what: str, fix: str) -> Iterator[Finding]:
    sites, found = python_sites(ctx, kind)
    if sites is None:
        return
    extra = _flow_sites(ctx, sites, kind, {id(s.call) for s in found})
    maybe = {id(s.call) for s in extra}
    found = [*found, *extra]
    moved: dict[int, list[Site]] = {}  # id line (start offset of the literal) -> loaders it feeds
    literals: dict[int, ast.Constant] = {}
    for s in found:
        assert s.model is not None
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
        loads = "may load" if id(s.call) in maybe else "loads"
        yield ctx.finding(
            start, end, f"{what} {loads} {s.model.name} locally", fix.format(task=task), Applicability.MANUAL,
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


def _flow_sites(ctx: FileContext, sites: Sites, kind: str, known: set[int]) -> list[Site]:
    """Loaders the single-value propagation of `Sites` does not resolve but the value flow does: an
    argument that may be a v1/v2 id and never v3 (a parameter whose default is another model while the
    only instantiation in the module passes the v2 id, a loop over literals, `a or b`)."""
    out = []
    for call in sites.mod.calls:
        if id(call) in known or LOADERS.get(last_part(call_name(call))) != kind:
            continue
        loader = loader_of(ctx, sites.mod, call)
        if loader is None or loader.legacy is None or loader.v3:
            continue
        kw = kwarg(call, *MODEL_KWARGS)
        out.append(Site(call, kind, loader.legacy, kw.value if kw is not None else call.args[0]))
    return out


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
    if ELSEWHERE in origin:
        return "drop"  # the id's line is in another module of the repository (its JM101)
    return None


def _names(node: ast.Constant, model: Model) -> bool:
    return isinstance(node.value, str) and any(m.model == model for m in model_matches(node.value))
