"""Where output goes: results to stdout, everything for people (progress, logs, summaries) to stderr.

Messages carry user data (paths, ids, server text), so the stderr console never reads Rich markup,
emoji codes or highlights in them: `[/]` in a path must not raise and `[bold]` must not vanish. Style a
message with `style=` or a `rich.text.Text`, never with markup inside an f-string.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text


class _ErrConsole(Console):
    def print(self, *objects: Any, soft_wrap: bool | None = None, **kwargs: Any) -> None:
        # Off a terminal (a CI log, a file, a pipe) a line is never cut at 80 columns mid-value: a path
        # or an error stays on one line that grep and other programs can read.
        if soft_wrap is None:
            soft_wrap = not self.is_terminal
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)


# Colours only on a terminal (Rich checks isatty and NO_COLOR for each print).
err_console = _ErrConsole(stderr=True, markup=False, emoji=False, highlight=False)
_debug = False
_quiet = False


def set_debug(on: bool) -> None:
    global _debug
    _debug = on


def debug_enabled() -> bool:
    return _debug


def set_quiet(on: bool) -> None:
    global _quiet
    _quiet = on


def quiet_enabled() -> bool:
    return _quiet


def say(message: str, style: str | None = None) -> None:
    """One line for people on stderr (progress, notes, what was written), printed verbatim; nothing
    with -q/--quiet. Errors and warnings that need action do not go through here."""
    if not _quiet:
        err_console.print(Text(message, style=style or ""))


def warn(message: str) -> None:
    """A line that needs the user's attention even with -q (e.g. rows were rejected)."""
    err_console.print(Text(message, style="yellow"))


def error(message: str) -> None:
    """`error: <message>` on stderr, the message verbatim (it may quote paths, ids or server text)."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message))
