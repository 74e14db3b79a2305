"""CLI commands `plan`, `apply` and `rules`: thin wrappers over `jmigrate.plan()` and `jmigrate.scan.apply`.

Results (the report, the diff, the rule list) go to stdout; what `apply` changed goes to stderr.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from jmigrate.cli.console import say
from jmigrate.cli.options import ListFormat, ReportFormat, choice

if TYPE_CHECKING:
    from jmigrate.scan.finding import PlanResult


def _codes(values: list[str]) -> list[str]:
    """`--select JM1,JM201 --select JM3` -> ["JM1", "JM201", "JM3"]."""
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from jmigrate.fileio import write_output

    try:
        # A path that is not UTF-8 (a lone surrogate) is written as `\udcff`, as on stdout: still valid
        # JSON for the same string.
        write_output(output, text.encode("utf-8", "backslashreplace"))
    except OSError as e:
        from jmigrate.errors import UsageError

        raise UsageError(f"cannot write {output}: {e.strerror or e}") from e
    say(f"wrote {output}")


def _filter(result: PlanResult, select: list[str], ignore: list[str]) -> PlanResult:
    """Keep the findings of a saved plan whose code matches --select and not --ignore (prefixes)."""
    from dataclasses import replace

    sel, ign = [s.upper() for s in select], [s.upper() for s in ignore]
    kept = [f for f in result.findings
            if (not sel or f.code.startswith(tuple(sel))) and not f.code.startswith(tuple(ign) or ("\0",))]
    return replace(result, findings=kept)


SELECT_HELP = "Only these rule codes or prefixes (JM1, JM101); comma-separated or repeated."
IGNORE_HELP = "Leave out these rule codes or prefixes; comma-separated or repeated."


def plan_command(
    path: Path | None = typer.Argument(None, help="Folder (or file) to scan (optional with --store)."),
    fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", "-f", parser=choice(ReportFormat),
                                     help="Report format."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the report (or diff) to FILE.",
                                       metavar="FILE"),
    select: list[str] = typer.Option([], "--select", help=SELECT_HELP, metavar="CODES"),
    ignore: list[str] = typer.Option([], "--ignore", help=IGNORE_HELP, metavar="CODES"),
    show_diff: bool = typer.Option(False, "--diff", help="Print a unified diff of the safe rewrites instead "
                                   "of the report."),
    unsafe: bool = typer.Option(False, "--unsafe", help="With --diff: include the unsafe rewrites too "
                                "(an error without --diff)."),
    verbose: bool = typer.Option(False, "--verbose", help="List every skipped binary file and every mention "
                                 "of a v1/v2 model in prose, comments and logs (the text report counts "
                                 "them)."),
    store: list[str] = typer.Option([], "--store", metavar="URI",
                                    help="Also inspect a vector-store collection (postgresql://, qdrant://, "
                                         "chroma://, lancedb://); repeatable. See docs/stores.md."),
) -> None:
    """Find every place tied to Jina Embeddings v1/v2 and say what to change.

    Exit status: 0 nothing found, 1 findings remain, 2 error.
    """
    from jmigrate.errors import UsageError
    from jmigrate.scan.plan import plan

    if show_diff and fmt is not ReportFormat.text:
        raise UsageError("--diff prints a unified diff; it cannot be combined with --format")
    if unsafe and not show_diff:
        # The report lists unsafe fixes anyway; silently ignoring the flag would let a user believe the
        # unsafe rewrites were considered somewhere.
        raise UsageError("--unsafe only changes what --diff prints (plan . --diff --unsafe); "
                         "to write unsafe rewrites use `jmigrate apply --unsafe`")
    if path is None and not store:
        raise UsageError("missing PATH: the folder to scan (or give --store URI to inspect a collection)")
    if path is None:
        from jmigrate.scan.finding import PlanResult

        result = PlanResult(root="", findings=[], skipped=[], files_scanned=0, bytes_scanned=0)
    else:
        result = plan(path, select=_codes(select), ignore=_codes(ignore))
    if store:
        from dataclasses import replace

        from jmigrate.stores.plan import store_infos

        result = replace(result, stores=result.stores + store_infos(store))
    if show_diff:
        from jmigrate.scan.apply import diff

        _emit(diff(result, unsafe=unsafe), output)
    else:
        from jmigrate.scan.render import render

        to_terminal = output is None and _stdout_is_terminal()
        width = shutil.get_terminal_size().columns if to_terminal else None
        _emit(render(result, fmt.value, color=to_terminal, width=width, verbose=verbose), output)
    if show_diff or fmt is not ReportFormat.text or output is not None:
        from jmigrate.scan.render.summary import summarize

        s = summarize(result)
        say(
            f"{s.findings} findings in {s.files_with_findings} files ({s.fixable} safe fixes, "
            f"{s.by_applicability['unsafe']} unsafe, {s.by_applicability['manual']} manual); "
            f"{s.files_scanned} files scanned, {s.skipped} skipped"
            + (f"; {s.mentions} mentions in prose, comments and logs (not findings)" if s.mentions else "")
        )
    from jmigrate.scan.render.summary import legacy_stores

    # A v2 store on disk is work left too, even in a tree whose code is already migrated.
    raise typer.Exit(1 if result.findings or legacy_stores(result) else 0)


def apply_command(
    path: Path = typer.Argument(..., help="Folder (or file) to change: the same PATH that was planned."),
    unsafe: bool = typer.Option(False, "--unsafe", help="Also apply the unsafe rewrites (they change "
                                "behaviour: review the diff first)."),
    plan_file: Path | None = typer.Option(None, "--plan", help="Apply a plan saved with `jmigrate plan "
                                          "--format json`; refused if a file changed since.", metavar="FILE"),
    select: list[str] = typer.Option([], "--select", help=SELECT_HELP, metavar="CODES"),
    ignore: list[str] = typer.Option([], "--ignore", help=IGNORE_HELP, metavar="CODES"),
) -> None:
    """Apply the safe rewrites in place (atomic writes; encoding and line endings kept).

    Nothing is written if any file changed since it was planned, would leave PATH, or would no longer
    parse. Exit status: 0 nothing left to do, 1 findings remain (manual, unsafe, or overlapping:
    run `jmigrate plan` to see them), 2 error.
    """
    from jmigrate.scan.apply import apply, load_plan

    if plan_file is not None:
        result = _filter(load_plan(plan_file, path), _codes(select), _codes(ignore))
    else:
        from jmigrate.scan.plan import plan

        result = plan(path, select=_codes(select), ignore=_codes(ignore))
    report = apply(result, unsafe=unsafe)
    for change in report.changed:
        codes = ", ".join(sorted({f.code for f in change.findings}))
        say(f"fixed {change.path}: {len(change.findings)} findings ({codes})")
    remaining = report.remaining
    kinds = {k: sum(1 for f in remaining if f.applicability.value == k) for k in ("unsafe", "manual")}
    say(
        f"{report.fixed} findings fixed in {len(report.changed)} files; {len(remaining)} remain "
        f"({kinds['manual']} manual, {kinds['unsafe']} unsafe"
        + (" (use --unsafe)" if kinds["unsafe"] else "")
        + (f", {len(report.conflicts)} overlapping: run apply again" if report.conflicts else "")
        + ")"
    )
    raise typer.Exit(1 if remaining else 0)


def rules_command(
    fmt: ListFormat = typer.Option(ListFormat.text, "--format", "-f", parser=choice(ListFormat),
                                   help="Output format."),
) -> None:
    """List the rule catalogue: code, name, usual fix applicability and summary."""
    from jmigrate.rules.registry import all_rules

    rules = all_rules()
    if fmt is ListFormat.json:
        import json

        data = [{"code": r.code, "name": r.name, "summary": r.summary, "explanation": r.explanation,
                 "example": r.example, "fix": r.fix, "applicability": r.applicability.value,
                 "languages": sorted(r.languages)} for r in rules]
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    width = max((len(r.name) for r in rules), default=0)
    for r in rules:
        sys.stdout.write(f"{r.code}  {r.name:<{width}}  {r.applicability.value:<6}  {r.summary}\n")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("plan")(plan_command)
    app.command("apply")(apply_command)
    app.command("rules")(rules_command)
