"""The `jmigrate` entry point: builds the Typer app and turns library errors into exit codes."""

from __future__ import annotations

import importlib
import sys

import typer

from jmigrate import __version__
from jmigrate.cli.console import err_console, set_debug
from jmigrate.errors import JMigrateError

app = typer.Typer(
    name="jmigrate",
    help="Move a project from Jina Embeddings v2 to v3: plan the code changes, re-embed, verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module registers its commands on `app`; heavy libraries are imported inside the commands.
COMMAND_MODULES = ("plan", "reindex", "verify", "stub")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jmigrate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    set_debug(debug)


for _name in COMMAND_MODULES:
    importlib.import_module(f"jmigrate.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 findings/rejects, 2 error, 130 interrupted)."""
    from jmigrate.cli.console import debug_enabled

    try:
        # Outside standalone mode Click returns a `typer.Exit` code instead of raising it.
        rc = app(args=argv, standalone_mode=False)
    except JMigrateError as e:
        if debug_enabled():
            err_console.print_exception()
        err_console.print(f"[red]error:[/] {e}", highlight=False, markup=True)
        return e.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        return 130
    except Exception as e:
        # Click's usage errors (Typer vendors Click from 0.29 on, so match by behaviour, not class).
        show = getattr(e, "show", None)
        if callable(show):
            show(file=sys.stderr)
            return 2
        raise
    return rc if isinstance(rc, int) else 0


def run() -> None:
    sys.exit(main())
