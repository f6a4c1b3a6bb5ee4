"""``scale_out``: load rise -> alarm -> desired -> in service -> healthy, each from AWS
evidence (metrics and scaling activities), the lag judged against ``max_lag_s``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.checks import fields
from analysis.checks.context import Context, alarm_events, level_before, metric
from analysis.checks.registry import CheckKind, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult
from analysis.load import parse_detail

DESIRED_CHANGE = re.compile(r"desired capacity from (\d+) to (\d+)", re.IGNORECASE)


def validate(errors: list[str], where: str, value: Any) -> None:
    if fields.mapping(errors, where, value):
        fields.known(errors, where, value, {"max_lag_s", "rise"})
        fields.number(errors, where, value, "max_lag_s", lo=0, lo_open=True)
        fields.number(errors, where, value, "rise", required=False, lo=0, hi=1, lo_open=True)


def load_rise(ctx: Context, fraction: float = 0.1) -> float | None:
    """When the offered load starts to climb: the profile when recorded, else the
    scheduled arrival rate smoothed over 5 s."""
    if ctx.profile is not None:
        t, rps = ctx.profile[:, 0], ctx.profile[:, 1]
        grid = np.linspace(0, t[-1], 4001)
        rate = np.interp(grid, t, rps)
        base, top = rate[0], rate.max()
    else:
        counts = ctx.store.scheduled_per_second(ctx.run.t0)
        if len(counts) == 0:
            return None
        rate = pd.Series(counts).rolling(5, min_periods=1).mean().to_numpy()
        grid = np.arange(len(rate), dtype=float)
        base, top = rate[: min(10, len(rate))].mean(), rate.max()
    if top - base <= max(1e-9, 0.05 * top):
        return None
    above = np.flatnonzero(rate > base + fraction * (top - base))
    return float(grid[above[0]]) if len(above) else None


def _first_rise(frame: pd.DataFrame, after_s: float, level: float) -> float | None:
    later = frame.loc[(frame["t_s"] >= after_s) & (frame["value"] > level + 1e-9)]
    return float(later["t_s"].iloc[0]) if len(later) else None


def _raises_desired(detail: dict[str, Any]) -> bool:
    """AWS writes "changing the desired capacity from 2 to 4" in a policy-driven cause."""
    text = f"{detail.get('cause', '')} {detail.get('description', '')}"
    match = DESIRED_CHANGE.search(text)
    if match:
        return int(match.group(2)) > int(match.group(1))
    return "scale out" in text.lower() or "scale-out" in text.lower()


def _period(ctx: Context) -> float | None:
    p = ctx.run.metrics.get("period_s")
    return float(p.dropna().min()) if p is not None and len(p.dropna()) else None


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    return [_scale_out(ctx, cfg)]


def _scale_out(ctx: Context, cfg: dict[str, Any]) -> CheckResult:
    max_lag = float(cfg["max_lag_s"])
    name = "scale-out lag"
    desired_m = metric(ctx, "GroupDesiredCapacity")
    in_service_m = metric(ctx, "GroupInServiceInstances")
    healthy_m = metric(ctx, "HealthyHostCount")
    ev = ctx.run.events
    activities = ev.loc[ev["kind"] == "scaling_activity"]
    if desired_m.empty and in_service_m.empty and healthy_m.empty and activities.empty:
        return CheckResult(name, "scale_out", SKIPPED, "no Auto Scaling evidence collected (no "
                           "group metrics, no scaling activities)", threshold=max_lag, unit="s")
    rise = load_rise(ctx, float(cfg.get("rise", 0.1)))
    if rise is None:
        return CheckResult(name, "scale_out", SKIPPED, "the offered load never rises: nothing "
                           "should scale out", threshold=max_lag, unit="s")
    steps: dict[str, float | None] = {"load_rise_s": rise}
    alarms = alarm_events(ctx, None)
    to_alarm = alarms.loc[(alarms["to"] == "ALARM") & (alarms["ts"] >= ctx.run.t0 + rise)]
    steps["alarm_s"] = float(to_alarm["ts"].iloc[0] - ctx.run.t0) if len(to_alarm) else None
    # A replacement after an instance kill is an activity too, but not a scale-out: only
    # an activity that raises the desired capacity counts (or the metric rising).
    acts = activities.loc[activities["ts"] >= ctx.run.t0 + rise]
    raising = [float(ts - ctx.run.t0) for ts, d in zip(acts["ts"], acts["detail"], strict=True)
               if _raises_desired(parse_detail(d))]
    candidates = raising[:1]
    if len(desired_m):
        d = _first_rise(desired_m, rise, level_before(desired_m, rise))
        if d is not None:
            candidates.append(d)
    steps["desired_s"] = min(candidates) if candidates else None
    after = steps["desired_s"] if steps["desired_s"] is not None else rise
    steps["in_service_s"] = _first_rise(in_service_m, after, level_before(
        in_service_m, rise)) if len(in_service_m) else None
    steps["healthy_s"] = _first_rise(healthy_m, after, level_before(
        healthy_m, rise)) if len(healthy_m) else None
    evidence = {**steps, "metric_period_s": _period(ctx)}
    if steps["desired_s"] is None:
        return CheckResult(name, "scale_out", FAIL, f"the load rose at {rise:.0f} s but the "
                           "group never scaled out", threshold=max_lag, unit="s",
                           evidence=evidence)
    last_key = next((k for k in ("healthy_s", "in_service_s") if steps[k] is not None), None)
    if last_key is None:
        return CheckResult(name, "scale_out", FAIL, "desired capacity rose at "
                           f"{steps['desired_s']:.0f} s but no new instance came into service",
                           threshold=max_lag, unit="s", evidence=evidence)
    lag = float(steps[last_key] - rise)
    verdict = PASS if lag <= max_lag else FAIL
    chain = " -> ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.0f} s"
                        for k, v in steps.items() if v is not None)
    return CheckResult(name, "scale_out", verdict,
                       f"{lag:.0f} s from load rise to "
                       f"{last_key.removesuffix('_s').replace('_', ' ')} ({chain})",
                       measured=lag, threshold=max_lag, unit="s",
                       window={"name": "scale-out", "start_s": rise,
                               "end_s": steps[last_key]},
                       evidence=evidence)


KIND = register(CheckKind("scale_out", validate, evaluate, order=60))
