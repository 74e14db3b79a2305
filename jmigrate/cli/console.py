"""Where output goes: results to stdout, everything for people (progress, logs, summaries) to stderr."""

from __future__ import annotations

from rich.console import Console

err_console = Console(stderr=True)
_debug = False


def set_debug(on: bool) -> None:
    global _debug
    _debug = on


def debug_enabled() -> bool:
    return _debug
