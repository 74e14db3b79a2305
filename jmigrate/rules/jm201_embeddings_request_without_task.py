"""JM201: a raw HTTP request to Jina's /v1/embeddings without a `task`."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from typing import Any

from jmigrate.models import V3
from jmigrate.rules._helpers import helper_at, register_calls, register_helper_finding
from jmigrate.rules._requests import other_requests, python_requests
from jmigrate.rules._sites import add_dict_entry, insert_before_key
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.jsmodules import helper_guess, project_of
from jmigrate.scan.python import dict_key
from jmigrate.scan.tasks import TaskGuess, infer_python, infer_text, recommendation
from jmigrate.scan.text import model_matches

# `normalized: true` is the default (JM202 drops it). `encoding_format` is renamed, not dropped (JM203 says
# the same, so two rules never advise differently on one field); `encoding_type` is a valid alias.
V2_FIELDS = {"normalized"}
RENAMED_FIELDS = {"encoding_format": "embedding_type"}
MESSAGE = "request to api.jina.ai/v1/embeddings without a task (v2 payload)"
# After `apply` renamed the model, a v3 request with no task is unfinished, not done (issue 12).
MESSAGE_V3 = "jina-embeddings-v3 request without a task: generic vectors, no task adapter"
HELPER = "; its callers serve different sides, so the helper needs a task parameter"
HELPER_FIX = (
    f'Send "model": "{V3}" and take the task as a parameter of this helper: each caller passes its own '
    "(JM505 names the task of each call; {reason})"
)


def _task_model(value: object) -> bool:
    """Whether a request for this model needs a task: v1/v2 (moving to v3), v3, or unknown (a variable).
    Other models (jina-clip-*, jina-colbert-*, jina-embeddings-v4, rerankers) are not this rule's."""
    if not isinstance(value, str) or not value:
        return True
    if V3 in value or any(True for _ in model_matches(value)):
        return True
    return not value.startswith("jina-")  # another Jina model family; anything else is unknown


def _fix(task: str | None, reason: str) -> str:
    if task:
        return f'Send "model": "{V3}" and "task": "{task}" ({reason})'
    return (
        f'Send "model": "{V3}" and a task: "retrieval.passage" for documents you store, '
        '"retrieval.query" for queries (one request per side)'
    )


@rule(
    code="JM201",
    name="embeddings-request-without-task",
    summary="raw HTTP request to /v1/embeddings with no task (requests, httpx, aiohttp, fetch, axios, curl)",
    explanation="v2 requests send only model and input. v3 has task adapters: without `task` it returns "
    "generic vectors that retrieve worse. Documents and queries need different tasks "
    "(retrieval.passage / retrieval.query).",
    example='requests.post("https://api.jina.ai/v1/embeddings", json={"model": MODEL, "input": docs})',
    fix='Adds "task": "<inferred task>" to the payload when the use of the vectors makes the task clear '
    "(unsafe: the vectors change); otherwise manual, with the guidance for both sides.",
    applicability=Applicability.UNSAFE,
    languages=["python", "js", "shell", "markdown", "dockerfile", "text"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    if mod is not None:
        register_calls(ctx, mod)
    for req in python_requests(ctx):
        assert mod is not None
        payload = req.payload
        model = None
        if payload is not None:
            model = dict_key(payload, "model")
            if dict_key(payload, "task") is not None or (
                model is not None and not _task_model(mod.constant_value(payload.values[model]))
            ):
                continue
        guess = infer_python(mod, req.call)
        edits = []
        if req.certain and payload is not None and payload.keys and guess.task and None not in payload.keys:
            model_at = dict_key(payload, "model")
            edits = [add_dict_entry(mod, payload, "task", guess.task, model_at)]
        start, end = mod.span(req.call.func)
        py_keys: set[object] = {
            k.value for k in (payload.keys if payload else []) if isinstance(k, ast.Constant)
        }
        model_value = mod.constant_value(payload.values[model]) if payload and model is not None else None
        found = ctx.finding(
            start,
            end,
            MESSAGE_V3 if model_value == V3 else MESSAGE,
            _fix(guess.task, guess.reason),
            Applicability.UNSAFE,
            edits,
            _recommendation(model_value, guess, py_keys),
        )
        helper = helper_at(ctx, mod, req.call)
        if helper is not None and helper.request is not None and helper.request.call is req.call:
            register_helper_finding(ctx, helper, _rebuild(found, helper.fn.name, model_value, py_keys, guess))
        yield found
    text = ctx.src.text
    for treq in other_requests(ctx):
        keys = treq.keys(text)
        body = text[treq.body_start : treq.body_end] if treq.body_start >= 0 else ""
        model_text = text[keys["model"][1] : keys["model"][2]] if "model" in keys else None
        js = project_of(ctx.src.path, text, ctx.project.js) if ctx.language == "js" else None
        if js is not None and "model" in keys:  # `model: MODEL`: imported, a table entry, an env default
            model_text = js.string(ctx.src.path, keys["model"][1]) or model_text
        if "task" in keys or (model_text is not None and not _task_model(model_text.strip("\"'` "))):
            continue
        guess, several = infer_text(text), False
        if js is not None:
            # A helper function: its callers (this module or importers) say which side it serves.
            use = helper_guess(js, ctx.src.path, treq.url_start)
            if use is not None and (use.several or use.guess.task):
                guess, several = use.guess, use.several
        edits = []
        if treq.certain and treq.body_start >= 0 and guess.task and "model" in keys:
            key_start = keys["model"][0]  # in front of the model key (see add_dict_entry)
            quote = text[key_start] if text[key_start] in "\"'" else ""
            edits = [insert_before_key(text, key_start, f'{quote}task{quote}: "{guess.task}"')]
        yield ctx.finding(
            treq.url_start,
            treq.url_end,
            (MESSAGE_V3 if V3 in body or model_text == V3 else MESSAGE) + (HELPER if several else ""),
            HELPER_FIX.format(reason=guess.reason) if several else _fix(guess.task, guess.reason),
            Applicability.UNSAFE,
            edits,
            _recommendation(
                model_text,
                guess,
                set[object](keys),
            ),
        )


def _rebuild(
    found: Finding, name: str, model_value: object, keys: set[object], first: TaskGuess
) -> Callable[[TaskGuess], None]:
    """Re-words the finding of a request inside an embedding helper once every call of the helper in the
    repository is known: the sides they serve decide, not the helper's own module (its `__main__` demo)."""

    def rebuild(g: TaskGuess) -> None:
        found.fix_title = _fix(g.task, g.reason)
        if g.task is None:
            found.fix_title = f'Give {name}() a task parameter sent as "task"; ' + found.fix_title
        found.recommendation = _recommendation(model_value, g, keys)
        if g.task != first.task:  # the edit adds the task the module alone suggested: not this one
            found.edits, found.applicability = [], Applicability.MANUAL

    return rebuild


def _recommendation(model_value: object, guess: TaskGuess, keys: set[object]) -> dict[str, Any]:
    """The v3 settings for this request: those of the v2 model it names, the inferred task, and the
    v2-era fields to drop."""
    drop = sorted(k for k in keys if k in V2_FIELDS)
    renames = {k: v for k, v in RENAMED_FIELDS.items() if k in keys}
    matches = list(model_matches(model_value)) if isinstance(model_value, str) else []
    if matches and matches[0].model.replacement:
        rec = recommendation(matches[0].model, guess, drop_fields=drop)
    else:
        rec = {"model": V3, "task": guess.task, "task_reason": guess.reason}
        if drop:
            rec["drop_fields"] = drop
    if renames:
        rec["rename_fields"] = renames
    return rec
