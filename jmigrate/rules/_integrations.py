"""Constructors of embedding integrations bound to a legacy model, wherever the model id is written.

The edit a v3 migration makes to an integration (a task per side, trust_remote_code, another class) is made
on its constructor, so the finding sits on the constructor's line (the line of `Emb(` in
`emb = HuggingFaceEmbeddings(`), also when the id is on the next line of a multi-line call or arrives
through a variable, a parameter default, a constant of another module, a settings object or an environment
variable (the value flow of rules/_calls.py: every value the argument may take). An integration is bound to
a legacy model when one of those values is a replaced v1/v2 model and none is v3.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from jmigrate.models import V3, Model
from jmigrate.rules._calls import flow
from jmigrate.scan.context import FileContext
from jmigrate.scan.python import call_name, kwarg, last_part
from jmigrate.scan.text import model_matches

MODEL_KWARGS = ("model_name", "model", "model_id", "model_name_or_path")


@dataclass(frozen=True)
class IntegrationSite:
    call: ast.Call
    cls: str  # the constructor's name (last part of the called name)
    model: Model  # the legacy model it may use
    org: str  # "jina" for an Ollama tag, "jinaai" for a Hugging Face id, "" for a bare name
    several: bool  # other values are possible too
    literal_here: bool  # the id is written on the constructor's own line


def model_node(call: ast.Call) -> ast.AST | None:
    kw = kwarg(call, *MODEL_KWARGS)
    return kw.value if kw is not None else (call.args[0] if call.args else None)


def integration_sites(ctx: FileContext, classes: set[str], *, ollama: bool) -> list[IntegrationSite]:
    """Calls of `classes` whose model argument may be a replaced legacy model and is never v3. `ollama`
    picks Ollama tags (jina/...) only; otherwise Ollama tags are left out."""
    mod = ctx.py
    if mod is None:
        return []
    out = []
    for call in mod.calls:
        cls = last_part(call_name(call))
        if cls not in classes:
            continue
        node = model_node(call)
        if node is None:
            continue
        values, complete = flow(ctx, mod).values(node)
        legacy = None
        v3 = False
        for value in sorted(values):
            if value.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0] == V3:
                v3 = True
            for m in model_matches(value):
                if m.model.replacement is not None and (m.org == "jina") == ollama and legacy is None:
                    legacy = (m.model, m.org)
        if legacy is None or v3:
            continue
        line = mod.start(call.func)
        here = any(
            isinstance(n, ast.Constant)
            and isinstance(n.value, str)
            and any(True for _ in model_matches(n.value))
            and ctx.src.text.count("\n", line, mod.start(n)) == 0
            for n in ast.walk(node)
        )
        out.append(IntegrationSite(call, cls, legacy[0], legacy[1], len(values) > 1 or not complete, here))
    return out
