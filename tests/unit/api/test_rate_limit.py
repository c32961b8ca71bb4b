"""The token bucket per API key, on a clock the test moves."""

from __future__ import annotations

import pytest
from lakehouse_api.rate_limit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_refused_with_the_wait_for_the_next_token() -> None:
    clock = Clock()
    limit = TokenBuckets(per_minute=30, burst=3, clock=clock)  # a token every 2 s

    assert [limit.take("k") for _ in range(3)] == [0, 0, 0]
    assert limit.take("k") == pytest.approx(2.0)
    clock.now += 1.5
    assert limit.take("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert limit.take("k") == 0 and limit.take("k") > 0


def test_keys_have_buckets_of_their_own() -> None:
    limit = TokenBuckets(per_minute=60, burst=1, clock=Clock())

    assert limit.take("a") == 0 and limit.take("a") > 0
    assert limit.take("b") == 0


def test_an_idle_bucket_refills_only_up_to_the_burst() -> None:
    clock = Clock()
    limit = TokenBuckets(per_minute=60, burst=2, clock=clock)
    limit.take("k")
    clock.now += 3600

    assert [limit.take("k") for _ in range(2)] == [0, 0] and limit.take("k") == pytest.approx(1.0)


def test_a_limit_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="per_minute > 0"):
        TokenBuckets(per_minute=0, burst=1)
