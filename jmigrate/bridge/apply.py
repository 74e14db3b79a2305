"""Use a fitted bridge: `load(path).apply(v3_query_vectors)` gives unit vectors in the v2 index's space.

For applications during a migration: documents stay in the v2 index until they are re-embedded, and
queries move to v3 now, mapped through the bridge. The guard rails live here: a bridge refuses vectors
of the wrong width, an index it was not fitted on, and being mixed with unbridged vectors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from jmigrate.bridge.fit import AffineMap
from jmigrate.bridge.manifest import (
    BridgeManifest,
    BridgeMismatchError,
    MixedVectorsError,
    read_bridge,
)
from jmigrate.errors import InputError


class PoorBridgeWarning(UserWarning):
    """The bridge's held-out fit is poor: bridged search may be much worse than the v2 search it replaces."""


class BridgedVectors(np.ndarray):
    """Query vectors mapped into an old index's space by one bridge (`bridge_id` says which).

    They are numpy arrays in every way but one: stacking them with vectors that did not come through
    the same bridge (v2 vectors, raw v3 vectors, another bridge's output) raises MixedVectorsError,
    because a matrix of vectors from different spaces ranks by accident. Convert with `np.asarray`
    to drop the tag on purpose.
    """

    bridge_id: str | None

    def __array_finalize__(self, obj: Any) -> None:
        self.bridge_id = getattr(obj, "bridge_id", None)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func in _STACKING:
            ids = {_bridge_id(a) for a in _arrays_in(args, kwargs)}
            if len(ids) > 1:
                raise MixedVectorsError(
                    f"refusing {func.__name__}: bridged query vectors mixed with "
                    + ("unbridged vectors" if None in ids else "vectors of another bridge")
                    + " (different spaces: one index or matrix must hold one kind)"
                )
        return super().__array_function__(func, types, args, kwargs)


_STACKING = {
    np.concatenate,
    np.stack,
    np.vstack,
    np.hstack,
    np.dstack,
    np.column_stack,
    np.append,
    np.block,
}


def _bridge_id(a: Any) -> str | None:
    return a.bridge_id if isinstance(a, BridgedVectors) else None


def _arrays_in(args: Iterable[Any], kwargs: dict[str, Any]) -> Iterable[Any]:
    for a in [*args, *kwargs.values()]:
        if isinstance(a, np.ndarray):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from _arrays_in(a, {})


def is_bridged(vectors: Any) -> bool:
    """True for the output of `Bridge.apply` (before it is converted with `np.asarray`)."""
    return isinstance(vectors, BridgedVectors)


