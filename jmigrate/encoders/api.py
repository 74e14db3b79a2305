"""HTTP encoders: the Jina embeddings API, and OpenAI-compatible servers (vLLM, TEI, Infinity, ...).

Requests run concurrently on one private asyncio loop in a background thread; `encode_batch` and
`encode_late_chunked` are blocking facades over it, safe to call from any thread. Each call splits
its texts into requests (by count and tokens), sends them `concurrency` at a time under the
client-side RPM/TPM limiter, retries what is transient (429, 5xx, timeouts, dropped connections,
malformed answers) and fails fast on what is not (400/401/402/403/422).

The API key never leaves the Authorization header: not in reprs, logs or exception messages.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import json
import logging
import random
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import numpy as np

from jmigrate.encoders.base import Encoder, Halted, add_prefix, conservative_token_count
from jmigrate.encoders.ratelimit import RateLimiter
from jmigrate.encoders.secrets import Secret, clean_server_text, remember
from jmigrate.errors import EncoderError, SpendCapReached, UsageError
from jmigrate.models import API_MAX_INPUTS, API_MAX_TOKENS, MODELS, V3, get_task
from jmigrate.version import VERSION

log = logging.getLogger(__name__)
T = TypeVar("T")
E = TypeVar("E", bound="JinaAPIEncoder")

DEFAULT_API_URL = "https://api.jina.ai/v1"
# Special tokens and the retrieval instruction the API prepends count against the late-chunking
# limit too; keep this much of the 8192 free.
LATE_CHUNKING_RESERVE = 64
# The response size cap (unless set): what the largest correct answer for a request could take, and
# a megabyte for the rest. JSON numbers for float32 are at most ~25 characters with their separator,
# base64 takes 5.3 bytes per float32.
_BYTES_PER_VALUE = {"float": 32, "base64": 8}
_UNKNOWN_DIMS = 8192  # OpenAI-compatible servers: the width is only known from the answer
_CAP_OVERHEAD = 1 << 20
ERROR_BODY_CAP = 64 * 1024  # error answers are read this far: enough for any detail
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})

class _Retryable(Exception):
    """A failed attempt that may succeed if repeated; `wait` is the server's Retry-After if any."""

    def __init__(self, what: str, wait: float | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.wait = wait


@dataclass(frozen=True)
class _Window:
    """One late-chunking request: chunks [start, end) of a document; outputs before `keep` are context."""

    start: int
    keep: int
    end: int


def plan_late_chunking_windows(counts: Sequence[int], budget: int, overlap: int = 0) -> list[_Window]:
    """Split a document's chunks (token counts `counts`) into consecutive requests of <= `budget` tokens.

    With `overlap` > 0 a window after the first starts with up to `overlap` tokens of the previous
    window's last chunks as left context; their outputs are dropped (the previous window's are used).
    A single chunk over the budget gets a window of its own (the server will judge it).
    """
    windows: list[_Window] = []
    n = len(counts)
    keep = 0
    while keep < n:
        start = keep
        if windows and overlap > 0:
            ctx = 0
            while start > windows[-1].keep and ctx + counts[start - 1] <= overlap \
                    and ctx + counts[start - 1] + counts[keep] <= budget:
                start -= 1
                ctx += counts[start]
        total = sum(counts[start:keep])
        end = keep
        while end < n and (end == keep or total + counts[end] <= budget):
            total += counts[end]
            end += 1
        windows.append(_Window(start, keep, end))
        keep = end
    return windows


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, *, allow_insecure: bool = False) -> str:
    """The base URL without a trailing slash; plain http only to loopback or with `allow_insecure`."""
    # Messages name the scheme and host only: a URL may carry a key (user:key@ or ?key=).
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise UsageError("invalid API URL: expected https://host/path") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError("invalid API URL: expected https://host/path")
    if parsed.userinfo or parsed.query or parsed.fragment:
        raise UsageError(f"the API URL for {parsed.host} must not carry credentials, a query or a fragment: "
                         "pass the key with --api-key or JINA_API_KEY (it is sent in a header)")
    if parsed.scheme == "http" and not allow_insecure and not _is_loopback_host(parsed.host):
        raise UsageError(
            f"refusing plain http to {parsed.host}: the API key would travel unencrypted; use https, "
            "a loopback address, or allow_insecure (--allow-insecure)"
        )
    return url.rstrip("/")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _rate_limit_headers(headers: httpx.Headers) -> tuple[float | None, float | None]:
    """(requests/min, tokens/min) announced by X-RateLimit-Limit-Requests / -Tokens, if any."""

    def num(name: str) -> float | None:
        try:
            v = float(headers.get(name, ""))
        except ValueError:
            return None
        return v if v > 0 else None

    return num("x-ratelimit-limit-requests"), num("x-ratelimit-limit-tokens")


