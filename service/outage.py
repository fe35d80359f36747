"""Riding out Redis outages in the worker.

The Redis client already retries a dropped connection a few times within a fraction of a second; that
covers a lost TCP connection, not a Redis restart (seconds) or a failover. A worker holding finished
results should wait that out rather than drop them: a dropped batch costs every job in it an attempt and a
full re-generation, and leaves the jobs to a reclaim once they look idle. `when_redis_is_back` retries one
call with capped exponential backoff for up to `max_wait_s`, then gives up by re-raising.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger("singsong.worker")
T = TypeVar("T")
#: Errors that mean "Redis is unreachable right now" (BusyLoadingError, after a restart, is a ConnectionError).
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


def when_redis_is_back(call: Callable[[], T], max_wait_s: float, what: str = "Redis call") -> T:
    """`call()`, retried while Redis is unreachable, for up to `max_wait_s` seconds in all."""
    deadline = time.monotonic() + max_wait_s
    delay = 0.1
    while True:
        try:
            return call()
        except REDIS_DOWN as error:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: Redis unavailable (%s), retrying in %.1f s", what, error, delay)
            time.sleep(delay)
            delay = min(2 * delay, 2.0)
