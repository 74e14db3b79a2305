"""Queries, precomputed query vectors, qrels in both formats, and the mixed-space guard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jmigrate.errors import InputError, UsageError
from jmigrate.verify.guard import Space, check_space, query_task_for
from jmigrate.verify.queries import align_query_vectors, load_qrels, load_queries, load_query_vectors

V2, V3 = "jina-embeddings-v2-base-en", "jina-embeddings-v3"


def test_trec_qrels_graded(tmp_path: Path) -> None:
    f = tmp_path / "qrels.txt"
    f.write_text("q1 0 d1 2\nq1 0 d2 0\nq2 Q0 d3 1\n")
    assert load_qrels(f) == {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}


def test_beir_tsv_qrels_with_header(tmp_path: Path) -> None:
    f = tmp_path / "test.tsv"
    f.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td 2\t3\n")  # BEIR ids may hold spaces
    assert load_qrels(f) == {"q1": {"d1": 1, "d 2": 3}}


def test_project_fixture_qrels_header_variant() -> None:
    f = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "qrels.tsv"
    lines = f.read_text().splitlines()
    assert lines[0].split("\t") == ["query_id", "doc_id", "relevance"]
    qrels = load_qrels(f)
    assert sum(len(v) for v in qrels.values()) == len(lines) - 1 and qrels["q1"]["d1"] == 1


@pytest.mark.parametrize("content", ["q1 0 d1\n", "q1 0 d1 x\nq2 0 d2 1\n", "q1 0 d1 1.5\n", ""])
def test_bad_qrels_are_input_errors(tmp_path: Path, content: str) -> None:
    f = tmp_path / "q.txt"
    f.write_text("q0 0 d0 1\n" + content if content == "q1 0 d1 x\nq2 0 d2 1\n" else content)
    with pytest.raises(InputError):
        load_qrels(f)


def test_queries_in_every_format_with_language(tmp_path: Path) -> None:
    rows = [
        {"id": "q1", "text": "wie setze ich mein Passwort zurück", "lang": "de"},
        {"id": "q2", "text": "réinitialiser le mot de passe", "lang": "fr"},
    ]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (tmp_path / "q.tsv").write_text(
        "id\ttext\tlang\n" + "".join(f"{r['id']}\t{r['text']}\t{r['lang']}\n" for r in rows)
    )
    (tmp_path / "q.csv").write_text(
        "_id,text,language\n" + "".join(f"{r['id']},{r['text']},{r['lang']}\n" for r in rows)
    )
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "q.parquet")
    for name in ("q.jsonl", "q.tsv", "q.csv", "q.parquet"):
        qs = load_queries(tmp_path / name)
        assert [(q.id, q.text, q.language) for q in qs] == [(r["id"], r["text"], r["lang"]) for r in rows], (
            name
        )


def test_duplicate_query_ids_rejected(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(InputError, match="duplicate query id"):
        load_queries(f)


def test_query_vectors_aligned_to_query_order_and_declared_space(tmp_path: Path) -> None:
    m = np.arange(6, dtype=np.float32).reshape(3, 2)
    t = pa.table({"id": ["b", "a", "c"], "vector": pa.array(m.tolist(), pa.list_(pa.float32()))})
    t = t.replace_schema_metadata({"jmigrate": json.dumps({"model": V3, "task": "retrieval.query"})})
    pq.write_table(t, tmp_path / "qv.parquet")
    qv = load_query_vectors(tmp_path / "qv.parquet")
    assert (qv.model, qv.task) == (V3, "retrieval.query")
    (tmp_path / "q.jsonl").write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n')
    queries = load_queries(tmp_path / "q.jsonl")
    assert align_query_vectors(qv, queries, "v3").tolist() == [[2.0, 3.0], [0.0, 1.0]]
    (tmp_path / "q2.jsonl").write_text('{"id": "zz", "text": "x"}\n')
    with pytest.raises(InputError, match="no vector for 1 query"):
        align_query_vectors(qv, load_queries(tmp_path / "q2.jsonl"), "v3")


def test_guard_refuses_v2_queries_on_a_v3_index_naming_both_sides() -> None:
    with pytest.raises(UsageError) as e:
        check_space("v3", Space(V3, "retrieval.passage", 768), Space(V2, None, 768))
    msg = str(e.value)
    assert "jina-embeddings-v3, task retrieval.passage, 768 dims" in msg
    assert "jina-embeddings-v2-base-en, no task, 768 dims" in msg and "models differ" in msg


def test_guard_refuses_other_dimensions_and_task_family() -> None:
    with pytest.raises(UsageError, match="dimensions differ"):
        check_space("v3", Space(V3, "retrieval.passage", 1024), Space(V3, "retrieval.query", 512))
    with pytest.raises(UsageError, match="task families differ") as e:
        check_space("v3", Space(V3, "retrieval.passage", 1024), Space(V3, "classification", 1024))
    assert "task classification" in str(e.value) and "task retrieval.passage" in str(e.value)
    with pytest.raises(UsageError, match="task families differ"):
        check_space("v3", Space(V3, "text-matching", 1024), Space(V3, "retrieval.query", 1024))


def test_guard_accepts_matching_spaces_and_undeclared_task() -> None:
    check_space("v3", Space(V3, "retrieval.passage", 1024), Space(V3, "retrieval.query", 1024))
    check_space("v2", Space(V2, None, 768), Space(None, None, 768), query_task_known=False)
    assert query_task_for("retrieval.passage") == "retrieval.query"
    assert query_task_for("text-matching") == "text-matching" and query_task_for(None) is None
