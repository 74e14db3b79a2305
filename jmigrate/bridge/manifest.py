"""The bridge folder: `manifest.json` (what was mapped to what, how well) + `weights.npy` + `bias.npy`.

No pickle anywhere: arrays are plain `.npy` read with `allow_pickle=False`, and their sha256 is in the
manifest so a swapped or damaged file is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jmigrate.errors import InputError, UsageError
from jmigrate.fileio import atomic_write

FORMAT = "jmigrate-bridge"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.npy"
BIAS = "bias.npy"

# Below either figure the bridge is flagged "poor": `load` warns and `verify` shows it. Chosen from the
# measurements in docs/bridge.md: a sound bridge on real text scored >= 0.9 recall@10 among 1,000
# held-out pairs; the same pairs shuffled (no relation left to learn) score ~0.01.
POOR_RECALL_AT_10 = 0.8
POOR_MEAN_COSINE = 0.5


class BridgeMismatchError(UsageError):
    """A bridge used with vectors, a model or an index other than the ones it was fitted for."""


class MixedVectorsError(UsageError):
    """Bridged query vectors combined with vectors of another space in one matrix or index."""


@dataclass
class Space:
    """One side of the map: which model, task and width its vectors come from."""

    model: str
    task: str | None
    dimensions: int

    def describe(self) -> str:
        return f"{self.model}, {'task ' + self.task if self.task else 'no task'}, {self.dimensions} dims"


@dataclass
class IndexIdentity:
    """The old-model index the bridge was fitted on: a bridge is only valid against that index."""

    path: str
    kind: str
    rows: int
    documents: int
    fingerprint: str


@dataclass
class BridgeManifest:
    source: Space  # the new model's query vectors, the input of `apply`
    target: Space  # the old model's index space, the output of `apply`
    index: IndexIdentity
    method: str
    params: dict[str, Any]
    sample: dict[str, Any]  # requested, pairs, train, held_out, seed, skipped counts, what was embedded
    held_out: dict[str, Any]  # Quality.to_dict() of the saved map
    candidates: list[dict[str, Any]]
    encoder: dict[str, Any]  # kind and served model; never a URL or a key
    created: str
    jmigrate_version: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    @property
    def poor(self) -> bool:
        return (
            float(self.held_out.get("recall_at_10", 0.0)) < POOR_RECALL_AT_10
            or float(self.held_out.get("mean_cosine", 0.0)) < POOR_MEAN_COSINE
        )

    def quality_line(self) -> str:
        h = self.held_out
        return (
            f"held-out fit on {h.get('pairs')} pairs: mean cosine {h.get('mean_cosine', 0):.3f}, "
            f"recall@1 {h.get('recall_at_1', 0):.3f}, recall@10 {h.get('recall_at_10', 0):.3f}"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **d, "poor_fit": self.poor}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: Path) -> BridgeManifest:
        if d.get("format") != FORMAT or d.get("format_version") != FORMAT_VERSION:
            raise InputError(
                f"{where}: not a jmigrate bridge manifest (format {d.get('format')!r} version "
                f"{d.get('format_version')!r}, expected {FORMAT!r} version {FORMAT_VERSION})"
            )
        try:
            return cls(
                source=Space(**d["source"]),
                target=Space(**d["target"]),
                index=IndexIdentity(**d["index"]),
                method=str(d["method"]),
                params=dict(d.get("params") or {}),
                sample=dict(d["sample"]),
                held_out=dict(d["held_out"]),
                candidates=list(d.get("candidates") or []),
                encoder=dict(d.get("encoder") or {}),
                created=str(d.get("created", "")),
                jmigrate_version=str(d.get("jmigrate_version", "")),
                files=dict(d.get("files") or {}),
                note=str(d.get("note", "")),
            )
        except (KeyError, TypeError) as e:
            raise InputError(f"{where}: bridge manifest is missing or has a malformed field ({e})") from e


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def write_bridge(folder: Path, manifest: BridgeManifest, weights: np.ndarray, bias: np.ndarray) -> None:
    """Write the arrays, then the manifest that names their checksums (written last: it is the commit)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, arr in ((WEIGHTS, weights), (BIAS, bias)):
        data = _npy_bytes(arr)
        atomic_write(folder / name, data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "shape": list(arr.shape)}
    manifest.files = files
    text = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n"
    atomic_write(folder / MANIFEST, text.encode("utf-8"))


def read_bridge(folder: Path) -> tuple[BridgeManifest, np.ndarray, np.ndarray]:
    """Read and check a bridge folder: manifest format, file checksums, array shapes and values."""
    folder = Path(folder)
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise InputError(
            f"{folder}: not a bridge folder (no {MANIFEST}; make one with `jmigrate bridge fit`)"
        )
    try:
        raw = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{mpath}: unreadable bridge manifest ({e})") from e
    if not isinstance(raw, dict):
        raise InputError(f"{mpath}: the bridge manifest is not a JSON object")
    manifest = BridgeManifest.from_dict(raw, mpath)
    arrays = []
    for name in (WEIGHTS, BIAS):
        f = folder / name
        rec = manifest.files.get(name) or {}
        try:
            data = f.read_bytes()
        except OSError as e:
            raise InputError(f"{folder}: bridge file {name} is missing or unreadable ({e})") from e
        if rec.get("sha256") != hashlib.sha256(data).hexdigest():
            raise InputError(f"{f}: sha256 differs from the bridge manifest (file changed or corrupt)")
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"{f}: not a plain .npy array ({e})") from e
        if arr.dtype.kind != "f" or not np.isfinite(arr).all():
            raise InputError(f"{f}: expected finite floats, found {arr.dtype}")
        arrays.append(arr.astype(np.float32, copy=False))
    weights, bias = arrays
    want = (manifest.source.dimensions, manifest.target.dimensions)
    if weights.shape != want or bias.shape != (manifest.target.dimensions,):
        raise InputError(
            f"{folder}: map shapes {weights.shape} and {bias.shape} do not match the manifest "
            f"({want[0]} -> {want[1]} dims)"
        )
    return manifest, weights, bias
