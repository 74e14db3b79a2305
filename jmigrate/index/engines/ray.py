"""`reindex --engine ray`: the encoder calls run in a pool of Ray actors; everything else stays local.

The driver runs the local pipeline unchanged (read → units → journal → shards → manifest, one writer,
in unit order), so exactly-once and resume are the local engine's: a unit is journalled by the driver
under a name derived from its index (temp name, then rename), a retried or duplicated Ray task only
recomputes vectors that are overwritten, never appended, and the manifest is written by the driver
alone. What moves to the cluster is the expensive part: each actor holds one encoder built from the
same Settings by the same factory (the API client, the ONNX model on a GPU, the fake encoder), and
`RayEncoder.encode` cuts each group of texts into one slice per request window and spreads them over
the actors. With the API encoder every actor asks one named limiter actor for its request/token budget
(`ClusterLimiter`), so N workers together keep the key's RPM/TPM and a 429's Retry-After pauses them all.

Ray is imported only here, and this module only when `--engine ray` is asked for (docs/scale.md).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jmigrate.encoders.base import Encoder, Halted, ZeroVectorError
from jmigrate.errors import EncoderError, InputError, JMigrateError, UsageError
from jmigrate.index.settings import Settings

STALL_SECONDS = 60.0  # no answer from any worker for this long: say what is waiting on what
# Workers not placed after this many stall periods: give up with the reason (an autoscaler adding a
# node takes minutes; a pool the cluster can never hold would otherwise wait forever).
START_STALLS = 10
MAX_RESTARTS = 3  # a worker (actor) that dies is restarted this often and its call retried
LIMITER_PREFIX = "jmigrate-limiter-"
_ERRORS: dict[str, type[JMigrateError]] = {c.__name__: c for c in (EncoderError, InputError, UsageError)}


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'jmigrate[ray]'") from None
    return ray


def _call(fn: Callable[[], Any]) -> tuple[str, Any]:
    """Run `fn` in a worker; errors travel back as (kind, message, rows): jmigrate's exceptions are not
    all picklable as they are (ZeroVectorError takes rows, not a message), and a worker's traceback
    is not what the user should see for a refused key or a refused input."""
    try:
        return "ok", fn()
    except ZeroVectorError as e:
        return "zero", (str(e), e.rows)
    except JMigrateError as e:
        return "error", (type(e).__name__ if type(e).__name__ in _ERRORS else "EncoderError", str(e))


class _Worker:
    """One Ray actor: one encoder built from the run's Settings by the one factory."""

    def __init__(self, settings: Settings, api_key: str | None, limiter: str | None) -> None:
        from jmigrate.index.encoding import open_encoder

        self.encoder = open_encoder(settings, api_key)
        if limiter is not None and hasattr(self.encoder, "limiter"):
            self.encoder.limiter = ClusterLimiter(limiter, self.encoder.limiter.rpm, self.encoder.limiter.tpm)

    def ready(self) -> bool:
        return True

    def _snapshot(self) -> tuple[int, int, int, int]:
        u = self.encoder.usage
        return u.requests, u.tokens, u.retries, self.encoder.normalised_rows

    def run(self, kind: str, payload: Any, task: str | None, dimensions: int | None) -> Any:
        # One call at a time per actor (max_concurrency 1), so the usage counted between the two
        # snapshots is this call's alone; the encoder runs its own requests concurrently inside it.
        before = self._snapshot()

        def go() -> Any:
            if kind == "late":
                return self.encoder.encode_late_chunked(payload, task=task, dimensions=dimensions)
            return self.encoder.encode(payload, task=task, dimensions=dimensions)

        status, value = _call(go)
        after = self._snapshot()
        delta = tuple(a - b for a, b in zip(after, before, strict=True))
        return status, value, delta, self.encoder.served_model, os.getpid()

    def close(self) -> None:
        self.encoder.close()


