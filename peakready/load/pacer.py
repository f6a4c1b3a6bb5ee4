"""Open-model pacing inside one Locust process: arrival tokens at the profile's rate.

A scheduler greenlet puts a token (its intended start time, epoch s) into a queue when it
is due; an idle user takes it and sends its next request. When a token is due and no
user is idle, the pool grows (up to the cap), so slow responses never delay arrivals.
When the cap is hit the token waits in the queue with its intended time, and the lag
shows in ``intended_ts``.

Tokens due within ``BATCH_S`` of each other are released together (one timer per batch
instead of one per token), so a token may be handed out up to 1 ms before its time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import gevent
from gevent.queue import Queue

BATCH_S = 0.001
# With the user cap hit, tokens queue up; past this many the scheduler waits (their due
# times are kept, so the lag is still recorded) instead of spending CPU the users need.
MAX_BACKLOG = 1000
# A token this late is checked against ``hold`` (a distributed worker: is it cut off from
# its master, whose takeover may be sending its share?); on time tokens never pay for it.
STALE_S = 2.0
USER_COUNT_TTL_S = 0.1  # Locust counts users by walking its greenlets: not per token


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
        self._extra: list[gevent.Greenlet] = []  # streams taken over from a lost worker
        # distributed: True when this process has not heard its master for a while; the
        # pacer then holds its tokens (paused) until the master says resume or retire
        self.hold: Callable[[], bool] | None = None
        self.paused = False
        self._users_at = -1.0
        self._users = 0

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def add_stream(self, offsets: Iterable[float]) -> None:
        """More arrivals into the same queue (a lost worker's share taken over)."""
        self._extra.append(gevent.spawn(self._feed, offsets))

    def stop(self) -> None:
        for greenlet in (self._greenlet, *self._extra):
            if greenlet is not None:
                greenlet.kill(block=False)
        self.finished = True
        while self.tokens.qsize():  # tokens not taken yet are not sent by this process
            self.tokens.get_nowait()

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
        self._feed(self.offsets)
        self.finished = True

    def _feed(self, offsets: Iterable[float]) -> None:
        put, now, qsize = self.tokens.put, time.time, self.tokens.qsize
        for offset in offsets:
            while qsize() >= MAX_BACKLOG:
                gevent.sleep(0.005)
            due = self.t0 + offset
            delay = due - now()
            if delay < -STALE_S and self.hold is not None and self.hold():
                self.paused = True  # cut off from the master: its arrivals may be others' now
            while self.paused:  # until the master says resume (or retire: stop() kills us)
                gevent.sleep(0.05)
            if delay > BATCH_S:
                gevent.sleep(delay - BATCH_S / 2)
            put(due)
            self.emitted += 1
            if qsize() > self.idle + self.starting:
                self._grow_if_needed()

    def _user_count(self) -> int:
        stamp = time.monotonic()
        if stamp - self._users_at > USER_COUNT_TTL_S:
            self._users, self._users_at = self.users(), stamp
        return self._users

    def _grow_if_needed(self) -> None:
        short = self.tokens.qsize() - self.idle - self.starting
        current = self._user_count()
        room = self.max_users - current - self.starting
        if room <= 0:
            if not self.cap_hit:
                self.cap_hit, self.cap_hit_at = True, time.time()
            self.max_seen = max(self.max_seen, current)
            return
        started = self.grow(min(short, room))
        self.starting += started
        self._users += started
        self.max_seen = max(self.max_seen, self._users)
