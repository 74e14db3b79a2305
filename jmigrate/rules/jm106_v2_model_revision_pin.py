"""JM106: a revision pin of a v2 Hugging Face repository (it changes with the model id)."""

from __future__ import annotations

from collections.abc import Iterator

from jmigrate.models import V3
from jmigrate.rules._pins import pins
from jmigrate.rules.registry import rule
from jmigrate.scan.context import FileContext
from jmigrate.scan.finding import Applicability, Finding


@rule(
    code="JM106",
    name="v2-model-revision-pin",
    summary="Revision pin of a v2 model repository (revision=, --revision, REVISION=) next to its id",
    explanation="A pinned revision (a commit hash, a branch, a pull request such as TEI's refs/pr/25) names "
    "a state of the v2 repository. It does not exist in jinaai/jina-embeddings-v3, so the pin changes with "
    "the id: dropped, or replaced by a revision of v3. Its id is not renamed automatically either (the "
    "renamed id would meet a missing revision).",
    example='AutoModel.from_pretrained("jinaai/jina-embeddings-v2-base-en", revision="7302ac4")',
    fix=f"None automatic: when the id becomes {V3}, drop the pin or pin a revision of jinaai/{V3}.",
    applicability=Applicability.MANUAL,
    languages=["*"],
)
def check(ctx: FileContext) -> Iterator[Finding]:
    seen: set[tuple[int, int]] = set()
    for pin in pins(ctx):
        if (pin.start, pin.end) in seen:
            continue
        seen.add((pin.start, pin.end))
        yield ctx.finding(
            pin.start,
            pin.end,
            f"revision pin {pin.value} belongs to the {pin.model.name} repository",
            f"Change it together with the model id: drop it, or pin a revision of jinaai/{V3}",
            Applicability.MANUAL,
        )
