"""One way to open Redis, so every process fails fast (and answers 503) instead of hanging."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis


def connect_queue_writer(url: str) -> Redis:
    """One of the edge's few enqueueing connections. Each runs one flush at a time, so no pool is needed;
    no per-read socket timeout either (each costs a timer, and redis-py's checks made a command cost
    ~170 us of CPU against ~80 us without): the caller bounds each whole flush instead."""
    client: Redis = Redis.from_url(url, single_connection_client=True, socket_connect_timeout=1.0)
    return client


def connect_redis(url: str) -> Redis:
    client: Redis = Redis.from_url(url, socket_timeout=3.0, socket_connect_timeout=1.0, health_check_interval=15)
    return client


def raise_if_cancelled() -> None:
    """redis-py may turn a cancellation mid-command into a RedisError; a loop that suppresses those must
    still stop when cancelled (an edge's shutdown waited on its depth watcher forever)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
