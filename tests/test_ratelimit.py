"""The API client's rate limiter: refunds of over-estimated tokens reach requests already waiting.

Found by bench/bench_e2e.py: the client estimates tokens high (~1.6x the billed count on English
prose) and refunds the difference when the answer arrives. A waiting request used to sleep its whole
precomputed wait, so the refund landed in a bucket already full and was lost: reindex ran at 70% of
the tokens-per-minute limit. The clock here is fake, so nothing refills unless the test says so.
"""

from __future__ import annotations

import asyncio

from jmigrate.encoders.ratelimit import RateLimiter


def test_refund_lets_a_waiting_request_go_before_its_computed_wait() -> None:
    now = [0.0]
    # 60,000 tokens/min = 1,000 tokens/s; the bucket holds one second of it.
    limiter = RateLimiter(tpm=60_000, clock=lambda: now[0])

    async def scenario() -> bool:
        await limiter.acquire(1000)  # empties the bucket (charged from an estimate)
        waiter = asyncio.create_task(limiter.acquire(1000))  # computes a 1 s wait on the fake clock
        await asyncio.sleep(0.01)
        assert not waiter.done()
        limiter.correct(estimated=1000, actual=0)  # the answer says the first request cost nothing
        # The fake clock never advances: only the refund can free the waiter. Before the fix it slept
        # the whole computed second; now it looks again within ~50 ms.
        try:
            await asyncio.wait_for(waiter, timeout=0.6)
        except TimeoutError:
            return False
        return True

    assert asyncio.run(scenario())


def test_without_a_refund_the_waiter_keeps_waiting() -> None:
    now = [0.0]
    limiter = RateLimiter(tpm=60_000, clock=lambda: now[0])

    async def scenario() -> bool:
        await limiter.acquire(1000)
        waiter = asyncio.create_task(limiter.acquire(1000))
        await asyncio.sleep(0.2)
        blocked = not waiter.done()
        now[0] += 1.0  # one second of refill on the fake clock
        await asyncio.wait_for(waiter, timeout=5)
        return blocked

    assert asyncio.run(scenario())
