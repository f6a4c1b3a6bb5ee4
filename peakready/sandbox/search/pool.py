"""A node's search thread pool: ``threads`` workers and a bounded FIFO queue, rejecting
with ``es_rejected_execution_exception`` when both are full (OpenSearch's ``fixed`` pool).

The slots are asyncio-side (the node serves on one event loop); the work done inside a
slot is the real shard search plus the held per-query cost. Counters are cumulative and
live in the process, so they reset when the node restarts, as AWS's do.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Rejected(Exception):
    """The pool and its queue are full; ``error`` is OpenSearch's error body."""

    def __init__(self, pool: SearchPool) -> None:
        self.reason = (
            f"rejected execution of search task on EsThreadPoolExecutor[name = {pool.node}/"
            f"search, queue capacity = {pool.queue_size}, pool size = {pool.threads}, "
            f"active threads = {pool.active}, queued tasks = {len(pool._waiters)}, "
            f"completed tasks = {pool.completed}]")
        super().__init__(self.reason)

    def error(self) -> dict:
        cause = {"type": "es_rejected_execution_exception", "reason": self.reason}
        return {"error": {"root_cause": [cause], **cause}, "status": 429}


class SearchPool:
    def __init__(self, node: str, threads: int, queue_size: int) -> None:
        self.node = node
        self.threads = threads
        self.queue_size = queue_size
        self.active = 0
        self.largest = 0
        self.completed = 0
        self.rejected = 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._busy_s = 0.0
        self._busy_since: float | None = None
        self.started = time.monotonic()

    @property
    def queue(self) -> int:
        return len(self._waiters)

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` in a slot, waiting in the queue; raises Rejected when it is full."""
        if self.active >= self.threads:
            if len(self._waiters) >= self.queue_size:
                self.rejected += 1
                raise Rejected(self)
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut  # the finishing task hands its slot over (active stays counted)
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif fut.done() and not fut.cancelled():
                    self._release()
                raise
        else:
            self._acquire()
        try:
            return await work()
        finally:
            self.completed += 1
            self._release()

    def _acquire(self) -> None:
        self._account()
        self.active += 1
        self.largest = max(self.largest, self.active)

    def _release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes to the next in line
                return
        self._account()
        self.active -= 1

    def _account(self) -> None:
        """Thread-seconds in use, integrated over time (the node's 'CPU')."""
        now = time.monotonic()
        if self._busy_since is not None:
            self._busy_s += self.active * (now - self._busy_since)
        self._busy_since = now

    def busy_seconds(self) -> float:
        self._account()
        return self._busy_s

    def stats(self) -> dict:
        return {"threads": self.threads, "active": self.active, "queue": self.queue,
                "queue_size": self.queue_size, "largest": self.largest,
                "completed": self.completed, "rejected": self.rejected,
                "busy_seconds": round(self.busy_seconds(), 4)}
