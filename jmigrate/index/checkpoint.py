"""Resume state of an output folder: the run lock, the settings fingerprint, and crash clean-up.

A run commits work in this order: unit journal file (tmp + rename) → shard (tmp + fsync + rename) →
rejects appended → manifest (atomic). Whatever a crash leaves behind is reconciled here against the
manifest, the only source of truth: shards it does not list are deleted, rejects.jsonl is cut back to
its recorded length, and journal units already inside a recorded shard are dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from jmigrate.errors import CheckpointError, InputError
from jmigrate.fileio import check_folder, check_regular, create_new, open_regular
from jmigrate.index.manifest import MANIFEST, Checkpoint, Manifest, Rows, read_manifest, write_manifest
from jmigrate.index.rejects import REJECTS
from jmigrate.index.shards import sha256_file

LOCK = ".jmigrate.lock"
WORK = ".jmigrate-work"
UNIT_PATTERN = "unit-{:09d}.arrow"


def fingerprint_of(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]


class RunLock:
    """An exclusive `flock` on DIR/.jmigrate.lock; the kernel drops it when the process dies, even by
    SIGKILL, so a crashed run never leaves a stale lock behind."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK
        self._fh: BinaryIO | None = None

    def __enter__(self) -> RunLock:
        # Never through a link or into a file with another name: the pid written below would land there.
        fh = os.fdopen(open_regular(self.path, os.O_RDWR | os.O_CREAT, single_link=True), "r+b")
        try:
            _lock(fh)
        except OSError:
            fh.seek(0)
            holder = fh.read().decode(errors="replace").strip() or "?"
            fh.close()
            raise CheckpointError(f"another jmigrate reindex (pid {holder}) is writing {self.path.parent}; "
                                  "wait for it or stop it first") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()).encode())
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            _unlock(self._fh)
            self._fh.close()
            self._fh = None


if sys.platform == "win32":  # msvcrt locks are released by the OS when the process dies, too
    import msvcrt

    def _lock(fh: BinaryIO) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(fh: BinaryIO) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock(fh: BinaryIO) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fh: BinaryIO) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass
class ResumeState:
    manifest: Manifest | None  # None: a fresh run
    journal: dict[int, Path] = field(default_factory=dict)  # finished units not yet in a shard
    cleaned: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # repairs made, for the user


def _ours(name: str) -> bool:
    return (name in (MANIFEST, REJECTS, LOCK, WORK)
            or (name.startswith("part-") and name.endswith(".parquet"))
            or name.startswith(".part-") or name.startswith(f".{MANIFEST}.tmp")
            or name.startswith(f".{REJECTS}.tmp"))


