"""``capacity``: the highest plateau of a stepped profile held within the SLO, per
in-service instance (the number a capacity plan multiplies)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from analysis.checks import fields
from analysis.checks.context import Context, level_before, metric, win, within_slo
from analysis.checks.registry import Asks, CheckKind, register
from analysis.checks.result import FAIL, PASS, SKIPPED, CheckResult


def validate(errors: list[str], where: str, value: Any) -> None:
    if fields.mapping(errors, where, value):
        fields.known(errors, where, value, {"p95_ms", "error_rate", "min_rps_per_instance",
                                            "min_plateau_s"})
        fields.number(errors, where, value, "p95_ms", lo=0, lo_open=True)
        fields.number(errors, where, value, "error_rate", lo=0, hi=1)
        fields.number(errors, where, value, "min_rps_per_instance", required=False, lo=0)
        fields.number(errors, where, value, "min_plateau_s", required=False, lo=0,
                      lo_open=True)


def plateaus(points: np.ndarray, min_s: float) -> list[tuple[float, float, float]]:
    """Flat stretches (start, end, rps) of the profile lasting at least ``min_s``."""
    out: list[tuple[float, float, float]] = []
    for (t1, r1), (t2, r2) in zip(points[:-1], points[1:], strict=True):
        if abs(r1 - r2) <= 1e-9 * max(1.0, abs(r1)) and t2 - t1 >= min_s and r1 > 0:
            if out and abs(out[-1][2] - r1) < 1e-9 and abs(out[-1][1] - t1) < 1e-9:
                out[-1] = (out[-1][0], t2, r1)
            else:
                out.append((t1, t2, r1))
    return out


def settled(steps: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """Each plateau without the transient after its step (its first 20%)."""
    return [(start + 0.2 * (end - start), end, rps) for start, end, rps in steps]


def asks(ctx: Context, cfg: Any) -> Asks:
    if ctx.profile is None:
        return Asks()
    steps = settled(plateaus(ctx.profile, float(cfg.get("min_plateau_s", 3.0))))
    return Asks([(settle, end, ()) for settle, end, _ in steps])


def _plateau_rows(ctx: Context, cfg: dict[str, Any],
                  steps: list[tuple[float, float, float]]) -> list[dict[str, Any]]:
    instances = metric(ctx, "GroupInServiceInstances")
    if instances.empty:
        instances = metric(ctx, "HealthyHostCount")
    rows = []
    for settle, end, rps in settled(steps):
        st = ctx.stats({"start_s": settle, "end_s": end})
        if not st.requests:
            continue
        n, err, p95 = st.slo()
        achieved = n / (end - settle)
        n_inst = None
        if len(instances):
            sel = instances.loc[(instances["t_s"] >= settle) & (instances["t_s"] < end), "value"]
            n_inst = float(sel.mean()) if len(sel) else level_before(instances, settle)
        within = within_slo(n, err, p95, cfg["p95_ms"], cfg["error_rate"]) \
            and achieved >= 0.95 * rps
        rows.append({"offered_rps": rps, "achieved_rps": achieved, "p95_ms": p95,
                     "error_rate": err, "instances": n_inst, "within_slo": within,
                     "start_s": settle, "end_s": end})
    return rows


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    return [_capacity(ctx, cfg)]


def _capacity(ctx: Context, cfg: dict[str, Any]) -> CheckResult:
    name = "capacity per instance"
    if ctx.profile is None:
        return CheckResult(name, "capacity", SKIPPED, "no load profile recorded "
                           "(settings.json): cannot find plateaus")
    steps = plateaus(ctx.profile, float(cfg.get("min_plateau_s", 3.0)))
    if len({round(s[2], 6) for s in steps}) < 2:
        return CheckResult(name, "capacity", SKIPPED, "the profile does not step (fewer than "
                           "two plateaus): no capacity evidence")
    rows = _plateau_rows(ctx, cfg, steps)
    held = [r for r in rows if r["within_slo"]]
    evidence: dict[str, Any] = {"plateaus": rows, "slo": {"p95_ms": cfg["p95_ms"],
                                                          "error_rate": cfg["error_rate"]}}
    limit = cfg.get("min_rps_per_instance")
    if not held:
        return CheckResult(name, "capacity", FAIL, "no plateau was held within SLO",
                           threshold=limit, comparison=">=", unit="rps", evidence=evidence)
    best = max(held, key=lambda r: r["offered_rps"])
    per = best["achieved_rps"] / best["instances"] if best["instances"] else None
    evidence["highest_within_slo"] = best
    evidence["tested_maximum"] = bool(best["offered_rps"] == max(r["offered_rps"] for r in rows))
    window = win({"name": f"plateau {best['offered_rps']:g} rps",
                  "start_s": best["start_s"], "end_s": best["end_s"]})
    measured = per if per is not None else best["achieved_rps"]
    unit = "rps/instance" if per is not None else "rps (instances unknown)"
    note = " (the highest plateau tested: true capacity may be higher)" if \
        evidence["tested_maximum"] else ""
    if limit is not None and per is not None and per < limit:
        return CheckResult(name, "capacity", FAIL, f"{per:.1f} rps per instance < {limit:g}",
                           measured=measured, threshold=limit, comparison=">=", unit=unit,
                           window=window, evidence=evidence)
    return CheckResult(name, "capacity", PASS,
                       f"{best['offered_rps']:g} rps held within SLO"
                       + (f" on {best['instances']:.1f} instances = {per:.1f} rps per instance"
                          if per is not None else "") + note,
                       measured=measured, threshold=limit, comparison=">=", unit=unit,
                       window=window, evidence=evidence)


KIND = register(CheckKind("capacity", validate, evaluate, order=70, asks=asks))
