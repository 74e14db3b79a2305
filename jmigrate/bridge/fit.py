"""Fit a map from new-model query vectors into the old model's space, in closed form with numpy.

Pairs are (new-model vector of a text, old-model vector stored for the same text). The default map is
orthogonal Procrustes with centring and normalisation: rows are L2-normalised, both sides centred,
and the rotation (semi-orthogonal when the widths differ, e.g. 1024 -> 768) plus one scale come from
one SVD, with no hyper-parameter to tune. A ridge linear map and a low-rank affine map are candidates
too; any candidate other than Procrustes is kept only when it beats Procrustes on held-out pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jmigrate.errors import UsageError

PROCRUSTES, RIDGE, LOW_RANK = "procrustes", "ridge", "low-rank"
METHODS = (PROCRUSTES, RIDGE, LOW_RANK)
# Ridge strengths are relative to the mean eigenvalue of the centred covariance, so one grid fits any width.
RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0)
RANK_GRID = (16, 32, 64, 128, 256)
# Held-out retrieval is scored among at most this many held-out pairs, so recall@10 means the same thing
# whatever the sample size (a bigger pool is a harder test).
HELD_OUT_POOL = 1000
MIN_PAIRS = 20
# A non-default map must beat Procrustes by more than this on held-out recall@10 (ties keep the default).
WIN_MARGIN = 0.005


@dataclass
class AffineMap:
    """y = normalise(normalise(x) @ weights + bias): every method is saved and applied in this one form."""

    method: str
    weights: np.ndarray  # (d_in, d_out) float32
    bias: np.ndarray  # (d_out,) float32
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def dims_in(self) -> int:
        return int(self.weights.shape[0])

    @property
    def dims_out(self) -> int:
        return int(self.weights.shape[1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        # normalise(x) @ W == (x @ W) / |x|: scale the (narrower) product instead of copying x.
        y = x @ self.weights
        y /= _norms(x)
        y += self.bias
        y /= _norms(y)
        return y


@dataclass
class Quality:
    """How well a map reproduces the stored old vectors of texts it was not fitted on."""

    pairs: int
    mean_cosine: float
    recall_at_1: float
    recall_at_10: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "mean_cosine": round(self.mean_cosine, 6),
            "recall_at_1": round(self.recall_at_1, 6),
            "recall_at_10": round(self.recall_at_10, 6),
        }


@dataclass
class Candidate:
    method: str
    quality: Quality
    params: dict[str, Any]


@dataclass
class FitResult:
    """The chosen map, its held-out quality, and every candidate that was tried."""

    map: AffineMap
    held_out: Quality
    candidates: list[Candidate]
    train_pairs: int
    held_out_pairs: int
    note: str = ""


def _norms(m: np.ndarray) -> np.ndarray:
    """Row norms as a column (zero rows: 1, so they stay zero), without the temporaries of linalg.norm."""
    n = np.sqrt(np.einsum("ij,ij->i", m, m))[:, None]
    n[n == 0] = 1.0
    return n


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


def fit_procrustes(x: np.ndarray, y: np.ndarray) -> AffineMap:
    """Orthogonal Procrustes with centring, normalisation and one scale (closed form, one SVD).

    W = U V^T from svd(Xc^T Yc) is the semi-orthogonal map (orthonormal columns when d_in >= d_out,
    orthonormal rows otherwise) that best rotates the centred new vectors onto the centred old ones;
    the scale is trace(S) / ||Xc||^2. Computed in float64: the cross-covariance of unit vectors is small.
    """
    xs, ys = _unit(x).astype(np.float64), _unit(y).astype(np.float64)
    mx, my = xs.mean(axis=0), ys.mean(axis=0)
    xc, yc = xs - mx, ys - my
    u, s, vt = np.linalg.svd(xc.T @ yc, full_matrices=False)
    rotation = u @ vt
    denom = float((xc * xc).sum())
    scale = float(s.sum()) / denom if denom > 0 else 1.0
    w = scale * rotation
    b = my - mx @ w
    return AffineMap(PROCRUSTES, w.astype(np.float32), b.astype(np.float32), {"scale": round(scale, 6)})


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> AffineMap:
    """Ridge regression of centred old vectors on centred new ones; `alpha` is relative (see RIDGE_GRID)."""
    xs, ys = _unit(x).astype(np.float64), _unit(y).astype(np.float64)
    mx, my = xs.mean(axis=0), ys.mean(axis=0)
    xc, yc = xs - mx, ys - my
    cov = xc.T @ xc
    lam = alpha * float(np.trace(cov)) / cov.shape[0]
    w = np.linalg.solve(cov + lam * np.eye(cov.shape[0]), xc.T @ yc)
    b = my - mx @ w
    return AffineMap(RIDGE, w.astype(np.float32), b.astype(np.float32), {"alpha": alpha})


def fit_low_rank(x: np.ndarray, y: np.ndarray, rank: int, alpha: float = 1e-2) -> AffineMap:
    """Reduced-rank affine map: the ridge solution projected on the top `rank` directions of its fit."""
    ridge = fit_ridge(x, y, alpha)
    xs = _unit(x).astype(np.float64)
    mx = xs.mean(axis=0)
    w = ridge.weights.astype(np.float64)
    fitted = (xs - mx) @ w
    _, _, vt = np.linalg.svd(fitted, full_matrices=False)
    v = vt[:rank].T
    w_k = w @ v @ v.T
    my = _unit(y).astype(np.float64).mean(axis=0)
    b = my - mx @ w_k
    return AffineMap(LOW_RANK, w_k.astype(np.float32), b.astype(np.float32), {"rank": rank, "alpha": alpha})


def evaluate(m: AffineMap, x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> Quality:
    """Mean cosine between mapped and stored vectors, and whether each mapped vector finds its own stored
    vector (recall@1, @10) among at most HELD_OUT_POOL held-out stored vectors."""
    if len(x) > HELD_OUT_POOL:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), HELD_OUT_POOL, replace=False))
        x, y = x[keep], y[keep]
    mapped, target = m(x), _unit(y)
    cos = (mapped * target).sum(axis=1)
    scores = mapped @ target.T
    own = np.diag(scores)
    # Rank of the own vector: how many others score strictly higher (ties count in the pair's favour).
    rank = (scores > own[:, None]).sum(axis=1)
    return Quality(
        pairs=len(x),
        mean_cosine=float(cos.mean()),
        recall_at_1=float((rank < 1).mean()),
        recall_at_10=float((rank < 10).mean()),
    )


def _better(a: Quality, b: Quality, margin: float = 0.0) -> bool:
    if a.recall_at_10 != b.recall_at_10:
        return a.recall_at_10 > b.recall_at_10 + margin
    return a.mean_cosine > b.mean_cosine + (margin if margin else 0.0)


def split(n: int, held_out_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train / held-out row split."""
    order = np.random.default_rng(seed).permutation(n)
    h = max(1, int(round(n * held_out_fraction)))
    return np.sort(order[h:]), np.sort(order[:h])


