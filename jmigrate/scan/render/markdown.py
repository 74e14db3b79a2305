"""A report to paste into a pull-request description: checklist, counts, a table of findings."""

from __future__ import annotations

from jmigrate.scan.finding import PlanResult
from jmigrate.scan.render.summary import (
    location_text,
    mention_text,
    mentions_line,
    migration_checklist,
    recommendation_text,
    sorted_findings,
    store_lines,
    summarize,
)


def _cell(text: str) -> str:
    """Make text safe inside a GitHub table cell: no line breaks, no column separators, no raw HTML."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r\n", " ")
        .replace("\n", " ")
    )


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if "`" not in text else _cell(text)


def render_markdown(result: PlanResult) -> str:
    s = summarize(result)
    out = ["## Jina Embeddings v2 → v3 migration", ""]
    out.append(
        f"**{s.findings} finding{'s' * (s.findings != 1)}** in {s.files_with_findings} of {s.files_scanned} "
        f"files: {s.by_applicability['safe']} safe, {s.by_applicability['unsafe']} unsafe, "
        f"{s.by_applicability['manual']} manual; {s.skipped} skipped."
    )
    if s.findings:
        out += ["", "### Checklist", ""]
        out += [f"- [ ] {_cell(item)}" for item in migration_checklist(result)]
        out += [
            "",
            "### Findings",
            "",
            "| File | Line | Rule | Problem | Fix | Applicability | v3 settings |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in sorted_findings(result):
            out.append(
                f"| {_code(f.path)} | {_cell(location_text(f))} | {f.code} {_code(f.rule)} "
                f"| {_cell(f.message)} | {_cell(f.fix_title)} | {f.applicability.value} "
                f"| {_cell(recommendation_text(f))} |"
            )
    if result.stores:
        out += ["", "### Vector stores to re-embed", ""]
        for store in result.stores:
            first, *rest = store_lines(store)
            out.append(f"- {_cell(first)}")
            out += [f"  - {_cell(line.strip())}" for line in rest]
    if result.mentions:
        out += ["", f"<details><summary>{_cell(mentions_line(result))}</summary>", ""]
        out += [f"- {_code(mention_text(m))}" for m in result.mentions]
        out += ["", "</details>"]
    if result.skipped:
        out += ["", f"<details><summary>Skipped files ({len(result.skipped)})</summary>", ""]
        out += [f"- {_code(k.path)}: {_cell(k.reason)}" for k in sorted(result.skipped, key=lambda k: k.path)]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"
