"""JM505: a JS/TS call that embeds texts through a v2 embedder, where v3 needs the task at that call.

Two kinds of call: a transformers.js extractor of a v2 pipeline (`await extractor(texts, {pooling})`), and
a call of a helper that embeds (an exported function posting to /v1/embeddings or running an extractor)
when the helper's callers serve more than one side (documents stored, queries searched): one v3 task
cannot be fixed inside the helper, so it becomes a parameter and each caller passes its own.
Helpers are followed through ES imports, `require` and re-exports (scan/jsmodules.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jmigrate.models import V3, Model
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.jsmodules import HelperUse, helper_use, project_of, site_guess
from jmigrate.scan.tasks import TaskGuess, recommendation

BOTH = "retrieval.passage for documents, retrieval.query for queries"


def _side(guess: TaskGuess) -> str:
    return guess.task or BOTH


@rule(
    code="JM505",
    name="js-v2-embed-call-without-task",
    summary="a JS/TS call that embeds through a v2 embedder (transformers.js extractor, or a shared helper "
    "serving several sides): v3 needs the task at this call",
    explanation="v3 selects its task per request: documents are embedded with retrieval.passage, queries "
    "with retrieval.query, texts compared with each other with text-matching. A transformers.js extractor "
    "call of a v2 pipeline embeds one side with no task. A helper that posts to /v1/embeddings or runs an "
    "extractor, called for documents in one module and for queries in another, cannot hold one task: each "
    "of its calls is reported with the side it serves, and the helper's own finding (JM201/JM505) says to "
    "take the task as a parameter.",
    example="const vector = await createEmbedding(chunk)  // createEmbedding: imported v2 request helper",
    fix="None automatic: give the helper a task parameter and pass the task named here at each call "
    "(on the Jina API: \"task\" in the payload); for a transformers.js extractor, see JM315.",
    applicability=Applicability.MANUAL,
    languages=["js"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    path, text = ctx.src.path, ctx.src.text
    js = project_of(path, text, ctx.project.js)
    for p, calls in js.extractor_calls(path):
        if p.model.replacement is None and p.model.name != V3:
            continue  # base-code stays on v2 (JM104 says so)
        for start, end in calls:
            guess, use = site_guess(js, path, start, end)
            yield ctx.finding(
                start, end,
                f"transformers.js extractor call of {p.model.name}: v3 needs the task of these texts "
                f"({_side(guess)})" + _helper_note(use),
                _fix(guess, use), Applicability.MANUAL, (),
                _recommendation(p.model, guess),
            )
    uses: dict[str, HelperUse | None] = {}
    for helper, callers in js.callers().items():
        mine = [c for c in callers if c.path == path]
        if not mine:
            continue
        if helper not in uses:
            uses[helper] = helper_use(js, helper)
        use = uses[helper]
        if use is None or not use.several:
            continue
        where, name = helper.rsplit(":", 1)
        for call, guess in use.calls:
            if call.path != path:
                continue
            model = call.model
            yield ctx.finding(
                call.at, call.end,
                f"call of {name}() ({where}), which embeds with "
                f"{model.name if model else 'a Jina model'} for several sides: on v3 pass the task here "
                f"({_side(guess)}: {guess.reason})",
                f"Give {name}() a task parameter and pass "
                + (f'"{guess.task}"' if guess.task else "the task of these texts") + " from this call",
                Applicability.MANUAL, (),
                _recommendation(model, guess),
            )


def _recommendation(model: Model | None, guess: TaskGuess) -> dict[str, Any]:
    if model is None or model.replacement is None:  # v3 already (after apply), or unknown
        return {"model": V3, "task": guess.task, "task_reason": guess.reason}
    return recommendation(model, guess)


def _helper_note(use: HelperUse | None) -> str:
    if use is not None and use.several:
        return "; its function is called for several sides, so the task must be a parameter"
    return ""


def _fix(guess: TaskGuess, use: HelperUse | None) -> str:
    if use is not None and use.several:
        return ("Take the task as a parameter of this function and pass it from each caller "
                f"({guess.reason}); then see JM315 for the v3 backend")
    return f"Embed these texts with task {_side(guess)} on v3 (see JM315 for the backend)"
