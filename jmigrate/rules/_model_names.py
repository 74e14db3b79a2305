"""Shared by the model-name rules (JM101-JM104): find legacy model ids, infer the task, build the finding."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Iterator

from jmigrate.models import V3, Model
from jmigrate.rules._helpers import helper_at, register_calls, register_helper_finding
from jmigrate.rules._pins import pinned_ids
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Edit, Finding
from jmigrate.scan.python import PyModule, call_name, kwarg, last_part
from jmigrate.scan.tasks import TaskGuess, infer_python, infer_text, recommendation
from jmigrate.scan.text import ModelMatch, model_matches

# Loaders that run the weights on the user's machine: proposing v3 there brings the licence note.
LOCAL_LOADERS = {
    "SentenceTransformer",
    "from_pretrained",
    "TextEmbedding",
    "pipeline",
    "HuggingFaceEmbeddings",
    "HuggingFaceEmbedding",
    "SentenceTransformerEmbeddings",
    "snapshot_download",
    "hf_hub_download",
    "ORTModelForFeatureExtraction",
    "CrossEncoder",
}
# Loaders that cannot load v3 at all: a rewrite would break the code, so the finding is manual.
# (fastembed's TextEmbedding is not one: fastembed >= 0.6 ships jinaai/jina-embeddings-v3,
# fastembed/text/multitask_embedding.py.)
NO_V3_LOADERS: set[str] = set()
# Ids other rules own: LiteLLM's provider prefix (JM307) and Ollama's namespace (JM311).
OWNED_ORGS = {"jina_ai", "jina"}


def site(ctx: FileContext, match: ModelMatch) -> tuple[ast.AST | None, str, bool]:
    """The Python string literal holding the match (None in comments and other files), the name of the
    call it is passed to, and whether that call pins a revision of the v2 repository."""
    mod = ctx.py
    node = mod.string_at(match.start) if mod is not None else None
    if mod is None or node is None:
        return None, "", False
    call = mod.enclosing_call(node)
    if call is None:
        return node, "", False
    return node, call_name(call), kwarg(call, "revision", "code_revision") is not None


def runtime_org(mod: PyModule, node: ast.AST) -> str:
    parent = mod.parent(node)
    prefix = ""
    if (
        isinstance(parent, ast.Call)
        and isinstance(parent.func, ast.Attribute)
        and parent.func.attr == "format"
        and isinstance(parent.func.value, ast.Constant)
        and isinstance(parent.func.value.value, str)
    ):
        prefix = parent.func.value.value.split("{", 1)[0]
    elif (
        isinstance(parent, ast.BinOp)
        and isinstance(parent.op, ast.Add)
        and parent.right is node
        and isinstance(parent.left, ast.Constant)
        and isinstance(parent.left.value, str)
    ):
        prefix = parent.left.value
    if not prefix.endswith("/"):
        return ""
    return prefix[:-1].rsplit("/", 1)[-1]


def guess_for(ctx: FileContext, node: ast.AST | None) -> TaskGuess:
    mod = ctx.py
    if mod is not None and node is not None:
        return infer_python(mod, node)
    return infer_text(ctx.src.text)


def model_findings(
    ctx: FileContext,
    wanted: Callable[[Model], bool],
    describe: Callable[[ModelMatch], str],
    fix: Callable[[ModelMatch, TaskGuess], str],
    rewrite: bool,
) -> Iterator[Finding]:
    if ctx.py is not None:
        register_calls(ctx, ctx.py)  # the calls of helpers: see _helpers.register_calls
    text = ctx.src.text
    for match in model_matches(text):
        if not wanted(match.model) or match.org in OWNED_ORGS:
            continue
        node, called, pinned = site(ctx, match)
        if not pinned and match.model.replacement is not None:
            # bound to a revision pin written elsewhere (JM106): renaming the id alone would break it
            held = ctx.py.start(node) if node is not None and ctx.py is not None else match.start
            pinned = held in pinned_ids(ctx)
        if node is not None and not match.org and ctx.py is not None:
            # "Xenova/{}".format("jina-...") or "Xenova/" + "jina-...": the org is added at run time.
            match = dataclasses.replace(match, org=runtime_org(ctx.py, node))
        local = last_part(called) in LOCAL_LOADERS
        guess = guess_for(ctx, node) if match.model.replacement else None
        edits = []
        applicability = Applicability.MANUAL
        # A pinned revision names a commit of the v2 repository: swapping only the name would break it.
        if rewrite and match.rewritable and last_part(called) not in NO_V3_LOADERS and not pinned:
            edits = [Edit(match.name_start, match.end, V3)]
            # Changing the model changes every vector: never safe without re-embedding the corpus.
            applicability = Applicability.UNSAFE
        rec = recommendation(match.model, guess, local=local)
        found = ctx.finding(
            match.start,
            match.end + len(match.tail),
            describe(match),
            fix(match, guess) if guess else fix(match, TaskGuess(None, "")),
            applicability,
            edits,
            rec,
        )
        if guess is not None and node is not None and ctx.py is not None:
            helper = helper_at(ctx, ctx.py, node)
            if helper is not None:  # the id inside an embedding helper: its calls everywhere say the task
                register_helper_finding(ctx, helper, _rebuild(found, match, fix, local))
        yield found


def _rebuild(
    found: Finding, match: ModelMatch, fix: Callable[[ModelMatch, TaskGuess], str], local: bool
) -> Callable[[TaskGuess], None]:
    def rebuild(g: TaskGuess) -> None:
        found.fix_title = fix(match, g)
        found.recommendation = recommendation(match.model, g, local=local)

    return rebuild


def fix_text(match: ModelMatch, guess: TaskGuess) -> str:
    m = match.model
    target = f"{match.org}/{V3}" if match.org else V3
    if not match.rewritable:
        target = f"{V3} (jinaai/{V3} on Hugging Face; check that this loader supports it)"
    task = (
        f"task={guess.task}"
        if guess.task
        else "task=retrieval.passage for documents / retrieval.query for queries"
    )
    size = f"; {m.size_change}" if m.size_change else ""
    return (
        f"Use {target} with {task}; re-embed everything (dimensions=1024, or dimensions={m.dims} to keep "
        f"the schema){size}"
    )