class _LimiterActor:
    """The one RateLimiter of the whole cluster (an async actor: every wait shares its event loop)."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        from jmigrate.encoders.ratelimit import RateLimiter

        self.limiter = RateLimiter(rpm, tpm)

    async def acquire(self, tokens: int) -> None:
        await self.limiter.acquire(tokens)

    async def correct(self, estimated: int, actual: int) -> None:
        self.limiter.correct(estimated, actual)

    async def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)

    async def adapt(self, rpm: float | None, tpm: float | None) -> None:
        self.limiter.adapt(rpm, tpm)

    async def limits(self) -> tuple[float | None, float | None]:
        return self.limiter.rpm, self.limiter.tpm


class ClusterLimiter:
    """Stands in for an API encoder's RateLimiter inside a worker: every call goes to the named
    limiter actor, so the budget (and a 429's pause) is shared by all workers, not multiplied."""

    def __init__(self, name: str, rpm: float | None, tpm: float | None) -> None:
        self._handle = _ray().get_actor(name)
        self.rpm, self.tpm = rpm, tpm

    async def acquire(self, tokens: int) -> None:
        await asyncio.wrap_future(self._handle.acquire.remote(tokens).future())

    def correct(self, estimated: int, actual: int) -> None:
        self._handle.correct.remote(estimated, actual)

    def pause(self, seconds: float) -> None:
        self._handle.pause.remote(seconds)

    def adapt(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self._handle.adapt.remote(rpm, tpm)
        # what the encoder plans its token budget with (lowered, never raised, as the limiter does)
        if rpm and (self.rpm is None or rpm < self.rpm):
            self.rpm = rpm
        if tpm and (self.tpm is None or tpm < self.tpm):
            self.tpm = tpm


class RayEncoder(Encoder):
    """An Encoder whose calls run on a pool of Ray actors; the pipeline uses it like any other.

    Token counting (for limits, chunking and the dry run) happens on the driver with an offline
    encoder of the same kind, so units are cut exactly as the local engine cuts them.

    Thread-safe: the pipeline's request window calls it from several threads at once, one unit each,
    which is what keeps every worker busy."""

    overlapping_calls = True

    def __init__(self, settings: Settings, api_key: str | None = None, *,
                 on_note: Callable[[str], None] | None = None) -> None:
        super().__init__()
        from jmigrate.index.encoding import open_encoder

        ray = _ray()
        self.s = settings
        self.on_note = on_note
        # Counts tokens and cuts chunks on the driver: sends nothing, holds no key.
        self.local = open_encoder(settings, offline=True)
        self.kind = self.local.kind  # type: ignore[misc]  # the manifest records the encoder's kind
        self.model = self.local.model
        self.batch_size = self.local.batch_size
        self.max_batch_tokens = self.local.max_batch_tokens
        self.tokenizer = self.local.tokenizer
        self.exact_token_counts = self.local.exact_token_counts
        self.served_model = None
        self._started = False
        self._lock = threading.Lock()
        self._halted = False
        self._pids: dict[int, int] = {}  # worker slot -> the process that last answered
        self.worker_restarts = 0
        if not ray.is_initialized():
            if settings.ray_address is not None:
                ray.init(address=settings.ray_address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(include_dashboard=False, log_to_driver=False)
            self._started = True
        self.limiter_name: str | None = None
        self._limiter: Any = None
        if settings.encoder in ("api", "openai") and (settings.rpm or settings.tpm):
            self.limiter_name = LIMITER_PREFIX + uuid.uuid4().hex[:12]
            self._limiter = ray.remote(num_cpus=0)(_LimiterActor).options(
                name=self.limiter_name).remote(settings.rpm, settings.tpm)
        actor = ray.remote(_Worker).options(
            num_cpus=settings.ray_cpus_per_worker, num_gpus=settings.ray_gpus_per_worker or None,
            max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS, max_concurrency=1)
        self.workers = [actor.remote(settings, api_key, self.limiter_name)
                        for _ in range(settings.ray_workers)]
        self._next = 0
        try:
            self._wait([w.ready.remote() for w in self.workers], "the Ray workers to start",
                       limit=START_STALLS)
        except BaseException:
            self.close()
            raise

    # ---- the pool
    def _need(self) -> str:
        s = self.s
        gpus = f", {s.ray_gpus_per_worker:g} GPU" if s.ray_gpus_per_worker else ""
        return f"{s.ray_workers} worker(s) of {s.ray_cpus_per_worker:g} CPU{gpus} each"

    def _wait(self, refs: list[Any], what: str, limit: int | None = None) -> list[Any]:
        """`ray.get(refs)` that reports a stall (what is waiting on what) instead of hanging silently,
        and gives up after `limit` stall periods when one is given."""
        ray = _ray()
        pending = list(refs)
        waited = 0.0
        stalls = 0
        while pending:
            start = time.monotonic()
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=STALL_SECONDS)
            waited += time.monotonic() - start
            if pending:
                try:
                    free = {k: round(v, 2) for k, v in ray.available_resources().items()
                            if k in ("CPU", "GPU", "memory")}
                except Exception:  # noqa: BLE001 - only for the message
                    free = {}
                note = (f"Ray: still waiting for {what} after {waited:.0f} s ({len(pending)} of {len(refs)} "
                        f"pending); asked for {self._need()}; the cluster has free {free or 'unknown'}. "
                        "Lower --ray-cpus-per-worker / --ray-gpus-per-worker or add nodes")
                stalls += 1
                if limit is not None and stalls >= limit:
                    raise EncoderError(note.replace("still waiting", "gave up waiting", 1))
                if self.on_note is not None:
                    self.on_note(note)
        try:
            return list(ray.get(list(refs)))
        except ray.exceptions.RayActorError as e:
            raise EncoderError(f"a Ray worker died and could not be restarted ({type(e).__name__}); "
                               "finished units are saved: run the same command again to resume") from None
        except ray.exceptions.RayError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise EncoderError(f"Ray failed: {first}") from None

    def _spread(self, kind: str, parts: list[Any], task: str | None, dimensions: int | None) -> list[Any]:
        refs = []
        with self._lock:
            if self._halted:
                raise Halted("the run is stopping: nothing more is sent to the Ray workers")
            slots = []
            for part in parts:
                slot = self._next % len(self.workers)
                self._next += 1
                slots.append(slot)
                refs.append(self.workers[slot].run.remote(kind, part, task, dimensions))
            self.in_flight += len(refs)
        try:
            results = self._wait(refs, f"{len(refs)} encoder call(s)")
        finally:
            with self._lock:
                self.in_flight -= len(refs)
        with self._lock:
            self._check_restarts(slots, [r[4] for r in results])
            return self._collect(kind, parts, results)

    def _check_restarts(self, slots: list[int], pids: list[int]) -> None:
        """A worker answering from another process was restarted by Ray (its process or node died) and
        the call retried: counted and said, as the local engine says what it retried."""
        for slot, pid in zip(slots, pids, strict=True):
            known = self._pids.get(slot)
            self._pids[slot] = pid
            if known is not None and known != pid:
                self.worker_restarts += 1
                if self.on_note is not None:
                    self.on_note(f"Ray worker {slot + 1} was restarted (its process or node died); its call "
                                 "was retried")

    def _collect(self, kind: str, parts: list[Any], results: list[Any]) -> list[Any]:
        out = []
        offset = 0
        zero: list[int] = []
        first_error: tuple[str, str] | None = None
        for (status, value, delta, served, _), part in zip(results, parts, strict=True):
            self.usage.requests += delta[0]
            self.usage.tokens += delta[1]
            self.usage.retries += delta[2]
            self.normalised_rows += delta[3]
            if served:
                self.served_model = served
            size = sum(len(d) for d in part) if kind == "late" else len(part)
            if status == "zero":
                zero += [offset + r for r in value[1]]
            elif status == "error":
                first_error = first_error or value
            out.append(value)
            offset += size
        if first_error is not None:
            raise _ERRORS.get(first_error[0], EncoderError)(first_error[1])
        if zero:
            raise ZeroVectorError(zero, offset)
        return out

    def _parts(self, items: Sequence[Any]) -> list[list[Any]]:
        # One slice per request window of one worker: enough to keep every worker busy when the
        # pipeline hands over `ray_workers` windows at a time (run.py asks it to).
        sends = self.s.encoder in ("api", "openai")
        per = max(1, self.batch_size * (self.s.concurrency if sends else 1))
        return [list(items[i:i + per]) for i in range(0, len(items), per)]

    # ---- the Encoder interface
    def encode_batch(self, texts: Sequence[str], *, task: str | None, dimensions: int | None,
                     late_chunking: bool = False) -> np.ndarray:
        if late_chunking:
            return self.encode_late_chunked([list(texts)], task=task, dimensions=dimensions)[0]
        mats = self._spread("texts", self._parts(texts), task, dimensions)
        return np.concatenate(mats, axis=0)

    def encode(self, texts: Sequence[str], *, task: str | None = None, dimensions: int | None = None,
               late_chunking: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, dimensions or 0), dtype=np.float32)
        # each worker's encoder already checked (and counted) its rows: checking again here would
        # count nothing new but would cost a pass over every vector
        return self.encode_batch(texts, task=task, dimensions=dimensions, late_chunking=late_chunking)

    def encode_late_chunked(self, documents: Sequence[Sequence[str]], *, task: str | None = None,
                            dimensions: int | None = None) -> list[np.ndarray]:
        docs = [list(d) for d in documents]
        per = max(1, self.s.concurrency if self.s.encoder in ("api", "openai") else 1)
        parts = [docs[i:i + per] for i in range(0, len(docs), per)]
        return [m for mats in self._spread("late", parts, task, dimensions) for m in mats]

    def halt(self) -> None:
        # Calls already handed to the workers finish (and are journalled); nothing new is sent.
        with self._lock:
            self._halted = True

    def abandon(self) -> None:
        self.halt()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.local.count_tokens(texts)

    def count_tokens_upper(self, texts: Sequence[str]) -> list[int]:
        return self.local.count_tokens_upper(texts)

    def close(self) -> None:
        ray = _ray()
        try:
            if ray.is_initialized():
                for w in getattr(self, "workers", []):
                    ray.kill(w)
                if self._limiter is not None:
                    ray.kill(self._limiter)
        finally:
            self.local.close()
            if self._started and ray.is_initialized():
                ray.shutdown()