class JinaAPIEncoder(Encoder):
    """Jina's `/v1/embeddings` over httpx: batching, concurrency, rate limits, retries, late chunking.

    `usage` counts HTTP requests sent (retries included), billed tokens (`usage.total_tokens` of every
    answer) and retries; `late_chunking_windows` counts the requests used for documents too long
    for one late-chunking request (`split_documents` of them).
    """

    kind = "api"  # the `open_encoder` kind that builds this class
    overlapping_calls = True

    def __init__(
        self,
        model: str = V3,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        rpm: float | None = None,
        tpm: float | None = None,
        timeout: float = 60.0,
        deadline: float | None = None,
        max_response_bytes: int | None = None,
        max_attempts: int = 6,
        batch_size: int = 128,
        max_batch_tokens: int = 32_768,
        embedding_type: str = "base64",
        truncate: bool = False,
        allow_insecure: bool = False,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_wait: float = 300.0,
        late_chunking_overlap: int = 0,
    ) -> None:
        super().__init__()
        if concurrency < 1 or max_attempts < 1 or batch_size < 1:
            raise UsageError("concurrency, max_attempts and batch_size must be at least 1")
        if embedding_type not in ("base64", "float"):
            raise UsageError("embedding_type must be 'base64' or 'float'")
        self.model = model
        self.url = check_base_url(api_url or DEFAULT_API_URL, allow_insecure=allow_insecure)
        if api_key and not all("!" <= c <= "~" for c in api_key):
            # h11 would refuse the header on every attempt and quote it (key included) in its error.
            raise UsageError("the API key holds spaces, line breaks or non-ASCII characters; check how it "
                             "was copied (the key itself is not shown)")
        self._key = Secret(api_key) if api_key else None
        if api_key:
            remember(api_key)
        self._check_key()
        self.concurrency = concurrency
        self.timeout = timeout  # per connect/read/write: a silent server
        # The whole exchange of one attempt: a server that trickles bytes never trips a read timeout.
        self.deadline = deadline if deadline is not None else 3 * timeout
        if self.deadline <= 0 or (max_response_bytes is not None and max_response_bytes < 1):
            raise UsageError("deadline and max_response_bytes must be positive")
        self.max_response_bytes = max_response_bytes  # None: sized per request from inputs x dimensions
        self.max_attempts = max_attempts
        self.batch_size = min(batch_size, API_MAX_INPUTS)
        self.max_batch_tokens: int = max_batch_tokens
        self.embedding_type = embedding_type
        self.truncate = truncate
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_wait = max_retry_wait
        self.late_chunking_overlap = late_chunking_overlap
        self.limiter = RateLimiter(rpm, tpm)
        self.served_model: str | None = None  # the model name the server reported
        self.late_chunking_windows = 0
        self.split_documents = 0
        self.rate_limited = 0  # 429 answers received
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None
        self._sem: asyncio.Semaphore | None = None
        self._start_lock = threading.Lock()
        # Stopping (all touched on the loop only): `halt` stops sending, `abandon` drops what is sent.
        self._halted = False
        self._waiting: set[asyncio.Task[Any]] = set()  # requests not sent yet (slot, limiter, backoff)
        self._tasks: set[asyncio.Task[Any]] = set()  # every request task, sent or not
        self.in_flight = 0  # requests sent and not answered yet
        # Spending cap in billed tokens (None: none). A request is sent only if what was billed, what
        # is in flight (counted high) and its own high-side count stay within it.
        self.spend_cap_tokens: int | None = None
        self._reserved = 0
        self._unreported = 0  # tokens of answers that carried no usage (counted from the estimate)

    def _check_key(self) -> None:
        if self._key is None:
            raise UsageError("no Jina API key: set JINA_API_KEY (or JINAAI_API_KEY) or pass --api-key")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={self.model!r}, url={self.url!r}, api_key="
                f"{'***' if self._key else None}, concurrency={self.concurrency})")

    def __enter__(self: E) -> E:
        return self

    # ------------------------------------------------------------------------------ loop and client
    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="jmigrate-api-encoder", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._ensure_started()
        if threading.current_thread() is self._thread:
            coro.close()
            raise UsageError("the API encoder's blocking calls cannot run on its own event loop")
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # Ctrl-C or a failed call: stop the requests still in flight
            raise

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"Accept": "application/json", "User-Agent": f"jmigrate/{VERSION}"}
            if self._key is not None:
                headers["Authorization"] = f"Bearer {self._key.reveal()}"
            self._client = httpx.AsyncClient(
                base_url=self.url,
                headers=headers,
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 15.0)),
                limits=httpx.Limits(max_connections=self.concurrency,
                                    max_keepalive_connections=self.concurrency),
            )
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._client

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._client is not None:
                await self._client.aclose()
                self._client = None

        if loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    # --------------------------------------------------------------------------------- public calls
    # `count_tokens` stays the base class's stated estimate (callers detect it and say "estimate");
    # request planning below uses the high-side count so limits and windows are never overrun.
    @staticmethod
    def _plan_tokens(texts: Sequence[str]) -> list[int]:
        return [conservative_token_count(t) for t in texts]

    def encode_batch(
        self, texts: Sequence[str], *, task: str | None, dimensions: int | None, late_chunking: bool = False
    ) -> np.ndarray:
        self._check_options(task, dimensions, late_chunking)
        if late_chunking:
            return self._run(self._encode_document(list(texts), task, dimensions))
        return self._run(self._encode_many(list(texts), task, dimensions))

    def encode_late_chunked(
        self, documents: Sequence[Sequence[str]], *, task: str | None = None, dimensions: int | None = None
    ) -> list[np.ndarray]:
        self._check_options(task, dimensions, True)
        docs = [list(d) for d in documents]

        async def run_all() -> list[np.ndarray]:
            return await _gather([self._encode_document(d, task, dimensions) for d in docs if d])

        results = iter(self._run(run_all()))
        mats = [next(results) if d else np.zeros((0, dimensions or self._full_dims() or 0), np.float32)
                for d in docs]
        return self.check_documents(mats, docs, dimensions)

    async def aencode(
        self, texts: Sequence[str], *, task: str | None = None, dimensions: int | None = None,
        late_chunking: bool = False,
    ) -> np.ndarray:
        """`encode` for callers that live in their own event loop (runs on the encoder's loop)."""
        self._check_options(task, dimensions, late_chunking)
        coro = (self._encode_document(list(texts), task, dimensions) if late_chunking
                else self._encode_many(list(texts), task, dimensions))
        out = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._ensure_started()))
        return self.check_output(out, len(texts), dimensions)

    # ------------------------------------------------------------------------------------ planning
    def _full_dims(self) -> int | None:
        m = MODELS.get(self.model)
        return m.dims if m else None

    def _check_options(self, task: str | None, dimensions: int | None, late_chunking: bool) -> None:
        if task is not None:
            get_task(task)
        full = self._full_dims()
        if dimensions is not None and (dimensions < 1 or (full is not None and dimensions > full)):
            raise UsageError(f"dimensions={dimensions} is out of range for {self.model} (1..{full})")

    def _batches(self, texts: list[str]) -> list[tuple[int, int, int]]:
        """(start, end, estimated tokens) of consecutive requests within the count and token budgets."""
        out: list[tuple[int, int, int]] = []
        counts = self._plan_tokens(texts)
        budget = self.max_batch_tokens
        if self.limiter.tpm:
            # Several requests per second of budget keep the token bucket flowing smoothly.
            budget = max(1, min(budget, int(self.limiter.tpm / 60)))
        start, total = 0, 0
        for i, n in enumerate(counts):
            if i > start and (i - start >= self.batch_size or total + n > budget):
                out.append((start, i, total))
                start, total = i, 0
            total += n
        out.append((start, len(texts), total))
        return out

    async def _encode_many(self, texts: list[str], task: str | None, dimensions: int | None) -> np.ndarray:
        parts = await _gather([self._request(texts[s:e], task, dimensions, False, est)
                               for s, e, est in self._batches(texts)])
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    async def _encode_document(
        self, chunks: list[str], task: str | None, dimensions: int | None
    ) -> np.ndarray:
        counts = self._plan_tokens(chunks)
        windows = plan_late_chunking_windows(counts, API_MAX_TOKENS - LATE_CHUNKING_RESERVE,
                                             self.late_chunking_overlap)
        if len(windows) > 1:
            self.split_documents += 1
            self.late_chunking_windows += len(windows)
            log.info("late chunking: document of %d chunks sent as %d windows", len(chunks), len(windows))
        parts = await _gather([self._request(chunks[w.start:w.end], task, dimensions, True,
                                             sum(counts[w.start:w.end])) for w in windows])
        kept = [p[w.keep - w.start:] for p, w in zip(parts, windows, strict=True)]
        return np.concatenate(kept) if len(kept) > 1 else kept[0]

    # ------------------------------------------------------------------------------------- requests
    def _payload(
        self, texts: list[str], task: str | None, dimensions: int | None, late: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "input": texts, "embedding_type": self.embedding_type}
        if task is not None:
            body["task"] = task
        if dimensions is not None:
            body["dimensions"] = dimensions
        if late:
            body["late_chunking"] = True
        if self.truncate:
            body["truncate"] = True
        return body

    def _type_field(self) -> str:
        return "embedding_type"

    def _postprocess(self, m: np.ndarray, dimensions: int | None) -> np.ndarray:
        return m

    def _expected_dims(self, dimensions: int | None) -> int | None:
        return dimensions if dimensions is not None else self._full_dims()

    def _check_served_model(self, served: object) -> None:
        if isinstance(served, str):
            # Server text: it goes into the manifest and messages, so it is scrubbed and bounded.
            self.served_model = self._scrub(served, 200)
            # A server answering for another model is misconfigured; retrying will not help. The
            # loopback stub appends a note to the name, which is why this is a prefix check.
            if not served.startswith(self.model):
                raise EncoderError(f"the server answered with model {self.served_model!r} for {self.model!r}")

    def _backoff(self, attempt: int) -> float:
        cap = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return cap / 2 + self._rng.uniform(0, cap / 2)  # "equal jitter": spreads retries, keeps a floor

    def _scrub(self, text: object, limit: int = 500) -> str:
        """Server-supplied text fit for a message, a log or a file: one line, the key (and pieces of
        it) masked, then cut to `limit` characters."""
        return clean_server_text(text, (self._key.reveal(),) if self._key is not None else (), limit)

    async def _request(
        self, texts: list[str], task: str | None, dimensions: int | None, late: bool, estimate: int
    ) -> np.ndarray:
        client = self._get_client()
        assert self._sem is not None
        task_ = asyncio.current_task()
        assert task_ is not None
        last = "no attempt made"
        billable = estimate + len(texts) * self._overhead_tokens(task)  # what the cap is checked with
        self._tasks.add(task_)
        try:
            for attempt in range(1, self.max_attempts + 1):
                if attempt > 1:
                    self.usage.retries += 1
                payload = self._payload(texts, task, dimensions, late)
                try:
                    await self._wait_to_send(estimate)
                    try:
                        self._check_spend(billable)
                        self.usage.requests += 1
                        self.in_flight += 1
                        self._reserved += billable
                        try:
                            resp, body = await asyncio.wait_for(
                                self._exchange(client, payload, self._response_cap(len(texts), dimensions)),
                                self.deadline)
                        except asyncio.TimeoutError:
                            raise _Retryable(f"no complete answer within the {self.deadline:g}s deadline") \
                                from None
                        except httpx.TimeoutException as e:
                            raise _Retryable(f"timed out after {self.timeout:g}s ({type(e).__name__})") \
                                from None
                        except httpx.DecodingError as e:  # a garbled compressed body: like malformed JSON
                            raise _Retryable(f"unreadable answer ({type(e).__name__}: "
                                             f"{self._scrub(str(e))})") from None
                        except httpx.TransportError as e:
                            raise _Retryable(f"connection failed ({type(e).__name__}: "
                                             f"{self._scrub(str(e))})") from None
                        finally:
                            self.in_flight -= 1
                            self._reserved -= billable
                        return self._handle(resp, body, texts, dimensions, estimate)
                    finally:
                        self._sem.release()
                except _Retryable as r:
                    last = r.what
                    if attempt == self.max_attempts:
                        break
                    delay = self._backoff(attempt) if r.wait is None else r.wait + self._rng.uniform(0, 0.05)
                    if delay > self.max_retry_wait:
                        raise EncoderError(f"embedding request to {self.url} failed: {last}; the server asks "
                                           f"to wait {delay:.0f}s (over max_retry_wait)") from None
                    # Quiet for short waits (reindex shows `usage.retries`); loud when a user would wonder.
                    log.log(logging.WARNING if delay >= 5 else logging.INFO,
                            "embedding request failed (%s); retry %d/%d in %.2fs",
                            last, attempt, self.max_attempts - 1, delay)
                    self._waiting.add(task_)
                    try:
                        await asyncio.sleep(delay)
                    except asyncio.CancelledError:
                        if self._halted:
                            raise Halted("the encoder was stopped; the retry was not sent") from None
                        raise
                    finally:
                        self._waiting.discard(task_)
        finally:
            self._tasks.discard(task_)
        raise EncoderError(f"embedding request to {self.url} failed after {self.max_attempts} attempts; "
                           f"last error: {last}")

    # ------------------------------------------------------------------------- stopping and spending
    async def _wait_to_send(self, estimate: int) -> None:
        """Take a slot and the rate limiter's permission; returns holding the slot. Until then the
        request is only waiting, and `halt` cancels it here (it raises `Halted`, nothing is sent)."""
        assert self._sem is not None
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            if self._halted:
                raise Halted("the encoder was stopped; the request was not sent")
            await self._sem.acquire()
            try:
                await self.limiter.acquire(estimate)
                if self._halted:
                    raise Halted("the encoder was stopped; the request was not sent")
            except BaseException:
                self._sem.release()
                raise
        except asyncio.CancelledError:
            if self._halted:
                raise Halted("the encoder was stopped; the request was not sent") from None
            raise
        finally:
            self._waiting.discard(task)

    def halt(self) -> None:
        """Send nothing more: requests waiting for a slot, the rate limiter or a retry are cancelled
        (they raise `Halted`); requests already sent are answered as usual. Safe from any thread."""
        loop = self._loop
        if loop is None or not loop.is_running():
            self._halted = True
            return

        def now() -> None:
            self._halted = True
            for t in list(self._waiting):
                t.cancel()

        if threading.current_thread() is self._thread:
            now()
        else:
            asyncio.run_coroutine_threadsafe(_call(now), loop).result(timeout=5)

    def abandon(self) -> None:
        """`halt`, and cancel the requests in flight too (their answers are not waited for)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            self._halted = True
            return

        def now() -> None:
            self._halted = True
            for t in list(self._tasks):
                t.cancel()

        asyncio.run_coroutine_threadsafe(_call(now), loop).result(timeout=5)

    def _overhead_tokens(self, task: str | None) -> int:
        """Tokens a server may bill per input beyond the text: the task's instruction and special tokens."""
        prefix = get_task(task).prefix if task is not None else ""
        return (conservative_token_count(prefix) if prefix else 0) + 2

    def _check_spend(self, billable: int) -> None:
        cap = self.spend_cap_tokens
        if cap is None:
            return
        spent = self.usage.tokens + self._unreported + self._reserved
        if spent + billable > cap:
            raise SpendCapReached(f"sending the next request (up to {billable:,} tokens) could go over the "
                                  f"spending cap ({spent:,} of {cap:,} tokens used or in flight)")

    def _response_cap(self, count: int, dimensions: int | None) -> int:
        if self.max_response_bytes is not None:
            return self.max_response_bytes
        dims = self._expected_dims(dimensions) or _UNKNOWN_DIMS
        return _CAP_OVERHEAD + count * (dims * _BYTES_PER_VALUE.get(self.embedding_type, 32) + 256)

    async def _exchange(self, client: httpx.AsyncClient, payload: dict[str, Any],
                        cap: int) -> tuple[httpx.Response, bytes]:
        """Send one request and read its answer as a stream, never more than `cap` bytes of a 200
        (over it: a transient failure) nor ERROR_BODY_CAP of an error (the rest is not read)."""
        async with client.stream("POST", "/embeddings", json=payload) as resp:
            limit = cap if resp.status_code == 200 else ERROR_BODY_CAP
            if resp.status_code == 200:
                try:
                    declared = int(resp.headers.get("content-length", "0"))
                except ValueError:
                    declared = 0
                if declared > limit:  # said up front: no need to read any of it
                    raise _Retryable(f"HTTP 200 with an answer of {declared} bytes, over the "
                                     f"{limit}-byte cap")
            parts: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():  # decoded bytes: a compressed bomb is capped too
                parts.append(chunk)
                size += len(chunk)
                if size > limit:
                    if resp.status_code == 200:
                        raise _Retryable(f"HTTP 200 with an answer over the {limit}-byte cap")
                    break
            return resp, b"".join(parts)[:limit]

    def _handle(
        self, resp: httpx.Response, body: bytes, texts: list[str], dimensions: int | None, estimate: int
    ) -> np.ndarray:
        status = resp.status_code
        announced = _rate_limit_headers(resp.headers)
        if any(announced):
            self.limiter.adapt(*announced)
        if status == 200:
            return self._parse(body, len(texts), dimensions, estimate)
        detail = self._scrub(_error_detail(resp, body))  # scrubbed whole, then cut
        if status in RETRYABLE_STATUS:
            wait = parse_retry_after(resp.headers.get("retry-after"))
            if status == 429:
                self.rate_limited += 1
                if wait is not None:
                    self.limiter.pause(wait)
            raise _Retryable(f"HTTP {status}: {detail}", wait)
        if status in (400, 422) and self._type_field() in detail and self.embedding_type == "base64":
            # The server does not take base64: fall back to plain floats for this and later requests.
            log.warning("server rejected base64 embeddings (%s); falling back to float", detail)
            self.embedding_type = "float"
            raise _Retryable(f"HTTP {status}: {detail}", 0.0)
        raise EncoderError(f"embedding request to {self.url} was refused: HTTP {status}: {detail}")

    def _parse(self, content: bytes, count: int, dimensions: int | None, estimate: int) -> np.ndarray:
        try:
            body = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _Retryable(f"HTTP 200 with a body that is not JSON ({len(content)} bytes)") from None
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise _Retryable("HTTP 200 without a 'data' list")
        usage = body.get("usage")
        # Only a plain count is taken from `usage` (not a bool, not negative): it becomes the billed total.
        if isinstance(usage, dict) and type(usage.get("total_tokens")) is int and usage["total_tokens"] >= 0:
            self.usage.tokens += usage["total_tokens"]
            self.limiter.correct(estimate, usage["total_tokens"])
        else:
            self._unreported += estimate
        self._check_served_model(body.get("model"))
        data = body["data"]
        if len(data) != count:
            raise _Retryable(f"HTTP 200 with {len(data)} embeddings for {count} inputs")
        try:
            items = sorted(data, key=lambda d: d["index"])
            if [d["index"] for d in items] != list(range(count)):
                raise _Retryable("HTTP 200 with duplicate or missing indices")
            rows = [_decode_embedding(d["embedding"]) for d in items]
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise _Retryable(f"HTTP 200 with an unreadable embedding ({type(e).__name__})") from None
        widths = {len(r) for r in rows}
        expected = self._expected_dims(dimensions)
        if len(widths) != 1 or (expected is not None and widths != {expected}):
            got = "/".join(str(w) for w in sorted(widths))
            raise _Retryable(f"HTTP 200 with {got}-dim embeddings, expected {expected}")
        m = np.stack(rows)
        if not np.isfinite(m).all():
            raise _Retryable("HTTP 200 with NaN or infinite values")
        return self._postprocess(m, dimensions)


