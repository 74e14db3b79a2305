"""The index manifest (`manifest.json`): what an index folder holds and how it was made.

One typed `Manifest` and one reader (`read_manifest`) serve `reindex` (resume), `verify` (integrity)
and `plan` (store discovery). The format is a contract: users' own code reads it too. Keys may be
added, never renamed; keys this version does not know are kept as they are (`extra`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from jmigrate.errors import InputError
from jmigrate.fileio import atomic_write
from jmigrate.textio import require_regular

FORMAT = "jmigrate-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_PATTERN = "part-{:05d}.parquet"
# What a shard record's `file` may be: a plain name inside the index folder, never a path. jmigrate
# deletes and replaces shards, so a manifest naming anything else would point that at the user's files.
SHARD_NAME = re.compile(r"part-[0-9]{5,}\.parquet")
# A vector whose norm is further than this from 1 is not unit length (float32 rounding is ~1e-6).
NORM_TOLERANCE = 1e-3
STATUSES = ("running", "interrupted", "failed", "complete")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Rows:
    source: int = 0
    written: int = 0
    rejected: int = 0


@dataclass
class Checkpoint:
    next_unit: int = 0  # the first unit not yet in a shard: where a rerun resumes
    rejects_bytes: int = 0  # committed length of rejects.jsonl


@dataclass
class Usage:
    requests: int = 0
    tokens: int = 0
    retries: int = 0


@dataclass
class Norms:
    """Euclidean norms of one shard's vectors, measured as it was written."""

    min: float | None = None  # over finite rows; None when there are none
    max: float | None = None
    nonfinite: int = 0  # rows with NaN or inf

    @classmethod
    def of(cls, vectors: np.ndarray) -> Norms:
        n = Norms()
        n.add(vectors)
        return n

    def add(self, vectors: np.ndarray) -> None:
        if len(vectors):
            with np.errstate(over="ignore", invalid="ignore"):  # huge or NaN rows count as non-finite
                self.add_norms(np.linalg.norm(np.asarray(vectors, dtype=np.float32), axis=1))

    def add_norms(self, norms: np.ndarray) -> None:
        finite = norms[np.isfinite(norms)]
        self.nonfinite += len(norms) - len(finite)
        if len(finite):
            lo, hi = float(finite.min()), float(finite.max())
            self.min = lo if self.min is None else min(self.min, lo)
            self.max = hi if self.max is None else max(self.max, hi)

    def same_as(self, other: Norms) -> bool:
        """Equal up to float rounding (the same float32 vectors, norms computed twice)."""
        def close(a: float | None, b: float | None) -> bool:
            return a is None and b is None or (a is not None and b is not None
                                               and abs(a - b) <= 1e-4 * max(1.0, abs(a)))
        return self.nonfinite == other.nonfinite and close(self.min, other.min) and close(self.max, other.max)

    def describe(self) -> str:
        rng = "no finite vector" if self.min is None or self.max is None else \
            f"norms {self.min:.4g}..{self.max:.4g}"
        return rng + (f", {self.nonfinite} non-finite" if self.nonfinite else "")

    @property
    def unit(self) -> bool:
        """Every vector is finite and of unit length."""
        return self.nonfinite == 0 and all(x is None or abs(x - 1.0) <= NORM_TOLERANCE
                                           for x in (self.min, self.max))


