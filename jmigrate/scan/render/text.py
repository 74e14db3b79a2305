"""The human report: migration checklist and summary first, then the findings grouped by file."""

from __future__ import annotations

import io
from itertools import groupby

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from jmigrate.scan.finding import Applicability, PlanResult
from jmigrate.scan.render.summary import (
    human_size,
    location_text,
    mention_text,
    mentions_line,
    migration_checklist,
    recommendation_text,
    sorted_findings,
    store_lines,
    summarize,
)

_STYLE = {Applicability.SAFE: "green", Applicability.UNSAFE: "yellow", Applicability.MANUAL: "magenta"}
# Piped or saved reports are not wrapped: one finding line stays one line for grep and diff tools.
UNWRAPPED = 100_000


def render_text(
    result: PlanResult, *, color: bool = False, width: int | None = None, verbose: bool = False
) -> str:
    buf = io.StringIO()
    # Colour only when asked (the CLI asks when stdout is a terminal).
    console = Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        width=width or UNWRAPPED,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
    )

    def out(text: Text | str, indent: int = 0, style: str = "") -> None:
        t = text if isinstance(text, Text) else Text(text, style=style)
        console.print(Padding(t, (0, 0, 0, indent), expand=False))

    s = summarize(result)
    out(f"jmigrate plan: {result.root}", style="bold")
    if s.findings:
        console.line()
        out("Migration checklist (in this order)", style="bold")
        for i, item in enumerate(migration_checklist(result), start=1):
            out(f"{i}. {item}", indent=2)
    console.line()
    out("Summary", style="bold")
    out(
        f"{s.findings} finding{'s' * (s.findings != 1)} in {s.files_with_findings} of {s.files_scanned} "
        f"files scanned ({human_size(s.bytes_scanned)}): {s.fixable} fixed by `jmigrate apply`, "
        f"{s.by_applicability['unsafe']} more with --unsafe, {s.by_applicability['manual']} manual; "
        f"{s.skipped} file{'s' * (s.skipped != 1)} skipped",
        indent=2,
    )
    if result.mentions:
        out(mentions_line(result) + (": listed below" if verbose else ": --verbose lists them"), indent=2)
    if s.by_code:
        table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, show_edge=False)
        for col in ("code", "rule", "findings", "safe", "unsafe", "manual"):
            table.add_column(col, justify="left" if col in ("code", "rule") else "right")
        for code, n in s.by_code.items():
            per = [
                sum(1 for f in result.findings if f.code == code and f.applicability is a)
                for a in Applicability
            ]
            table.add_row(code, s.rule_names[code], str(n), *map(str, per))
        console.line()
        console.print(Padding(table, (0, 0, 0, 2), expand=False))
    if result.stores:
        console.line()
        out("Vector stores on disk", style="bold")
        for store in result.stores:
            for i, store_line in enumerate(store_lines(store)):
                out(store_line, indent=2 if i == 0 else 4)
    for path, group in groupby(sorted_findings(result), key=lambda f: f.path):
        console.line()
        out(path, style="bold underline")
        for f in group:
            line = Text()
            line.append(f"{location_text(f)}  ", style="cyan")
            line.append(f"{f.code} ", style="bold red")
            line.append(f"[{f.rule}] ", style="dim")
            line.append(f.message)
            out(line, indent=2)
            fix = Text("fix: ")
            fix.append(f.fix_title)
            fix.append(f" ({f.applicability.value})", style=_STYLE[f.applicability])
            out(fix, indent=6)
            rec = recommendation_text(f)
            if rec:
                out(f"v3: {rec}", indent=6, style="dim")
    # Mentions are not work to do: one line in the summary, each listed with --verbose.
    if result.mentions and verbose:
        console.line()
        out("Mentions (not code: never rewritten)", style="bold")
        for m in result.mentions:
            out(mention_text(m), indent=2)
    # Binaries are skipped by design (images, models, archives): one count, each listed with --verbose.
    # Everything else skipped (unreadable, too large, a syntax error, jmigrate's own reports) is named.
    binaries = [k for k in result.skipped if k.reason.startswith("binary")]
    named = result.skipped if verbose else [k for k in result.skipped if not k.reason.startswith("binary")]
    if named or binaries:
        console.line()
        out("Skipped files", style="bold")
        for k in sorted(named, key=lambda k: k.path):
            out(f"{k.path}: {k.reason}", indent=2)
        if binaries and not verbose:
            n = len(binaries)
            out(f"{n} binary file{'s' * (n != 1)} (--verbose lists them)", indent=2)
    text = buf.getvalue()
    # Rich pads table cells and blank lines with spaces; a plain report should not carry them.
    return text if color else "".join(line.rstrip() + "\n" for line in text.splitlines())