class OpenAICompatibleEncoder(JinaAPIEncoder):
    """`POST {base}/embeddings` as OpenAI defines it, for self-hosted servers (vLLM, TEI, Infinity...).

    Sends only `model`, `input`, `encoding_format` (and `dimensions` when `send_dimensions`).
    The protocol has no `task`: the task's instruction is put in front of each text client-side,
    exactly once (a text that already starts with it is sent as it is), when `add_task_prefix` (by
    default: when `model` names jina-embeddings-v3, e.g. `jinaai/jina-embeddings-v3`; other models
    have their own conventions). Vectors are truncated (Matryoshka) client-side and normalised by the
    base class. No late chunking: the protocol cannot express it.
    """

    kind = "openai"

    def __init__(self, model: str, *, api_url: str | None = None, add_task_prefix: bool | None = None,
                 send_dimensions: bool = False, **kwargs: Any) -> None:
        if not api_url:
            raise UsageError("an OpenAI-compatible server needs its URL (--api-url or JMIGRATE_API_URL)")
        is_v3 = model.rsplit("/", 1)[-1] == V3
        self.add_task_prefix = is_v3 if add_task_prefix is None else add_task_prefix
        self.send_dimensions = send_dimensions
        super().__init__(model, api_url=api_url, **kwargs)

    def _check_key(self) -> None:
        pass  # self-hosted servers often need no key

    def _full_dims(self) -> int | None:
        return None  # whatever the server's model has; checked per answer instead

    def _check_options(self, task: str | None, dimensions: int | None, late_chunking: bool) -> None:
        if late_chunking:
            raise UsageError("late chunking needs the Jina API or the local ONNX backend; "
                             "OpenAI-compatible servers cannot do it")
        super()._check_options(task, dimensions, late_chunking)

    def _payload(
        self, texts: list[str], task: str | None, dimensions: int | None, late: bool
    ) -> dict[str, Any]:
        if self.add_task_prefix and task is not None:
            prefix = get_task(task).prefix
            texts = [add_prefix(t, prefix) for t in texts]
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": self.embedding_type}
        if dimensions is not None and self.send_dimensions:
            body["dimensions"] = dimensions
        return body

    def _type_field(self) -> str:
        return "encoding_format"

    def _expected_dims(self, dimensions: int | None) -> int | None:
        return dimensions if dimensions is not None and self.send_dimensions else None

    def _check_served_model(self, served: object) -> None:
        if isinstance(served, str):
            self.served_model = self._scrub(served, 200)  # named freely by servers: nothing to compare

    def _postprocess(self, m: np.ndarray, dimensions: int | None) -> np.ndarray:
        if dimensions is not None and m.shape[1] < dimensions:
            raise EncoderError(f"the server's vectors have {m.shape[1]} dimensions, fewer than the "
                               f"{dimensions} asked for")
        # Matryoshka cut here; the base class normalises what is then off unit length (and counts it).
        return m[:, :dimensions] if dimensions is not None else m


def _decode_embedding(value: object) -> np.ndarray:
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value, validate=True), dtype="<f4").astype(np.float32)
    if isinstance(value, list):
        return np.asarray(value, dtype=np.float32)
    raise TypeError("embedding is neither base64 nor a list")


def _error_detail(resp: httpx.Response, content: bytes) -> str:
    """The API's own message: Jina's `detail` (string or validation list), or OpenAI's `error.message`;
    else the body, else the reason phrase. Server text, unscrubbed: pass it through `_scrub`."""
    text = content.decode(resp.encoding or "utf-8", errors="replace")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list):
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        err = body.get("error")
        if detail is None and isinstance(err, dict):
            detail = err.get("message")
        if detail is None and isinstance(err, str):
            detail = err
        if detail is not None:
            return str(detail) if str(detail).strip() else resp.reason_phrase or "no detail"
    # Not cut here: the caller scrubs the key first, then cuts.
    return (text if text.strip() else "") or resp.reason_phrase or "no detail"


async def _call(fn: Any) -> None:
    fn()


async def _gather(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run all; on the first failure cancel the rest and raise it (asyncio.TaskGroup needs 3.11)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
