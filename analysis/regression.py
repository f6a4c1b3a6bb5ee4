"""Baseline regression: is this run's latency or error rate really worse than the baseline's?

Per endpoint (and ``*`` = all requests) and metric (p50, p95, p99 of successful requests,
error rate):
- the change (relative for latency, absolute for error rate) with a confidence interval
  from a **block bootstrap over time blocks** of each run (samples within a run are
  correlated in time, so requests are not resampled one by one);
- a one-sided p-value for "the change exceeds the practical margin" (normal approximation
  with the bootstrap standard error, on the log ratio for latency), Holm-corrected over
  every endpoint x metric tested;
- per item: ``regression`` (Holm-adjusted p below 1 - confidence), ``inconclusive`` (the
  estimate is above the margin but not significant, or too few samples), else ``pass``.
Kayenta-style evidence is added per endpoint: the Mann-Whitney U p-value and the
Hodges-Lehmann shift of log latency with its distribution-free interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.load import Run
from analysis.samplestore import block_index

DEFAULTS = {"margin": 0.10, "confidence": 0.98, "metrics": ["p50", "p95", "p99", "error_rate"],
            "error_margin": 0.005, "min_samples": 50}
QS = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
BOOTSTRAP = 500
MAX_PER_SIDE = 20_000
N_BLOCKS = 60


def _edges(run: Run) -> tuple[float, float, int]:
    """(t0, width, count) of the run's ``N_BLOCKS`` time blocks (plus one for the tail)."""
    width = max(1.0, run.duration_s / N_BLOCKS)
    return run.t0, width, int(np.ceil(max(run.duration_s, width) / width)) + 1


def _block_weights(rng: np.random.Generator, n_blocks: int, present: np.ndarray) -> np.ndarray:
    """B x n_blocks resampling counts: blocks drawn with replacement among non-empty ones."""
    idx = np.flatnonzero(present)
    draws = rng.integers(0, len(idx), size=(BOOTSTRAP, len(idx)))
    counts = np.zeros((BOOTSTRAP, n_blocks), dtype=np.int32)
    rows = np.repeat(np.arange(BOOTSTRAP), len(idx))
    np.add.at(counts, (rows, idx[draws.ravel()]), 1)
    return counts


def _boot_quantiles(values: np.ndarray, blocks: np.ndarray, weights: np.ndarray,
                    qs: list[float]) -> np.ndarray:
    """Weighted quantiles per bootstrap replicate (B x len(qs)) with one sort.

    A replicate weighs each value by its block's draw count; its q-quantile is the first
    value (in sorted order) where the cumulative weight reaches q of the total. Instead of
    the B x n cumulative weights (hundreds of MB at 20k values), the cumulative *counts*
    per block (n x blocks) are kept and each replicate's position is found by bisection:
    the same index, exactly, in ~15 steps of B x blocks."""
    order = np.argsort(values, kind="stable")
    v, b = values[order], blocks[order]
    n, n_blocks = len(v), weights.shape[1]
    counts = np.zeros((n, n_blocks), dtype=np.int32)
    counts[np.arange(n), b] = 1
    np.cumsum(counts, axis=0, out=counts)  # counts[i, k]: block k's values among v[:i + 1]
    w = weights.astype(np.int64)
    total = w @ counts[-1].astype(np.int64)
    out = np.empty((weights.shape[0], len(qs)))
    for j, q in enumerate(qs):
        target = np.maximum(1, np.ceil(q * total))
        lo, hi = np.zeros(len(w), dtype=np.int64), np.full(len(w), n - 1, dtype=np.int64)
        while (lo < hi).any():
            mid = (lo + hi) // 2
            reached = np.einsum("rk,rk->r", counts[mid], w) >= target
            lo, hi = np.where(reached, lo, mid + 1), np.where(reached, mid, hi)
        out[:, j] = v[lo]
    return out


def _side(run: Run, endpoint: str, qs: list[float], rng: np.random.Generator
          ) -> dict[str, Any]:
    """What the comparison needs of one run and endpoint, computed where the samples are
    (``SampleStore.side``): counts, exact percentiles, per-block error counts and a uniform
    sample of at most ``MAX_PER_SIDE`` successful requests; never the run's rows."""
    assert run.store is not None
    return run.store.side(endpoint, qs, _edges(run), rng, MAX_PER_SIDE)