def prepare(folder: Path, *, fingerprint: str, source_fingerprint: str, restart: bool,
            describe_change: Callable[[Manifest], str] | None = None) -> ResumeState:
    """Check that `folder` may be (re)used by a run with these fingerprints and clean crash leftovers.

    Must be called with the RunLock held. `describe_change(old_manifest)` names what changed, for the
    refusal message.
    """
    folder.mkdir(parents=True, exist_ok=True)
    check_links(folder)
    try:
        manifest = read_manifest(folder)
        if manifest is not None:
            manifest.check_resumable(folder / MANIFEST)
            _check_settings(manifest, folder / MANIFEST)
    except InputError as e:
        if not restart:
            raise CheckpointError(f"{e}. Rerun with --restart to discard {folder} and start over, or choose "
                                  "another --out") from None
        manifest = None  # --restart discards it anyway
    foreign = sorted(p.name for p in folder.iterdir() if not _ours(p.name))
    if manifest is None and not restart and any(p.name.startswith("part-") for p in folder.iterdir()):
        raise CheckpointError(f"{folder} holds shards but no manifest.json; use an empty folder or --restart")
    if foreign and manifest is None:
        raise CheckpointError(f"{folder} is not empty and is not a jmigrate index ({foreign[0]}, ...); "
                              "choose a new or empty folder")
    if manifest is not None and not restart:
        changes = []
        if manifest.fingerprint != fingerprint:
            changes.append(describe_change(manifest) if describe_change else "settings changed")
        if manifest.source.get("fingerprint") != source_fingerprint:
            changes.append("the source files changed")
        if changes:
            raise CheckpointError(
                f"{folder} was written by a run with different input: {'; '.join(changes)}. "
                "Rerun with --restart to discard it and start over, or choose another --out")
    state = ResumeState(None if restart else manifest)
    if restart:
        for p in folder.iterdir():
            if _ours(p.name) and p.name != LOCK:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
                state.cleaned.append(p.name)
        return state
    recorded = {s.file for s in manifest.shards} if manifest else set()
    for p in folder.iterdir():
        if p.name.startswith("part-") and p.name not in recorded or p.name.startswith(".part-") \
                or p.name.startswith(f".{MANIFEST}.tmp") or p.name.startswith(f".{REJECTS}.tmp"):
            p.unlink()  # written but never recorded: the run died between rename and manifest
            state.cleaned.append(p.name)
    if manifest is None:
        (folder / REJECTS).unlink(missing_ok=True)
    else:
        _verify_shards(folder, manifest, state)
    next_unit = manifest.checkpoint.next_unit if manifest else 0
    work = folder / WORK
    if work.is_dir():
        for p in sorted(work.iterdir()):
            unit = _unit_index(p.name)
            if unit is None or unit < next_unit or not _readable(p):
                p.unlink()
            else:
                state.journal[unit] = p
    return state


def _check_settings(manifest: Manifest, path: Path) -> None:
    """The recorded settings hash to the recorded fingerprint, and the top-level copies readers use
    (`model`, `task`, `dimensions`, ...) agree with them: else the manifest was edited, and a resumed
    run would finish an index whose manifest misdescribes it."""
    if fingerprint_of(manifest.settings) != manifest.fingerprint:
        raise InputError(f"{path} is damaged: its 'settings' do not match its 'fingerprint'")
    for key in ("model", "task", "dimensions", "late_chunking", "encoder"):
        if key in manifest.settings and manifest.settings[key] != getattr(manifest, key):
            raise InputError(f"{path} is damaged: '{key}' is {getattr(manifest, key)!r}, the run that wrote "
                             f"it used {manifest.settings[key]!r}")


def check_links(folder: Path) -> None:
    """Refuse (one line naming the path) any of jmigrate's names in `folder`, or any entry of its work
    folder, that is a symbolic link or not what jmigrate would have made there.

    Everything below reads, truncates, replaces or deletes these names; a link planted among them
    (`.jmigrate-work -> ~/docs`) must never turn that onto files outside the folder. `folder` itself may
    be a link: the user named it.
    """
    for p in sorted(folder.iterdir()):
        if not _ours(p.name):
            continue  # never touched
        if p.name == WORK:
            if check_folder(p):
                for q in sorted(p.iterdir()):
                    check_regular(q)
        else:
            # rejects.jsonl and the lock are changed in place: another hard link would see it too
            check_regular(p, single_link=p.name == LOCK)