@dataclass
class Shard:
    """One shard's record. Only `file` is required to read an index; `reindex` writes all of them."""

    file: str
    rows: int | None = None
    sha256: str | None = None
    units: tuple[int, int] | None = None  # [first unit, first unit of the next shard)
    first_row: int | None = None
    source_rows: int | None = None
    source_digest: str | None = None
    rejects_end: int | None = None  # length of rejects.jsonl once this shard's lines were in
    norms: Norms | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    model: str
    dimensions: int
    task: str | None = None
    tool_version: str | None = None
    # What is true of the stored vectors, from the norms measured as each shard was written (an
    # encoder's promise is not enough: a server can answer with unnormalised vectors).
    normalized: bool | None = True
    late_chunking: bool = False
    chunking: dict[str, Any] | None = None
    encoder: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    rows: Rows = field(default_factory=Rows)
    shards: list[Shard] = field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    status: str | None = None
    # Beyond the documented contract: the settings that decide the output, their fingerprint, the
    # resume point, what was spent, and what the server called its model.
    settings: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    usage: Usage = field(default_factory=Usage)
    served_model: str | None = None
    # Rows the encoder answered off unit length and jmigrate normalised before storing (all runs)
    normalised_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept
    # keys absent on disk (dotted, e.g. `rows.written`, `shards[0].units`) and how to name them
    missing: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    # ---- what the folder's state means
    @property
    def complete(self) -> bool:
        return self.status == "complete"

    def measured_normalized(self) -> bool | None:
        """True when every shard's measured norms are unit, False when one is not, None when a shard
        has no measurement (written by an older jmigrate, or by hand)."""
        if any(s.norms is None for s in self.shards):
            return None
        return all(s.norms.unit for s in self.shards if s.norms is not None)

    def add_shard(self, shard: Shard) -> None:
        self.shards.append(shard)
        measured = self.measured_normalized()
        if measured is not None:
            self.normalized = measured

    def check_resumable(self, path: Path | str = MANIFEST) -> None:
        """InputError when a key a resume depends on was absent on disk (a hand edit, outside damage):
        without it, which shards are good and where to go on cannot be known."""
        for key, name in self.missing.items():
            top, _, sub = key.partition(".")
            if top in ("rows", "checkpoint", "usage") or (top.startswith("shards[")
                                                           and sub in _RESUME_SHARD_KEYS):
                raise InputError(f"{path} is damaged: {name} is missing")
        # The counts, the resume point and the shard records are written together; if they disagree
        # the manifest was edited or damaged, and resuming from it would build a wrong index.
        unit = row = rejects_end = 0
        for s in self.shards:
            assert s.units is not None and s.first_row is not None and s.source_rows is not None
            if s.units[0] != unit or s.first_row != row:
                raise InputError(f"{path} is damaged: shard {s.file} does not start where the one before "
                                 f"it ends (units {list(s.units)}, first_row {s.first_row})")
            unit, row = s.units[1], row + s.source_rows
            if s.rejects_end is not None:
                if s.rejects_end < rejects_end:
                    raise InputError(f"{path} is damaged: shard {s.file} 'rejects_end' goes backwards")
                rejects_end = s.rejects_end
        checks = (("checkpoint.next_unit", self.checkpoint.next_unit, unit),
                  ("rows.source", self.rows.source, row),
                  ("rows.written", self.rows.written, sum(s.rows or 0 for s in self.shards)))
        for name, value, want in checks:
            if value != want:
                raise InputError(f"{path} is damaged: '{name}' is {value}, the shard records say {want}")
        if self.checkpoint.rejects_bytes < rejects_end:
            raise InputError(f"{path} is damaged: 'checkpoint.rejects_bytes' is below the last shard's "
                             "'rejects_end'")

    # ---- JSON
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tool_version": self.tool_version,
            "model": self.model,
            "task": self.task,
            "dimensions": self.dimensions,
            "normalized": self.normalized,
            "late_chunking": self.late_chunking,
            "chunking": self.chunking,
            "encoder": self.encoder,
            "source": self.source,
            "rows": vars(self.rows).copy(),
            "shards": [_shard_json(s) for s in self.shards],
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "settings": self.settings,
            "fingerprint": self.fingerprint,
            "checkpoint": vars(self.checkpoint).copy(),
            "usage": vars(self.usage).copy(),
        }
        if self.served_model is not None:
            out["served_model"] = self.served_model
        out["normalised_rows"] = self.normalised_rows
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    def settings_json(self) -> dict[str, Any]:
        """The manifest without its run-specific fields: what every shard carries in its metadata, so a
        shard's bytes depend only on the source and the settings (resumed == uninterrupted)."""
        run_specific = ("shards", "rows", "status", "checkpoint", "usage", "started_at", "finished_at",
                        "served_model", "normalized", "normalised_rows")
        return {k: v for k, v in self.to_json().items() if k not in run_specific}


