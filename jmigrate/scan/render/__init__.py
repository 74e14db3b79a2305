"""Renderers for a `PlanResult`: text (Rich), json (the plan file), sarif (code scanning), markdown (PRs)."""

from __future__ import annotations

from jmigrate.errors import UsageError
from jmigrate.scan.finding import PlanResult

FORMATS = ("text", "json", "sarif", "markdown")


def render(result: PlanResult, fmt: str, *, color: bool = False, width: int | None = None) -> str:
    """The report for `result` in format `fmt`, ready to write to stdout or a file."""
    if fmt == "text":
        from jmigrate.scan.render.text import render_text

        return render_text(result, color=color, width=width)
    if fmt == "json":
        from jmigrate.scan.render.plan_json import render_json

        return render_json(result)
    if fmt == "sarif":
        from jmigrate.scan.render.sarif import render_sarif

        return render_sarif(result)
    if fmt == "markdown":
        from jmigrate.scan.render.markdown import render_markdown

        return render_markdown(result)
    raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
