"""``recovery``: fault start -> the first run of N windows back within the SLO after the
first bad window. No bad window at all means the fault did not breach the SLO (0 s)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.checks import fields
from analysis.checks.context import (
    Context,
    fault_figure,
    fault_window,
    win,
    within_slo,
)
from analysis.checks.registry import Asks, CheckKind, SloLine, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult


def validate(errors: list[str], where: str, value: Any) -> None:
    if fields.mapping(errors, where, value):
        fields.known(errors, where, value, {"window_s", "windows", "max_s", "p95_ms",
                                            "error_rate"})
        fields.number(errors, where, value, "window_s", lo=0, lo_open=True)
        fields.number(errors, where, value, "windows", lo=1, integer=True)
        fields.number(errors, where, value, "max_s", lo=0, lo_open=True)
        fields.number(errors, where, value, "p95_ms", lo=0, lo_open=True)
        fields.number(errors, where, value, "error_rate", lo=0, hi=1)


def slo_lines(cfg: Any) -> list[SloLine]:
    return [SloLine("latency_ms", "p95 recovery", float(cfg["p95_ms"]))] if cfg else []


def edges(ctx: Context, start_s: float, window_s: float) -> np.ndarray:
    """The starts of the fixed windows from the fault start to the end of the run."""
    return np.arange(start_s, ctx.run.duration_s + 1e-9, window_s)


def asks(ctx: Context, cfg: Any) -> Asks:
    w = float(cfg["window_s"])
    return Asks(grids=[(edges(ctx, fault.start_s, w), w, 0.95)
                       for fault in ctx.faults.itertuples()])


def recovery_windows(ctx: Context, start_s: float, window_s: float, p95_ms: float,
                     max_error_rate: float) -> pd.DataFrame:
    """Fixed windows from the fault start to the end of the run, each judged against the SLO."""
    wins = ctx.slo_windows(edges(ctx, start_s, window_s), window_s)
    wins["good"] = [within_slo(n, err, p95, p95_ms, max_error_rate) for n, err, p95 in
                    zip(wins["requests"], wins["error_rate"], wins["p95_ms"], strict=True)]
    return wins


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    if ctx.faults.empty:
        return [CheckResult("recovery", "recovery", SKIPPED, "no fault in this run: no recovery "
                            "to measure", threshold=cfg["max_s"], unit="s")]
    return [_one(ctx, cfg, fault) for fault in ctx.faults.itertuples()]


def _one(ctx: Context, cfg: dict[str, Any], fault: Any) -> CheckResult:
    w, n_good, max_s = float(cfg["window_s"]), int(cfg["windows"]), float(cfg["max_s"])
    name = f"recovery after {fault.name}"
    window = fault_window(fault)
    figure = fault_figure(fault.name)
    wins = recovery_windows(ctx, fault.start_s, w, cfg["p95_ms"], cfg["error_rate"])
    evidence: dict[str, Any] = {
        "fault": fault.name, "fault_kind": fault.kind, "window_source": fault.source,
        "fault_start_s": fault.start_s, "fault_end_s": fault.end_s,
        "window_s": w, "windows_needed": n_good,
        "slo": {"p95_ms": cfg["p95_ms"], "error_rate": cfg["error_rate"]}}
    # a later fault's impact is not this fault's: stop looking where the next starts
    later = ctx.faults.loc[ctx.faults["start_s"] > fault.start_s, "start_s"]
    next_start = float(later.min()) if len(later) else math.inf
    judged = (wins["start_s"] < fault.end_s + max_s) & (wins["end_s"] <= next_start + 1e-9)
    bad = wins.index[(~wins["good"]) & judged]
    if len(bad) == 0:
        seen = wins.loc[judged]
        evidence.update(windows_checked=len(seen),
                        worst_p95_ms=float(seen["p95_ms"].max()) if len(seen) else None,
                        worst_error_rate=float(seen["error_rate"].max()) if len(seen)
                        else None)
        worst = (f"; worst p95 {seen['p95_ms'].max():.0f} ms, worst error rate "
                 f"{seen['error_rate'].max():.2%}" if len(seen) else "")
        return CheckResult(name, "recovery", PASS,
                           f"none of {len(seen)} windows of {w:g} s from "
                           f"{fault.start_s:.0f} s breached the SLO (p95 <= "
                           f"{cfg['p95_ms']:g} ms, error rate <= {cfg['error_rate']:.2%})"
                           f"{worst}: recovery 0 s", measured=0.0, threshold=max_s, unit="s",
                           window=win(window), evidence=evidence, figure=figure)
    first_bad = int(bad[0])
    good = wins["good"].to_numpy()
    run_start = next((i for i in range(first_bad + 1, len(wins) - n_good + 1)
                      if good[i:i + n_good].all()), None)
    evidence["first_bad_window_s"] = float(wins.loc[first_bad, "start_s"])
    evidence["bad_windows"] = int((~wins["good"].iloc[:run_start or len(wins)]).sum())
    if run_start is None:
        observed = ctx.run.duration_s - fault.start_s
        return CheckResult(name, "recovery", FAIL,
                           f"not back within SLO for {n_good} windows of {w:g} s before the "
                           f"run ended ({observed:.0f} s after the fault start)",
                           measured=None, threshold=max_s, unit="s", window=win(window),
                           evidence=evidence, figure=figure)
    rec = float(wins.loc[run_start, "start_s"] - fault.start_s)
    evidence["recovered_at_s"] = float(wins.loc[run_start, "start_s"])
    evidence["good_run"] = wins.iloc[run_start:run_start + n_good][
        ["start_s", "error_rate", "p95_ms"]].round(3).to_dict("records")
    verdict = PASS if rec <= max_s else FAIL
    return CheckResult(name, "recovery", verdict,
                       f"back within SLO {rec:g} s after the fault started "
                       f"({'<=' if verdict == PASS else '>'} {max_s:g} s)",
                       measured=rec, threshold=max_s, unit="s", window=win(window),
                       evidence=evidence, figure=figure)


KIND = register(CheckKind("recovery", validate, evaluate, order=30, slo_lines=slo_lines, asks=asks,
                          fault_column=("recovery", "{:g} s")))
