"""Client-side rate limiter for the API encoder: requests/min and tokens/min as async token buckets.

Tokens are charged before a request is sent, from an estimate, and corrected once the answer's
`usage` says what was really counted. A 429's Retry-After pauses every request, not just the one
that got it, so a burst of concurrent requests does not keep hitting the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

_RECHECK_SECONDS = 0.05  # how often a waiting request looks at the buckets again


class _Bucket:
    """Refills at `per_minute`/60 per second and holds at most `burst_seconds` of refill.

    The level may go negative (debt) so a request larger than the bucket still goes through, and
    later requests wait until the debt is paid back: the long-run rate never exceeds the limit.
    """

    def __init__(self, per_minute: float, burst_seconds: float, now: float) -> None:
        self.burst_seconds = burst_seconds
        self.per_minute = per_minute
        self.level = self.capacity
        self.stamp = now

    @property
    def rate(self) -> float:
        return self.per_minute / 60.0

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate * self.burst_seconds)

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, cost: float) -> float:
        """Seconds until this bucket lets a request of `cost` go (after `refill`)."""
        need = min(cost, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate


class RateLimiter:
    """Async limiter shared by every request of one encoder (all on one event loop).

    `rpm`/`tpm` of None mean no client-side limit of that kind (the server's 429s still apply).
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._burst = burst_seconds
        now = clock()
        self._requests = _Bucket(rpm, burst_seconds, now) if rpm else None
        self._tokens = _Bucket(tpm, burst_seconds, now) if tpm else None
        self._paused_until = 0.0
        self._lock: asyncio.Lock | None = None  # created on the loop that uses it
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    @property
    def rpm(self) -> float | None:
        return self._requests.per_minute if self._requests else None

    @property
    def tpm(self) -> float | None:
        return self._tokens.per_minute if self._tokens else None

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of about `tokens` tokens may be sent, then charge it."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        # The lock makes waiters queue in order, so a big request is not starved by small ones.
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._paused_until - now
                for bucket, cost in ((self._requests, 1), (self._tokens, tokens)):
                    if bucket is not None:
                        bucket.refill(now)
                        wait = max(wait, bucket.wait_for(cost))
                if wait <= 0:
                    break
                # Short slices, not the whole wait: a refund from `correct` (an answer that used fewer
                # tokens than estimated) can make room sooner; sleeping it out let the bucket fill to
                # capacity and drop the refund (70% of the TPM limit for ~1.6x estimates).
                await asyncio.sleep(min(wait, _RECHECK_SECONDS))
            if self._requests is not None:
                self._requests.level -= 1
            if self._tokens is not None:
                self._tokens.level -= tokens

    def correct(self, estimated: int, actual: int) -> None:
        """The answer's usage says `actual` tokens were counted where `estimated` were charged."""
        if self._tokens is not None:
            self._tokens.refill(self._clock())
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + estimated - actual)

    def pause(self, seconds: float) -> None:
        """Hold every request back for `seconds` (a 429's Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def adapt(self, rpm: float | None = None, tpm: float | None = None) -> None:
        """Lower (never raise) the limits to what the server announced in its X-RateLimit-* headers."""
        now = self._clock()
        if rpm:
            if self._requests is None:
                self._requests = _Bucket(rpm, self._burst, now)
            elif rpm < self._requests.per_minute:
                self._requests.refill(now)
                self._requests.per_minute = rpm
                self._requests.level = min(self._requests.level, self._requests.capacity)
        if tpm:
            if self._tokens is None:
                self._tokens = _Bucket(tpm, self._burst, now)
            elif tpm < self._tokens.per_minute:
                self._tokens.refill(now)
                self._tokens.per_minute = tpm
                self._tokens.level = min(self._tokens.level, self._tokens.capacity)
