"""JM202: the v2-era `normalized` field in an embeddings request payload."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.rules._requests import other_requests, python_requests
from jmigrate.rules._sites import dict_entry_span
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Edit, Finding
from jmigrate.scan.python import dict_key
from jmigrate.scan.text import delete_entry_span

MESSAGE = '"normalized" in an embeddings request (a v2 payload field)'


@rule(
    code="JM202",
    name="normalized-field",
    summary='"normalized" field in an embeddings request payload',
    explanation="v2 clients sent `normalized: true` explicitly. The API normalises by default, so the field "
    "is noise in a v3 payload; `normalized: false` changes scores and needs a decision.",
    example='json={"model": MODEL, "input": texts, "normalized": True}',
    fix='Removes `"normalized": true` (safe: it is the default). `normalized: false` is reported for a '
    "person to decide (manual).",
    applicability=Applicability.SAFE,
    languages=["python", "js", "shell", "markdown", "dockerfile", "text"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    for req in python_requests(ctx):
        assert mod is not None
        d = req.payload
        i = dict_key(d, "normalized") if d is not None else None
        if d is None or i is None:
            continue
        key = d.keys[i]
        assert key is not None
        if mod.constant_value(d.values[i]) is True:
            start, end = dict_entry_span(mod, d, i)
            yield ctx.finding(
                "JM202",
                mod.start(key),
                mod.end(d.values[i]),
                MESSAGE,
                'Remove "normalized": True (the API normalises by default)',
                Applicability.SAFE,
                [Edit(start, end, "")],
                {"drop_fields": ["normalized"]},
            )
        else:
            yield ctx.finding(
                "JM202",
                mod.start(key),
                mod.end(d.values[i]),
                MESSAGE,
                "Decide whether unnormalised vectors are really wanted; then remove the field",
                Applicability.MANUAL,
            )
    text = ctx.src.text
    for treq in other_requests(ctx):
        keys = treq.keys(text)
        if "normalized" not in keys:
            continue
        key_start, value_start, value_end = keys["normalized"]
        if text[value_start:value_end].strip() == "true":
            start, end = delete_entry_span(text, key_start, value_end, treq.body_start, treq.body_end)
            yield ctx.finding(
                "JM202",
                key_start,
                value_end,
                MESSAGE,
                'Remove "normalized": true (the API normalises by default)',
                Applicability.SAFE,
                [Edit(start, end, "")],
                {"drop_fields": ["normalized"]},
            )
        else:
            yield ctx.finding(
                "JM202",
                key_start,
                value_end,
                MESSAGE,
                "Decide whether unnormalised vectors are really wanted; then remove the field",
                Applicability.MANUAL,
            )
