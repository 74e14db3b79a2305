"""A loopback stand-in for the Jina embeddings API (real socket, 127.0.0.1 only). Its vectors are NOT v3.

It speaks the API contract strictly (see docs/encoders.md): unknown fields, more than 2048 inputs, an
input over 8192 tokens without `truncate`, a late-chunking request over 8192 tokens or an unknown model
are rejected with 400 and `{"detail": ...}`; a missing or wrong key with 401. Vectors are deterministic
(model, task, text, dimensions and, with late chunking, the other chunks of the request) and
Matryoshka-consistent: the d-dim vector is the normalised prefix of the full vector.

Faults are injected on demand while it runs (`srv.faults`), rate limits (RPM, TPM, concurrency) are
enforced with 429 and `X-RateLimit-*` headers, and everything it saw is counted in `srv.stats`.

Tokenizer (documented so tests can compute expected numbers): `stub_token_count(text)` counts the
matches of ``\\w{1,8}|[^\\w\\s]``, i.e. every run of up to 8 word characters and every punctuation or
symbol character is one token; whitespace is free. It is not XLM-RoBERTa's tokenizer.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from jmigrate.models import API_MAX_INPUTS, API_MAX_TOKENS, MODELS, STUB_SERVED_SUFFIX, TASKS, V3
from jmigrate.testing.fake import hashed_vector

STUB_MODEL_SUFFIX = STUB_SERVED_SUFFIX
STUB_HEADER = "X-Jmigrate-Stub"
# Far above any real request (2,048 inputs of 8,192 tokens); a larger Content-Length is refused
# instead of reading (and allocating) whatever the header claims.
MAX_BODY_BYTES = 256 * 1024 * 1024
STUB_HEADER_VALUE = "vectors are deterministic test vectors, not real Jina embeddings"
ALLOWED_FIELDS = frozenset(
    {"model", "input", "task", "dimensions", "late_chunking", "embedding_type", "normalized", "truncate"}
)
EMBEDDING_TYPES = ("float", "base64", "binary", "ubinary")
# protocol="openai": the OpenAI embeddings request (what vLLM, TEI, Infinity take).
OPENAI_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})

_TOKEN_RE = re.compile(r"\w{1,8}|[^\w\s]")


def stub_token_count(text: str) -> int:
    """Tokens of `text` as the stub counts them (see the module docstring)."""
    return sum(1 for _ in _TOKEN_RE.finditer(text))


def _truncate_to_tokens(text: str, limit: int) -> str:
    for i, m in enumerate(_TOKEN_RE.finditer(text)):
        if i == limit - 1:
            return text[: m.end()]
    return text


def stub_vectors(
    model: str,
    texts: Sequence[str],
    *,
    task: str | None = None,
    dimensions: int | None = None,
    late_chunking: bool = False,
    normalized: bool = True,
) -> np.ndarray:
    """The vectors the stub returns for one request (tests use this to know the right answer).

    Naive: a hash-seeded vector per (model, task, text). Late chunking: each chunk's vector plus the
    mean of all chunk vectors of the request, so a chunk's vector depends on its neighbours.
    """
    full_dims = MODELS[model].dims
    raw = np.stack([hashed_vector(f"{model}|{task}|{t}", full_dims) for t in texts])
    if late_chunking:
        raw = raw + raw.mean(axis=0, keepdims=True)
    cut = raw[:, : dimensions or full_dims]
    if not normalized:
        return cut.astype(np.float32)
    norms = np.linalg.norm(cut, axis=1, keepdims=True)
    return (cut / np.where(norms == 0, 1.0, norms)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. Build them with the class methods, e.g. ``Fault.rate_limited(2)``."""

    kind: str
    status: int = 503
    seconds: float = 0.0
    retry_after: float | None = None
    http_date: bool = False
    detail: str = "injected fault"
    model: str | None = None  # served_as: the model name the answer claims
    headers: tuple[tuple[str, str], ...] = ()  # extra response headers
    reason: str | None = None  # the HTTP reason phrase instead of the standard one
    nbytes: int = 0  # huge_body: the body's size
    scale: float = 1.0  # unnormalised: the factor every vector is multiplied by
    text: str | None = None  # zero_vector: the input whose vector is zeroed (None: the first)

    @classmethod
    def error(cls, status: int = 503, detail: str = "injected server error", *,
              headers: dict[str, str] | None = None, reason: str | None = None) -> Fault:
        """Answer with `status` and ``{"detail": detail}`` (5xx for transient, 4xx for fatal ones),
        optionally with extra `headers` and a non-standard `reason` phrase (servers echo things)."""
        return cls("error", status=status, detail=detail, headers=tuple((headers or {}).items()),
                   reason=reason)

    @classmethod
    def served_as(cls, model: str) -> Fault:
        """200 with correct vectors whose answer names `model` as the model that made them."""
        return cls("served_as", model=model)

    @classmethod
    def trickle(cls, seconds: float) -> Fault:
        """200 with a correct body sent one byte every `seconds` (each read is quick; the whole is not)."""
        return cls("trickle", seconds=seconds)

    @classmethod
    def huge_body(cls, nbytes: int) -> Fault:
        """200 announcing and sending a JSON-looking body of `nbytes` bytes (generated, never held)."""
        return cls("huge_body", nbytes=nbytes)

    @classmethod
    def unnormalised(cls, scale: float = 3.0) -> Fault:
        """200 with every vector multiplied by `scale` (an answer that is not unit length)."""
        return cls("unnormalised", scale=scale)

    @classmethod
    def zero_vector(cls, text: str | None = None) -> Fault:
        """200 with the vector of input `text` (of the first input if None) all zeros: no direction,
        it cannot be normalised. With `text`, requests without that input are answered normally."""
        return cls("zero_vector", text=text)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1.0, *, http_date: bool = False) -> Fault:
        """429 with ``Retry-After`` in seconds, or as an HTTP date when `http_date` (None: no header)."""
        return cls("rate_limited", status=429, retry_after=retry_after, http_date=http_date,
                   detail="injected rate limit")

    @classmethod
    def timeout(cls, seconds: float = 5.0) -> Fault:
        """Say nothing for `seconds` (longer than the client's timeout), then drop the connection."""
        return cls("timeout", seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without answering."""
        return cls("drop")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Extra latency on one request, then a normal answer."""
        return cls("slow", seconds=seconds)

    @classmethod
    def malformed(cls) -> Fault:
        """200 with a body that is not JSON."""
        return cls("malformed")

    @classmethod
    def truncated(cls) -> Fault:
        """200 with the first half of a correct JSON body."""
        return cls("truncated")

    @classmethod
    def wrong_count(cls) -> Fault:
        """200 with one embedding missing."""
        return cls("wrong_count")

    @classmethod
    def out_of_order(cls) -> Fault:
        """200 with `data` reversed (indices still right: a correct client reorders)."""
        return cls("out_of_order")

    @classmethod
    def nan(cls) -> Fault:
        """200 with a NaN inside the first vector."""
        return cls("nan")

    @classmethod
    def wrong_dimensions(cls) -> Fault:
        """200 with every vector one component short."""
        return cls("wrong_dimensions")


class FaultPlan:
    """Faults for upcoming valid embedding requests: a FIFO script first, then random faults (seeded)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._random: list[Fault] = []
        self._probability = 0.0
        self._rng = random.Random(0)

    def add(self, fault: Fault, times: int = 1) -> None:
        """The next `times` requests (after any already scripted) get `fault`."""
        with self._lock:
            self._queue.extend([fault] * times)

    def script(self, faults: Iterable[Fault | None]) -> None:
        """Replace the script; ``None`` entries mean "answer this request normally"."""
        with self._lock:
            self._queue = deque(f if f is not None else Fault("none") for f in faults)

    def set_random(self, faults: Sequence[Fault], probability: float, seed: int = 0) -> None:
        """Once the script is used up, each request gets one of `faults` with `probability`."""
        with self._lock:
            self._random = list(faults)
            self._probability = probability
            self._rng = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._random = []
            self._probability = 0.0

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def next(self) -> Fault | None:
        with self._lock:
            if self._queue:
                f = self._queue.popleft()
                return None if f.kind == "none" else f
            if self._random and self._rng.random() < self._probability:
                return self._rng.choice(self._random)
            return None


# ----------------------------------------------------------------------------------------------- stats


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request as the server saw it (times from `time.time()` and `time.monotonic()`)."""

    wall: float
    mono: float
    status: int  # 0 when the connection was dropped
    inputs: tuple[str, ...]
    tokens: int
    late_chunking: bool
    fault: str | None
    retry_after_until: float | None = None  # wall time before which the client was told not to retry
    done: float | None = None  # `time.monotonic()` when the answer was sent (the slot freed)


@dataclass
class StubStats:
    """Counters for tests and benchmarks (read them after the client is done)."""

    requests: int = 0  # every HTTP request received
    tokens: int = 0  # usage.total_tokens of every 200 answer (what a real API would bill)
    inputs: int = 0  # inputs embedded in 200 answers
    by_status: Counter[int] = field(default_factory=Counter)
    max_in_flight: int = 0
    records: list[RequestRecord] = field(default_factory=list)

    def embedding_records(self) -> list[RequestRecord]:
        """Records of requests that carried inputs (valid embedding requests), in arrival order."""
        return [r for r in self.records if r.inputs]


# ------------------------------------------------------------------------------------------ rate limits


class _Bucket:
    """A token bucket refilled at `per_minute`/60 per second, holding at most `burst_seconds` of refill."""

    def __init__(self, per_minute: float, burst_seconds: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds until `cost` fits (0 when it fits now); `inf` if it never can."""
        self._refill(now)
        if cost > self.capacity:
            return math.inf
        return max(0.0, (cost - self.level) / self.rate)

    def take(self, cost: float) -> None:
        self.level -= cost

    def reset_seconds(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


class _Reject(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None,
                 reason: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.reason = reason


# -------------------------------------------------------------------------------------------- handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind its load balancer
    stub: StubServer  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: tests and the CLI read stderr

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, *,
              reason: str | None = None, length: int | None = None) -> None:
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header(STUB_HEADER, STUB_HEADER_VALUE)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client went away (it timed out): nothing to do

    def _send_json(self, status: int, obj: object, headers: dict[str, str] | None = None,
                   reason: str | None = None) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), headers, reason=reason)

    def _send_trickle(self, body: bytes, headers: dict[str, str], seconds: float) -> None:
        """A correct answer, one byte at a time: no single read waits long, the whole takes forever."""
        self._send(200, b"", headers, length=len(body))
        for i in range(len(body)):
            try:
                self.wfile.write(body[i:i + 1])
            except OSError:
                break  # the client gave up: what a deadline is for
            if self.stub._stopping.wait(seconds):
                break
        self.close_connection = True

    def _send_huge(self, nbytes: int, headers: dict[str, str]) -> None:
        """`nbytes` of a JSON-looking answer, generated piece by piece (never held in memory)."""
        head = b'{"object": "list", "data": ['
        self._send(200, head, headers, length=nbytes)
        filler = b" " * 65536
        sent = len(head)
        while sent < nbytes and not self.stub._stopping.is_set():
            piece = filler[: nbytes - sent]
            try:
                self.wfile.write(piece)
            except OSError:
                break  # the client stopped reading, as it should
            sent += len(piece)
        self.close_connection = True

    def _content_length(self) -> int | None:
        """The body's length, or None after answering 400/413 (a bad header would otherwise raise in
        the handler thread and print a traceback; where the body ends is then unknown: hang up)."""
        raw = self.headers.get("Content-Length") or "0"
        if not (raw.isascii() and raw.isdigit()):
            self.close_connection = True
            self._send_json(400, {"detail": f"invalid Content-Length: {raw[:40]!r}"})
            return None
        if int(raw) > MAX_BODY_BYTES:
            self.close_connection = True
            self._send_json(413, {"detail": f"request body over {MAX_BODY_BYTES} bytes"})
            return None
        return int(raw)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/") in ("", "/health", "/v1/health"):
            self._send_json(200, {"status": "ok", "note": STUB_HEADER_VALUE})
        else:
            self._send_json(404, {"detail": f"Not Found: {self.path}"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        stub = self.stub
        length = self._content_length()
        if length is None:
            return
        raw = self.rfile.read(length) if length > 0 else b""
        wall, mono = time.time(), time.monotonic()
        admitted = stub._enter()
        record: dict[str, Any] = {"wall": wall, "mono": mono, "status": 500, "inputs": (), "tokens": 0,
                                  "late_chunking": False, "fault": None}
        released = not admitted
        try:
            if not admitted:
                raise _Reject(429, f"too many concurrent requests (limit {stub.max_concurrency})")
            if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
                raise _Reject(404, f"Not Found: {self.path}")
            stub._check_auth(self.headers.get("Authorization"))
            req = stub._parse(raw)
            record.update(inputs=tuple(req["texts"]), tokens=req["tokens"],
                          late_chunking=req["late_chunking"])
            fault = stub.faults.next()
            record["fault"] = fault.kind if fault else None
            if fault is not None and fault.kind in ("error", "rate_limited"):
                headers: dict[str, str] = dict(fault.headers)
                if fault.kind == "rate_limited" and fault.retry_after is not None:
                    if fault.http_date:
                        until = float(math.ceil(time.time() + fault.retry_after))
                        headers["Retry-After"] = formatdate(until, usegmt=True)
                    else:
                        until = time.time() + fault.retry_after
                        headers["Retry-After"] = f"{fault.retry_after:g}"
                    record["retry_after_until"] = until
                raise _Reject(fault.status, fault.detail, headers, fault.reason)
            if fault is not None and fault.kind in ("timeout", "drop"):
                if fault.kind == "timeout":
                    stub._stopping.wait(fault.seconds)
                record["status"] = 0
                self.close_connection = True
                return
            limit_headers = stub._charge(req["tokens"], record)
            delay = stub._delay(req["tokens"]) + (fault.seconds if fault is not None and fault.kind == "slow"
                                                  else 0.0)
            if delay > 0:
                stub._stopping.wait(delay)
            body = stub._answer(req, fault)
            stub._leave()
            released = True
            record["status"] = 200
            stub._count_ok(req)
            if fault is not None and fault.kind == "trickle":
                self._send_trickle(body, limit_headers, fault.seconds)
            elif fault is not None and fault.kind == "huge_body":
                self._send_huge(fault.nbytes, limit_headers)
            else:
                self._send(200, body, limit_headers)
        except _Reject as r:
            record["status"] = r.status
            if not released:
                stub._leave()
                released = True
            self._send_json(r.status, {"detail": r.detail}, r.headers, r.reason)
        finally:
            if not released:
                stub._leave()
            record["done"] = time.monotonic()
            stub._record(RequestRecord(**record))


# --------------------------------------------------------------------------------------------- server


class StubServer:
    """The loopback API double. ``with StubServer() as srv: srv.url`` -> ``http://127.0.0.1:PORT/v1``.

    `rpm`/`tpm` limits are token buckets refilled continuously that hold `burst_seconds` worth of
    budget (60 s: a whole minute may be spent at once, like a per-minute window); `max_concurrency`
    answers 429 to a request that arrives while that many are in flight.
    """

    def __init__(
        self,
        api_key: str | None = "jina_test",
        latency: float = 0.0,
        rpm: float | None = None,
        tpm: float | None = None,
        max_concurrency: int | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        burst_seconds: float = 60.0,
        protocol: str = "jina",
        latency_per_token: float = 0.0,
        latency_jitter: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if protocol not in ("jina", "openai"):
            raise ValueError(f"protocol must be 'jina' or 'openai', not {protocol!r}")
        self.protocol = protocol
        if not _is_loopback(host):
            from jmigrate.errors import UsageError

            raise UsageError(f"the stub server only listens on loopback addresses, not {host!r}")
        self.api_key = api_key
        self.latency = latency
        # A server whose cost grows with the request: `latency_per_token` seconds per billed token,
        # plus up to `latency_jitter` seconds drawn uniformly per request (seeded: reproducible).
        self.latency_per_token = latency_per_token
        self.latency_jitter = latency_jitter
        self._latency_rng = random.Random(seed)
        self.max_concurrency = max_concurrency
        self.rpm, self.tpm = rpm, tpm
        self.faults = FaultPlan()
        self.stats = StubStats()
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._in_flight = 0
        self._req_bucket = _Bucket(rpm, burst_seconds) if rpm else None
        self._tok_bucket = _Bucket(tpm, burst_seconds) if tpm else None
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never show the key
        return f"StubServer(url={self.url if self._httpd else None!r})"

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> StubServer:
        handler = type("StubHandler", (_Handler,), {"stub": self})
        server_cls = _V6Server if ":" in self._host else _Server
        self._httpd = server_cls((self._host, self._port), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="jmigrate-stub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on latency/timeout faults
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/v1"

    @property
    def in_flight(self) -> int:
        """Requests received and not answered yet (`stats.records` holds a request once it is answered)."""
        with self._lock:
            return self._in_flight

    # request pieces (called from handler threads) --------------------------------------------------
    def _enter(self) -> bool:
        """Count the request in flight; False (and not counted) when over the concurrency limit."""
        with self._lock:
            self.stats.requests += 1
            if self.max_concurrency is not None and self._in_flight >= self.max_concurrency:
                return False
            self._in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
            return True

    def _delay(self, tokens: int) -> float:
        """How long a request of `tokens` tokens takes to answer."""
        jitter = 0.0
        if self.latency_jitter > 0:
            with self._lock:
                jitter = self._latency_rng.uniform(0.0, self.latency_jitter)
        return self.latency + self.latency_per_token * tokens + jitter

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.stats.by_status[rec.status] += 1
            self.stats.records.append(rec)

    def _count_ok(self, req: dict[str, Any]) -> None:
        with self._lock:
            self.stats.tokens += req["tokens"]
            self.stats.inputs += len(req["texts"])

    def _check_auth(self, header: str | None) -> None:
        if self.api_key is None:
            return
        if not header or not header.startswith("Bearer "):
            raise _Reject(401, "Unauthorized: missing API key (Authorization: Bearer <key>)")
        if header[len("Bearer "):] != self.api_key:
            raise _Reject(401, "Unauthorized: invalid API key")

    def _parse(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _Reject(400, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _Reject(422, "request body must be a JSON object")
        served = body.get("model")
        if self.protocol == "openai":
            body = _from_openai(body)
        unknown = sorted(set(body) - ALLOWED_FIELDS)
        if unknown:
            raise _Reject(400, f"unknown field(s): {', '.join(unknown)}")
        model = body.get("model")
        if not isinstance(model, str):
            raise _Reject(422, "field 'model' is required and must be a string")
        if model not in MODELS:
            raise _Reject(400, f"unknown model {model!r}")
        inp = body.get("input")
        if isinstance(inp, str):
            inp = [inp]
        if not isinstance(inp, list) or not inp:
            raise _Reject(422, "field 'input' must be a non-empty list of strings")
        texts: list[str] = []
        for item in inp:
            if isinstance(item, dict) and set(item) == {"text"} and isinstance(item["text"], str):
                item = item["text"]
            if not isinstance(item, str):
                raise _Reject(422, "field 'input' must be a list of strings or {'text': ...} objects")
            texts.append(item)
        if len(texts) > API_MAX_INPUTS:
            raise _Reject(400, f"too many inputs: {len(texts)} > {API_MAX_INPUTS} per request")
        task = body.get("task")
        if task is not None:
            if task not in TASKS:
                raise _Reject(400, f"unknown task {task!r}")
            if model != V3:
                raise _Reject(400, f"'task' is only supported by {V3}")
        full = MODELS[model].dims
        dims = body.get("dimensions")
        if dims is not None:
            if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= full:
                raise _Reject(422, f"'dimensions' must be an integer between 1 and {full}")
            if model != V3 and dims != full:
                raise _Reject(400, f"{model} does not support 'dimensions'")
        flags = {}
        for name in ("late_chunking", "normalized", "truncate"):
            v = body.get(name)
            if v is not None and not isinstance(v, bool):
                raise _Reject(422, f"'{name}' must be a boolean")
            flags[name] = v
        etype = body.get("embedding_type", "float")
        if etype not in EMBEDDING_TYPES:
            raise _Reject(422, f"'embedding_type' must be one of {', '.join(EMBEDDING_TYPES)}")
        late = bool(flags["late_chunking"])
        counts = [stub_token_count(t) for t in texts]
        for i, n in enumerate(counts):
            if n > API_MAX_TOKENS and not late:
                if not flags["truncate"]:
                    raise _Reject(400, f"input {i} has {n} tokens, over the {API_MAX_TOKENS}-token limit; "
                                       "set truncate=true to cut it")
                texts[i] = _truncate_to_tokens(texts[i], API_MAX_TOKENS)
                counts[i] = API_MAX_TOKENS
        if late and sum(counts) > API_MAX_TOKENS:
            raise _Reject(400, f"late chunking: the request has {sum(counts)} tokens in total, over the "
                               f"{API_MAX_TOKENS}-token limit")
        return {"model": model, "served": served, "texts": texts, "task": task, "dimensions": dims,
                "late_chunking": late,
                "normalized": flags["normalized"] is not False, "embedding_type": etype,
                "tokens": sum(counts)}

    def _limit_headers(self) -> dict[str, str]:
        h: dict[str, str] = {}
        for name, b in (("Requests", self._req_bucket), ("Tokens", self._tok_bucket)):
            if b is not None:
                h[f"X-RateLimit-Limit-{name}"] = f"{b.rate * 60:g}"
                h[f"X-RateLimit-Remaining-{name}"] = str(max(0, int(b.level)))
                h[f"X-RateLimit-Reset-{name}"] = f"{b.reset_seconds():.3f}s"
        return h

    def _charge(self, tokens: int, record: dict[str, Any]) -> dict[str, str]:
        """Take one request and `tokens` from the buckets, or answer 429 (nothing taken)."""
        with self._lock:
            now = time.monotonic()
            waits = [b.wait_for(c, now) for b, c in ((self._req_bucket, 1), (self._tok_bucket, tokens))
                     if b is not None]
            wait = max(waits, default=0.0)
            if wait == math.inf:
                raise _Reject(429, f"request of {tokens} tokens can never fit the tokens-per-minute limit",
                              self._limit_headers())
            if wait > 0:
                headers = self._limit_headers()
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
                record["retry_after_until"] = time.time() + wait
                raise _Reject(429, "rate limit exceeded (requests or tokens per minute)", headers)
            if self._req_bucket is not None:
                self._req_bucket.take(1)
            if self._tok_bucket is not None:
                self._tok_bucket.take(tokens)
            return self._limit_headers()

    def _answer(self, req: dict[str, Any], fault: Fault | None) -> bytes:
        vecs = stub_vectors(req["model"], req["texts"], task=req["task"], dimensions=req["dimensions"],
                            late_chunking=req["late_chunking"], normalized=req["normalized"])
        kind = fault.kind if fault is not None else None
        if kind == "nan":
            vecs[0, 0] = np.nan
        if kind == "wrong_dimensions":
            vecs = vecs[:, :-1]
        if kind == "unnormalised":
            vecs = (vecs * np.float32(fault.scale if fault is not None else 1.0)).astype(np.float32)
        if kind == "zero_vector" and fault is not None:
            hit = [i for i, t in enumerate(req["texts"]) if fault.text is None or t == fault.text][:1]
            vecs[hit] = 0.0
        data = [{"object": "embedding", "index": i, "embedding": _encode_vector(v, req["embedding_type"])}
                for i, v in enumerate(vecs)]
        if kind == "wrong_count":
            data = data[:-1]
        if kind == "out_of_order":
            data.reverse()
        body = json.dumps({
            "model": fault.model if fault is not None and fault.model is not None
            else str(req["served"]) + STUB_MODEL_SUFFIX,
            "object": "list",
            "usage": {"total_tokens": req["tokens"], "prompt_tokens": req["tokens"]},
            "data": data,
        }).encode("utf-8")
        if kind == "malformed":
            return b"<html>502 Bad Gateway</html>"
        if kind == "truncated":
            return body[: len(body) // 2]
        return body


def _from_openai(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI embeddings request as the Jina request the stub answers: only OpenAI's fields are
    taken (a Jina field such as `task` is refused, as such a server would), any model name is
    served with v3-sized vectors, and there is no task: instructions travel in the text."""
    unknown = sorted(set(body) - OPENAI_FIELDS)
    if unknown:
        raise _Reject(400, f"unknown field(s) for the OpenAI protocol: {', '.join(unknown)}")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise _Reject(422, "'encoding_format' must be float or base64")
    out = {"model": body.get("model"), "input": body.get("input"), "embedding_type": fmt}
    if isinstance(out["model"], str) and out["model"] not in MODELS:
        out["model"] = V3
    if "dimensions" in body:
        out["dimensions"] = body["dimensions"]
    return out


def _encode_vector(v: np.ndarray, etype: str) -> object:
    if etype == "base64":
        return base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
    if etype == "ubinary":
        return np.packbits(v > 0).astype(int).tolist()
    if etype == "binary":
        return (np.packbits(v > 0).astype(int) - 128).tolist()
    return [float(x) for x in v]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the default backlog of 5 stalls bursts of new connections for ~1 s

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that dies or gives up mid-request (a killed reindex, a client timeout) is what the
        # fault tests do on purpose; the stdlib would print a traceback to stderr for each.
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _V6Server(_Server):
    address_family = socket.AF_INET6


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
