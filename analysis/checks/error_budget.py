"""``error_budget``: the budget each fault burned over its impact window (fault start to
recovery, or to the fault end when later). Time is scaled back by the plan's ``speed``.
Reads the ``recovery`` results, so recovery is evaluated first when both are declared."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.checks import fields
from analysis.checks.context import Context, fault_window, win
from analysis.checks.registry import CheckKind, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult


def validate(errors: list[str], where: str, value: Any) -> None:
    if fields.mapping(errors, where, value):
        fields.known(errors, where, value, {"slo", "period_days", "max_burn_rate",
                                            "max_budget"})
        fields.number(errors, where, value, "slo", lo=0, hi=1, lo_open=True)
        if fields.is_number(value.get("slo")) and value["slo"] >= 1:
            errors.append(f"{where}.slo: must be below 1 (1.0 leaves no error budget)")
        fields.number(errors, where, value, "period_days", lo=0, lo_open=True)
        fields.number(errors, where, value, "max_burn_rate", required=False, lo=0,
                      lo_open=True)
        fields.number(errors, where, value, "max_budget", required=False, lo=0, hi=1,
                      lo_open=True)


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    if ctx.faults.empty:
        return [CheckResult("error budget", "error_budget", SKIPPED,
                            "no fault in this run: no budget burned by a fault")]
    recoveries = {r.evidence.get("fault", ""): r for r in done.get("recovery", [])}
    return [_one(ctx, cfg, fault, recoveries.get(fault.name))
            for fault in ctx.faults.itertuples()]


def _impact_end(ctx: Context, fault: Any, rec: CheckResult | None) -> float:
    end = fault.end_s
    if rec is not None and rec.measured is not None:
        end = max(end, fault.start_s + rec.measured)
    elif rec is not None and rec.verdict == FAIL:
        end = ctx.run.duration_s
    return max(end, fault.start_s + 1e-3)


def _one(ctx: Context, cfg: dict[str, Any], fault: Any, rec: CheckResult | None) -> CheckResult:
    slo, period_s = float(cfg["slo"]), float(cfg["period_days"]) * 86400.0
    max_burn, max_budget = cfg.get("max_burn_rate"), cfg.get("max_budget")
    speed = ctx.speed()
    window = fault_window(fault, _impact_end(ctx, fault, rec))
    st = ctx.stats(window)
    name = f"error budget {fault.name}"
    if not st.requests:
        return CheckResult(name, "error_budget", SKIPPED,
                           "no requests in the fault's impact window", window=win(window))
    bad, rate = st.errors, st.error_rate
    burn = rate / (1.0 - slo)
    seconds = (window["end_s"] - window["start_s"]) * speed
    budget = burn * seconds / period_s
    failed = []
    if max_burn is not None and burn > max_burn:
        failed.append(f"burn rate {burn:.1f}x > {max_burn:g}x")
    if max_budget is not None and budget > max_budget:
        failed.append(f"budget used {budget:.3%} > {max_budget:.3%}")
    measured, threshold, unit = (burn, max_burn, "x") if max_burn is not None else (
        budget, max_budget, "ratio")
    reason = "; ".join(failed) if failed else (
        f"burn rate {burn:.1f}x, {budget:.4%} of the {cfg['period_days']:g}-day budget used")
    return CheckResult(name, "error_budget", FAIL if failed else PASS, reason,
                       measured=measured, threshold=threshold, unit=unit, window=win(window),
                       evidence={"requests": st.requests, "errors": bad, "error_rate": rate,
                                 "burn_rate": burn, "budget_used": budget,
                                 "campaign_seconds": seconds, "speed": speed, "slo": slo})


KIND = register(CheckKind("error_budget", validate, evaluate, needs=("recovery",), order=40))