def _verify_shards(folder: Path, manifest: Manifest, state: ResumeState) -> None:
    """Check every recorded shard against its sha256; from the first bad one on, forget the shards
    (manifest, files, their rejects) so this run makes them again. A shard is only renamed into place
    whole and fsynced, so a bad one means damage after the fact (a disk error, a partial copy, an edit)."""
    shards = manifest.shards
    bad, why = None, ""
    for i, rec in enumerate(shards):
        path = folder / rec.file
        if not path.is_file():
            bad, why = i, f"{rec.file} is missing"
        elif sha256_file(path) != rec.sha256:
            bad, why = i, f"{rec.file} is damaged (its sha256 differs from the one in manifest.json)"
        if bad is not None:
            break
    # rejects.jsonl cut short (it is fsynced before the manifest, so not by a crash): the shards whose
    # reject lines are gone are made again, which writes those lines again
    rejects = folder / REJECTS
    size = rejects.stat().st_size if rejects.exists() else 0
    if size < manifest.checkpoint.rejects_bytes:
        # `rejects_end` (the file's length once the shard's lines were in) is missing in older manifests
        short = next((i for i, rec in enumerate(shards)
                      if (rec.rejects_end if rec.rejects_end is not None else size + 1) > size), None)
        if short is not None and (bad is None or short < bad):
            bad, why = short, (f"{REJECTS} is shorter than recorded ({size:,} < "
                               f"{manifest.checkpoint.rejects_bytes:,} bytes)")
    if bad is None:
        return
    dropped = shards[bad:]
    for rec in dropped:
        (folder / rec.file).unlink(missing_ok=True)
    kept = shards[:bad]
    # check_resumable() made sure every record has these
    first = dropped[0]
    assert first.first_row is not None and first.units is not None
    rejects_bytes, rejected = _rejects_before(folder / REJECTS, first.first_row)
    manifest.shards = []
    for rec in kept:
        manifest.add_shard(rec)  # `normalized` follows the shards that remain
    manifest.rows = Rows(source=sum(r.source_rows or 0 for r in kept), written=sum(r.rows or 0 for r in kept),
                         rejected=rejected)
    manifest.checkpoint = Checkpoint(next_unit=first.units[0], rejects_bytes=rejects_bytes)
    manifest.status, manifest.finished_at = "interrupted", None
    write_manifest(folder, manifest)
    state.notes.append(f"{why}; {first.file} and the {len(dropped) - 1} shard(s) after it "
                       f"({sum(r.source_rows or 0 for r in dropped):,} source rows) are made again")


def _rejects_before(path: Path, first_row: int) -> tuple[int, int]:
    """Length in bytes and line count of the part of rejects.jsonl about source rows before `first_row`
    (lines are appended shard by shard in source-row order)."""
    size = count = 0
    if not path.exists():
        return 0, 0
    with open(path, "rb") as f:
        for line in f:
            try:
                row = json.loads(line)["row"]
            except (ValueError, KeyError, TypeError):
                break  # a damaged tail: cut here, the rows after it are redone anyway
            if not line.endswith(b"\n") or row >= first_row:
                break
            size += len(line)
            count += 1
    return size, count


def _unit_index(name: str) -> int | None:
    if name.startswith("unit-") and name.endswith(".arrow"):
        try:
            return int(name[5:-6])
        except ValueError:
            return None
    return None


def _readable(path: Path) -> bool:
    try:
        read_unit(path)
        return True
    except (OSError, pa.ArrowException):
        return False


def unit_rejects(table: pa.Table) -> list[dict[str, Any]]:
    raw = (table.schema.metadata or {}).get(b"jmigrate.refused")
    return list(json.loads(raw)) if raw else []


def unit_digest(path: Path) -> str | None:
    with pa.OSFile(str(path), "rb") as src:
        meta = pa.ipc.open_file(src).schema.metadata or {}
    value = meta.get(b"jmigrate.unit_digest")
    return value.decode() if value else None


def read_unit(path: Path) -> pa.Table:
    with pa.OSFile(str(path), "rb") as src:
        return pa.ipc.open_file(src).read_all()


def write_unit(work: Path, unit: int, table: pa.Table, digest: str,
               refused: list[dict[str, Any]] | None = None) -> Path:
    """Journal one encoded unit. Renamed into place complete; not fsynced: it only has to survive the
    process dying (a lost journal file after a power cut is re-encoded, never duplicated).
    `digest` (of the unit's source rows) is kept in the schema metadata and checked on reuse; so are
    the rows the encoder refused (`refused`), which a rerun must not send again."""
    final = work / UNIT_PATTERN.format(unit)
    tmp = work / f".{final.name}.tmp"
    schema = table.schema.with_metadata({**(table.schema.metadata or {}), b"jmigrate.unit_digest": digest,
                                         b"jmigrate.refused": json.dumps(refused or [])})
    tmp.unlink(missing_ok=True)  # a leftover, or a planted link: removed, never written through
    try:
        create_new(tmp)
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as w:
            w.write_table(table.replace_schema_metadata(schema.metadata))
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk: free what the half file took
        raise
    return final
