"""Revision pins of a v2 Hugging Face repository (JM106; JM101-JM103 leave a pinned id to a person).

A pin (`revision="<sha>"`, TEI's `--revision refs/pr/25`, `REVISION: ...` beside `MODEL_ID: ...`) names a
commit, branch or pull request of the v2 repository. It means nothing in jinaai/jina-embeddings-v3: the
pin must change with the id (dropped, or a v3 revision chosen), so its line is one a migration edits. An id
with a pin is not renamed automatically either: the renamed id would point at a revision that does not
exist (or, worse, a plan run after the rename would no longer see the pin and report nothing).

Python: a call given a replaced v1/v2 id (literal, or through the module's value flow) and `revision=` /
`code_revision=`; the pin's line is where its value is written (the keyword's literal, or the constant it
is read from in the same module). Other text (shell, YAML, compose, Dockerfile, .env, JS): a revision
written as a literal (`--revision X`, `revision=X`, `revision: X`, `REVISION=X`, not `$X`) in the same
block as a replaced id (the same line, or lines without a blank line between them, at most 6 apart).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from jmigrate.models import Model
from jmigrate.rules._calls import flow
from jmigrate.scan.context import FileContext
from jmigrate.scan.python import PyModule, kwarg
from jmigrate.scan.text import model_matches

REVISION_KWARGS = ("revision", "code_revision")
MODEL_ARGS = ("model_name", "model", "model_id", "model_name_or_path", "pretrained_model_name_or_path",
              "repo_id")
_BLOCK = 6  # lines: a pin further from the id than this belongs to something else
# A revision written as a literal: `--revision X` / `--revision=X`, `revision=X`, `revision: X`, `REVISION=X`
# (an env or compose key ending in REVISION). `$X` / `${X}` is a reference: the literal is where X is set.
_TEXT_PIN = re.compile(
    r"""(?:--revision(?:=|[ \t]+)|(?<![\w.])(?:[A-Za-z_]*_)?revision["']?[ \t]*[:=][ \t]*)(?P<q>["']?)"""
    r"""(?P<value>[^\s"'$`{}(),;#][^\s"',;)]*)(?P=q)""",
    re.IGNORECASE,
)


# A line that gives a model: a key, flag or variable named like one.
_MODEL_LINE = re.compile(r"(?i)(?:--model[-_]id\b|\bmodel(?:[-_]?(?:id|name|path))?[\"']?\s*[:=])")


@dataclass(frozen=True)
class Pin:
    start: int  # the pin's value in the text
    end: int
    value: str
    model: Model  # the replaced model it pins
    ids: frozenset[int]  # start offsets of the id literals/matches it is bound to


def pins(ctx: FileContext) -> list[Pin]:
    """Every revision pin of a replaced model in this file (computed once per context and text)."""
    return _cached(ctx)[0]


def pinned_ids(ctx: FileContext) -> frozenset[int]:
    """Start offsets of the ids (literals in Python, matches elsewhere) that a pin is bound to."""
    return _cached(ctx)[1]


_REVISION = re.compile("revision", re.IGNORECASE)


def _cached(ctx: FileContext) -> tuple[list[Pin], frozenset[int]]:
    # Asked once per model match by JM101-JM103: computed once (a scan per match was quadratic).
    text = ctx.src.text
    found = ctx.__dict__.get("_pins")
    if found is None or found[0] is not text:
        pins_: list[Pin] = []
        if _REVISION.search(text):
            mod = ctx.py
            pins_ = _python_pins(ctx, mod) if mod is not None else _text_pins(ctx)
        found = (text, pins_, frozenset(i for p in pins_ for i in p.ids))
        ctx.__dict__["_pins"] = found
    return found[1], found[2]


def _replaced(value: str) -> Model | None:
    for m in model_matches(value):
        if m.model.replacement is not None:
            return m.model
    return None


def _python_pins(ctx: FileContext, mod: PyModule) -> list[Pin]:
    f = flow(ctx, mod)
    out: list[Pin] = []
    for call in mod.calls:
        kw = kwarg(call, *REVISION_KWARGS)
        if kw is None:
            continue
        model_kw = kwarg(call, *MODEL_ARGS)
        node = model_kw.value if model_kw is not None else (call.args[0] if call.args else None)
        if node is None:
            continue
        values, _ = f.values(node)
        model = next((m for m in map(_replaced, sorted(values)) if m is not None), None)
        if model is None:
            continue
        ids = frozenset(
            mod.start(o) for o in f.origin(node) if isinstance(o, ast.Constant) and _replaced(str(o.value))
        )
        f.values(kw.value)
        written = [o for o in f.origin(kw.value) if isinstance(o, ast.Constant) and isinstance(o.value, str)]
        if not written:  # revision read from elsewhere (an env var, a parameter): the keyword is the edit
            start, end = mod.span(kw)
            out.append(Pin(start, end, mod.segment(kw), model, ids))
            continue
        for lit in written:
            start, end = mod.span(lit)
            out.append(Pin(start, end, str(lit.value), model, ids))
    return out


def _text_pins(ctx: FileContext) -> list[Pin]:
    text = ctx.src.text
    ids = [(m, ctx.src.position(m.start)[0]) for m in model_matches(text) if m.model.replacement is not None]
    if not ids:
        return []
    lines = text.splitlines()
    id_lines = {n for _, n in ids}
    out: list[Pin] = []
    for pm in _TEXT_PIN.finditer(text):
        line = ctx.src.position(pm.start())[0]
        # The pin belongs to the nearest line of its block that gives a model (`MODEL_ID: ...`,
        # `--model-id ...`, `model=...`, or an id itself): a pin in another service's block is not v2's.
        owners = [
            n for n in range(max(1, line - _BLOCK), min(len(lines), line + _BLOCK) + 1)
            if _same_block(lines, n, line) and (n in id_lines or _MODEL_LINE.search(lines[n - 1]))
        ]
        if not owners:
            continue
        owner = min(owners, key=lambda n: (abs(n - line), n > line))
        bound = [m for m, n in ids if n == owner]
        if not bound:
            continue
        out.append(
            Pin(pm.start("value"), pm.end("value"), pm.group("value"), bound[0].model,
                frozenset(m.start for m in bound))
        )
    return out


def _same_block(lines: list[str], a: int, b: int) -> bool:
    """Lines a and b (1-based) are one block: the same line, or close with no blank line between them."""
    lo, hi = min(a, b), max(a, b)
    if hi - lo > _BLOCK:
        return False
    return all(lines[i - 1].strip() for i in range(lo, hi + 1) if 0 < i <= len(lines))
