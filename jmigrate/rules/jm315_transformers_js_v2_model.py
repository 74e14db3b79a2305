"""JM315: a transformers.js feature-extraction pipeline of a v1/v2 Jina model (JS/TS).

`pipeline("feature-extraction", "Xenova/jina-embeddings-v2-base-en")` (@xenova/transformers,
@huggingface/transformers) runs the v2 ONNX export and pools it. jina-embeddings-v3's ONNX export takes a
`task_id` input (one LoRA adapter per task) and its retrieval tasks prepend an instruction to the text; the
feature-extraction pipeline sends neither, so there is no drop-in v3 model for it. The model id is often in
another module (a table of models): it is followed through the imports (scan/jsmodules.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.models import V3
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding
from jmigrate.scan.jsmodules import project_of, site_guess
from jmigrate.scan.tasks import TaskGuess, decide, recommendation

FIX = (
    "transformers.js has no v3 pipeline with task adapters: embed through the Jina API with "
    "jina-embeddings-v3 and a task per side ({task}) and re-embed every stored vector, or keep this v2 "
    "model for the whole index (never mix v2 and v3 vectors)"
)
FIX_V3 = (
    "Embed through the Jina API with jina-embeddings-v3 and a task per side ({task}), or go back to the v2 "
    "model for the whole index (never mix v2 and v3 vectors)"
)
BOTH = "retrieval.passage for documents, retrieval.query for queries"


@rule(
    code="JM315",
    name="transformers-js-v2-model",
    summary="transformers.js pipeline('feature-extraction', <v1/v2 Jina model>) in JS/TS",
    explanation="transformers.js (@xenova/transformers, @huggingface/transformers) runs the v2 ONNX "
    "export with mean pooling. jina-embeddings-v3's ONNX export needs a `task_id` input (its task adapter) "
    "and the retrieval instruction in front of the text, which the feature-extraction pipeline does not "
    "send: there is no v3 model to rename to. The model id is followed when it comes from a constant, an "
    "object table or another module of the repository.",
    example="const extractor = await pipeline('feature-extraction', 'Xenova/jina-embeddings-v2-base-en')",
    fix="None automatic: move the embedding to the Jina API (jina-embeddings-v3 with task "
    "retrieval.passage for documents and retrieval.query for queries) and re-embed, or keep the v2 model "
    "for every vector of the index. Each extractor call is reported by JM505.",
    applicability=Applicability.MANUAL,
    languages=["js"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    path, text = ctx.src.path, ctx.src.text
    if "pipeline" not in text:
        return
    js = project_of(path, text, ctx.project.js)
    for p, _, calls in js.pipelines(path):
        model = p.model
        if model.replacement is None:
            continue  # base-code stays on v2: JM104 says so on the id
        guesses = [site_guess(js, path, s, e)[0] for s, e in calls]
        tasks = {g.task for g in guesses if g.task}
        if len(guesses) == 1:
            guess = guesses[0]
        elif tasks:
            guess = decide([(t, "an extractor call") for t in sorted(tasks)])
        else:
            guess = TaskGuess(None, "no use of the vectors found")
        several = len(tasks) > 1 or any(g.task is None and "several sides" in g.reason for g in guesses)
        task = BOTH if several or guess.task is None else guess.task
        if model.name == V3:
            yield ctx.finding(
                p.at, p.at + len("pipeline"),
                "transformers.js feature-extraction pipeline of jina-embeddings-v3: it sends no task_id and "
                "no retrieval instruction, so the v3 task adapters are not used",
                FIX_V3.format(task=task), Applicability.MANUAL, (),
                {"model": V3, "task": guess.task, "task_reason": guess.reason},
            )
            continue
        yield ctx.finding(
            p.at, p.at + len("pipeline"),
            f"transformers.js feature-extraction pipeline of {model.name}: no transformers.js pipeline runs "
            "jina-embeddings-v3's task adapters",
            FIX.format(task=task),
            Applicability.MANUAL, (),
            recommendation(model, guess),
        )
