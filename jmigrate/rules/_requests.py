"""Shared by the HTTP rules (JM201-JM203): the embeddings requests of a file, Python or text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jmigrate.rules._sites import PyRequest, Sites, dict_entry_span
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Edit, Finding
from jmigrate.scan.python import dict_key
from jmigrate.scan.text import TextRequest, delete_entry_span, text_requests


def python_requests(ctx: FileContext) -> Iterator[PyRequest]:
    mod = ctx.py
    if mod is None:
        return
    yield from Sites(ctx, mod).requests


def other_requests(ctx: FileContext) -> list[TextRequest]:
    if ctx.language == "python":
        return []
    return text_requests(ctx.src.text)


UNSURE = (
    " (by hand: the payload's name is bound more than once where the request is made, so the edit could "
    "land in another payload)"
)


@dataclass(frozen=True)
class PayloadField:
    """One key of an embeddings request payload, Python or text, with the spans its fixes need."""

    key: str
    key_start: int
    key_end: int  # the key with its quotes
    name_start: int  # the bare name inside the quotes (-1: not spelled plainly, so not renamed)
    value_end: int
    value: object  # the literal value (True / False / a string) when it is one, else None
    delete: tuple[int, int]  # removes `key: value` and one separating comma
    certain: bool  # False: the payload may not be the one sent (see PyRequest.certain)


def payload_fields(ctx: FileContext, keys: Iterable[str]) -> Iterator[PayloadField]:
    """The given keys in every embeddings request payload of the file, in source order."""
    wanted = tuple(keys)
    mod = ctx.py
    for req in python_requests(ctx):
        d = req.payload
        if d is None or mod is None:
            continue
        for key in wanted:
            i = dict_key(d, key)
            if i is None:
                continue
            k = d.keys[i]
            assert k is not None
            start, end = mod.span(k)
            at = mod.src.text.find(key, start, end)  # -1 when spelled with escapes: no rename then
            yield PayloadField(key, start, end, at, mod.end(d.values[i]),
                               mod.constant_value(d.values[i]), dict_entry_span(mod, d, i), req.certain)
    text = ctx.src.text
    for treq in other_requests(ctx):
        found = treq.keys(text)
        for key in wanted:
            if key not in found:
                continue
            key_start, value_start, value_end = found[key]
            name_at = text.index(key, key_start)
            raw = text[value_start:value_end].strip()
            value: object = {"true": True, "false": False}.get(raw)
            if value is None and len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
                value = raw[1:-1]
            yield PayloadField(key, key_start, name_at + len(key) + (text[key_start] in "\"'"), name_at,
                               value_end, value,
                               delete_entry_span(text, key_start, value_end, treq.body_start, treq.body_end),
                               treq.certain)


def field_finding(
    ctx: FileContext,
    field: PayloadField,
    message: str,
    fix_title: str,
    applicability: Applicability,
    edits: Sequence[Edit] = (),
    recommendation: dict[str, Any] | None = None,
    *,
    key_only: bool = False,
) -> Finding:
    """A finding on a payload field (on the key, or `key: value`): manual whenever the payload itself is
    uncertain, so no edit lands in a payload that may not be the one sent."""
    if not field.certain and edits:
        applicability, edits, fix_title = Applicability.MANUAL, (), fix_title + UNSURE
    end = field.key_end if key_only else field.value_end
    return ctx.finding(field.key_start, end, message, fix_title, applicability, edits, recommendation)
