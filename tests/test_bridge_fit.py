"""The bridge's maths and its files: Procrustes recovers a known map, alternatives win only on held-out
pairs, the folder round-trips without pickle, and the guard rails refuse what they should.

The vectors here are synthetic on purpose (a known rotation is the only way to check the algebra
exactly); the real-model evidence is in test_bridge_real.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jmigrate.bridge import (
    BridgedVectors,
    BridgeMismatchError,
    MixedVectorsError,
    PoorBridgeWarning,
    is_bridged,
    load,
)
from jmigrate.bridge.fit import LOW_RANK, PROCRUSTES, RIDGE, fit_map, fit_procrustes
from jmigrate.bridge.manifest import BridgeManifest, IndexIdentity, Space, write_bridge
from jmigrate.errors import InputError


def _unit(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def _rotated_pairs(n: int, d_in: int, d_out: int, noise: float = 0.0, seed: int = 0) -> tuple[
    np.ndarray, np.ndarray, np.ndarray
]:
    """New vectors x and old vectors y = normalise(x @ Q) with Q semi-orthogonal (d_in x d_out)."""
    rng = np.random.default_rng(seed)
    x = _unit(rng.standard_normal((n, d_in)))
    q, _ = np.linalg.qr(rng.standard_normal((d_in, d_in)))
    q = q[:, :d_out]
    y = x @ q + noise * rng.standard_normal((n, d_out))
    return x, _unit(y), q


def test_procrustes_recovers_a_rotation_exactly() -> None:
    x, y, _ = _rotated_pairs(400, 64, 64)
    m = fit_procrustes(x, y)
    assert np.allclose(m(x), y, atol=1e-4)
    # Semi-orthogonal up to the scale: W^T W = s^2 I.
    w = m.weights.astype(np.float64) / m.params["scale"]
    assert np.allclose(w.T @ w, np.eye(64), atol=1e-4)


def test_procrustes_is_semi_orthogonal_when_widths_differ() -> None:
    x, y, _ = _rotated_pairs(600, 96, 48, noise=0.01)
    m = fit_procrustes(x, y)
    assert m.weights.shape == (96, 48) and m.bias.shape == (48,)
    w = m.weights.astype(np.float64) / m.params["scale"]
    assert np.allclose(w.T @ w, np.eye(48), atol=1e-4)  # orthonormal columns: 96 -> 48
    out = m(x)
    assert out.shape == (600, 48) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


def test_held_out_quality_is_high_for_related_pairs_and_poor_for_shuffled_ones() -> None:
    x, y, _ = _rotated_pairs(1000, 64, 48, noise=0.05)
    good = fit_map(x, y)
    assert good.held_out.recall_at_10 > 0.95 and good.held_out.mean_cosine > 0.9
    assert good.train_pairs == 800 and good.held_out_pairs == 200
    shuffled = fit_map(x, y[np.random.default_rng(1).permutation(len(y))])
    assert shuffled.held_out.recall_at_10 < 0.2 and shuffled.held_out.mean_cosine < 0.5


def test_a_nonlinear_relation_lets_ridge_win_and_a_rotation_keeps_procrustes() -> None:
    # A rotation: Procrustes is exact, so ridge cannot beat it by the margin; Procrustes is kept.
    x, y, _ = _rotated_pairs(800, 32, 32, noise=0.02)
    r = fit_map(x, y, methods=(PROCRUSTES, RIDGE, LOW_RANK))
    assert r.map.method == PROCRUSTES and "kept" in r.note
    assert {c.method for c in r.candidates} == {PROCRUSTES, RIDGE, LOW_RANK}
    # A strongly anisotropic (non-orthogonal) linear map: ridge reproduces it, a rotation cannot.
    rng = np.random.default_rng(3)
    x = _unit(rng.standard_normal((1500, 32)))
    a = rng.standard_normal((32, 32)) @ np.diag(np.geomspace(10, 0.05, 32))
    y = _unit(x @ a)
    r = fit_map(x, y, methods=(PROCRUSTES, RIDGE))
    assert r.map.method == RIDGE, [(c.method, c.quality) for c in r.candidates]
    procrustes = next(c for c in r.candidates if c.method == PROCRUSTES)
    assert r.held_out.mean_cosine > procrustes.quality.mean_cosine


def _manifest(source_dims: int, target_dims: int, recall: float = 0.95,
              cosine: float = 0.8) -> BridgeManifest:
    return BridgeManifest(
        source=Space("jina-embeddings-v3", "retrieval.query", source_dims),
        target=Space("jina-embeddings-v2-base-en", None, target_dims),
        index=IndexIdentity("/data/v2", "jmigrate-index", 10, 10, "sha256:abc"),
        method=PROCRUSTES,
        params={},
        sample={"pairs": 100},
        held_out={"pairs": 20, "mean_cosine": cosine, "recall_at_1": recall, "recall_at_10": recall},
        candidates=[],
        encoder={},
        created="2026-12-03T00:00:00Z",
        jmigrate_version="test",
    )


def _saved(tmp_path: Path, recall: float = 0.95) -> tuple[Path, np.ndarray, np.ndarray]:
    x, y, _ = _rotated_pairs(300, 48, 32, noise=0.01)
    m = fit_procrustes(x, y)
    write_bridge(tmp_path / "b", _manifest(48, 32, recall), m.weights, m.bias)
    return tmp_path / "b", x, m(x)


def test_the_folder_round_trips_without_pickle(tmp_path: Path) -> None:
    folder, x, expected = _saved(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["bias.npy", "manifest.json", "weights.npy"]
    for name in ("weights.npy", "bias.npy"):
        np.load(folder / name, allow_pickle=False)  # plain arrays: loadable with pickle refused
    data = json.loads((folder / "manifest.json").read_text())
    assert data["format"] == "jmigrate-bridge" and data["poor_fit"] is False
    b = load(folder)
    out = b.apply(x)
    assert isinstance(out, BridgedVectors) and is_bridged(out)
    assert np.allclose(out, expected, atol=1e-6)
    one = b.apply(x[0])
    assert one.shape == (32,) and np.isclose(np.linalg.norm(one), 1, atol=1e-6)


def test_a_damaged_or_pickled_file_is_refused(tmp_path: Path) -> None:
    folder, _, _ = _saved(tmp_path)
    w = np.load(folder / "weights.npy")
    np.save(folder / "weights.npy", w * 1.0001)
    with pytest.raises(InputError, match="sha256 differs"):
        load(folder)
    folder, _, _ = _saved(tmp_path / "again")
    np.save(folder / "bias.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    # Even with the checksum updated to match, an object array is never unpickled.
    manifest = json.loads((folder / "manifest.json").read_text())
    import hashlib

    manifest["files"]["bias.npy"]["sha256"] = hashlib.sha256((folder / "bias.npy").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="not a plain .npy array"):
        load(folder)


def test_a_poor_fit_warns_on_load(tmp_path: Path) -> None:
    folder, _, _ = _saved(tmp_path, recall=0.3)
    with pytest.warns(PoorBridgeWarning, match="poor held-out fit"):
        b = load(folder)
    assert b.poor


def test_wrong_width_and_double_bridging_are_refused(tmp_path: Path) -> None:
    folder, x, _ = _saved(tmp_path)
    b = load(folder)
    with pytest.raises(BridgeMismatchError, match="look like old-model vectors"):
        b.apply(np.ones((2, 32), dtype=np.float32))
    with pytest.raises(BridgeMismatchError, match="got 40-dim"):
        b.apply(np.ones((2, 40), dtype=np.float32))
    with pytest.raises(MixedVectorsError, match="already went through a bridge"):
        b.apply(b.apply(x))
    bad = x[:2].copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        b.apply(bad)


def test_bridged_and_unbridged_vectors_cannot_be_stacked(tmp_path: Path) -> None:
    folder, x, _ = _saved(tmp_path)
    b = load(folder)
    bridged = b.apply(x[:3])
    unbridged = np.ones((2, 32), dtype=np.float32)
    for fn in (np.concatenate, np.vstack, np.stack):
        with pytest.raises(MixedVectorsError, match="mixed with unbridged vectors"):
            fn([bridged[:2], unbridged])
    with pytest.raises(MixedVectorsError):
        np.append(unbridged, bridged, axis=0)
    both = np.concatenate([bridged, b.apply(x[3:5])])  # one bridge, one space: fine
    assert both.shape == (5, 32)
    assert np.asarray(bridged).shape == (3, 32)  # dropping the tag is explicit


def test_a_bridge_refuses_another_index_or_query_model(tmp_path: Path) -> None:
    folder, _, _ = _saved(tmp_path)
    b = load(folder)
    b.check_target("jina-embeddings-v2-base-en", 32, "sha256:abc")
    b.check_target("jinaai/jina-embeddings-v2-base-en", 32)
    with pytest.raises(BridgeMismatchError, match="model jina-embeddings-v2-small-en instead"):
        b.check_target("jina-embeddings-v2-small-en", 32)
    with pytest.raises(BridgeMismatchError, match="dimensions 768 instead of 32"):
        b.check_target("jina-embeddings-v2-base-en", 768)
    with pytest.raises(BridgeMismatchError, match="content changed since the bridge was fitted"):
        b.check_target("jina-embeddings-v2-base-en", 32, "sha256:other")
    b.check_source("jina-embeddings-v3", 48, "retrieval.query")
    with pytest.raises(BridgeMismatchError, match="task retrieval.passage instead"):
        b.check_source("jina-embeddings-v3", 48, "retrieval.passage")
