"""Refuse to search an index with query vectors from another embedding space.

Mixing spaces (v2 queries against v3 documents, a classification adapter against retrieval passages,
768 against 1024 dimensions) returns plausible-looking nonsense rather than an error; this is the
mistake users hit most, so `verify` stops with a message that names both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from jmigrate.errors import UsageError
from jmigrate.models import get_model

# retrieval.query and retrieval.passage are two halves of one asymmetric space; other tasks pair
# only with themselves, and "no task" (v2, or v3 without adapters) only with "no task".
RETRIEVAL = "retrieval"


@dataclass(frozen=True)
class Space:
    model: str | None  # None: unknown (precomputed vectors that do not declare it)
    task: str | None
    dimensions: int

    def describe(self) -> str:
        model = self.model or "an undeclared model"
        task = f"task {self.task}" if self.task else "no task"
        return f"{model}, {task}, {self.dimensions} dims"


def task_family(task: str | None) -> str:
    if task is None:
        return "none"
    return RETRIEVAL if task.startswith("retrieval.") else task


def query_task_for(index_task: str | None) -> str | None:
    """The task queries need to search an index built with `index_task`."""
    return "retrieval.query" if task_family(index_task) == RETRIEVAL else index_task


def check_space(side: str, index: Space, queries: Space, *, query_task_known: bool = True) -> None:
    """Raise UsageError when `queries` cannot be searched against `index`."""
    problem = None
    if queries.dimensions != index.dimensions:
        problem = "the dimensions differ"
    elif (
        queries.model is not None
        and index.model is not None
        and get_model(queries.model).name != get_model(index.model).name
    ):
        problem = "the models differ (vectors of different models are never comparable)"
    elif query_task_known and task_family(queries.task) != task_family(index.task):
        problem = "the task families differ (each v3 task adapter is its own space)"
    if problem:
        raise UsageError(
            f"refusing to search the {side} index ({index.describe()}) with query vectors of "
            f"{queries.describe()}: {problem}"
        )
