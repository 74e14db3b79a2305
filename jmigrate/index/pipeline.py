"""The reindex pipeline: read → validate → encode → journal → shard, in three threads with bounded queues.

Exactly once, and never paying twice for finished work:
- The source is cut into *units* (units.py) of `unit_rows` consecutive source rows. Boundaries depend only on
  the source and the settings, so a rerun sees the same units.
- Each encoded unit is journalled at once (`.jmigrate-work/unit-N.arrow`, written then renamed). A
  crash loses at most the units still being encoded, i.e. the requests in flight.
- Units are gathered into shards of about `shard_rows` output rows. A shard is written to a temp name,
  fsynced and renamed, then its rejects are appended, then the manifest records it and the resume point
  (`checkpoint.next_unit`). Checkpoint reconciliation is in `checkpoint.py`.
- On resume the reader re-reads the committed rows without encoding them (ids for duplicate detection,
  and a digest compared with the one recorded, so an edited source is caught), reuses journalled units,
  and encodes the rest.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from jmigrate.encoders.base import Encoder, Halted, ZeroVectorError
from jmigrate.errors import CheckpointError, EncoderError, InputError, SpendCapReached, UsageError
from jmigrate.index import checkpoint as ckpt
from jmigrate.index.manifest import SHARD_PATTERN, Manifest, Norms, Usage, new_manifest, now, write_manifest
from jmigrate.index.rejects import RejectsFile, reject
from jmigrate.index.settings import Settings, check_out_folder
from jmigrate.index.shards import ShardWriter, output_schema, vector_array, vectors_of
from jmigrate.index.sources import Source
from jmigrate.index.units import Preparer, Unit, keep_rows, rebatch, refused_input, token_limit
from jmigrate.version import VERSION

__all__ = ["Result", "Settings", "Stats", "reindex"]

QUEUE_UNITS = 8  # units buffered between stages: bounds memory whatever the corpus size
JOIN_SECONDS = 15.0  # how long a stopping run waits for the reader and the encoder call in hand


@dataclass
class Stats:
    """Live counters for progress and the final summary (written by the pipeline threads)."""

    total_rows: int | None = None
    resumed_rows: int = 0  # committed or journalled by an earlier run
    source_rows: int = 0  # source rows handled (all runs)
    written: int = 0  # output rows journalled (all runs)
    rejected: int = 0
    truncated: int = 0
    safe_rows: int = 0  # source rows embedded and journalled, or committed (all runs): a crash keeps them
    done_before: int = 0  # source rows an earlier run committed or journalled (0: a fresh run)
    tokens: int = 0  # tokens sent by this run (counted by the encoder's tokenizer or its estimate)
    shards: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class Result:
    out: Path
    status: str  # complete | interrupted | failed
    manifest: Manifest
    stats: Stats
    usage: dict[str, int]
    cleaned: list[str]
    already_complete: bool = False  # the folder was complete before this run: nothing was done
    notes: list[str] = field(default_factory=list)  # repairs made on the way in (a damaged shard redone)


# --------------------------------------------------------------------------- the run

class _Stop(Exception):
    pass


def reindex(
    source: Source,
    out: Path,
    encoder: Encoder,
    settings: Settings,
    *,
    restart: bool = False,
    on_progress: Callable[[Stats, Encoder], None] | None = None,
    stop: threading.Event | None = None,
    concurrency: int = 1,
    on_note: Callable[[str], None] | None = None,
    on_stopping: Callable[[int], None] | None = None,
    on_abandon: Callable[[int], None] | None = None,
) -> Result:
    """Embed `source` into the index folder `out`, resuming a previous run of the same settings.

    `on_note` hears about repairs before the run goes on (a damaged shard found and made again).
    On Ctrl-C, `on_stopping(requests in flight)` is called at once (nothing new is sent; those are
    awaited and kept); on a second Ctrl-C, `on_abandon(requests in flight)` (they are given up).
    With `settings.max_spend`, the run stops before a request could take the spend past it and
    raises SpendCapReached (resumable)."""
    try:
        return _reindex(source, out, encoder, settings, restart=restart, on_progress=on_progress, stop=stop,
                        concurrency=concurrency, on_note=on_note, on_stopping=on_stopping,
                        on_abandon=on_abandon)
    except OSError as e:
        # A full disk, a read-only or vanished folder: one line, and how to go on. Everything committed
        # before it (shards, manifest, journal) is intact, so a rerun resumes.
        what = " ".join(f"{e.strerror or e}".split()) + (f": {e.filename}" if e.filename else "")
        raise CheckpointError(f"cannot go on writing {out} ({what}); finished work is saved: fix that (e.g. "
                              "free disk space) and run the same command again to resume") from e


def _reindex(source: Source, out: Path, encoder: Encoder, settings: Settings, *, restart: bool,
             on_progress: Callable[[Stats, Encoder], None] | None, stop: threading.Event | None,
             concurrency: int, on_note: Callable[[str], None] | None,
             on_stopping: Callable[[int], None] | None = None,
             on_abandon: Callable[[int], None] | None = None) -> Result:
    settings.check()
    check_out_folder(out)
    resolved = out.resolve()
    if any(resolved == f.resolve().parent or resolved in f.resolve().parents for f in source.files):
        raise UsageError(f"--out {out} holds the source files; write the new index to another folder")
    stop = stop or threading.Event()
    max_tokens = token_limit(settings, encoder)
    src_fp = source.fingerprint()
    # The source's path is left out: the same files named another way (relative vs absolute, a moved
    # folder) are the same input; their content is checked by the source fingerprint.
    fp_settings = {**settings.fingerprinted(),
                   "source": {k: v for k, v in source.describe().items() if k != "path"}}
    fingerprint = ckpt.fingerprint_of(fp_settings)
    out.mkdir(parents=True, exist_ok=True)
    with ckpt.RunLock(out):
        if not restart and _never_embedded(out, fingerprint, src_fp):
            # An earlier start failed before anything was embedded (a refused key, a server that
            # would not take the model): nothing is lost by starting over with the new settings.
            restart = True
            if on_note:
                on_note(f"{out} holds a run that embedded nothing; starting over with these settings")
        state = ckpt.prepare(
            out, fingerprint=fingerprint, source_fingerprint=src_fp, restart=restart,
            describe_change=lambda old: _describe_change(old.settings, fp_settings))
        manifest = state.manifest
        for note in state.notes if on_note else ():
            on_note(note)  # type: ignore[misc]
        if manifest is None:
            manifest = new_manifest(
                tool_version=VERSION, model=settings.model, task=settings.task,
                dimensions=settings.dimensions, late_chunking=settings.late_chunking,
                chunking=settings.chunking(), encoder=settings.encoder,
                source={**source.describe(), "fingerprint": src_fp}, settings=fp_settings,
                fingerprint=fingerprint)
            write_manifest(out, manifest)
        stats = Stats(total_rows=_total(source, settings))
        if manifest.complete:
            try:  # crash leftovers were cleared out of it by prepare()
                (out / ckpt.WORK).rmdir()
            except OSError:
                pass
            stats.source_rows = stats.resumed_rows = manifest.rows.source
            stats.written, stats.rejected = manifest.rows.written, manifest.rows.rejected
            stats.shards = len(manifest.shards)
            return Result(out, "complete", manifest, stats, vars(manifest.usage).copy(), state.cleaned,
                          already_complete=True, notes=state.notes)
        if settings.max_spend is not None and settings.price_per_mtok:
            # What is left of the cap after what earlier runs were billed (the manifest's usage).
            cap = int(settings.max_spend / settings.price_per_mtok * 1e6)
            encoder.spend_cap_tokens = max(0, cap - manifest.usage.tokens)
        run = _Run(source, out, encoder, settings, manifest, state, stats, stop, max_tokens, concurrency)
        run.on_stopping, run.on_abandon = on_stopping, on_abandon
        return run.go(on_progress)


def _never_embedded(out: Path, fingerprint: str, source_fingerprint: str) -> bool:
    """`out` holds a manifest of other settings (or another source) but not one embedded row: nothing
    written (its shards, if any, are empty: every row was rejected, e.g. a server refusing the model)
    and no journalled unit. Such a folder may be started over without --restart: nothing is lost."""
    from jmigrate.index.manifest import read_manifest

    try:
        m = read_manifest(out)
    except InputError:
        return False  # unreadable: only --restart may discard it
    if m is None:
        return False
    if m.fingerprint == fingerprint and m.source.get("fingerprint") == source_fingerprint:
        return False  # same settings: an ordinary resume
    work = out / ckpt.WORK
    if work.is_symlink():
        return False  # not ours to judge: prepare() refuses it
    journal = work.is_dir() and any(p.name.startswith("unit-") for p in work.iterdir())
    return not journal and not m.rows.written and not any(sh.rows for sh in m.shards)


def _total(source: Source, s: Settings) -> int | None:
    if source.rows is None:
        return s.limit
    return min(source.rows, s.limit) if s.limit is not None else source.rows


def _describe_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    diffs = [f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in sorted(set(old) | set(new))
             if old.get(k) != new.get(k)]
    return "settings changed: " + ", ".join(diffs) if diffs else "settings changed"


class _Run:
    def __init__(self, source: Source, out: Path, encoder: Encoder, settings: Settings,
                 manifest: Manifest, state: ckpt.ResumeState, stats: Stats, stop: threading.Event,
                 max_tokens: int, concurrency: int) -> None:
        self.source, self.out, self.encoder, self.s = source, out, encoder, settings
        self.manifest, self.state, self.stats, self.stop = manifest, state, stats, stop
        self.prep = Preparer(source, settings, encoder, max_tokens)
        self.schema = output_schema(settings.dimensions, chunked=settings.chunked,
                                    store_text=settings.store_text, metadata=source.metadata_schema)
        self.work = out / ckpt.WORK
        self.work.mkdir(exist_ok=True)
        self.rejects = RejectsFile(out, manifest.checkpoint.rejects_bytes)
        self.base_usage = manifest.usage
        self.base_normalised = manifest.normalised_rows
        self._norms = Norms()  # of the shard being written
        self.errors: list[BaseException] = []
        self._open: ShardWriter | None = None  # the shard being written, removed if the run fails
        self.gather = max(1, concurrency) * max(1, encoder.batch_size)
        self._lock = threading.Lock()
        self.capped: SpendCapReached | None = None
        self.on_stopping: Callable[[int], None] | None = None
        self.on_abandon: Callable[[int], None] | None = None
        # The window: units encoded at once, enough for about three times `concurrency` requests. A
        # unit's answered requests wait for its last one (about half of them on average), and what
        # is left must still exceed the slots, so that a freed slot is refilled at once. 1 for local
        # backends.
        per_unit = max(1, -(-settings.unit_rows // max(1, encoder.batch_size)))
        self.window = (max(2, -(-3 * max(1, concurrency) // per_unit) + 1) if encoder.overlapping_calls
                       else 1)
        self.reorder = 2 * self.window + 2
        self.q_encode: queue.Queue[Unit | None] = queue.Queue(QUEUE_UNITS)
        self.q_write: queue.Queue[Unit | None] = queue.Queue(QUEUE_UNITS)
        rows = manifest.rows
        stats.source_rows, stats.written, stats.rejected = rows.source, rows.written, rows.rejected
        stats.resumed_rows = rows.source
        # Journalled units hold `unit_rows` source rows each (the last one of the source may hold fewer).
        journalled = sum(settings.unit_rows if stats.total_rows is None else
                         max(0, min(settings.unit_rows, stats.total_rows - i * settings.unit_rows))
                         for i in state.journal if i >= manifest.checkpoint.next_unit)
        stats.safe_rows = stats.done_before = rows.source + journalled
        stats.shards = len(manifest.shards)

    # ---- stages
    def _put(self, q: queue.Queue[Unit | None], item: Unit | None) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _get(self, q: queue.Queue[Unit | None], *, drain: bool = False) -> Unit | None:
        """Next item; on stop, raise at once, or (`drain`) only once the queue is empty, so units
        already encoded are journalled rather than paid for again."""
        while True:
            if self.stop.is_set() and not drain:
                raise _Stop
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    raise _Stop from None

    def _stage(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except _Stop:
                pass
            except BaseException as e:  # handed to the main thread, which re-raises it
                self.errors.append(e)
                self.stop.set()
        return run

    def read(self) -> None:
        next_unit = self.manifest.checkpoint.next_unit
        # check_resumable() made sure every record has its units and digest
        expected = {sh.units[1] - 1: (sh.units[0], sh.source_digest or "")
                    for sh in self.manifest.shards if sh.units is not None}
        running: Any = None
        row = 0
        for index, raw in enumerate(rebatch(self.source.batches(self.s.unit_rows), self.s.unit_rows,
                                             self.s.limit)):
            if self.stop.is_set():
                raise _Stop
            skip = index < next_unit
            unit = self.prep.unit(index, row, raw, skip)
            row += len(raw)
            if skip:
                running = _check_digest(index, unit.digest, expected, running)
                continue
            unit.journal = self.state.journal.get(index)
            if unit.journal is not None and ckpt.unit_digest(unit.journal) != unit.digest:
                raise CheckpointError(f"the source changed in rows {unit.first_row}..{row - 1}, already "
                                      "embedded by the interrupted run; rerun with --restart")
            self._put(self.q_encode, unit)
        self._put(self.q_encode, None)

    def encode(self) -> None:
        if self.window > 1:
            self._encode_window()
            return
        # A local backend: one call at a time, units gathered to fill its batches.
        done = False
        while not done:
            first = self._get(self.q_encode)
            if first is None:
                break
            group = [first]
            texts = 0 if first.journal else len(first.texts)
            while texts < self.gather:  # fill the encoder's batches with units already read
                try:
                    nxt = self.q_encode.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    done = True
                    break
                group.append(nxt)
                texts += 0 if nxt.journal else len(nxt.texts)
            self._encode_group([u for u in group if u.journal is None and u.texts])
            for u in group:
                self._handed(u)
                self._put(self.q_write, u)
        self._put(self.q_write, None)

    def _encode_window(self) -> None:
        """The continuous request window (HTTP encoders): up to `self.window` units are being encoded
        at once, each in its own thread, their requests sharing the encoder's `concurrency` slots; a
        new unit starts the moment one finishes, so a slow request never idles the other slots.
        Each unit is journalled as soon as its vectors arrive (`encode_unit`); units go to the writer
        in source order, those finished early waiting here (the reorder buffer, at most
        `self.reorder` units)."""
        pending: deque[tuple[Unit, Future[None] | None]] = deque()
        eof = False
        pool = ThreadPoolExecutor(self.window, thread_name_prefix="reindex-unit")
        try:
            while pending or not eof:
                while pending and (pending[0][1] is None or pending[0][1].done()):
                    u, f = pending.popleft()
                    if f is not None:
                        f.result()  # its error, if any, ends the run
                    self._handed(u)
                    self._put(self.q_write, u)
                running = []
                for _, f in pending:
                    if f is None:
                        continue
                    if not f.done():
                        running.append(f)
                    elif f.exception() is not None:  # fail at once, not when it reaches the head
                        f.result()
                if self.stop.is_set() or self.capped is not None:
                    raise _Stop
                if not eof and len(running) < self.window and len(pending) < self.reorder:
                    try:
                        nxt = self.q_encode.get(timeout=0.05)
                    except queue.Empty:
                        continue
                    if nxt is None:
                        eof = True
                    elif nxt.journal is None and nxt.texts:
                        pending.append((nxt, pool.submit(self.encode_unit, nxt)))
                    else:
                        pending.append((nxt, None))
                    continue
                wait(running, timeout=0.1, return_when=FIRST_COMPLETED)
        finally:
            # Stopping (Ctrl-C, an error, the spending cap): nothing new starts; the units being
            # encoded finish (and are journalled) or stop unsent, before the run lets go of the folder.
            pool.shutdown(wait=True, cancel_futures=True)
        self._put(self.q_write, None)

    def encode_unit(self, u: Unit) -> None:
        """Encode one unit and journal it: a finished unit is durable before anyone hears of it.
        Thread-safe; what the window (and any other engine) calls per unit."""
        if self.stop.is_set() or self.capped is not None:
            raise _Stop
        try:
            self._encode_group([u])
        except SpendCapReached as e:
            with self._lock:
                if self.capped is None:
                    self.capped = e
            self.encoder.halt()  # nothing more is sent; what is in flight is answered and kept
            self.stop.set()
            raise _Stop from None
        except (Halted, CancelledError, asyncio.CancelledError):
            raise _Stop from None

    def _handed(self, u: Unit) -> None:
        if u.journal is None:  # nothing to encode (every row rejected): as safe as it will ever be
            with self._lock:
                self.stats.safe_rows += u.n_rows

    def _encode_group(self, units: list[Unit]) -> None:
        if not units:
            return
        try:
            vectors = self._encode_units(units)
        except (EncoderError, InputError) as e:
            if not refused_input(e):
                raise
            vectors = self._isolate_refused(units)
        pos = 0
        for u in units:
            n = len(u.texts)
            u.table = self._table(u, vectors[pos:pos + n])
            pos += n
            # Journal at once, in this thread: the loss window after a crash is only what is in flight.
            u.journal = ckpt.write_unit(self.work, u.index, u.table, u.digest, u.refused)
            with self._lock:
                self.stats.tokens += u.tokens
                self.stats.safe_rows += u.n_rows

    def _encode_units(self, units: list[Unit]) -> np.ndarray:
        s = self.s
        if s.late_chunking:
            docs: list[list[str]] = []
            for u in units:
                pos = 0
                for n in u.docs:
                    docs.append(u.texts[pos:pos + n])
                    pos += n
            mats = self.encoder.encode_late_chunked(docs, task=s.task, dimensions=s.dimensions)
            return np.concatenate(mats, axis=0) if mats else np.zeros((0, s.dimensions), np.float32)
        texts = [t for u in units for t in u.texts]
        return self.encoder.encode(texts, task=s.task, dimensions=s.dimensions)

    def _isolate_refused(self, units: list[Unit]) -> np.ndarray:
        """The encoder refused an input of this group (HTTP 400/422): find the source rows it refuses
        by halving, reject those (with the encoder's message) and keep the vectors of the rest."""
        s = self.s
        # items: the output rows of one source row (a document's chunks are refused together)
        items: list[tuple[Unit, int, list[int]]] = []
        for u in units:
            by_src: dict[int, list[int]] = {}
            for out_row, src in enumerate(u.src):
                by_src.setdefault(src, []).append(out_row)
            items += [(u, src, rows) for src, rows in by_src.items()]
        results: dict[tuple[int, int], np.ndarray | str] = {}

        def run(part: list[tuple[Unit, int, list[int]]]) -> None:
            try:
                if s.late_chunking:
                    mats = self.encoder.encode_late_chunked(
                        [[u.texts[r] for r in rows] for u, _, rows in part], task=s.task,
                        dimensions=s.dimensions)
                else:
                    flat = self.encoder.encode([u.texts[r] for u, _, rows in part for r in rows],
                                               task=s.task, dimensions=s.dimensions)
                    sizes = np.cumsum([len(rows) for _, _, rows in part])[:-1]
                    mats = np.split(flat, sizes)
                for (u, src, _), m in zip(part, mats, strict=True):
                    results[(u.index, src)] = m
            except ZeroVectorError as e:
                if len(part) == 1:
                    results[(part[0][0].index, part[0][1])] = str(e)
                    return
                # The encoder named the rows (numbered as sent): fail their source rows, re-send the
                # rest once, instead of halving down to them.
                bad, pos = set(), 0
                for k, (_, _, rows) in enumerate(part):
                    if any(pos <= r < pos + len(rows) for r in e.rows):
                        bad.add(k)
                    pos += len(rows)
                for k in bad:
                    results[(part[k][0].index, part[k][1])] = str(ZeroVectorError([0], 1))
                if rest := [item for k, item in enumerate(part) if k not in bad]:
                    run(rest)
            except (EncoderError, InputError) as e:
                if not refused_input(e):
                    raise
                if len(part) == 1:
                    results[(part[0][0].index, part[0][1])] = str(e)
                    return
                run(part[: len(part) // 2])
                run(part[len(part) // 2:])

        run(items)
        out: list[np.ndarray] = []
        for u in units:
            keep = [not isinstance(results[(u.index, src)], str) for src in u.src]
            for src in sorted(set(u.src)):
                reason = results[(u.index, src)]
                if isinstance(reason, str):
                    rid = u.ids[u.src.index(src)]
                    u.refused.append(reject(u.first_row + src, rid, f"refused by the encoder: {reason}"))
            for src in sorted(set(u.src)):
                m = results[(u.index, src)]
                if not isinstance(m, str):
                    out.append(m)
            keep_rows(u, keep)
        return np.concatenate(out, axis=0) if out else np.zeros((0, s.dimensions), np.float32)

    def _table(self, u: Unit, vectors: np.ndarray) -> pa.Table:
        arrays: list[pa.Array] = [pa.array(u.ids, pa.string())]
        if self.s.chunked:
            chunks = u.chunks or [(0, 0, len(t)) for t in u.texts]
            arrays += [pa.array([c[0] for c in chunks], pa.int32()),
                       pa.array([c[1] for c in chunks], pa.int64()),
                       pa.array([c[2] for c in chunks], pa.int64())]
        if self.s.store_text:
            arrays.append(pa.array(u.texts, pa.string()))
        if u.meta is not None:
            arrays += [c.combine_chunks() for c in u.meta.columns]
        vtype = self.schema.field("vector").type
        arrays.append(vector_array(vectors) if len(vectors) else pa.array([], vtype))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def write(self) -> None:
        try:
            self._write()
        except BaseException:
            if self._open is not None:  # don't leave a half shard taking the space a rerun needs
                try:
                    self._open.abort()
                except Exception:  # noqa: S110 - the first error is the one to report
                    pass
            raise

    def _write(self) -> None:
        writer: ShardWriter | None = None
        pending: list[Unit] = []
        buffer: list[pa.Table] = []
        buffered = 0
        shard_rows = 0
        while True:
            u = self._get(self.q_write, drain=True)
            if u is None:
                break
            if u.table is None and u.journal is not None:
                u.table = ckpt.read_unit(u.journal)
                u.refused = ckpt.unit_rejects(u.table)
                self.stats.resumed_rows += u.n_rows
            if u.refused:
                u.rejects = sorted(u.rejects + u.refused, key=lambda r: r["row"])
            self.stats.source_rows += u.n_rows
            self.stats.rejected += len(u.rejects)
            self.stats.truncated += u.truncated
            rows = u.table.num_rows if u.table is not None else 0
            self.stats.written += rows
            pending.append(u)
            if rows:
                assert u.table is not None
                # what is true of the stored vectors, whatever the encoder promised
                self._norms.add(vectors_of(u.table))
                buffer.append(u.table.replace_schema_metadata(None))
                buffered += rows
                shard_rows += rows
            # Keep memory flat: the rows now live in `buffer` or the shard; the unit waits for its
            # shard's commit with only its rejects and journal path.
            u.table = u.meta = u.chunks = None
            u.texts, u.ids, u.docs, u.src = [], [], [], []
            if buffered >= self.s.row_group_rows:
                writer = writer or self._open_shard(pending[0])
                writer.write(pa.concat_tables(buffer))
                buffer, buffered = [], 0
            if shard_rows >= self.s.shard_rows:
                writer = writer or self._open_shard(pending[0])
                if buffer:
                    writer.write(pa.concat_tables(buffer))
                    buffer, buffered = [], 0
                self._commit(writer, pending)
                writer, pending, shard_rows = None, [], 0
        if pending or not self.manifest.shards:
            writer = writer or self._open_shard(pending[0] if pending else None)
            if buffer:
                writer.write(pa.concat_tables(buffer))
            self._commit(writer, pending)

    def _open_shard(self, first: Unit | None) -> ShardWriter:
        index = len(self.manifest.shards)
        kv = {"jmigrate.manifest": self.manifest.settings_json(),
              "jmigrate.shard": {"index": index, "first_unit": first.index if first else 0,
                                 "first_row": first.first_row if first else 0}}
        self._open = ShardWriter(self.out, SHARD_PATTERN.format(index), self.schema, kv)
        return self._open

    def _commit(self, writer: ShardWriter, units: list[Unit]) -> None:
        rec = writer.commit()
        self._open = None
        digest = hashlib.blake2b(digest_size=16)
        for u in units:
            digest.update(u.digest.encode())
        first = units[0] if units else None
        rec.units = (first.index if first else 0, units[-1].index + 1 if units else 0)
        rec.first_row = first.first_row if first else 0
        rec.source_rows = sum(u.n_rows for u in units)
        rec.source_digest = digest.hexdigest()
        rec.norms, self._norms = self._norms, Norms()
        rejects = [r for u in units for r in u.rejects]
        m = self.manifest
        m.checkpoint.rejects_bytes = rec.rejects_end = self.rejects.append(rejects)
        m.add_shard(rec)
        m.rows.source += rec.source_rows
        m.rows.written += rec.rows or 0
        m.rows.rejected += len(rejects)
        if units:
            m.checkpoint.next_unit = units[-1].index + 1
        m.usage = self._usage()
        m.normalised_rows = self.base_normalised + self.encoder.normalised_rows
        # What the server called its model (a stub says its vectors are not v3): kept for provenance.
        served = self.encoder.served_model
        if served:
            m.served_model = served
        write_manifest(self.out, m)
        self.stats.shards = len(m.shards)
        for u in units:  # recorded: the journal copies are no longer needed
            if u.journal is not None:
                u.journal.unlink(missing_ok=True)

    def _capped_message(self) -> SpendCapReached:
        s, st = self.s, self.stats
        assert s.max_spend is not None and s.price_per_mtok is not None
        tokens = self.manifest.usage.tokens
        spent = tokens / 1e6 * s.price_per_mtok
        of = f" of {st.total_rows:,}" if st.total_rows is not None else ""
        return SpendCapReached(
            f"stopped before the spending cap: {_money(spent)} of --max-spend {_money(s.max_spend)} spent "
            f"({tokens:,} tokens billed in all runs); {st.safe_rows:,}{of} source rows done and saved; "
            "run the same command with a higher --max-spend to continue")

    def _usage(self) -> Usage:
        u, base = self.encoder.usage, self.base_usage
        return Usage(requests=base.requests + u.requests, tokens=base.tokens + u.tokens,
                     retries=base.retries + u.retries)

    # ---- orchestration
    def _stopping(self, threads: list[threading.Thread]) -> None:
        """Ctrl-C: send nothing new (requests waiting for a slot or the rate limiter are dropped),
        let the requests in flight be answered and journalled, then stop. A second Ctrl-C abandons
        them. Either way the folder is left resumable."""
        self.stop.set()
        try:  # from here on, a second Ctrl-C abandons what is in flight, whatever the moment
            self.encoder.halt()
            if self.on_stopping is not None:
                self.on_stopping(self.encoder.in_flight)
            writer = threads[2]
            while writer.is_alive():  # it finishes the unit in hand: journal and manifest stay consistent
                writer.join(0.1)
            self._join_encoder(threads)
        except KeyboardInterrupt:
            in_flight = self.encoder.in_flight
            self.encoder.abandon()
            if self.on_abandon is not None:
                self.on_abandon(in_flight)
            threads[2].join()  # the writer finishes the unit in hand (journal and manifest consistent)
            for t in threads[1::-1]:  # the encoder's threads end as their requests are cancelled
                t.join(2.0)

    def _join_encoder(self, threads: list[threading.Thread]) -> None:
        """Wait for the reader and the encoder stage (the units being encoded are answered and
        journalled), at most JOIN_SECONDS: then what is still in flight is given up, so a hung
        connection cannot keep the run (and its lock) alive."""
        until = time.monotonic() + JOIN_SECONDS
        for t in threads[1::-1]:
            while t.is_alive() and time.monotonic() < until:
                t.join(0.1)
        if any(t.is_alive() for t in threads[:2]):
            self.encoder.abandon()
            for t in threads[1::-1]:
                t.join(2.0)

    def go(self, on_progress: Callable[[Stats, Encoder], None] | None) -> Result:
        m = self.manifest
        m.status = "running"
        m.finished_at = None
        write_manifest(self.out, m)
        threads = [threading.Thread(target=self._stage(f), name=f"reindex-{f.__name__}", daemon=True)
                   for f in (self.read, self.encode, self.write)]
        for t in threads:
            t.start()
        writer = threads[2]
        interrupted = False
        try:
            while writer.is_alive():
                writer.join(0.2)
                if on_progress:
                    on_progress(self.stats, self.encoder)
            if self.capped is not None:
                self.encoder.halt()
        except KeyboardInterrupt:
            interrupted = True
            self._stopping(threads)
        else:
            # The writer is done; when it stopped early (an error, the spending cap) the encoder may
            # still be in a call: let it journal what it paid for and stop, rather than write into the
            # folder after this run let go of its lock. Nothing new is sent once the run is stopping.
            if self.stop.is_set():
                self.encoder.halt()
            self._join_encoder(threads)
        if any(isinstance(e, KeyboardInterrupt) for e in self.errors):
            interrupted, self.errors = True, []
        if self.errors:
            status = "failed"
        elif interrupted or self.stop.is_set():
            status = "interrupted"
        else:
            status = "complete"
        m.status = status
        m.usage = self._usage()
        if status == "complete":
            m.finished_at = now()
            try:
                self.work.rmdir()
            except OSError:
                pass
        try:
            write_manifest(self.out, m)
        except OSError:
            if not (self.errors or interrupted):
                raise
            # (a full disk, say) the manifest on disk is the last committed one, still consistent
        if on_progress:
            on_progress(self.stats, self.encoder)
        if self.errors:
            raise self.errors[0]
        if interrupted:
            raise KeyboardInterrupt
        if self.capped is not None:
            raise self._capped_message()
        return Result(self.out, status, m, self.stats, vars(m.usage).copy(), self.state.cleaned,
                      notes=self.state.notes)


def _money(x: float) -> str:
    return f"${x:,.2f}" if x >= 1 else f"${x:.4f}" if x >= 0.01 else f"${x:.6f}"


def _check_digest(index: int, digest: str, expected: dict[int, tuple[int, str]], running: Any) -> Any:
    """Compare the digests of re-read committed units with what the manifest recorded for their shard."""
    if running is None:
        running = hashlib.blake2b(digest_size=16)
    running.update(digest.encode())
    if index in expected:
        first, want = expected[index]
        if running.hexdigest() != want:
            raise CheckpointError(f"the source changed in rows already indexed (units {first}..{index}); "
                                  "rerun with --restart to start over")
        return None
    return running
