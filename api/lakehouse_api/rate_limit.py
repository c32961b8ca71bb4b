"""Requests per API key, limited by a token bucket for each key.

A key's bucket holds at most `burst` tokens and gains `per_minute / 60` each second; a request takes
one, and a request that finds the bucket empty is refused with the time until the next token. Only
verified keys get a bucket, so the memory is bounded by the configured keys, whatever callers send.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs per_minute > 0 and burst >= 1")
        self.per_minute = per_minute
        self.burst = burst
        self._per_second = per_minute / 60
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()  # the key check runs in the thread pool

    def take(self, key: str) -> float:
        """Takes a token of `key`'s bucket: 0 when there was one, else the seconds until there is one."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self._per_second)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self._per_second