def _shard_json(s: Shard) -> dict[str, Any]:
    out: dict[str, Any] = {"file": s.file}
    for key in ("rows", "sha256", "units", "first_row", "source_rows", "source_digest", "rejects_end"):
        value = getattr(s, key)
        if value is not None:
            out[key] = list(value) if key == "units" else value
    if s.norms is not None:
        out["norms"] = vars(s.norms).copy()
    for k, v in s.extra.items():
        out.setdefault(k, v)
    return out


def new_manifest(*, tool_version: str, model: str, task: str | None, dimensions: int, late_chunking: bool,
                 chunking: dict[str, Any] | None, encoder: str, source: dict[str, Any],
                 settings: dict[str, Any], fingerprint: str) -> Manifest:
    return Manifest(model=model, dimensions=dimensions, task=task, tool_version=tool_version,
                    normalized=True, late_chunking=late_chunking, chunking=chunking, encoder=encoder,
                    source=source, started_at=now(), status="running", settings=settings,
                    fingerprint=fingerprint)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    atomic_write(folder / MANIFEST, (json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n")
                 .encode())


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest of `folder`, None when there is none; InputError (one line) when it is unreadable,
    not a jmigrate index manifest, of another format version, or damaged (a key of the wrong type, a
    shard record naming anything but a plain `part-NNNNN.parquet` file of the folder)."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    require_regular(path)  # a FIFO named manifest.json would block the read forever
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {path}: {' '.join(str(e).split())}") from e
    return parse_manifest(data, path)


def parse_manifest(data: Any, path: Path | str) -> Manifest:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path} is not a jmigrate index manifest")
    if data.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path} has format_version {data.get('format_version')!r}; this jmigrate reads "
                         f"{FORMAT_VERSION}")
    r = _Reader(data, path)
    model = r.get("model", str, required=True)
    dims = r.get("dimensions", int, required=True)
    if dims <= 0:
        raise InputError(f"{path} is damaged: 'dimensions' is {dims}, not a positive number")
    status = r.get("status", str)
    if status is not None and status not in STATUSES:
        raise InputError(f"{path} is damaged: 'status' is {status!r}, not one of {', '.join(STATUSES)}")
    shards_raw = r.get("shards", list, required=True)
    m = Manifest(
        model=model,
        dimensions=dims,
        task=r.get("task", str),
        tool_version=r.get("tool_version", str),
        normalized=r.get("normalized", bool),
        late_chunking=bool(r.get("late_chunking", bool)),
        chunking=r.get("chunking", dict),
        encoder=r.get("encoder", str),
        source=r.get("source", dict) or {},
        rows=Rows(**r.counts("rows", ("source", "written", "rejected"))),
        shards=[],
        started_at=r.get("started_at", str),
        finished_at=r.get("finished_at", str),
        status=status,
        settings=r.get("settings", dict) or {},
        fingerprint=r.get("fingerprint", str),
        checkpoint=Checkpoint(**r.counts("checkpoint", ("next_unit", "rejects_bytes"))),
        usage=Usage(**r.counts("usage", ("requests", "tokens", "retries"))),
        served_model=r.get("served_model", str),
    )
    count = r.get("normalised_rows", int)
    if count is not None and count < 0:
        raise InputError(f"{path} is damaged: 'normalised_rows' is negative")
    m.normalised_rows = count or 0
    seen: set[str] = set()
    for i, rec in enumerate(shards_raw):
        shard = _parse_shard(rec, i, path, m.missing)
        if shard.file in seen:
            raise InputError(f"{path} is damaged or was tampered with: shard {shard.file} is listed twice")
        seen.add(shard.file)
        m.shards.append(shard)
    m.missing.update(r.missing)
    m.extra = {k: v for k, v in data.items() if k not in _KNOWN}
    return m


