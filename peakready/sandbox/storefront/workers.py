"""The instance's bounded worker pool and its busy fraction (the instance's "CPU").

A request owns one of ``workers`` slots for its service cost plus its real DB/Redis
work; the rest wait in FIFO order. Busy fraction = slot-seconds held / (workers x wall
seconds), which is what CPUUtilization is for a VM whose only work is requests.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from contextlib import asynccontextmanager


class WorkerPool:
    def __init__(self, workers: int, window_s: float = 5.0) -> None:
        self.workers = workers
        self._sem = asyncio.Semaphore(workers)
        self._held_total = 0.0  # slot-seconds of finished holds
        self._active: dict[int, float] = {}  # token -> start of a hold in progress
        self._token = 0
        self.waiting = 0
        self.served = 0
        self.started = time.monotonic()
        self._window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()

    @asynccontextmanager
    async def slot(self):
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self._token += 1
        token = self._token
        self._active[token] = time.monotonic()
        try:
            yield
        finally:
            start = self._active.pop(token)
            self._held_total += time.monotonic() - start
            self.served += 1
            self._sem.release()

    def busy_seconds(self, now: float | None = None) -> float:
        """Cumulative slot-seconds, holds in progress included."""
        now = time.monotonic() if now is None else now
        return self._held_total + sum(now - s for s in self._active.values())

    def sample(self) -> None:
        """Record (time, busy seconds); called periodically to get a rolling fraction."""
        now = time.monotonic()
        self._samples.append((now, self.busy_seconds(now)))
        while self._samples and now - self._samples[0][0] > self._window_s:
            self._samples.popleft()

    def busy_fraction(self) -> float:
        """Fraction of the pool held over the last ``window_s`` seconds (0..1)."""
        now = time.monotonic()
        busy_now = self.busy_seconds(now)
        if self._samples:
            t0, b0 = self._samples[0]
        else:
            t0, b0 = self.started, 0.0
        span = now - t0
        if span <= 0:
            return 0.0
        return max(0.0, min(1.0, (busy_now - b0) / (self.workers * span)))

    def in_use(self) -> int:
        return len(self._active)
