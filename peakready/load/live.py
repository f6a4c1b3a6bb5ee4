"""Trailing-window live status (``live.json``) that steady-state probes read during a run.

A request counts in a window by the second in which it *completed* (``ts + rt``), so the
window shows what a monitor of the storefront would see now; rps is completions per
second. Latency percentiles cover successful requests only (as analysis does: fast 502s
during a failover must not pull p95 down), error_rate and rps cover all requests. Rows are kept in one bucket per second, so the cost per request is two appends.
"""

from __future__ import annotations

import math

import numpy as np

WINDOWS_S = (10, 30)


class LiveStats:
    """Per-second buckets of (rt_ms, ok) for the last ``max(windows)`` seconds."""

    def __init__(self, windows: tuple[int, ...] = WINDOWS_S) -> None:
        self.windows = windows
        self.buckets: dict[int, tuple[list[float], list[bool]]] = {}
        # numpy copies of past seconds, made once (not every second for 30 s): at 10k req/s
        # converting the whole 30-s window each second cost a few % of a load process
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def add(self, end_ts: float, rt_ms: float, ok: bool) -> None:
        second = int(end_ts)
        bucket = self.buckets.get(second)
        if bucket is None:
            bucket = self.buckets[second] = ([], [])
        bucket[0].append(rt_ms)
        bucket[1].append(ok)

    def extend(self, rows: list) -> None:
        for end_ts, rt_ms, ok in rows:
            self.add(float(end_ts), float(rt_ms), bool(ok))

    def prune(self, now: float) -> None:
        horizon = math.floor(now) - max(self.windows)
        for second in [s for s in self.buckets if s < horizon]:
            del self.buckets[second]
            self._arrays.pop(second, None)

    def _array(self, second: int) -> tuple[np.ndarray, np.ndarray]:
        """The second's rows as arrays; cached, and rebuilt if rows arrived since (a
        worker's rows come up to a second or two late)."""
        rt, ok = self.buckets[second]
        cached = self._arrays.get(second)
        if cached is None or cached[0].size != len(rt):
            cached = self._arrays[second] = (np.asarray(rt, dtype=float),
                                             np.asarray(ok, dtype=bool))
        return cached

    def snapshot(self, now: float, elapsed_s: float | None = None) -> dict[str, dict[str, float]]:
        """Per window; early in a run a window is only as long as the run so far."""
        self.prune(now)
        out = {}
        for w in self.windows:
            arrays = [self._array(s) for s in self.buckets if s >= now - w]
            rt = np.concatenate([a[0] for a in arrays] or [np.empty(0)])
            ok = np.concatenate([a[1] for a in arrays] or [np.empty(0, dtype=bool)])
            span = min(w, elapsed_s) if elapsed_s and elapsed_s > 0 else w
            out[str(w)] = window_summary(rt, ok, span)
        return out


def window_summary(rt_ms: np.ndarray, ok: np.ndarray, window_s: float) -> dict[str, float]:
    n = int(rt_ms.size)
    if n == 0:
        return {"rps": 0.0, "p50_ms": None, "p95_ms": None, "p99_ms": None,
                "error_rate": 0.0, "requests": 0}
    good = rt_ms[ok]
    p50, p95, p99 = (round(float(q), 2) for q in np.percentile(good, [50, 95, 99])) \
        if good.size else (None, None, None)
    return {"rps": round(n / window_s, 3), "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "error_rate": round(1.0 - float(ok.mean()), 5), "requests": n}
