"""The `jmigrate` entry point: builds the Typer app and turns library errors into exit codes.

Exit codes: 0 ok; 1 findings remain / rows rejected / v3 significantly worse; 2 usage, config, input,
encoder or checkpoint error; 3 internal error (an uncaught exception: a bug); 130 interrupted.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from jmigrate.cli.console import debug_enabled, err_console, error, set_debug, set_quiet
from jmigrate.errors import JMigrateError
from jmigrate.version import VERSION

INTERNAL_ERROR = 3
INTERRUPTED = 130
CONTEXT = {"help_option_names": ["-h", "--help"]}


class _Crash(Exception):
    """Carries an exception that Click would otherwise swallow (EOFError -> Abort -> "interrupted")."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM in a command (Click would turn it into a silent exit 130)."""


def _tidy_params(params: list[Any]) -> list[Any]:
    """Help text the ruff/uv way: a flag shows no `<bool>` value, an argument shows as `PATH`."""
    for p in params:
        if getattr(p, "param_type_name", None) == "option" and p.is_flag and p.metavar is None:
            p.metavar = ""  # a flag takes no value: nothing to show in the value column
        elif getattr(p, "param_type_name", None) == "argument" and p.metavar is None and p.name:
            p.metavar = p.name.upper()
    return params


def _shared_option(name: str) -> Any:
    """The options every subcommand has whether or not its function names them: a hidden `--debug`
    (so it works after the command name too) and `-q/--quiet` (no progress or notes on stderr)."""

    def debug_on(value: bool) -> None:
        if value:
            set_debug(True)

    def quiet_on(value: bool) -> None:
        if value:
            set_quiet(True)

    probe = typer.Typer()
    if name == "debug":
        @probe.command()
        def _debug(debug: bool = typer.Option(False, "--debug", hidden=True, expose_value=False,
                                              is_eager=True, callback=debug_on)) -> None:
            pass
    else:
        @probe.command()
        def _quiet(quiet: bool = typer.Option(False, "--quiet", "-q", expose_value=False, is_eager=True,
                                              callback=quiet_on,
                                              help="No progress or notes on stderr (errors still show).")
                   ) -> None:
            pass

    return typer.main.get_command(probe).params[0]


class JMigrateCommand(TyperCommand):
    """Every subcommand: `-h`, `--debug` accepted after the command name, conventional help text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        have = {opt for p in self.params for opt in p.opts}
        if "--quiet" not in have:  # `reindex` declares its own
            self.params.append(_shared_option("quiet"))
        if "--debug" not in have:
            self.params.append(_shared_option("debug"))

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy_params(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        # `Usage: jmigrate plan [OPTIONS] PATH` (Typer draws required arguments as `{path}`).
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if p.param_type_name == "argument":
                name = p.metavar if p.required else f"[{p.metavar}]"
                pieces.append(name + ("..." if p.nargs != 1 else ""))
            else:
                pieces.extend(p.get_usage_pieces(ctx))
        return pieces

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EOFError as e:  # a bug (numpy on an empty file, ...), not the user pressing Ctrl-D/Ctrl-C
            raise _Crash(e) from e
        except KeyboardInterrupt as e:
            raise _Interrupted() from e


class JMigrateGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy_params(super().get_params(ctx))


app = typer.Typer(
    name="jmigrate",
    help="Move a project from Jina Embeddings v2 to v3: plan the code changes, re-embed, verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=JMigrateGroup,
    context_settings=CONTEXT,
    rich_markup_mode="markdown",
)

# Each module registers its commands on `app`; heavy libraries are imported inside the commands.
COMMAND_MODULES = ("plan", "reindex", "verify", "stub", "bridge", "cutover")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jmigrate {VERSION}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors (also after the command)."),
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    if debug:
        set_debug(True)


for _name in COMMAND_MODULES:
    importlib.import_module(f"jmigrate.cli.{_name}").register(app)
for _info in app.registered_commands:
    if _info.cls in (None, TyperCommand):  # Typer fills in its own class when a module names none
        _info.cls = JMigrateCommand


def _secrets(argv: list[str]) -> list[str]:
    """Keys that may sit in an exception message or a traceback: never print them."""
    found = [os.environ.get(name, "") for name in ("JINA_API_KEY", "JMIGRATE_OPENAI_API_KEY",
                                                    "OPENAI_API_KEY")]
    for i, arg in enumerate(argv):
        if arg == "--api-key" and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith("--api-key="):
            found.append(arg.split("=", 1)[1])
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, "***")
    return text


def _print_traceback(exc: BaseException, secrets: list[str]) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    err_console.print(_scrub(text.rstrip("\n"), secrets))


def _crash(exc: BaseException, secrets: list[str]) -> int:
    """A bug: one line (exit 3) that says so; --debug adds the traceback."""
    if debug_enabled():
        _print_traceback(exc, secrets)
    detail = " ".join(str(exc).split())  # one line, whatever the exception's text looks like
    if len(detail) > 500:
        detail = detail[:500] + "..."
    what = type(exc).__name__ + (f": {detail}" if detail else "")
    tail = "report it" if debug_enabled() else "rerun with --debug for the traceback and report it"
    error(_scrub(f"internal error: {what} (a bug in jmigrate; {tail})", secrets))
    return INTERNAL_ERROR


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 findings/rejects, 2 error, 3 internal error,
    130 interrupted)."""
    args = list(sys.argv[1:] if argv is None else argv)
    secrets = _secrets(args)
    set_debug(False)  # main() may run several times in one process (tests, embedding)
    set_quiet(False)
    try:
        # Outside standalone mode Click returns a `typer.Exit` code instead of raising it.
        rc = app(args=args, standalone_mode=False, prog_name="jmigrate")
    except JMigrateError as e:
        if debug_enabled():
            _print_traceback(e, secrets)
        error(_scrub(str(e), secrets))
        return e.exit_code
    except _Crash as e:
        return _crash(e.original, secrets)
    except (KeyboardInterrupt, _Interrupted):
        err_console.print("interrupted")
        return INTERRUPTED
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort as e:
        cause = e.__cause__ or e.__context__
        if cause is not None and not isinstance(cause, KeyboardInterrupt):
            return _crash(cause, secrets)
        err_console.print("interrupted")
        return INTERRUPTED
    except Exception as e:
        # Click's usage errors (Typer vendors Click from 0.29 on, so match by behaviour, not class).
        show = getattr(e, "show", None)
        if callable(show):
            show(file=sys.stderr)
            return 2
        return _crash(e, secrets)
    return rc if isinstance(rc, int) else 0


def run() -> None:
    # A terminal or pipe that is not UTF-8 (latin-1, ASCII) gets `\u2192` for what it cannot show, as
    # stderr already does, instead of a UnicodeEncodeError halfway through a report. Inside JSON
    # strings such an escape is still valid JSON for the same character.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    sys.exit(main())