def fit_map(
    x: np.ndarray,
    y: np.ndarray,
    *,
    methods: Sequence[str] = (PROCRUSTES,),
    held_out_fraction: float = 0.2,
    seed: int = 0,
) -> FitResult:
    """Fit every requested method on the training pairs, score each on the held-out pairs, keep the best.

    Procrustes is always fitted: it is the default, and a ridge or low-rank map replaces it only when it
    wins on held-out recall@10 by more than WIN_MARGIN. Hyper-parameters of the optional methods are
    chosen on an inner split of the training pairs, never on the held-out pairs that report the quality.
    The saved map is the one fitted on the training pairs, so the reported quality is that map's.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UsageError(f"unknown bridge method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise UsageError(f"pairs must be two matrices with the same rows, got {x.shape} and {y.shape}")
    if len(x) < MIN_PAIRS:
        raise UsageError(f"{len(x)} pairs are too few to fit and check a bridge (need at least {MIN_PAIRS})")
    if not 0 < held_out_fraction < 1:
        raise UsageError("the held-out fraction must be between 0 and 1")
    train, held = split(len(x), held_out_fraction, seed)
    xt, yt, xh, yh = x[train], y[train], x[held], y[held]
    candidates = [
        Candidate(PROCRUSTES, evaluate(best := fit_procrustes(xt, yt), xh, yh, seed=seed), best.params)
    ]
    if RIDGE in methods:
        m = _tuned(xt, yt, seed, [(fit_ridge, (a,)) for a in RIDGE_GRID])
        candidates.append(Candidate(RIDGE, evaluate(m, xh, yh, seed=seed), m.params))
        if _better(candidates[-1].quality, candidates[0].quality, WIN_MARGIN) and _better(
            candidates[-1].quality, _quality_of(candidates, best.method)
        ):
            best = m
    if LOW_RANK in methods:
        ranks = [r for r in RANK_GRID if r < min(x.shape[1], y.shape[1], len(train))] or [1]
        m = _tuned(xt, yt, seed, [(fit_low_rank, (r,)) for r in ranks])
        candidates.append(Candidate(LOW_RANK, evaluate(m, xh, yh, seed=seed), m.params))
        if _better(candidates[-1].quality, candidates[0].quality, WIN_MARGIN) and _better(
            candidates[-1].quality, _quality_of(candidates, best.method)
        ):
            best = m
    chosen = _quality_of(candidates, best.method)
    notes = []
    if best.method == PROCRUSTES and len(candidates) > 1:
        notes.append("no alternative beat Procrustes on the held-out pairs; Procrustes kept")
    elif best.method != PROCRUSTES:
        notes.append(f"{best.method} beat Procrustes on the held-out pairs")
    if len(train) < max(x.shape[1], y.shape[1]):
        # The map is only determined on the span of the training vectors; real embeddings are close to
        # low-rank so fewer pairs often do, but the held-out figures are the check.
        notes.append(f"only {len(train)} training pairs for {x.shape[1]} -> {y.shape[1]} dimensions: "
                     "directions the sample does not span are mapped arbitrarily (a larger --sample helps)")
    note = "; ".join(notes)
    return FitResult(best, chosen, candidates, len(train), len(held), note)


def _quality_of(candidates: list[Candidate], method: str) -> Quality:
    return next(c.quality for c in candidates if c.method == method)


def _tuned(x: np.ndarray, y: np.ndarray, seed: int, grid: list[tuple[Any, tuple[Any, ...]]]) -> AffineMap:
    """Pick the grid point that does best on an inner split of the training pairs, refit on all of them."""
    inner_train, inner_val = split(len(x), 0.2, seed + 1)
    best_q: Quality | None = None
    best_args = grid[0]
    for fn, args in grid:
        q = evaluate(fn(x[inner_train], y[inner_train], *args), x[inner_val], y[inner_val], seed=seed)
        if best_q is None or _better(q, best_q):
            best_q, best_args = q, (fn, args)
    fn, args = best_args
    result: AffineMap = fn(x, y, *args)
    return result
