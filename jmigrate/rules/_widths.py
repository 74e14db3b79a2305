"""Shared by the vector-width rules (JM401-JM403): is this 768/512 the width of a v2 model in use?

A width counts only when a v1/v2 model that v3 replaces is named in the same file (any context) or, for
contexts that are unmistakably a vector schema (a vector column, an index definition, an EMBEDDING_DIM
setting), anywhere in the scanned project. Other 768s and 512s (chunk sizes, token limits, image sizes,
HNSW parameters, hidden sizes) are never findings. `jmigrate.scan.prefilter.width_in_context` decides
which files without a model name reach these rules: a new spelling of a width must be added there too.
"""

from __future__ import annotations

from jmigrate.models import MODELS, V3
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Edit, Finding


def tied(ctx: FileContext, width: int, strong: bool) -> bool:
    return width in ctx.legacy_dims or (strong and width in ctx.project.legacy_dims)


def width_finding(ctx: FileContext, start: int, end: int, width: int, what: str) -> Finding:
    """Finding for the digits of `width` at text[start:end]; the fix writes v3's default width."""
    models = sorted(
        m
        for m in (ctx.models or ctx.project.legacy_models)
        if MODELS[m].dims == width and MODELS[m].replacement
    )
    v3 = MODELS[V3].dims
    if models:
        message = f"{what} of width {width}, the width of {', '.join(models)}"
    else:  # only v3 left in the project: the schema still has the v2 width
        message = (
            f"{what} of width {width} (a v2 width) while the project uses {V3}, which returns {v3} "
            f"unless dimensions={width} is requested"
        )
    return ctx.finding(
        start,
        end,
        message,
        f"Change it to {v3} and rebuild the index (schema migration), or keep {width} and request "
        f"dimensions={width} from v3; either way re-embed everything",
        Applicability.UNSAFE,
        [Edit(start, end, str(v3))],
        {"dimensions": {"default": v3, "keep_schema": width}, "model": V3},
    )