_KNOWN = {"format", "format_version", "tool_version", "model", "task", "dimensions", "normalized",
          "late_chunking", "chunking", "encoder", "source", "rows", "shards", "started_at", "finished_at",
          "status", "settings", "fingerprint", "checkpoint", "usage", "served_model", "normalised_rows"}
_SHARD_INTS = ("rows", "first_row", "source_rows", "rejects_end")
# `rejects_end` is absent in manifests of older versions; resuming copes without it
_RESUME_SHARD_KEYS = ("rows", "sha256", "units", "first_row", "source_rows", "source_digest")


def _parse_shard(rec: Any, i: int, path: Path | str, missing: dict[str, str]) -> Shard:
    name = rec.get("file") if isinstance(rec, dict) else None
    if not isinstance(name, str) or not SHARD_NAME.fullmatch(name):
        raise InputError(f"{path} is damaged or was tampered with: shard {i} names {name!r}, not a "
                         "part-NNNNN.parquet file inside the index folder; jmigrate will not touch it")
    assert isinstance(rec, dict)
    r = _Reader(rec, path, where=f"shard {name}")
    shard = Shard(file=name)
    for key in _SHARD_INTS:
        value = r.get(key, int)
        if value is not None and value < 0:
            raise InputError(f"{path} is damaged: shard {name} '{key}' is negative")
        setattr(shard, key, value)
    shard.sha256 = r.get("sha256", str)
    shard.source_digest = r.get("source_digest", str)
    units = r.get("units", list)
    if units is not None:
        if len(units) != 2 or not all(type(u) is int and u >= 0 for u in units) or units[0] > units[1]:
            raise InputError(f"{path} is damaged: shard {name} 'units' is not a [first, end] pair")
        shard.units = (units[0], units[1])
    norms = r.get("norms", dict)
    if norms is not None:
        lo, hi, bad = norms.get("min"), norms.get("max"), norms.get("nonfinite", 0)
        if not all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x))
                   for x in (lo, hi)) or type(bad) is not int:
            raise InputError(f"{path} is damaged: shard {name} 'norms' is not {{min, max, nonfinite}}")
        shard.norms = Norms(lo, hi, bad)
    missing.update({f"shards[{i}].{k}": name for k, name in r.missing.items()})
    shard.extra = {k: v for k, v in rec.items() if k not in (*_SHARD_INTS, "file", "sha256", "source_digest",
                                                              "units", "norms")}
    return shard


class _Reader:
    """Typed access to one JSON object: a key of the wrong type is damage (one line), never a KeyError or
    a TypeError later; absent keys are noted in `missing`."""

    def __init__(self, data: dict[str, Any], path: Path | str, where: str = "") -> None:
        self.data, self.path, self.where = data, path, where
        self.missing: dict[str, str] = {}

    def get(self, key: str, kind: type, *, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                raise InputError(f"{self.path} is damaged: {self._name(key)} is missing")
            self.missing[key] = self._name(key)
            return None
        value = self.data[key]
        if value is None and not required:
            return None
        # bool is an int in Python; a count of `true` is damage, and so is a flag of 1
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok:
            raise InputError(f"{self.path} is damaged: {self._name(key)} is not {_KIND[kind]}")
        return value

    def counts(self, key: str, names: tuple[str, ...]) -> dict[str, int]:
        obj = self.get(key, dict)
        if obj is None:
            return {}
        out = {}
        for n in names:
            if n not in obj:
                self.missing[f"{key}.{n}"] = self._name(f"{key}.{n}")
                continue
            v = obj[n]
            if type(v) is not int or v < 0:
                raise InputError(f"{self.path} is damaged: {self._name(f'{key}.{n}')} is not a count")
            out[n] = v
        return out

    def _name(self, key: str) -> str:
        return f"{self.where} '{key}'" if self.where else f"'{key}'"


_KIND = {str: "a string", int: "a whole number", bool: "true or false", list: "a list", dict: "an object"}
