"""The model catalogue: facts every command relies on."""

from __future__ import annotations

import pytest

from jmigrate.errors import UsageError
from jmigrate.models import MATRYOSHKA_DIMS, MODELS, TASKS, V3, get_model, get_task


def test_v2_family_and_replacements() -> None:
    assert get_model("jinaai/jina-embeddings-v2-base-en").dims == 768
    assert get_model("jina-embeddings-v2-small-en").dims == 512
    assert get_model("Xenova/jina-embeddings-v2-base-de").replacement == V3
    assert get_model("jina-embeddings-v2-base-code").replacement is None  # code stays on v2
    assert get_model("jina-embeddings-v2-base-zh").bilingual
    assert get_model("jina-embedding-t-en-v1").dims == 312
    assert MODELS[V3].dims == 1024 and MATRYOSHKA_DIMS[-1] == 1024


def test_tasks_ids_and_prefixes() -> None:
    assert [t.task_id for t in TASKS.values()] == [0, 1, 2, 3, 4]
    assert get_task("retrieval.query").prefix == "Represent the query for retrieving evidence documents: "
    assert get_task("retrieval.passage").prefix == "Represent the document for retrieval: "
    assert get_task("text-matching").prefix == ""


def test_unknown_names_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown model"):
        get_model("jina-embeddings-v9")
    with pytest.raises(UsageError, match="unknown task"):
        get_task("retrieval")
