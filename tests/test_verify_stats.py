"""Paired statistics and agreement measures on cases that can be checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from jmigrate.verify.agreement import (
    agreement,
    jaccard_at_k,
    most_different,
    rank_correlations,
    rbo,
    summarise,
)
from jmigrate.verify.stats import compare, language_slices


def test_identical_systems_p_is_one_and_difference_zero() -> None:
    a = np.random.default_rng(0).random(40)
    c = compare("nDCG@10", a, a)
    assert c.p_value == 1.0 and c.difference == 0.0 and (c.ci_low, c.ci_high) == (0.0, 0.0)
    assert (c.wins, c.losses, c.ties) == (0, 0, 40)


def test_clearly_better_system_has_small_p_and_ci_above_zero() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(60) * 0.6
    b = a + 0.2 + rng.normal(0, 0.05, 60)
    c = compare("nDCG@10", a, b)
    assert c.p_value < 0.001 and c.p_value_t is not None and c.p_value_t < 0.001
    assert 0 < c.ci_low < c.difference < c.ci_high
    assert c.difference == pytest.approx(float(np.mean(b - a)))
    assert c.wins > 55


def test_noise_is_not_significant() -> None:
    rng = np.random.default_rng(2)
    a = rng.random(50)
    c = compare("m", a, a + rng.normal(0, 0.1, 50))
    assert c.p_value > 0.05 and c.ci_low < 0 < c.ci_high


def test_exact_randomisation_p_for_small_samples() -> None:
    # 5 queries all +0.1: of the 2^5 sign flips only "all +" and "all −" are as extreme → p = 2/32.
    c = compare("m", [0.1, 0.2, 0.3, 0.4, 0.5], [0.2, 0.3, 0.4, 0.5, 0.6])
    assert c.p_value == pytest.approx(2 / 32)
    assert c.ci_low == pytest.approx(0.1) and c.ci_high == pytest.approx(0.1)


def test_same_inputs_same_p_value() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(80), rng.random(80)
    assert compare("m", a, b).p_value == compare("m", a, b).p_value


def test_language_slices_only_from_given_field() -> None:
    v2 = {"q1": 0.1, "q2": 0.2, "q3": 0.3}
    v3 = {"q1": 0.5, "q2": 0.2, "q3": 0.1}
    out = language_slices("nDCG@10", v2, v3, {"q1": "de", "q2": "de", "q3": None})
    assert [(c.metric, c.n, c.wins, c.ties) for c in out] == [("nDCG@10 [de]", 2, 1, 1)]


def test_overlap_and_rbo_hand_checked() -> None:
    a, b = ["a", "b", "c", "d"], ["a", "b", "e", "f"]
    assert jaccard_at_k(a, b, 4) == pytest.approx(2 / 6)
    assert rbo(a, a) == pytest.approx(1.0) and rbo(a, ["w", "x", "y", "z"]) == 0.0
    # RBO_ext by hand, p=0.9: agreements A_d = 1, 1, 2/3, 2/4; X_4/4 = 0.5
    p = 0.9
    expected = (1 - p) / p * (1 * p + 1 * p**2 + 2 / 3 * p**3 + 0.5 * p**4) + 0.5 * p**4
    assert rbo(a, b, p) == pytest.approx(expected)
    # Swapping the first two ranks hurts more than swapping the last two (top-weighted).
    assert rbo(a, ["b", "a", "c", "d"]) < rbo(a, ["a", "b", "d", "c"]) < 1.0


def test_rank_correlation_on_union() -> None:
    tau, rho = rank_correlations(["a", "b", "c"], ["a", "b", "c"])
    assert tau == pytest.approx(1.0) and rho == pytest.approx(1.0)
    tau, rho = rank_correlations(["a", "b", "c"], ["c", "b", "a"])
    assert tau == pytest.approx(-1.0) and rho == pytest.approx(-1.0)
    assert rank_correlations(["a"], ["a"]) == (None, None)


def test_most_different_queries_first() -> None:
    run_a = {"same": ["a", "b"], "half": ["a", "b"], "none": ["a", "b"]}
    run_b = {"same": ["a", "b"], "half": ["a", "x"], "none": ["x", "y"]}
    rows = agreement(run_a, run_b, ["same", "half", "none"], 2)
    assert [r.query_id for r in most_different(rows, 2)] == ["none", "half"]
    s = summarise(rows)
    assert s["overlap_jaccard"] == pytest.approx((1 + 1 / 3 + 0) / 3)