def holm(pvalues: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control)."""
    m = len(pvalues)
    order = np.argsort(pvalues)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted.tolist()


def hodges_lehmann(a: np.ndarray, b: np.ndarray, confidence: float,
                   rng: np.random.Generator, cap: int = 2000) -> dict[str, float]:
    """Shift of log latency b - a: HL estimate and its Mann-Whitney-based interval."""
    a = np.log(rng.choice(a, cap, replace=False) if len(a) > cap else a)
    b = np.log(rng.choice(b, cap, replace=False) if len(b) > cap else b)
    diffs = np.sort((b[:, None] - a[None, :]).ravel())
    n, m = len(a), len(b)
    from scipy import stats as sstats  # imported when a comparison runs (~1 s)

    z = sstats.norm.ppf(1 - (1 - confidence) / 2)
    k = int(np.floor(n * m / 2 - z * np.sqrt(n * m * (n + m + 1) / 12.0)))
    k = min(max(k, 0), len(diffs) - 1)
    p = float(sstats.mannwhitneyu(b, a, alternative="two-sided").pvalue)
    return {"hl_shift": float(np.expm1(np.median(diffs))),
            "hl_low": float(np.expm1(diffs[k])), "hl_high": float(np.expm1(diffs[-k - 1])),
            "mann_whitney_p": p}


def compare(base: Run, run: Run, cfg: dict[str, Any] | None = None,
            seed: int = 0) -> dict[str, Any]:
    """The comparison as a JSON-ready dict: items, Holm-adjusted decisions, verdict."""
    cfg = {**DEFAULTS, **(cfg or {})}
    margin, conf = float(cfg["margin"]), float(cfg["confidence"])
    alpha = 1.0 - conf
    rng = np.random.default_rng(seed)
    assert base.store is not None and run.store is not None
    endpoints = ["*"] + sorted(set(base.store.endpoints()) & set(run.store.endpoints()))
    qs = [QS[m] for m in cfg["metrics"] if m in QS]
    items: list[dict[str, Any]] = []
    for endpoint in endpoints:
        a, b = _side(base, endpoint, qs, rng), _side(run, endpoint, qs, rng)
        items += _endpoint_items(base, run, a, b, endpoint, cfg, rng)
    tested = [i for i in items if i["p_value"] is not None]
    for item, adj in zip(tested, holm([i["p_value"] for i in tested]), strict=True):
        item["p_holm"] = adj
    for item in items:
        item["verdict"] = _decide(item, alpha, cfg)
    verdicts = {i["verdict"] for i in items}
    verdict = "regression" if "regression" in verdicts else (
        "inconclusive" if "inconclusive" in verdicts else "pass")
    not_comparable = comparability(base, run)
    if not_comparable:
        verdict = "inconclusive"
    return {"schema": "peakready.compare/1", "baseline": base.meta.get("run_id") or
            base.run_dir.name, "run": run.meta.get("run_id") or run.run_dir.name,
            "verdict": verdict, "margin": margin, "error_margin": cfg["error_margin"],
            "confidence": conf, "correction": "holm", "method": "block bootstrap over "
            f"{N_BLOCKS} time blocks per run, {BOOTSTRAP} replicates",
            "not_comparable": not_comparable, "items": items}


def _profile(run: Run) -> Any:
    return (run.settings or {}).get("profile_points") or (run.plan.get("load") or {}).get("profile")


def comparability(base: Run, run: Run) -> list[str]:
    """Why the baseline is no yardstick for this run (empty: comparable). A different plan,
    load profile or an unfinished baseline makes any change meaningless, so the verdict
    becomes ``inconclusive`` instead of a silent pass or regression."""
    reasons = []
    if base.plan.get("name") != run.plan.get("name"):
        reasons.append(f"plan differs ({base.plan.get('name')!r} vs {run.plan.get('name')!r})")
    if _profile(base) != _profile(run):
        reasons.append("load profile differs")
    if base.status != "completed":
        reasons.append(f"baseline run status is {base.status!r}, not 'completed'")
    missing = [p for p in base.problems if p.startswith("samples/")]
    if not base.requests:
        reasons.append("baseline has no samples")
    elif missing:
        reasons.append("baseline samples incomplete (" + missing[0] + ")")
    return reasons


def _decide(item: dict[str, Any], alpha: float, cfg: dict[str, Any]) -> str:
    if item["p_value"] is None:
        return "inconclusive"
    limit = item["margin"]
    if item["p_holm"] < alpha and item["change"] > limit:
        return "regression"
    if item["change"] > limit:
        return "inconclusive"
    return "pass"


def _endpoint_items(base: Run, run: Run, a: dict[str, Any], b: dict[str, Any], endpoint: str,
                    cfg: dict[str, Any], rng: np.random.Generator) -> list[dict[str, Any]]:
    metrics = list(cfg["metrics"])
    margin, conf = float(cfg["margin"]), float(cfg["confidence"])
    lo_q, hi_q = (1 - conf) / 2, 1 - (1 - conf) / 2
    out = []
    enough = min(a["n_ok"], b["n_ok"]) >= int(cfg["min_samples"])
    lat = [m for m in metrics if m in QS]
    shift = {}
    if lat and enough:
        boot = {}
        for key, r, side in (("a", base, a), ("b", run, b)):
            edges = _edges(r)
            blocks = block_index(side["sample_ts"], edges)
            present = np.bincount(blocks, minlength=edges[2]) > 0
            weights = _block_weights(rng, edges[2], present)
            boot[key] = _boot_quantiles(side["sample_rt"], blocks, weights,
                                        [QS[m] for m in lat])
        change_b = boot["b"] / np.maximum(boot["a"], 1e-9) - 1.0
        shift = hodges_lehmann(a["sample_rt"], b["sample_rt"], conf, rng)
    for j, metric in enumerate(lat):
        qa, qb = float(a["quantiles"][j]), float(b["quantiles"][j])
        item = {"endpoint": endpoint, "metric": metric, "unit": "ms", "baseline": qa, "run": qb,
                "change": qb / qa - 1.0 if qa > 0 else float("nan"), "relative": True,
                "margin": margin, "n_baseline": a["n_ok"], "n_run": b["n_ok"],
                "ci_low": None, "ci_high": None, "p_value": None, "p_holm": None, **shift}
        if enough:
            col = change_b[:, j]
            item["ci_low"], item["ci_high"] = (float(x) for x in np.quantile(col, [lo_q, hi_q]))
            item["p_value"] = _p_above(np.log1p(item["change"]), np.log1p(col),
                                       np.log1p(margin))
        out.append(item)
    if "error_rate" in metrics:
        out.append(_error_item(a, b, endpoint, cfg, rng, lo_q, hi_q))
    return out


def _error_item(a: dict[str, Any], b: dict[str, Any], endpoint: str, cfg: dict[str, Any],
                rng: np.random.Generator, lo_q: float, hi_q: float) -> dict[str, Any]:
    margin = float(cfg["error_margin"])
    ra = float(a["block_err"].sum() / a["n"]) if a["n"] else float("nan")
    rb = float(b["block_err"].sum() / b["n"]) if b["n"] else float("nan")
    item = {"endpoint": endpoint, "metric": "error_rate", "unit": "", "baseline": ra, "run": rb,
            "change": rb - ra, "relative": False, "margin": margin, "n_baseline": a["n"],
            "n_run": b["n"], "ci_low": None, "ci_high": None, "p_value": None, "p_holm": None}
    if min(a["n"], b["n"]) < int(cfg["min_samples"]):
        return item
    rates = []
    for side in (a, b):
        n, err = side["block_n"], side["block_err"]
        weights = _block_weights(rng, len(n), n > 0)
        rates.append((weights @ err) / np.maximum(weights @ n, 1))
    diff = rates[1] - rates[0]
    item["ci_low"], item["ci_high"] = (float(x) for x in np.quantile(diff, [lo_q, hi_q]))
    item["p_value"] = _p_above(item["change"], diff, margin)
    return item


def _p_above(estimate: float, replicates: np.ndarray, margin: float) -> float:
    """One-sided p for "the change exceeds the margin": normal approximation with the
    bootstrap standard error (continuous, so Holm over many endpoints stays usable)."""
    se = float(np.std(replicates, ddof=1))
    if not np.isfinite(estimate):
        return 1.0
    if se <= 0:
        return 0.0 if estimate > margin else 1.0
    from scipy import stats as sstats

    return float(sstats.norm.sf((estimate - margin) / se))
