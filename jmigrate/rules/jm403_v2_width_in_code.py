"""JM403: code and settings that hard-code a v2 width (EMBEDDING_DIM = 768, return 768, asserts, shapes)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from jmigrate.rules._widths import tied, width_finding
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import call_name, dotted, last_part

# A name that says "the width of an embedding": EMBEDDING_DIM, VECTOR_SIZE, emb_dim, DIMS, n_dims...
_WIDTH_NAME = re.compile(
    r"(?i)(embed\w*_?(dim|size|width)|vec(tor)?_?(dim|size|width)|^(n_)?dims?$|"
    r"^dimension$|emb_?dim|^d_?model_out$)"
)
_SETTING = re.compile(
    r"""(?im)^\s*(?:export\s+|ENV\s+|ARG\s+)?(?:(?:const|let|var)\s+)?["']?([A-Za-z_]\w*)["']?\s*[=:]\s*["']?(\d{3,4})["']?\s*;?(?:\s+#.*|\s*//.*)?\s*$"""
)
# Keys JM402 judges with their schema context (`size: 768` may be anything else).
_SCHEMA_KEYS = {"size", "dims", "dim", "dimension", "vector_size", "dimensions"}
_SHAPE_CALLS = {"zeros", "empty", "ones", "rand", "randn", "reshape", "full", "ndarray", "normal", "random"}


@rule(
    code="JM403",
    name="v2-width-in-code",
    summary="v2 width hard-coded in code or settings: EMBEDDING_DIM = 768, return 768, assert ... == 768, "
    "array shapes",
    explanation="Constants and checks written for v2's width break (or silently truncate) once v3 returns "
    "1024 dimensions. Settings named like a width count whenever the project uses a v1/v2 "
    "model of that width; `return 768` in a width function, asserts and array shapes only "
    "when the same file names the model. `dimensions` (the API parameter) is never flagged.",
    example="EMBEDDING_DIM = 768",
    fix="Writes 1024 (unsafe), or keep the width and request dimensions=768 from v3.",
    applicability=Applicability.UNSAFE,
    languages=["*"],
    project_level=True,
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    if ctx.language != "python":
        for m in _SETTING.finditer(ctx.src.text):
            name, width = m.group(1), int(m.group(2))
            if (
                name.lower() not in _SCHEMA_KEYS
                and _WIDTH_NAME.search(name)
                and tied(ctx, width, strong=True)
            ):
                yield width_finding(ctx, m.start(2), m.end(2), width, f"setting {name}")
        return
    if mod is None or not mod.int_constants(ctx.legacy_dims | ctx.project.legacy_dims):
        return  # every finding below is such a literal: a module without one has none
    # The node kinds that can hold a width, from the module's one shared walk (order: the sort does it).
    kinds = (ast.Assign, ast.AnnAssign, ast.Return, ast.Assert, ast.Call)
    for node in (n for kind in kinds for n in mod.of_type(kind)):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [last_part(dotted(t)) for t in targets]
            if any(n and n.lower() != "dimensions" and _WIDTH_NAME.search(n) for n in names):
                yield from _int(ctx, node.value, f"constant {names[0]}", strong=True)
        elif isinstance(node, ast.Return):
            fn = mod.enclosing_function(node)
            if fn is not None and re.search(r"(?i)dim|embed|size|width", fn.name):
                yield from _int(ctx, node.value, f"{fn.name}() result", strong=False)
        elif isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare):
            cmp = node.test
            if re.search(r"(?i)shape|dim|vec|emb", mod.segment(cmp)):
                for side in (cmp.left, *cmp.comparators):
                    yield from _int(ctx, side, "assertion", strong=False)
        elif isinstance(node, ast.Call) and last_part(call_name(node)) in _SHAPE_CALLS:
            args = (
                node.args[0].elts
                if len(node.args) == 1 and isinstance(node.args[0], ast.Tuple)
                else node.args
            )
            # A 2-D shape (n, width): (512, 512, 3) images and square matrices are not embeddings.
            if (
                len(args) == 2
                and isinstance(args[1], ast.Constant)
                and not (isinstance(args[0], ast.Constant) and args[0].value == args[1].value)
            ):
                yield from _int(ctx, args[1], "array shape", strong=False)


def _int(ctx: FileContext, node: ast.AST | None, what: str, strong: bool) -> Iterator[Finding]:
    mod = ctx.py
    if (
        mod is not None
        and isinstance(node, ast.Constant)
        and type(node.value) is int
        and tied(ctx, node.value, strong)
    ):
        start, end = mod.span(node)
        yield width_finding(ctx, start, end, node.value, what)
