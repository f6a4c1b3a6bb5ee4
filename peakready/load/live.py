"""Trailing-window live status (``live.json``) that steady-state probes read during a run.

A request counts in a window by the time it *completed* (``ts + rt``), so the window
shows what a monitor of the storefront would see now; rps is completions per second.
"""

from __future__ import annotations

from collections import deque

import numpy as np

WINDOWS_S = (10, 30)


class LiveStats:
    """Keeps (end_ts, rt_ms, ok) of the last ``max(WINDOWS_S)`` seconds."""

    def __init__(self, windows: tuple[int, ...] = WINDOWS_S) -> None:
        self.windows = windows
        self.rows: deque[tuple[float, float, bool]] = deque()

    def add(self, end_ts: float, rt_ms: float, ok: bool) -> None:
        self.rows.append((end_ts, rt_ms, ok))

    def extend(self, rows: list) -> None:
        self.rows.extend((float(e), float(r), bool(o)) for e, r, o in rows)

    def prune(self, now: float) -> None:
        horizon = now - max(self.windows)
        while self.rows and self.rows[0][0] < horizon:
            self.rows.popleft()

    def snapshot(self, now: float, elapsed_s: float | None = None) -> dict[str, dict[str, float]]:
        """Per window; early in a run a window is only as long as the run so far."""
        self.prune(now)
        if self.rows:
            end, rt, ok = (np.asarray(c) for c in zip(*self.rows, strict=True))
        else:
            end = rt = np.empty(0)
            ok = np.empty(0, dtype=bool)
        span = {w: min(w, elapsed_s) if elapsed_s and elapsed_s > 0 else w for w in self.windows}
        return {str(w): window_summary(rt[end >= now - w], ok[end >= now - w], span[w])
                for w in self.windows}


def window_summary(rt_ms: np.ndarray, ok: np.ndarray, window_s: float) -> dict[str, float]:
    n = int(rt_ms.size)
    if n == 0:
        return {"rps": 0.0, "p50_ms": None, "p95_ms": None, "p99_ms": None,
                "error_rate": 0.0, "requests": 0}
    p50, p95, p99 = np.percentile(rt_ms, [50, 95, 99])
    return {"rps": round(n / window_s, 3), "p50_ms": round(float(p50), 2),
            "p95_ms": round(float(p95), 2), "p99_ms": round(float(p99), 2),
            "error_rate": round(1.0 - float(ok.mean()), 5), "requests": n}
