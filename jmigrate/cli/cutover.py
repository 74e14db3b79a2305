"""`jmigrate cutover`: switch what the application reads to the v3 collection, or roll back to v2
(library: jmigrate.stores.cutover)."""

from __future__ import annotations

import json
from enum import Enum

import typer

from jmigrate.cli.options import ListFormat, choice


class Side(str, Enum):
    v3 = "v3"
    v2 = "v2"


def cutover(
    uri: str = typer.Argument(..., metavar="URI", help="The v3 collection (the one `verify --v3` compared)."),
    to: Side = typer.Option(..., "--to", parser=choice(Side), help="v3 to switch, v2 to roll back."),
    alias: str | None = typer.Option(
        None,
        "--alias",
        metavar="NAME",
        help="The name the application reads (default: the v2 collection name + _live).",
    ),
    force: bool = typer.Option(False, "--force", help="Switch to v3 even without a passing verify."),
    output_format: ListFormat = typer.Option(
        ListFormat.text, "--format", "-f", parser=choice(ListFormat), help="text or json."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Point the alias the application reads at the v3 collection (--to v3) or back at v2 (--to v2).

    Refuses --to v3 unless the last verify of these two collections says v3 is not significantly worse
    and no integrity check failed (or --force). Exit 0 switched, 1 refused by the verdict, 2 errors.
    """
    from jmigrate.stores.cutover import cutover as run

    result = run(uri, to=to.value, alias=alias, force=force)
    if quiet:
        return
    if output_format is ListFormat.json:
        typer.echo(
            json.dumps(
                {
                    "alias": result.alias,
                    "serves": result.now_serves,
                    "previous": result.previous,
                    "to": result.to,
                    "backend": result.backend,
                    "instructions": result.lines,
                },
                indent=2,
            )
        )
    else:
        for line in result.lines:
            typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("cutover")(cutover)