class Bridge:
    """A loaded bridge. `apply` maps new-model query vectors to the old index's space."""

    def __init__(self, manifest: BridgeManifest, fitted: AffineMap, path: Path | None = None) -> None:
        self.manifest = manifest
        self.map = fitted
        self.path = path
        self.id = manifest.files.get("weights.npy", {}).get("sha256") or manifest.index.fingerprint

    @property
    def source(self) -> Any:
        return self.manifest.source

    @property
    def target(self) -> Any:
        return self.manifest.target

    @property
    def poor(self) -> bool:
        return self.manifest.poor

    def apply(self, vectors: Any) -> BridgedVectors:
        """Map (n, d_new) or (d_new,) new-model query vectors to unit (n, d_old) / (d_old,) vectors."""
        if isinstance(vectors, BridgedVectors):
            raise MixedVectorsError(
                "these vectors already went through a bridge; bridging twice is meaningless"
            )
        x = np.asarray(vectors, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x[None, :]
        if x.ndim != 2:
            raise InputError(f"expected a vector or a matrix of vectors, got shape {np.shape(vectors)}")
        width = x.shape[1]
        if width != self.source.dimensions:
            hint = (
                f" (that is the width of {self.target.model}: these look like old-model vectors)"
                if width == self.target.dimensions
                else ""
            )
            raise BridgeMismatchError(
                f"the bridge maps {self.source.describe()} query vectors; got {width}-dim vectors{hint}"
            )
        if not np.isfinite(x).all():
            raise InputError("query vectors contain NaN or infinite values")
        out = self.map(x).view(BridgedVectors)
        out.bridge_id = self.id
        return out[0] if single else out

    __call__ = apply

    def check_source(self, model: str, dimensions: int, task: str | None = None) -> None:
        """Refuse query vectors from another model, width or task family than the bridge was fitted on."""
        problem = _differs(self.source.model, model, "model") or _differs(
            self.source.dimensions, dimensions, "dimensions"
        )
        if not problem and task is not None and self.source.task is not None and task != self.source.task:
            problem = f"task {task} instead of {self.source.task}"
        if problem:
            raise BridgeMismatchError(
                f"bridge {self.where} maps query vectors of {self.source.describe()}; "
                f"these are {model}, {dimensions} dims: {problem}"
            )

    def check_target(self, model: str, dimensions: int, fingerprint: str | None = None) -> None:
        """Refuse an index other than the one the bridge was fitted on (model, width, then content)."""
        problem = _differs(self.target.model, model, "model") or _differs(
            self.target.dimensions, dimensions, "dimensions"
        )
        if not problem and fingerprint is not None and fingerprint != self.manifest.index.fingerprint:
            problem = (
                "the index content changed since the bridge was fitted (documents added, removed or "
                "re-embedded): refit it with `jmigrate bridge fit`"
            )
        if problem:
            raise BridgeMismatchError(
                f"bridge {self.where} was fitted for the index {self.manifest.index.path} "
                f"({self.target.describe()}): {problem}"
            )

    def check_index(self, index: Any, *, progress: Callable[[str], None] = lambda _m: None) -> None:
        """Check an opened `VectorIndex` (or a path `verify` opens) against the manifest, content too."""
        from jmigrate.bridge.fingerprint import index_fingerprint
        from jmigrate.stores import is_store_uri
        from jmigrate.verify.indexes import VectorIndex, open_index

        if isinstance(index, str) and is_store_uri(index):
            # A collection is read out the way `verify --v2 URI` reads it, then fingerprinted.
            import shutil
            import tempfile

            from jmigrate.stores.export import export

            folder = Path(tempfile.mkdtemp(prefix="jmigrate-bridge-"))
            try:
                progress(f"reading {index} out of the store")
                side = export(index, "v2", folder, model=self.target.model)
                self.check_index(
                    open_index(side.path, side="v2", model=self.target.model, task=self.target.task),
                    progress=progress,
                )
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            return
        idx = (
            index
            if isinstance(index, VectorIndex)
            else open_index(index, side="v2", model=self.target.model, task=self.target.task)
        )
        self.check_target(idx.model, idx.dimensions)
        progress(f"fingerprinting the index {idx.path} ({idx.rows:,} vectors) to match it with the bridge")
        self.check_target(idx.model, idx.dimensions, index_fingerprint(idx))

    @property
    def where(self) -> str:
        return str(self.path) if self.path else "(in memory)"


def _differs(want: Any, got: Any, what: str) -> str | None:
    if what == "model":
        if _model_key(str(want)) != _model_key(str(got)):
            return f"model {got} instead of {want}"
        return None
    return f"{what} {got} instead of {want}" if want != got else None


def _model_key(name: str) -> str:
    # The catalogue accepts Hugging Face ids too (jinaai/..., Xenova/...): compare the model's own name.
    return name.rsplit("/", 1)[-1]


def load(path: str | Path, *, index: Any = None) -> Bridge:
    """Load a bridge folder written by `jmigrate bridge fit` (checksums verified, no pickle).

    With `index` (a path or an opened VectorIndex), the index must be the one the bridge was fitted on.
    Warns with PoorBridgeWarning when the held-out fit recorded in the manifest is poor.
    """
    p = Path(path)
    manifest, weights, bias = read_bridge(p)
    bridge = Bridge(manifest, AffineMap(manifest.method, weights, bias, manifest.params), p)
    if manifest.poor:
        warnings.warn(
            f"bridge {p} has a poor held-out fit ({manifest.quality_line()}): bridged search may be much "
            "worse than the v2 search it replaces; check it with `jmigrate verify --bridge`",
            PoorBridgeWarning,
            stacklevel=2,
        )
    if index is not None:
        bridge.check_index(index)
    return bridge
