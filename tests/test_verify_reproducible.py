"""verify's numbers are the ones trec_eval gives on the run files verify writes, even with ties.

Real corpora hold exact duplicate documents (the same text under two ids): their vectors are equal, so
their scores tie, and which of them enters the top 10 (and in which order) decides nDCG and MRR. trec_eval
orders a run by score descending, then docno descending; verify must rank the same way and write
scores that keep that order, so that pytrec_eval on the written files reproduces the report exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_verify_cli import V2, V3, write_index, write_query_vectors

from jmigrate.verify.runs import read_trec_run

pytrec_eval = pytest.importorskip("pytrec_eval")

N_BASE, N_QUERIES = 60, 40


def _collection(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(5)
    base2, base3 = rng.standard_normal((N_BASE, 768)), rng.standard_normal((N_BASE, 1024))
    # every base document three times under other ids (zero-padded ids sort in the opposite order
    # of their copy number for half of them, so "id ascending" and "id descending" disagree)
    ids, rows = [], []
    for i in range(N_BASE):
        for copy in ("a", "b", "c"):
            ids.append(f"d{i:03d}{copy}")
            rows.append(i)
    d2, d3 = base2[rows], base3[rows]
    qids = [f"q{i:02d}" for i in range(N_QUERIES)]
    target = rng.choice(N_BASE, N_QUERIES)
    q3 = base3[target] + rng.standard_normal((N_QUERIES, 1024)) * 0.9
    q2 = base2[target] + rng.standard_normal((N_QUERIES, 768)) * 1.2
    # judge one copy only (sometimes the first id, sometimes the last), as real qrels do
    judged = enumerate(zip(qids, target, strict=True))
    qrels = "".join(f"{q} 0 d{t:03d}{'ac'[n % 2]} {1 + n % 2}\n" for n, (q, t) in judged)
    (root / "qrels.txt").write_text(qrels)
    queries = "".join(json.dumps({"id": q, "text": f"query {q}"}) + "\n" for q in qids)
    (root / "queries.jsonl").write_text(queries)
    return {
        "v2": write_index(root / "v2", V2, None, d2, ids),
        "v3": write_index(root / "v3", V3, "retrieval.passage", d3, ids),
        "q2": write_query_vectors(root / "q2.parquet", qids, q2, V2, None),
        "q3": write_query_vectors(root / "q3.parquet", qids, q3, V3, "retrieval.query"),
        "queries": root / "queries.jsonl",
        "qrels": root / "qrels.txt",
    }


def _trec_eval_means(qrels_path: Path, run_path: Path) -> dict[str, float]:
    qrels: dict[str, dict[str, int]] = {}
    for line in qrels_path.read_text().splitlines():
        q, _, d, rel = line.split()
        qrels.setdefault(q, {})[d] = int(rel)
    run = read_trec_run(run_path)
    measures = {"ndcg_cut.10", "recall.10", "recall.100", "map"}
    full = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    # MRR@10: recip_rank on each query's first 10 documents in trec_eval's own order
    top10 = {q: dict(sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10])
             for q, docs in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    n = len(qrels)
    return {
        "nDCG@10": sum(v["ndcg_cut_10"] for v in full.values()) / n,
        "Recall@10": sum(v["recall_10"] for v in full.values()) / n,
        "Recall@100": sum(v["recall_100"] for v in full.values()) / n,
        "MAP": sum(v["map"] for v in full.values()) / n,
        "MRR@10": sum(v["recip_rank"] for v in rr.values()) / n,
    }


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_report_equals_trec_eval_on_the_written_run_files(tmp_path: Path, cli, backend: str) -> None:  # type: ignore[no-untyped-def]
    if backend == "faiss":
        pytest.importorskip("faiss")
    w = _collection(tmp_path)
    runs = tmp_path / "runs"
    result = cli("verify", "--v2", w["v2"], "--v3", w["v3"], "--queries", w["queries"], "--qrels", w["qrels"],
                 "--v2-query-vectors", w["q2"], "--v3-query-vectors", w["q3"], "--run-dir", runs,
                 "--format", "json", "--search-backend", backend, "--no-checksums")
    assert result.code in (0, 1), result.err
    report = json.loads(result.out)
    for side in ("v2", "v3"):
        lines = (runs / f"{side}.run").read_text().splitlines()
        ranked = [ln.split() for ln in lines if ln.startswith("q00 ")]
        scores = [float(f[4]) for f in ranked]
        ties = [(a, b) for a, b in zip(ranked, ranked[1:], strict=False) if a[4] == b[4]]
        assert ties, "the collection must produce tied scores for this test to mean anything"
        for a, b in ties:  # trec_eval's order within a tie: docno descending
            assert a[2] > b[2]
        assert scores == sorted(scores, reverse=True)
        want = _trec_eval_means(w["qrels"], runs / f"{side}.run")
        assert report[side]["metrics"] == want  # exactly, not approximately


def test_qrels_that_match_nothing_are_an_error_before_anything_is_embedded(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """A CI gate must not pass on a meaningless evaluation: judged documents absent from both indexes."""
    from helpers import STUB_KEY

    from jmigrate.testing.server import StubServer

    w = _collection(tmp_path)
    wrong = tmp_path / "wrong-qrels.txt"
    wrong.write_text("".join(f"q{i:02d} 0 other-collection-{i} 1\n" for i in range(N_QUERIES)))
    with StubServer(api_key=STUB_KEY) as srv:
        result = cli("verify", "--v2", w["v2"], "--v3", w["v3"], "--queries", w["queries"], "--qrels", wrong,
                     "--encoder", "api", "--api-url", srv.url, "--api-key", STUB_KEY)
        assert srv.stats.requests == 0  # refused before a query was embedded
    assert result.code == 2 and result.out == ""
    error = result.err.strip().splitlines()[-1]  # after the progress lines
    assert error.startswith("error: 40 of 40 relevant judgements (100%) name documents in neither index")
    assert error.endswith("pass --allow-missing-judged to evaluate anyway")

    # one query whose only relevant document is missing: 1 of 40 (under 5%), but that query is blind
    partly = tmp_path / "partly.txt"
    text = w["qrels"].read_text().splitlines()
    partly.write_text("\n".join([text[0].rsplit(" ", 2)[0] + " gone 1", *text[1:]]) + "\n")
    args = ["verify", "--v2", w["v2"], "--v3", w["v3"], "--queries", w["queries"], "--qrels", partly,
            "--v2-query-vectors", w["q2"], "--v3-query-vectors", w["q3"], "--format", "json"]
    blind = cli(*args)
    assert blind.code == 2
    assert "1 quer(ies) have none of their relevant documents indexed (e.g. 'q00')" in blind.err
    accepted = cli(*args, "--allow-missing-judged")
    assert accepted.code in (0, 1), accepted.err
    assert json.loads(accepted.out)["judged_queries"] == N_QUERIES


def test_a_missing_metrics_library_is_found_before_anything_is_embedded(  # type: ignore[no-untyped-def]
        tmp_path: Path, cli, monkeypatch) -> None:
    import builtins

    from helpers import STUB_KEY

    from jmigrate.testing.server import StubServer

    w = _collection(tmp_path)
    real_import = builtins.__import__

    def no_pytrec_eval(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "pytrec_eval":
            raise ImportError("No module named 'pytrec_eval'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pytrec_eval)
    with StubServer(api_key=STUB_KEY) as srv:
        result = cli("verify", "--v2", w["v2"], "--v3", w["v3"], "--queries", w["queries"], "--qrels",
                     w["qrels"], "--encoder", "api", "--api-url", srv.url, "--api-key", STUB_KEY)
        assert srv.stats.requests == 0
    assert result.code == 2
    error = result.err.strip().splitlines()[-1]
    assert error == "error: metrics need pytrec_eval: pip install 'jmigrate[verify]'"


def test_two_v3_indexes_are_compared_and_named_by_what_they_are(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """Choosing `dimensions` (1024 vs 256) is one of the guide's key decisions: verify must measure it."""
    rng = np.random.default_rng(9)
    docs = rng.standard_normal((120, 1024))
    qids = [f"q{i:02d}" for i in range(30)]
    target = rng.choice(120, 30, replace=False)
    queries = docs[target] + rng.standard_normal((30, 1024)) * 0.8
    ids = [f"d{i:03d}" for i in range(120)]
    full = write_index(tmp_path / "v3-1024", V3, "retrieval.passage", docs, ids)
    cut = write_index(tmp_path / "v3-256", V3, "retrieval.passage", docs[:, :256], ids)  # Matryoshka cut
    q_full = write_query_vectors(tmp_path / "q1024.parquet", qids, queries, V3, "retrieval.query")
    q_cut = write_query_vectors(tmp_path / "q256.parquet", qids, queries[:, :256], V3, "retrieval.query")
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps({"id": q, "text": q}) + "\n" for q in qids))
    judged = zip(qids, target, strict=True)
    (tmp_path / "qrels.txt").write_text("".join(f"{q} 0 {ids[t]} 1\n" for q, t in judged))
    result = cli("verify", "--v2", full, "--v3", cut, "--queries", tmp_path / "queries.jsonl", "--qrels",
                 tmp_path / "qrels.txt", "--v2-query-vectors", q_full, "--v3-query-vectors", q_cut,
                 "--format", "json")
    assert result.code in (0, 1), result.err
    data = json.loads(result.out)
    text = data["verdict"]["text"]
    assert "jina-embeddings-v3 256d, retrieval.passage" in text
    assert "vs jina-embeddings-v3 1024d, retrieval.passage" in text
    assert "v3 is" not in text and "do not cut over" not in text
    assert data["v2"]["dimensions"] == 1024 and data["v3"]["dimensions"] == 256
    # swapped flags (a v3 index as the baseline of an older one) are still refused
    v2 = write_index(tmp_path / "v2", V2, None, rng.standard_normal((120, 768)), ids)
    swapped = cli("verify", "--v2", full, "--v3", v2, "--queries", tmp_path / "queries.jsonl")
    assert swapped.code == 2 and "the flags look swapped" in swapped.err
