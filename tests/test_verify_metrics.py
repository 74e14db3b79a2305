"""verify metrics equal trec_eval's own output on its public test collection (fixtures/trec_eval)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jmigrate.verify.metrics import Evaluation, evaluate_run
from jmigrate.verify.queries import load_qrels
from jmigrate.verify.runs import read_trec_run

TREC = Path(__file__).resolve().parents[1] / "fixtures" / "trec_eval"
# trec_eval measure name → ours; recip_rank is compared separately (ours is cut at 10, trec_eval's is not).
SAME = {"map": "MAP", "ndcg_cut_10": "nDCG@10", "recall_10": "Recall@10", "recall_100": "Recall@100"}


def _oracle(name: str) -> dict[tuple[str, str], float]:
    """(measure, query or 'all') → value, from a trec_eval output file."""
    out = {}
    for line in (TREC / name).read_text().splitlines():
        measure, qid, value = line.split()
        try:
            out[(measure, qid)] = float(value)
        except ValueError:
            continue  # runid
    return out


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    qrels = load_qrels(TREC / "qrels.test")
    run = read_trec_run(str(TREC / "results.test"))
    return evaluate_run(qrels, run)


@pytest.mark.parametrize("file", ["out.test.a", "out.test.aq"])
def test_means_equal_trec_eval(evaluation: Evaluation, file: str) -> None:
    oracle = _oracle(file)
    for theirs, ours in SAME.items():
        # trec_eval prints 4 decimals
        assert round(evaluation.mean(ours), 4) == pytest.approx(oracle[(theirs, "all")], abs=1e-12), theirs


def test_summary_file_map(evaluation: Evaluation) -> None:
    assert round(evaluation.mean("MAP"), 4) == _oracle("out.test")[("map", "all")]


def test_per_query_values_equal_trec_eval(evaluation: Evaluation) -> None:
    oracle = _oracle("out.test.aq")
    queries = sorted({q for (_, q) in oracle if q != "all"})
    assert queries == ["301", "302", "303"] and evaluation.judged == queries
    for q in queries:
        for theirs, ours in SAME.items():
            assert round(evaluation.per_query[ours][q], 4) == oracle[(theirs, q)], (theirs, q)


def test_mrr_at_10_is_trec_eval_recip_rank_cut_at_10(evaluation: Evaluation) -> None:
    oracle = _oracle("out.test.aq")
    for q in ("301", "302", "303"):
        rr = oracle[("recip_rank", q)]
        # Same measure over the first 10 documents: the first relevant at rank <= 10 keeps 1/rank, else 0.
        expected = rr if rr >= 0.1 else 0.0
        assert round(evaluation.per_query["MRR@10"][q], 4) == expected
    assert oracle[("recip_rank", "303")] == 0.0526  # its first relevant is at rank 19: MRR@10 says 0
    assert evaluation.per_query["MRR@10"]["303"] == 0.0


def test_query_with_qrels_but_no_results_scores_zero_not_dropped() -> None:
    qrels = {"a": {"d1": 1}, "b": {"d2": 1}}
    ev = evaluate_run(qrels, {"a": {"d1": 1.0}})
    assert ev.per_query["nDCG@10"] == {"a": 1.0, "b": 0.0}
    assert ev.mean("nDCG@10") == 0.5 and ev.empty == ["b"]


def test_ties_follow_trec_eval_docno_descending() -> None:
    # trec_eval ranks tied scores by docno descending: d2 before d1, so the relevant d1 is at rank 2.
    # verify's search ranks ties the same way (tests/test_verify_reproducible.py checks the two agree).
    qrels = {"q": {"d1": 1}}
    tied = evaluate_run(qrels, {"q": {"d1": 0.5, "d2": 0.5}})
    assert tied.per_query["MRR@10"]["q"] == 0.5
    untied = evaluate_run(qrels, {"q": {"d1": 0.6, "d2": 0.5}})
    assert untied.per_query["MRR@10"]["q"] == 1.0


def test_graded_qrels_change_ndcg() -> None:
    run = {"q": {"d1": 2.0, "d2": 1.0}}
    binary = evaluate_run({"q": {"d1": 1, "d2": 1}}, run).per_query["nDCG@10"]["q"]
    graded = evaluate_run({"q": {"d1": 1, "d2": 3}}, run).per_query["nDCG@10"]["q"]
    assert binary == pytest.approx(1.0) and graded < 0.9
