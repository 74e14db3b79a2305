"""Renderers for a `PlanResult`: text (Rich), json (the plan file), sarif (code scanning), markdown (PRs)."""

from __future__ import annotations

from jmigrate.errors import UsageError
from jmigrate.scan.finding import PlanResult

FORMATS = ("text", "concise", "json", "sarif", "markdown")


def render(
    result: PlanResult, fmt: str, *, color: bool = False, width: int | None = None, verbose: bool = False
) -> str:
    """The report for `result` in format `fmt`, ready to write to stdout or a file."""
    if fmt == "text":
        from jmigrate.scan.render.text import render_text

        return render_text(result, color=color, width=width, verbose=verbose)
    if fmt == "concise":
        return render_concise(result)
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


_MARK = {"safe": "[*]", "unsafe": "[!]", "manual": "[ ]"}


def render_concise(result: PlanResult) -> str:
    """One line per finding, like ruff's concise output: `path:line:col: CODE [*] message`.

    `[*]` is fixed by `jmigrate apply`, `[!]` only with --unsafe, `[ ]` needs a person. Notebook findings
    also name the cell (`nb.ipynb:40:5: cell 3 line 2: ...`).
    """
    lines = []
    for f in result.findings:
        cell = f" cell {f.cell} line {f.cell_line}:" if f.cell is not None else ""
        mark = _MARK[f.applicability.value]
        lines.append(f"{f.path}:{f.line}:{f.column}:{cell} {f.code} {mark} {f.message}")
    return "".join(line + "\n" for line in lines)
