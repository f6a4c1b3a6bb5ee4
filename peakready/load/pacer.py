"""Open-model pacing inside one Locust process: arrival tokens at the profile's rate.

A scheduler greenlet puts a token (its intended start time, epoch s) into a queue when it
is due; an idle user takes it and sends its next request. When a token is due and no
user is idle, the pool grows (up to the cap), so slow responses never delay arrivals.
When the cap is hit the token waits in the queue with its intended time, and the lag
shows in ``intended_ts``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import gevent
from gevent.queue import Queue


class Pacer:
    def __init__(self, offsets: Iterable[float], t0: float, grow: Callable[[int], int],
                 users: Callable[[], int], max_users: int) -> None:
        self.offsets = offsets
        self.t0 = t0
        self.grow = grow  # spawns n users, returns how many it started
        self.users = users
        self.max_users = max_users
        self.tokens: Queue = Queue()
        self.idle = 0
        self.starting = 0  # spawned, not yet waiting for their first token
        self.emitted = 0
        self.cap_hit = False
        self.cap_hit_at: float | None = None
        self.max_seen = 0
        self.finished = False
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self.finished = True

    def take(self, first: bool = False) -> float:
        """Block until a token is due; returns its intended start time."""
        if first and self.starting > 0:
            self.starting -= 1
        self.idle += 1
        try:
            return self.tokens.get()
        finally:
            self.idle -= 1

    def _run(self) -> None:
        for offset in self.offsets:
            due = self.t0 + offset
            delay = due - time.time()
            if delay > 0:
                gevent.sleep(delay)
            self.tokens.put(due)
            self.emitted += 1
            self._grow_if_needed()
        self.finished = True

    def _grow_if_needed(self) -> None:
        short = self.tokens.qsize() - self.idle - self.starting
        if short <= 0:
            return
        current = self.users()
        self.max_seen = max(self.max_seen, current)
        room = self.max_users - current - self.starting
        if room <= 0:
            if not self.cap_hit:
                self.cap_hit, self.cap_hit_at = True, time.time()
            return
        started = self.grow(min(short, room))
        self.starting += started
        self.max_seen = max(self.max_seen, current + started)
