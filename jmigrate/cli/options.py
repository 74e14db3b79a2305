"""Option helpers shared by the commands, so every command names and checks its options the same way."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TypeVar

import typer

E = TypeVar("E", bound=Enum)


def choice(enum: type[E]) -> Callable[[object], E]:
    """Parser for an Enum option with Click's own message for a bad value (`'x' is not one of 'text',
    'json'.`); Typer's default wraps it in a pydantic "Value error, ..." text."""
    values = [str(m.value) for m in enum]

    def parse(value: object) -> E:
        if isinstance(value, enum):
            return value
        try:
            return enum(value)
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not one of {', '.join(repr(v) for v in values)}.") from None

    return parse


N = TypeVar("N", int, float)


def int_range(low: int, high: int | None = None) -> Callable[[object], int]:
    """Parser for an integer option with Click's own messages (`70000 is not in the range
    0<=x<=65535.`) instead of pydantic's."""
    return _number_range(int, "integer", low, high)


def float_range(low: float, high: float | None = None) -> Callable[[object], float]:
    return _number_range(float, "float", low, high)


def _number_range(kind: type[N], label: str, low: N, high: N | None) -> Callable[[object], N]:
    def parse(value: object) -> N:
        if isinstance(value, kind) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = kind(str(value))
            except ValueError:
                raise typer.BadParameter(f"{value!r} is not a valid {label}.") from None
        if number != number:  # NaN compares false with every bound
            raise typer.BadParameter(f"{value!r} is not a valid {label}.")
        if number < low or (high is not None and number > high):
            bounds = f"{low}<=x<={high}" if high is not None else f"x>={low}"
            raise typer.BadParameter(f"{number} is not in the range {bounds}.")
        return number

    return parse


class ReportFormat(str, Enum):
    text = "text"
    concise = "concise"
    json = "json"
    sarif = "sarif"
    markdown = "markdown"


class ListFormat(str, Enum):
    text = "text"
    json = "json"


OUTPUT_HELP = "Write the result to FILE instead of stdout."
