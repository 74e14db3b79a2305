"""JM313: onnxruntime inference of the v2 ONNX export (session.run + pooling written for v2's graph).

v2's export (`onnx/model.onnx`, `model_quantized.onnx`) takes input_ids / attention_mask / token_type_ids and
returns `last_hidden_state`. v3's export (jinaai/jina-embeddings-v3 `onnx/model.onnx` + `model.onnx_data`, or
`model_fp16.onnx`; no quantized file) takes input_ids, attention_mask and a `task_id` (int64, one task per
batch) and returns `text_embeds` (token embeddings, mean-pooled by the caller), and the retrieval tasks'
instruction prefix is the caller's to add (../shared/jina-v3.md section 4). Renaming the repository id
alone breaks this code (unknown output name, missing input), so the run call itself is a line to edit.

A session is v2's when the module downloads a v2 repository (`hf_hub_download` / `snapshot_download` with a
v1/v2 id, followed through the module's value flow) or opens a path naming a v2 model; each `.run(...)` of
such a session (a name, `self.session` set in any method) is reported. Code that feeds `task_id` is v3 code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from jmigrate.models import V3, Model
from jmigrate.rules._calls import flow
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.python import PyModule, call_name, kwarg, last_part
from jmigrate.scan.tasks import infer_call, recommendation
from jmigrate.scan.text import model_matches

_DOWNLOADS = {"hf_hub_download", "snapshot_download"}
_SESSIONS = {"InferenceSession"}
_TASKS = "0 retrieval.query, 1 retrieval.passage, 2 separation, 3 classification, 4 text-matching"


@rule(
    code="JM313",
    name="v2-onnx-inference",
    summary="onnxruntime session.run of a v2 ONNX export (last_hidden_state pooled by hand)",
    explanation="v3's ONNX export has other files (onnx/model.onnx + model.onnx_data, model_fp16.onnx; no "
    "quantized file), another input (task_id, int64, one task per batch) and another output (text_embeds), "
    "and the retrieval instruction prefix is not in the graph: code written for v2's export (input_ids, "
    "attention_mask, token_type_ids -> last_hidden_state) breaks when only the repository id changes.",
    example='session.run(output_names=["last_hidden_state"], input_feed=inputs)  # onnx of a v2 repo',
    fix="None automatic: download onnx/model.onnx and onnx/model.onnx_data of jinaai/jina-embeddings-v3, "
    "feed task_id (0 retrieval.query, 1 retrieval.passage, 2 separation, 3 classification, 4 text-matching), "
    "read text_embeds, mean-pool, truncate to the dimensions you keep, normalise; prefix retrieval texts "
    "with the task's instruction. Or embed through the API.",
    applicability=Applicability.MANUAL,
    languages=["python"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    mod = ctx.py
    text = ctx.src.text
    if mod is None or "InferenceSession" not in text or _feeds_task_id(mod, text):
        return
    model = _v2_export(ctx, mod)
    if model is None:
        return
    v3 = model == V3  # after `apply` renamed the repository: the v2-style feed is still there
    for call in mod.calls:
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr == "run" and _is_session(ctx, mod, func.value)):
            continue
        guess = infer_call(mod, call)
        side = guess.task or "retrieval.passage for documents / retrieval.query for queries"
        name = model if isinstance(model, str) else model.name
        yield ctx.finding(
            *mod.span(func),
            f"onnxruntime runs the ONNX export of {name} "
            + ("without a task_id: " if v3 else "(v2's inputs and last_hidden_state): ")
            + "v3's export takes a task_id and returns text_embeds",
            "Use jinaai/jina-embeddings-v3's onnx/model.onnx (+ model.onnx_data): feed task_id "
            f"({_TASKS}; here {side}), read text_embeds, mean-pool and normalise, and prefix retrieval texts "
            "with the task's instruction; v3 weights are CC BY-NC 4.0 for self-hosting",
            Applicability.MANUAL,
            (),
            {} if isinstance(model, str) else recommendation(model, guess, local=True),
        )


def _feeds_task_id(mod: PyModule, text: str) -> bool:
    """The code (not a comment or docstring) names `task_id`: a feed key, a variable, a keyword."""
    if "task_id" not in text:
        return False
    return (
        any(n.value == "task_id" for n in mod.of_type(ast.Constant))
        or any(n.id == "task_id" for n in mod.of_type(ast.Name))
        or any(n.arg == "task_id" for n in mod.of_type(ast.keyword))
    )


def _legacy(values: frozenset[str]) -> Model | str | None:
    for value in sorted(values):
        for m in model_matches(value):
            if m.model.replacement is not None:
                return m.model
        if V3 in value:
            return V3
    return None


def _v2_export(ctx: FileContext, mod: PyModule) -> Model | str | None:
    """The replaced model whose export this module runs (a v2 repository downloaded, or a session path
    naming one), or V3 for v3's export run by code that never feeds a task_id."""
    f = flow(ctx, mod)
    for call in mod.calls:
        last = last_part(call_name(call))
        if last in _DOWNLOADS:
            kw = kwarg(call, "repo_id")
            node = kw.value if kw is not None else (call.args[0] if call.args else None)
        elif last in _SESSIONS:
            kw = kwarg(call, "path_or_bytes")
            node = kw.value if kw is not None else (call.args[0] if call.args else None)
        else:
            continue
        found = _legacy(f.values(node)[0]) if node is not None else None
        if found is not None:
            return found
    return None


def _is_session(ctx: FileContext, mod: PyModule, expr: ast.AST) -> bool:
    """`expr` holds an onnxruntime InferenceSession: the call itself, a name bound to one, `self.x` set to
    one in a method of the class."""
    def session(node: ast.AST | None) -> bool:
        return isinstance(node, ast.Call) and last_part(call_name(node)) in _SESSIONS

    if session(expr):
        return True
    on_self = isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id in (
        "self", "cls"
    )
    if on_self:
        assert isinstance(expr, ast.Attribute)
        f = flow(ctx, mod)
        cls = f.class_of(expr)
        return cls is not None and any(session(v) for v in f.attrs().get((id(cls), expr.attr), []))
    if isinstance(expr, ast.Name):
        scope: ast.AST = mod.scope_of(expr)
        while True:
            bound = mod.bindings_of(scope).get(expr.id)
            if bound:
                return any(session(b) for b in bound if b is not None)
            if isinstance(scope, ast.Module):
                return False
            scope = mod.scope_of(scope)
    return False
