"""``regression``: this run against a baseline run, per endpoint (block bootstrap and
Mann-Whitney on raw samples, Holm-corrected; the statistics live in analysis/regression.py).
Evaluated only when analysis is given a baseline, with the defaults when not configured."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from analysis import regression as stats
from analysis.checks import fields
from analysis.checks.context import Context
from analysis.checks.registry import Asks, CheckKind, register
from analysis.checks.result import FAIL, INCONCLUSIVE, PASS, CheckResult

METRICS = ("p50", "p95", "p99", "error_rate")


def validate(errors: list[str], where: str, value: Any) -> None:
    if fields.mapping(errors, where, value):
        fields.known(errors, where, value, {"margin", "confidence", "metrics", "error_margin",
                                            "min_samples"})
        fields.number(errors, where, value, "margin", required=False, lo=0)
        fields.number(errors, where, value, "error_margin", required=False, lo=0, hi=1)
        fields.number(errors, where, value, "confidence", required=False, lo=0.5, hi=1,
                      lo_open=True)
        fields.number(errors, where, value, "min_samples", required=False, lo=2, integer=True)
        if fields.is_number(value.get("confidence")) and value["confidence"] >= 1:
            errors.append(f"{where}.confidence: must be below 1")
        metrics = value.get("metrics")
        if metrics is not None and not (isinstance(metrics, list) and metrics and all(
                m in METRICS for m in metrics)):
            errors.append(f"{where}.metrics: must be a non-empty list of {', '.join(METRICS)}")


def as_check(comparison: dict[str, Any]) -> CheckResult:
    """The comparison as one result (fails only on ``regression``); the whole comparison
    is its evidence, which verdict.json also shows as ``regression``."""
    worst = [i for i in comparison["items"] if i["verdict"] == "regression"]
    unsure = [i for i in comparison["items"] if i["verdict"] == "inconclusive"]
    verdict = {"regression": FAIL, "inconclusive": INCONCLUSIVE}.get(comparison["verdict"], PASS)

    def fmt(i: dict[str, Any]) -> str:
        ch = f"{i['change']:+.1%}" if i["relative"] else f"{i['change']:+.2%} pts"
        return f"{i['endpoint']} {i['metric']} {ch}"

    if comparison.get("not_comparable"):
        reason = "baseline not comparable: " + "; ".join(comparison["not_comparable"])
    elif worst:
        reason = "regression: " + "; ".join(fmt(i) for i in worst[:5])
    elif unsure:
        reason = "inconclusive: " + "; ".join(fmt(i) for i in unsure[:5])
    else:
        reason = (f"no change beyond the margin (+{comparison['margin']:.0%} latency, "
                  f"+{comparison['error_margin']:.2%} error rate)")
    return CheckResult(f"regression vs {comparison['baseline']}", "regression", verdict, reason,
                       measured=len(worst), threshold=0, unit="regressions",
                       evidence=comparison, figure="figures/regression.png")


def asks(ctx: Context, cfg: Any) -> Asks:
    """The run's whole-run percentiles per endpoint (its side of the comparison), answered
    in the same pass as the other windows; the baseline's are its own two passes."""
    metrics = {**stats.DEFAULTS, **(cfg or {})}["metrics"]
    return Asks([(-math.inf, math.inf, tuple(stats.QS[m] for m in metrics if m in stats.QS))])


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    assert ctx.baseline is not None  # the registry evaluates this kind only with a baseline
    return [as_check(stats.compare(ctx.baseline, ctx.run, cfg))]


KIND = register(CheckKind("regression", validate, evaluate, needs_baseline=True, implicit=True,
                          order=100, asks=asks))
