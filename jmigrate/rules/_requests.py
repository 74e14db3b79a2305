"""Shared by the HTTP rules (JM201-JM203): the embeddings requests of a file, Python or text."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from jmigrate.rules._sites import Sites
from jmigrate.scan.context import FileContext
from jmigrate.scan.text import TextRequest, text_requests


@dataclass
class PyRequest:
    call: ast.Call
    payload: ast.Dict | None


def python_requests(ctx: FileContext) -> Iterator[PyRequest]:
    mod = ctx.py
    if mod is None:
        return
    for call, payload in Sites(ctx, mod).requests:
        yield PyRequest(call, payload)


def other_requests(ctx: FileContext) -> list[TextRequest]:
    if ctx.language == "python":
        return []
    return text_requests(ctx.src.text)
