"""Throughput, latency percentiles and error rates from raw samples.

Percentiles are exact (linear interpolation) over the raw response times of successful
requests (a fast 503 must not make latency look good; failures count in the error rate),
never averaged per-minute percentiles. "Corrected" latency is measured from ``intended_ts``: a request
the open-model schedule wanted at 10.0 s but sent at 10.8 s waited 800 ms the user
felt, which is how coordinated omission becomes visible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

QUANTILES = (0.50, 0.95, 0.99)
ALL = "*"


def window_slice(samples: pd.DataFrame, start_abs: float, end_abs: float) -> pd.DataFrame:
    """Samples whose request started in ``[start, end)``; samples are sorted by ts."""
    ts = samples["ts"].to_numpy()
    lo, hi = np.searchsorted(ts, [start_abs, end_abs], side="left")
    return samples.iloc[lo:hi]


def _quantiles(values: np.ndarray) -> list[float]:
    if len(values) == 0:
        return [float("nan")] * len(QUANTILES)
    return [float(v) for v in np.quantile(values, QUANTILES)]


def summarize(part: pd.DataFrame, seconds: float) -> dict[str, float]:
    """One row of the per-window table: counts, rates, percentiles, corrected percentiles."""
    ok = part["ok"].to_numpy()
    rt = part["rt_ms"].to_numpy()[ok]
    corrected = rt + part["lag_ms"].to_numpy()[ok]
    n = len(part)
    p50, p95, p99 = _quantiles(rt)
    c50, c95, c99 = _quantiles(corrected)
    return {"requests": n, "errors": int(n - ok.sum()),
            "error_rate": float((n - ok.sum()) / n) if n else float("nan"),
            "rps": n / seconds if seconds > 0 else float("nan"),
            "ok_rps": float(ok.sum()) / seconds if seconds > 0 else float("nan"),
            "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
            "p50_corrected_ms": c50, "p95_corrected_ms": c95, "p99_corrected_ms": c99,
            "max_lag_ms": float(part["lag_ms"].max()) if n else float("nan")}


def per_window(samples: Any, windows: pd.DataFrame, t0: float,
               offered: np.ndarray | None = None,
               window_stats: Callable[[float, float], pd.DataFrame] | None = None,
               ) -> pd.DataFrame:
    """Tidy table: one row per window x endpoint (``*`` = all requests together).

    ``samples``: the samples frame or a ``SampleStore``; ``window_stats(start_s, end_s)``,
    when given, answers a window instead (``Context.window_frame``, which keeps what the
    checks already computed)."""
    if window_stats is None:
        from analysis.samplestore import MemoryStore

        store = samples if hasattr(samples, "window") else MemoryStore(samples)

        def window_stats(start_s: float, end_s: float) -> pd.DataFrame:
            return store.window(t0 + start_s, t0 + end_s, QUANTILES)

    rows = []
    for win in windows.itertuples():
        seconds = float(win.end_s - win.start_s)
        frame = window_stats(win.start_s, win.end_s)
        offered_rps = offered_mean(offered, win.start_s, win.end_s)
        head = {"window": win.name, "kind": win.kind, "start_s": win.start_s,
                "end_s": win.end_s}
        rows.append({**head, "endpoint": ALL, "offered_rps": offered_rps,
                     **_table_row(frame, ALL, seconds)})
        for endpoint in sorted(e for e in frame.index if e != ALL):
            rows.append({**head, "endpoint": str(endpoint), "offered_rps": float("nan"),
                         **_table_row(frame, endpoint, seconds)})
    return pd.DataFrame(rows)


def _table_row(frame: pd.DataFrame, endpoint: str, seconds: float) -> dict[str, float]:
    """One row of the per-window table from a window's per-endpoint statistics."""
    nan = float("nan")
    if endpoint not in frame.index:
        return {"requests": 0, "errors": 0, "error_rate": nan,
                "rps": 0.0 if seconds > 0 else nan, "ok_rps": 0.0 if seconds > 0 else nan,
                **{f"p{int(q * 100)}_ms": nan for q in QUANTILES},
                **{f"p{int(q * 100)}_corrected_ms": nan for q in QUANTILES},
                "max_lag_ms": nan}
    r = frame.loc[endpoint]
    n, errors, ok = int(r["requests"]), int(r["errors"]), float(r["ok"])
    return {"requests": n, "errors": errors, "error_rate": errors / n if n else nan,
            "rps": n / seconds if seconds > 0 else nan,
            "ok_rps": ok / seconds if seconds > 0 else nan,
            **{f"p{int(q * 100)}_ms": float(r[f"rt_{q:.6g}"]) for q in QUANTILES},
            **{f"p{int(q * 100)}_corrected_ms": float(r[f"corr_{q:.6g}"]) for q in QUANTILES},
            "max_lag_ms": float(r["max_lag_ms"])}


