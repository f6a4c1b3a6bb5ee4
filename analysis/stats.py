"""Throughput, latency percentiles and error rates from raw samples.

Percentiles are exact (linear interpolation) over the raw response times of successful
requests (a fast 503 must not make latency look good; failures count in the error rate),
never averaged per-minute percentiles. "Corrected" latency is measured from ``intended_ts``: a request
the open-model schedule wanted at 10.0 s but sent at 10.8 s waited 800 ms the user
felt, which is how coordinated omission becomes visible.
"""

from __future__ import annotations

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


def per_window(samples: pd.DataFrame, windows: pd.DataFrame, t0: float,
               offered: np.ndarray | None = None) -> pd.DataFrame:
    """Tidy table: one row per window x endpoint (``*`` = all requests together)."""
    rows = []
    for win in windows.itertuples():
        seconds = float(win.end_s - win.start_s)
        part = window_slice(samples, t0 + win.start_s, t0 + win.end_s)
        offered_rps = offered_mean(offered, win.start_s, win.end_s)
        rows.append({"window": win.name, "kind": win.kind, "start_s": win.start_s,
                     "end_s": win.end_s, "endpoint": ALL, "offered_rps": offered_rps,
                     **summarize(part, seconds)})
        for endpoint, group in part.groupby("endpoint", observed=True, sort=True):
            rows.append({"window": win.name, "kind": win.kind, "start_s": win.start_s,
                         "end_s": win.end_s, "endpoint": str(endpoint),
                         "offered_rps": float("nan"), **summarize(group, seconds)})
    return pd.DataFrame(rows)


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


def timeseries(samples: pd.DataFrame, t0: float, width_s: float,
               offered: np.ndarray | None = None, duration_s: float | None = None,
               ) -> pd.DataFrame:
    """Per time bin: achieved and offered RPS, error rate, p50/p95/p99 (and corrected p95).

    Percentiles are computed per bin from the raw samples with one sort (bin, rt), which
    keeps 10M rows in a few seconds.
    """
    n_bins = int(np.ceil((duration_s if duration_s is not None else
                          (samples["ts"].max() - t0 if len(samples) else 0.0)) / width_s)) or 1
    bins = np.floor((samples["ts"].to_numpy() - t0) / width_s).astype(np.int64)
    keep = (bins >= 0) & (bins < n_bins)
    bins = bins[keep]
    rt = samples["rt_ms"].to_numpy()[keep]
    corrected = rt + samples["lag_ms"].to_numpy()[keep]
    ok = samples["ok"].to_numpy()[keep]
    count = np.bincount(bins, minlength=n_bins).astype(float)
    ok_count = np.bincount(bins, weights=ok, minlength=n_bins)
    sched = np.floor((samples["intended_ts"].to_numpy() - t0) / width_s).astype(np.int64)
    sched = sched[(sched >= 0) & (sched < n_bins)]
    scheduled = np.bincount(sched, minlength=n_bins).astype(float)
    out = pd.DataFrame({"t_s": np.arange(n_bins) * width_s, "requests": count,
                        "rps": count / width_s, "ok_rps": ok_count / width_s,
                        "scheduled_rps": scheduled / width_s})
    out["error_rate"] = np.where(count > 0, 1.0 - ok_count / np.maximum(count, 1), np.nan)
    for q, values in binned_quantiles(bins[ok], rt[ok], n_bins, QUANTILES).items():
        out[f"p{int(q * 100)}_ms"] = values
    out["p95_corrected_ms"] = binned_quantiles(bins[ok], corrected[ok], n_bins, (0.95,))[0.95]
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
