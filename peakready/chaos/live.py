"""Steady-state probes on the user-facing SLO of the load that is running right now.

The load's master rewrites ``live.json`` every second (docs/run-folder.md). A probe
judges one trailing window of it. No evidence is never a pass: a missing, unreadable or
stale file, or a window without requests, fails the probe.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from peakready import runfolder

logger = logging.getLogger("chaostoolkit")

__all__ = ["judge", "read_status", "slo"]


def judge(
    status: dict[str, Any] | None,
    now: float,
    window: str = "30",
    max_p95_ms: float = 800.0,
    max_error_rate: float = 0.02,
    max_age_s: float = 5.0,
    min_requests: int = 1,
) -> dict[str, Any]:
    """The verdict on one live status document: ``ok`` plus the numbers and a reason."""
    if status is None:
        return {"ok": False, "reason": "no live status (load not running?)"}
    age = now - float(status.get("ts") or 0.0)
    win = (status.get("windows") or {}).get(str(window))
    out: dict[str, Any] = {"ok": False, "window_s": str(window), "age_s": round(age, 2)}
    if age > max_age_s:
        return {**out, "reason": f"live status is {age:.1f} s old (> {max_age_s} s)"}
    if not win:
        return {**out, "reason": f"live status has no {window} s window"}
    p95, err, n = win.get("p95_ms"), win.get("error_rate"), int(win.get("requests") or 0)
    out.update(p95_ms=p95, error_rate=err, requests=n, rps=win.get("rps"))
    if n < min_requests or err is None:
        return {**out, "reason": f"{n} requests in the last {window} s: no evidence"}
    problems = []
    if p95 is None:  # live percentiles cover successful requests only: none succeeded
        problems.append(f"no successful request in {n}")
    elif p95 > max_p95_ms:
        problems.append(f"p95 {p95:.0f} ms > {max_p95_ms:.0f} ms")
    if err > max_error_rate:
        problems.append(f"error rate {err:.3f} > {max_error_rate:.3f}")
    if problems:
        return {**out, "reason": "; ".join(problems)}
    return {**out, "ok": True, "reason": "within SLO"}


def read_status(path: str | Path) -> dict[str, Any] | None:
    """The live status, or None when it is missing or half-written."""
    return runfolder.read_json(path)


def slo(
    live_status: str,
    window: str = "30",
    max_p95_ms: float = 800.0,
    max_error_rate: float = 0.02,
    max_age_s: float = 5.0,
    min_requests: int = 1,
) -> dict[str, Any]:
    """Probe: the trailing-window SLO as a dict, so the journal keeps the numbers.

    Pair it with the tolerance probe ``peakready.chaos.tolerance.ok``.
    """
    result = judge(
        read_status(live_status), time.time(), window=str(window),
        max_p95_ms=float(max_p95_ms), max_error_rate=float(max_error_rate),
        max_age_s=float(max_age_s), min_requests=int(min_requests),
    )
    logger.info(f"live SLO ({live_status}): {result['reason']}")
    return result