def offered_mean(points: np.ndarray | None, start_s: float, end_s: float) -> float:
    if points is None or end_s <= start_s:
        return float("nan")
    grid = np.linspace(start_s, end_s, 200)
    return float(np.interp(grid, points[:, 0], points[:, 1], right=0.0).mean())


def bin_width(duration_s: float, target_bins: int = 400) -> float:
    """A readable bin: 1, 2, 5, 10, 15, 30, 60... seconds, about ``target_bins`` of them."""
    for width in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if duration_s / width <= target_bins:
            return float(width)
    return 900.0


def timeseries(samples: Any, t0: float, width_s: float,
               offered: np.ndarray | None = None, duration_s: float | None = None,
               lo: float | None = None, hi: float | None = None) -> pd.DataFrame:
    """Per time bin: achieved and offered RPS, error rate, p50/p95/p99 (and corrected p95),
    of the samples (a frame or a ``SampleStore``) whose ts is in ``[lo, hi)`` (epoch s;
    default all).

    In memory, percentiles are exact per bin (one sort of (bin, rt), 10M rows in a few
    seconds); out of core they come from a log-bucket histogram, within
    ``samplestore.TIMELINE_REL_ERROR`` of the exact value.
    """
    from analysis.samplestore import MemoryStore

    store = samples if hasattr(samples, "timeseries") else MemoryStore(samples)
    if duration_s is None:
        last = store.span()[1] if store.rows else None
        duration_s = (last - t0) if last is not None else 0.0
    n_bins = int(np.ceil(duration_s / width_s)) or 1
    got = store.timeseries(t0, width_s, n_bins, lo, hi)
    count, ok_count = got["requests"].to_numpy(float), got["ok"].to_numpy(float)
    out = pd.DataFrame({"t_s": np.arange(n_bins) * width_s, "requests": count,
                        "rps": count / width_s, "ok_rps": ok_count / width_s,
                        "scheduled_rps": got["scheduled"].to_numpy(float) / width_s})
    out["error_rate"] = np.where(count > 0, 1.0 - ok_count / np.maximum(count, 1), np.nan)
    for col in ("p50_ms", "p95_ms", "p99_ms", "p95_corrected_ms"):
        out[col] = got[col].to_numpy(float)
    if offered is not None:
        out["offered_rps"] = np.interp(out["t_s"] + width_s / 2, offered[:, 0], offered[:, 1],
                                       right=0.0)
    else:
        out["offered_rps"] = out["scheduled_rps"]
    return out


def binned_quantiles(bins: np.ndarray, values: np.ndarray, n_bins: int,
                     qs: tuple[float, ...]) -> dict[float, np.ndarray]:
    """Several linear-interpolated quantiles per bin from one sort of a combined key
    ``bin * span + value`` (a single float sort is several times faster than a lexsort)."""
    out = {q: np.full(n_bins, np.nan) for q in qs}
    if len(values) == 0:
        return out
    lo_v = float(values.min())
    span = float(values.max()) - lo_v + 1.0
    key = bins.astype(np.float64) * span + (values - lo_v)
    key.sort()
    sb = np.floor(key / span).astype(np.int64)
    sv = key - sb * span + lo_v
    starts = np.searchsorted(sb, np.arange(n_bins), side="left")
    ends = np.searchsorted(sb, np.arange(n_bins), side="right")
    counts = ends - starts
    have = counts > 0
    for q in qs:
        pos = starts[have] + q * (counts[have] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, ends[have] - 1)
        frac = pos - lo
        out[q][have] = sv[lo] * (1 - frac) + sv[hi] * frac
    return out
