"""``search``: the product-search tier under load. Per phase and per fault window, the
share of searches rejected (HTTP 429, ``es_rejected_execution_exception``: the search
pools were full) and the share answered with partial results (HTTP 200 with
``_shards.failed`` > 0, which no status code shows; the bundled locustfile records them
from the storefront's ``X-Search-Partial`` header); per fault, the time from the fault's
start until the domain's ``AWS/ES ClusterStatus.green`` is 1 again. Search latency is the
``latency`` kind's job (``endpoint: "GET /api/search"``).

``ThreadpoolSearchRejected`` is cumulative per node and resets when a node restarts (as
on AWS): its increase is summed per node with a reset guard and shown as corroboration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.checks import fields
from analysis.checks.context import Context, fault_window, metric, no_window, win
from analysis.checks.registry import CheckKind, Ref, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult

ENDPOINT = "GET /api/search"
PARTIAL_PREFIX = "partial search results"


def validate(errors: list[str], where: str, value: Any) -> None:
    if fields.mapping(errors, where, value):
        fields.known(errors, where, value, {"endpoint", "phase", "max_rejected", "max_partial",
                                            "green_within_s", "min_requests"})
        fields.selector(errors, where, value, "endpoint")
        fields.selector(errors, where, value, "phase")
        fields.number(errors, where, value, "max_rejected", required=False, lo=0, hi=1)
        fields.number(errors, where, value, "max_partial", required=False, lo=0, hi=1)
        fields.number(errors, where, value, "green_within_s", required=False, lo=0,
                      lo_open=True)
        fields.number(errors, where, value, "min_requests", required=False, lo=1,
                      integer=True)
        if not any(k in value for k in ("max_rejected", "max_partial", "green_within_s")):
            errors.append(f"{where}: set at least one of max_rejected, max_partial, "
                          "green_within_s")


def refs(cfg: Any) -> list[Ref]:
    return [Ref("checks.search.phase", "window", str(cfg.get("phase", "*")))] \
        if isinstance(cfg, dict) else []


def rejected_mask(part: pd.DataFrame) -> np.ndarray:
    err = part["error"].astype(str)
    return ((part["status"] == 429) | err.str.contains("es_rejected_execution_exception",
                                                       regex=False)).to_numpy()


def partial_mask(part: pd.DataFrame) -> np.ndarray:
    return part["error"].astype(str).str.startswith(PARTIAL_PREFIX).to_numpy()


def counter_increase(values: list[float]) -> float:
    """Increase of a cumulative counter that restarts from 0 when its node restarts."""
    total = 0.0
    for prev, cur in zip(values, values[1:], strict=False):
        total += cur - prev if cur >= prev else cur
    return total


def metric_rejections(ctx: Context, start_s: float, end_s: float) -> float | None:
    m = ctx.run.metrics
    frame = m.loc[(m["metric"] == "ThreadpoolSearchRejected")
                  & m["dimensions"].astype(str).str.contains("NodeId")]
    if frame.empty:
        return None
    lo, hi = ctx.run.t0 + start_s, ctx.run.t0 + end_s
    total = 0.0
    for _, series in frame.sort_values("ts").groupby("dimensions"):
        before = series.loc[series["ts"] < lo, "value"].tail(1).tolist()
        inside = series.loc[(series["ts"] >= lo) & (series["ts"] < hi), "value"].tolist()
        total += counter_increase(before + inside)
    return total


def method_ran(ctx: Context, fault: str) -> bool:
    """False when the fault's journal shows no action of its method ran (Chaos Toolkit
    skips the method when the steady state fails before it); True when one did or there
    is no journal to say (the fault window then comes from infrastructure events)."""
    journal = ctx.run.journals.get(fault)
    if not isinstance(journal, dict):
        return True
    return any((r.get("activity") or {}).get("type") == "action" for r in journal.get("run")
               or [] if isinstance(r, dict))


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    missing = ((ctx.run.meta.get("target") or {}).get("unavailable") or {}).get("search")
    if missing:  # the sandbox started without its search domain: nothing to judge
        return [CheckResult("search", "search", SKIPPED, f"the target had no search tier: "
                            f"{missing}")]
    endpoint = cfg.get("endpoint", ENDPOINT)
    selector = cfg.get("phase", "*")
    windows = ctx.window(selector)
    if not windows:
        return [no_window("search", selector, ctx)]
    seen = {w["name"] for w in windows}
    windows += [w for w in ctx.window("faults") if w["name"] not in seen]
    out: list[CheckResult] = []
    for window in windows:
        out += _rates(ctx, cfg, endpoint, window)
    if "green_within_s" in cfg:
        out += _green(ctx, float(cfg["green_within_s"]))
    return out


def _rates(ctx: Context, cfg: dict, endpoint: str, window: dict) -> list[CheckResult]:
    part = ctx.outcomes(window, endpoint)  # per status and error: the masks apply to it
    total = int(part["n"].sum())
    min_requests = int(cfg.get("min_requests", 10))
    out = []
    for key, what, mask in (("max_rejected", "rejected", rejected_mask),
                            ("max_partial", "partial results", partial_mask)):
        if key not in cfg:
            continue
        limit = float(cfg[key])
        name = f"search {what} in {window['name']}"
        if total < min_requests:
            out.append(CheckResult(name, "search", SKIPPED,
                                   f"{total} {endpoint} requests in the window (< "
                                   f"{min_requests}): no evidence", threshold=limit,
                                   unit="ratio", window=win(window)))
            continue
        count = int(part["n"].to_numpy()[mask(part)].sum())
        rate = count / total
        evidence: dict[str, Any] = {"requests": total, what.replace(" ", "_"): count,
                                    "endpoint": endpoint}
        if key == "max_rejected":
            evidence["ThreadpoolSearchRejected_increase"] = metric_rejections(
                ctx, window["start_s"], window["end_s"])
        verdict = PASS if rate <= limit else FAIL
        out.append(CheckResult(
            name, "search", verdict,
            f"{count}/{total} searches {what} = {rate:.2%} "
            f"{'<=' if verdict == PASS else '>'} {limit:.2%}",
            measured=rate, threshold=limit, unit="ratio", window=win(window),
            evidence=evidence))
    return out


def _green(ctx: Context, limit: float) -> list[CheckResult]:
    green = metric(ctx, "ClusterStatus.green")
    rows = ctx.run.metrics.loc[ctx.run.metrics["metric"] == "ClusterStatus.green", "period_s"]
    period = float(rows.max()) if len(rows) else 0.0
    if ctx.faults.empty:
        return []
    out = []
    for fault in ctx.faults.itertuples():
        name = f"search green after {fault.name}"
        if not method_ran(ctx, str(fault.name)):
            if "search" in str(fault.name):
                out.append(CheckResult(name, "search", SKIPPED, "the fault's method did not "
                                       "run (its journal has no action run; a steady state "
                                       "that failed before it stops it): nothing was taken "
                                       "away", threshold=limit, unit="s",
                                       window=win(fault_window(fault))))
            continue
        if green.empty:
            out.append(CheckResult(name, "search", SKIPPED, "no AWS/ES ClusterStatus.green "
                                   "datapoints in metrics.parquet", threshold=limit, unit="s",
                                   window=win(fault_window(fault))))
            continue
        later = ctx.faults.loc[ctx.faults["start_s"] > fault.start_s, "start_s"]
        stop = float(later.min()) if len(later) else ctx.run.duration_s + limit
        # a datapoint (stamped at its period's start) is the fault's when its period ended
        # after this fault started and by the next one's start: one straddling the next
        # fault's start belongs to that fault, which may have caused it
        end = green["t_s"] + period
        seen = green.loc[(end > fault.start_s + 1e-9) & (end <= stop + 1e-9)]
        bad = seen.loc[seen["value"] < 1]
        if bad.empty:
            if "search" not in str(fault.name):
                continue  # the domain never left green: not a fault of the search tier
            out.append(CheckResult(name, "search", PASS, "the domain stayed green",
                                   measured=0.0, threshold=limit, unit="s",
                                   window=win(fault_window(fault))))
            continue
        back = seen.loc[(seen["t_s"] > float(bad["t_s"].iloc[0])) & (seen["value"] >= 1)]
        evidence = {"fault": fault.name, "not_green_from_s": round(float(bad["t_s"].iloc[0]), 3),
                    "datapoints_not_green": len(bad)}
        if back.empty:
            out.append(CheckResult(name, "search", FAIL, "the domain was not green again "
                                   "before the next fault or the end of the run",
                                   threshold=limit, unit="s",
                                   window=win(fault_window(fault)), evidence=evidence))
            continue
        took = max(float(back["t_s"].iloc[0]) - float(fault.start_s), 0.0)
        evidence["green_at_s"] = round(float(back["t_s"].iloc[0]), 3)
        verdict = PASS if took <= limit else FAIL
        out.append(CheckResult(name, "search", verdict,
                               f"green again {took:.0f} s after the fault started "
                               f"{'<=' if verdict == PASS else '>'} {limit:g} s",
                               measured=round(took, 3), threshold=limit, unit="s",
                               window=win(fault_window(fault, fault.start_s + took)),
                               evidence=evidence))
    return out


KIND = register(CheckKind("search", validate, evaluate, order=60, refs=refs,
                          fault_column=None))
