"""The plan's ``checks``: validation (for the plan loader) and evaluation (for analysis).

Every result is a dict with the same keys: ``name``, ``check``, ``verdict``
(``pass`` / ``fail`` / ``skipped``; ``inconclusive`` only for a baseline comparison),
``reason``, ``measured``, ``threshold``, ``comparison``, ``unit``, ``window``, ``evidence``
and ``figure``. ``skipped`` is used only when the evidence does not exist (no fault of that
kind, no alarm history, no step in the profile) and the reason says so. See docs/checks.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis import phases as phases_mod
from analysis.load import Run, parse_detail
from analysis.stats import window_slice

PASS, FAIL, SKIPPED, INCONCLUSIVE = "pass", "fail", "skipped", "inconclusive"
TIMELINE_FIG = "figures/timeline.png"
DEFAULT_CHECKS: dict[str, Any] = {"integrity": {"orders": True, "sessions": True}}
REGRESSION_METRICS = ("p50", "p95", "p99", "error_rate")


# ----------------------------------------------------------------------------- validation

def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _field(errors: list[str], where: str, obj: dict, key: str, *, required: bool = True,
           lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           integer: bool = False) -> None:
    if key not in obj or obj[key] is None:
        if required:
            errors.append(f"{where}.{key}: required")
        return
    value = obj[key]
    bounds = []
    if lo is not None:
        bounds.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        bounds.append(f"<= {hi}")
    kind = "an integer" if integer else "a number"
    message = f"{where}.{key}: must be {kind}" + (f" {' and '.join(bounds)}" if bounds else "")
    if not _num(value) or (integer and int(value) != value):
        errors.append(message)
    elif (lo is not None and (value <= lo if lo_open else value < lo)) or (
            hi is not None and value > hi):
        errors.append(message)


def _known(errors: list[str], where: str, obj: dict, allowed: set[str]) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(unknown)} "
                      f"(allowed: {', '.join(sorted(allowed))})")


def _selector(errors: list[str], where: str, obj: dict, key: str) -> None:
    value = obj.get(key, "*")
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{where}.{key}: must be a non-empty string ('*' for all)")


def _mapping(errors: list[str], where: str, value: Any) -> bool:
    if not isinstance(value, dict):
        errors.append(f"{where}: must be a mapping")
        return False
    return True


def validate(checks: Any) -> list[str]:
    """Errors naming the field (``checks.latency[0].max_ms: ...``); empty when fine."""
    if checks is None:
        return []
    errors: list[str] = []
    if not _mapping(errors, "checks", checks):
        return errors
    _known(errors, "checks", checks, set(VALIDATORS))
    for key, validator in VALIDATORS.items():
        if key in checks and checks[key] is not None:
            validator(errors, f"checks.{key}", checks[key])
    return errors


def _v_latency(errors: list[str], where: str, value: Any) -> None:
    if not isinstance(value, list):
        errors.append(f"{where}: must be a list of {{endpoint, phase, percentile, max_ms}}")
        return
    for i, item in enumerate(value):
        w = f"{where}[{i}]"
        if not _mapping(errors, w, item):
            continue
        _known(errors, w, item, {"endpoint", "phase", "percentile", "max_ms", "corrected",
                                 "min_requests"})
        _selector(errors, w, item, "endpoint")
        _selector(errors, w, item, "phase")
        _field(errors, w, item, "percentile", lo=0, hi=100, lo_open=True)
        _field(errors, w, item, "max_ms", lo=0, lo_open=True)
        _field(errors, w, item, "min_requests", required=False, lo=1, integer=True)
        if "corrected" in item and not isinstance(item["corrected"], bool):
            errors.append(f"{w}.corrected: must be true or false")


def _v_error_rate(errors: list[str], where: str, value: Any) -> None:
    if not isinstance(value, list):
        errors.append(f"{where}: must be a list of {{endpoint, phase, max}}")
        return
    for i, item in enumerate(value):
        w = f"{where}[{i}]"
        if not _mapping(errors, w, item):
            continue
        _known(errors, w, item, {"endpoint", "phase", "max", "min_requests"})
        _selector(errors, w, item, "endpoint")
        _selector(errors, w, item, "phase")
        _field(errors, w, item, "max", lo=0, hi=1)
        _field(errors, w, item, "min_requests", required=False, lo=1, integer=True)


def _v_recovery(errors: list[str], where: str, value: Any) -> None:
    if _mapping(errors, where, value):
        _known(errors, where, value, {"window_s", "windows", "max_s", "p95_ms", "error_rate"})
        _field(errors, where, value, "window_s", lo=0, lo_open=True)
        _field(errors, where, value, "windows", lo=1, integer=True)
        _field(errors, where, value, "max_s", lo=0, lo_open=True)
        _field(errors, where, value, "p95_ms", lo=0, lo_open=True)
        _field(errors, where, value, "error_rate", lo=0, hi=1)


def _v_scale_out(errors: list[str], where: str, value: Any) -> None:
    if _mapping(errors, where, value):
        _known(errors, where, value, {"max_lag_s", "rise"})
        _field(errors, where, value, "max_lag_s", lo=0, lo_open=True)
        _field(errors, where, value, "rise", required=False, lo=0, hi=1, lo_open=True)


def _v_error_budget(errors: list[str], where: str, value: Any) -> None:
    if _mapping(errors, where, value):
        _known(errors, where, value, {"slo", "period_days", "max_burn_rate", "max_budget"})
        _field(errors, where, value, "slo", lo=0, hi=1, lo_open=True)
        if _num(value.get("slo")) and value["slo"] >= 1:
            errors.append(f"{where}.slo: must be below 1 (1.0 leaves no error budget)")
        _field(errors, where, value, "period_days", lo=0, lo_open=True)
        _field(errors, where, value, "max_burn_rate", required=False, lo=0, lo_open=True)
        _field(errors, where, value, "max_budget", required=False, lo=0, hi=1, lo_open=True)


def _v_time_to_detect(errors: list[str], where: str, value: Any) -> None:
    if _mapping(errors, where, value):
        _known(errors, where, value, {"max_s", "alarms", "faults"})
        _field(errors, where, value, "max_s", lo=0, lo_open=True)
        for key, what in (("alarms", "alarm"), ("faults", "fault")):
            names = value.get(key)
            if names is not None and not (isinstance(names, list) and names
                                          and all(isinstance(a, str) for a in names)):
                errors.append(f"{where}.{key}: must be a non-empty list of {what} names")


def _v_integrity(errors: list[str], where: str, value: Any) -> None:
    if _mapping(errors, where, value):
        _known(errors, where, value, {"orders", "sessions"})
        if "orders" in value and not isinstance(value["orders"], bool):
            errors.append(f"{where}.orders: must be true or false")
        sessions = value.get("sessions")
        if sessions is not None and not isinstance(sessions, bool) and not (
                _num(sessions) and 0 <= sessions <= 1):
            errors.append(f"{where}.sessions: must be true, false or a surviving fraction 0..1")


def _v_capacity(errors: list[str], where: str, value: Any) -> None:
    if _mapping(errors, where, value):
        _known(errors, where, value, {"p95_ms", "error_rate", "min_rps_per_instance",
                                      "min_plateau_s"})
        _field(errors, where, value, "p95_ms", lo=0, lo_open=True)
        _field(errors, where, value, "error_rate", lo=0, hi=1)
        _field(errors, where, value, "min_rps_per_instance", required=False, lo=0)
        _field(errors, where, value, "min_plateau_s", required=False, lo=0, lo_open=True)


def _v_regression(errors: list[str], where: str, value: Any) -> None:
    if _mapping(errors, where, value):
        _known(errors, where, value, {"margin", "confidence", "metrics", "error_margin",
                                      "min_samples"})
        _field(errors, where, value, "margin", required=False, lo=0)
        _field(errors, where, value, "error_margin", required=False, lo=0, hi=1)
        _field(errors, where, value, "confidence", required=False, lo=0.5, hi=1, lo_open=True)
        _field(errors, where, value, "min_samples", required=False, lo=2, integer=True)
        if _num(value.get("confidence")) and value["confidence"] >= 1:
            errors.append(f"{where}.confidence: must be below 1")
        metrics = value.get("metrics")
        if metrics is not None and not (isinstance(metrics, list) and metrics and all(
                m in REGRESSION_METRICS for m in metrics)):
            errors.append(f"{where}.metrics: must be a non-empty list of "
                          f"{', '.join(REGRESSION_METRICS)}")


VALIDATORS = {"latency": _v_latency, "error_rate": _v_error_rate, "recovery": _v_recovery,
              "scale_out": _v_scale_out, "error_budget": _v_error_budget,
              "time_to_detect": _v_time_to_detect, "integrity": _v_integrity,
              "capacity": _v_capacity, "regression": _v_regression}


# ----------------------------------------------------------------------------- evaluation

@dataclass
class Context:
    """What every check reads: the run plus its timeline, computed once."""

    run: Run
    phases: pd.DataFrame
    faults: pd.DataFrame
    profile: np.ndarray | None

    def window(self, selector: str) -> list[dict[str, Any]]:
        """``*`` each phase, a phase name, ``faults`` each fault, ``fault:NAME``, ``run``."""
        if selector == "run":
            return [{"name": "run", "start_s": 0.0, "end_s": self.run.duration_s}]
        if selector == "*":
            frame = self.phases
        elif selector == "faults":
            frame = self.faults.assign(name=lambda d: "fault:" + d["name"])
        elif selector.startswith("fault:"):
            frame = self.faults.loc[self.faults["name"] == selector[6:]].assign(
                name=lambda d: "fault:" + d["name"])
        else:
            frame = self.phases.loc[self.phases["name"] == selector]
        return [{"name": r.name, "start_s": float(r.start_s), "end_s": float(r.end_s)}
                for r in frame.itertuples()]

    def samples(self, window: dict[str, Any], endpoint: str) -> pd.DataFrame:
        part = window_slice(self.run.samples, self.run.t0 + window["start_s"],
                            self.run.t0 + window["end_s"])
        return part if endpoint == "*" else part.loc[part["endpoint"] == endpoint]

    def endpoints(self, selector: str) -> list[str]:
        if selector == "each":
            return sorted(str(e) for e in self.run.samples["endpoint"].cat.categories)
        return [selector]


def result(name: str, check: str, verdict: str, reason: str, *, measured: Any = None,
           threshold: Any = None, comparison: str = "<=", unit: str = "",
           window: dict[str, Any] | None = None, evidence: dict[str, Any] | None = None,
           figure: str | None = TIMELINE_FIG) -> dict[str, Any]:
    return {"name": name, "check": check, "verdict": verdict, "reason": reason,
            "measured": _clean(measured), "threshold": threshold, "comparison": comparison,
            "unit": unit, "measured_text": display(measured, unit),
            "threshold_text": "" if threshold is None else
            f"{comparison} {display(threshold, unit)}",
            "window": window, "evidence": _clean(evidence or {}), "figure": figure}


def display(value: Any, unit: str) -> str:
    """How a person reads the number: ratios as percentages, others with their unit."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if unit == "ratio":
        return f"{float(value):.2%}"
    if isinstance(value, float | np.floating):
        v = float(value)
        text = f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 1 else f"{v:.3g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN to None, rounded floats."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(value) else round(float(value), 6)
    return value


def _win(window: dict[str, Any]) -> dict[str, Any]:
    return {"name": window["name"], "start_s": round(window["start_s"], 3),
            "end_s": round(window["end_s"], 3)}


def evaluate(ctx: Context, checks: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every declared check, in a stable order; a plan without ``checks`` gets the
    threshold-free ones (data integrity)."""
    checks = DEFAULT_CHECKS if checks is None else checks
    out: list[dict[str, Any]] = []
    for item in checks.get("latency") or []:
        out += latency(ctx, item)
    for item in checks.get("error_rate") or []:
        out += error_rate(ctx, item)
    recoveries: dict[str, dict[str, Any]] = {}
    if checks.get("recovery"):
        for res in recovery(ctx, checks["recovery"]):
            out.append(res)
            recoveries[res["evidence"].get("fault", "")] = res
    if checks.get("error_budget"):
        out += error_budget(ctx, checks["error_budget"], recoveries)
    if checks.get("time_to_detect"):
        out += time_to_detect(ctx, checks["time_to_detect"])
    if checks.get("scale_out"):
        out.append(scale_out(ctx, checks["scale_out"]))
    if checks.get("capacity"):
        out.append(capacity(ctx, checks["capacity"]))
    out += faults_not_injected(ctx)
    integrity = checks.get("integrity") or {}
    if integrity.get("orders"):
        out.append(orders_integrity(ctx))
    if integrity.get("sessions") not in (None, False):
        out += session_survival(ctx, integrity["sessions"])
    return out


def faults_not_injected(ctx: Context) -> list[dict[str, Any]]:
    """A planned fault whose method never ran or failed did not test anything, and one
    whose rollbacks failed or never ran may have left the system broken: a failed result
    each (none for a fault that landed and was rolled back), so a gate never passes them."""
    from peakready.chaos.journal import outcome_from_journal

    planned = [f.get("name") for f in ctx.run.plan.get("faults") or [] if isinstance(f, dict)]
    out = []
    for name in dict.fromkeys([n for n in planned if n] + list(ctx.run.journals)):
        journal = ctx.run.journals.get(name)
        why, undone = None, None
        if journal is None:
            if ctx.run.status != "completed":
                continue  # an aborted or interrupted run may end before a fault's offset
            why = f"no journal chaos/{name}.journal.json: the fault never ran"
        else:
            outcome = outcome_from_journal(journal)
            if outcome.failed_activities:
                why = ("method activity failed (" + ", ".join(outcome.failed_activities)
                       + "): the fault may never have been injected")
            elif outcome.fault_start is None:
                why = f"experiment {outcome.status} before its method ran: nothing was injected"
            if outcome.rollbacks_failed:
                undone = "rollback failed: " + ", ".join(outcome.rollbacks_failed)
            elif (journal.get("experiment") or {}).get("rollbacks") and not outcome.rollbacks_ran:
                undone = "the experiment's rollbacks did not run"
        if why:
            out.append(result(f"fault {name} injected", "fault", FAIL, why,
                              evidence={"fault": name}, figure=None))
        if undone:
            out.append(result(f"fault {name} rolled back", "fault", FAIL, undone,
                              evidence={"fault": name}, figure=None))
    return out


def _no_window(check: str, selector: str, ctx: Context) -> dict[str, Any]:
    known = ", ".join(ctx.phases["name"]) or "none"
    return result(f"{check} {selector}", check, SKIPPED,
                  f"no window {selector!r} in this run (phases: {known}; faults: "
                  f"{', '.join(ctx.faults['name']) or 'none'})")


def latency(ctx: Context, item: dict[str, Any]) -> list[dict[str, Any]]:
    pct, limit = float(item["percentile"]), float(item["max_ms"])
    corrected = bool(item.get("corrected", False))
    min_requests = int(item.get("min_requests", 1))
    label = f"p{pct:g}" + (" corrected" if corrected else "")
    windows = ctx.window(item.get("phase", "*"))
    if not windows:
        return [_no_window("latency", item.get("phase", "*"), ctx)]
    out = []
    for window in windows:
        for endpoint in ctx.endpoints(item.get("endpoint", "*")):
            name = f"latency {label} {endpoint} in {window['name']}"
            part = ctx.samples(window, endpoint)
            ok = part.loc[part["ok"]]
            if len(ok) < min_requests:
                out.append(result(name, "latency", SKIPPED,
                                  f"{len(ok)} successful requests in the window "
                                  f"(fewer than {min_requests}): no latency evidence",
                                  threshold=limit, unit="ms", window=_win(window)))
                continue
            values = ok["rt_ms"].to_numpy() + (ok["lag_ms"].to_numpy() if corrected else 0.0)
            measured = float(np.quantile(values, pct / 100.0))
            verdict = PASS if measured <= limit else FAIL
            out.append(result(
                name, "latency", verdict,
                f"{label} {measured:.1f} ms {'<=' if verdict == PASS else '>'} {limit:g} ms "
                f"over {len(ok)} successful requests",
                measured=measured, threshold=limit, unit="ms", window=_win(window),
                evidence={"requests": len(part), "successful": len(ok),
                          "p50_ms": float(np.quantile(values, 0.5)),
                          "max_ms": float(values.max()),
                          "max_schedule_lag_ms": float(ok["lag_ms"].max())}))
    return out


def error_rate(ctx: Context, item: dict[str, Any]) -> list[dict[str, Any]]:
    limit = float(item["max"])
    min_requests = int(item.get("min_requests", 1))
    windows = ctx.window(item.get("phase", "*"))
    if not windows:
        return [_no_window("error_rate", item.get("phase", "*"), ctx)]
    out = []
    for window in windows:
        for endpoint in ctx.endpoints(item.get("endpoint", "*")):
            name = f"error rate {endpoint} in {window['name']}"
            part = ctx.samples(window, endpoint)
            if len(part) < min_requests:
                out.append(result(name, "error_rate", SKIPPED,
                                  f"{len(part)} requests in the window: no evidence",
                                  threshold=limit, unit="ratio", window=_win(window)))
                continue
            errors = int((~part["ok"]).sum())
            rate = errors / len(part)
            top = (part.loc[~part["ok"], "error"].astype(str).value_counts().head(3).to_dict())
            verdict = PASS if rate <= limit else FAIL
            out.append(result(
                name, "error_rate", verdict,
                f"{errors}/{len(part)} failed = {rate:.2%} "
                f"{'<=' if verdict == PASS else '>'} {limit:.2%}",
                measured=rate, threshold=limit, unit="ratio", window=_win(window),
                evidence={"requests": len(part), "errors": errors, "top_errors": top}))
    return out


def recovery_windows(ctx: Context, start_s: float, window_s: float, p95_ms: float,
                     max_error_rate: float) -> pd.DataFrame:
    """Fixed windows from the fault start to the end of the run, each judged against the SLO."""
    edges = np.arange(start_s, ctx.run.duration_s + 1e-9, window_s)
    rows = []
    for lo in edges:
        part = ctx.samples({"start_s": lo, "end_s": lo + window_s}, "*")
        ok = part["rt_ms"].to_numpy()[part["ok"].to_numpy()]
        n = len(part)
        err = float(1 - len(ok) / n) if n else float("nan")
        p95 = float(np.quantile(ok, 0.95)) if len(ok) else float("nan")
        good = bool(n and len(ok) and p95 <= p95_ms and err <= max_error_rate)
        rows.append((lo, lo + window_s, n, err, p95, good))
    return pd.DataFrame(rows, columns=["start_s", "end_s", "requests", "error_rate", "p95_ms",
                                       "good"])


def recovery(ctx: Context, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Fault start -> start of the first run of N windows back within SLO after the first
    bad window. No bad window at all means the fault did not breach the SLO (0 s)."""
    if ctx.faults.empty:
        return [result("recovery", "recovery", SKIPPED, "no fault in this run: no recovery to "
                       "measure", threshold=cfg["max_s"], unit="s")]
    w, n_good, max_s = float(cfg["window_s"]), int(cfg["windows"]), float(cfg["max_s"])
    out = []
    for fault in ctx.faults.itertuples():
        name = f"recovery after {fault.name}"
        window = {"name": f"fault:{fault.name}", "start_s": fault.start_s, "end_s": fault.end_s}
        wins = recovery_windows(ctx, fault.start_s, w, cfg["p95_ms"], cfg["error_rate"])
        evidence = {"fault": fault.name, "fault_kind": fault.kind, "window_source": fault.source,
                    "fault_start_s": fault.start_s, "fault_end_s": fault.end_s,
                    "window_s": w, "windows_needed": n_good,
                    "slo": {"p95_ms": cfg["p95_ms"], "error_rate": cfg["error_rate"]}}
        # a later fault's impact is not this fault's: stop looking where the next starts
        later = ctx.faults.loc[ctx.faults["start_s"] > fault.start_s, "start_s"]
        next_start = float(later.min()) if len(later) else math.inf
        bad = wins.index[(~wins["good"]) & (wins["start_s"] < fault.end_s + max_s)
                         & (wins["end_s"] <= next_start + 1e-9)]
        if len(bad) == 0:
            seen = wins.loc[(wins["start_s"] < fault.end_s + max_s)
                            & (wins["end_s"] <= next_start + 1e-9)]
            evidence.update(windows_checked=len(seen),
                            worst_p95_ms=float(seen["p95_ms"].max()) if len(seen) else None,
                            worst_error_rate=float(seen["error_rate"].max()) if len(seen)
                            else None)
            worst = (f"; worst p95 {seen['p95_ms'].max():.0f} ms, worst error rate "
                     f"{seen['error_rate'].max():.2%}" if len(seen) else "")
            out.append(result(name, "recovery", PASS,
                              f"none of {len(seen)} windows of {w:g} s from "
                              f"{fault.start_s:.0f} s breached the SLO (p95 <= "
                              f"{cfg['p95_ms']:g} ms, error rate <= {cfg['error_rate']:.2%})"
                              f"{worst}: recovery 0 s", measured=0.0, threshold=max_s, unit="s",
                              window=_win(window), evidence=evidence,
                              figure=f"figures/fault-{_slug(fault.name)}.png"))
            continue
        first_bad = int(bad[0])
        good = wins["good"].to_numpy()
        run_start = next((i for i in range(first_bad + 1, len(wins) - n_good + 1)
                          if good[i:i + n_good].all()), None)
        evidence["first_bad_window_s"] = float(wins.loc[first_bad, "start_s"])
        evidence["bad_windows"] = int((~wins["good"].iloc[:run_start or len(wins)]).sum())
        if run_start is None:
            observed = ctx.run.duration_s - fault.start_s
            out.append(result(name, "recovery", FAIL,
                              f"not back within SLO for {n_good} windows of {w:g} s before the "
                              f"run ended ({observed:.0f} s after the fault start)",
                              measured=None, threshold=max_s, unit="s", window=_win(window),
                              evidence=evidence, figure=f"figures/fault-{_slug(fault.name)}.png"))
            continue
        rec = float(wins.loc[run_start, "start_s"] - fault.start_s)
        evidence["recovered_at_s"] = float(wins.loc[run_start, "start_s"])
        evidence["good_run"] = wins.iloc[run_start:run_start + n_good][
            ["start_s", "error_rate", "p95_ms"]].round(3).to_dict("records")
        verdict = PASS if rec <= max_s else FAIL
        out.append(result(name, "recovery", verdict,
                          f"back within SLO {rec:g} s after the fault started "
                          f"({'<=' if verdict == PASS else '>'} {max_s:g} s)",
                          measured=rec, threshold=max_s, unit="s", window=_win(window),
                          evidence=evidence, figure=f"figures/fault-{_slug(fault.name)}.png"))
    return out


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-") or "fault"


def _speed(ctx: Context) -> float:
    speed = ((ctx.run.plan.get("load") or {}).get("speed") or ctx.run.settings.get("speed")
             or 1.0)
    return float(speed) if _num(speed) and speed > 0 else 1.0


def error_budget(ctx: Context, cfg: dict[str, Any],
                 recoveries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Budget burned per fault over its impact window (fault start to recovery, or to the
    fault end when later). Time is scaled back by the plan's ``speed``: a 10x compressed
    run's 6 s stand for 60 s of campaign."""
    if ctx.faults.empty:
        return [result("error budget", "error_budget", SKIPPED,
                       "no fault in this run: no budget burned by a fault")]
    slo, period_s = float(cfg["slo"]), float(cfg["period_days"]) * 86400.0
    max_burn, max_budget = cfg.get("max_burn_rate"), cfg.get("max_budget")
    speed = _speed(ctx)
    out = []
    for fault in ctx.faults.itertuples():
        rec = recoveries.get(fault.name, {})
        end = fault.end_s
        if rec.get("measured") is not None:
            end = max(end, fault.start_s + rec["measured"])
        elif rec.get("verdict") == FAIL:
            end = ctx.run.duration_s
        window = {"name": f"fault:{fault.name}", "start_s": fault.start_s,
                  "end_s": max(end, fault.start_s + 1e-3)}
        part = ctx.samples(window, "*")
        if part.empty:
            out.append(result(f"error budget {fault.name}", "error_budget", SKIPPED,
                              "no requests in the fault's impact window", window=_win(window)))
            continue
        bad = int((~part["ok"]).sum())
        rate = bad / len(part)
        burn = rate / (1.0 - slo)
        seconds = (window["end_s"] - window["start_s"]) * speed
        budget = burn * seconds / period_s
        failed = []
        if max_burn is not None and burn > max_burn:
            failed.append(f"burn rate {burn:.1f}x > {max_burn:g}x")
        if max_budget is not None and budget > max_budget:
            failed.append(f"budget used {budget:.3%} > {max_budget:.3%}")
        verdict = FAIL if failed else PASS
        measured, threshold, unit = (burn, max_burn, "x") if max_burn is not None else (
            budget, max_budget, "ratio")
        reason = "; ".join(failed) if failed else (
            f"burn rate {burn:.1f}x, {budget:.4%} of the {cfg['period_days']:g}-day budget used")
        out.append(result(f"error budget {fault.name}", "error_budget", verdict, reason,
                          measured=measured, threshold=threshold, unit=unit,
                          window=_win(window),
                          evidence={"requests": len(part), "errors": bad, "error_rate": rate,
                                    "burn_rate": burn, "budget_used": budget,
                                    "campaign_seconds": seconds, "speed": speed, "slo": slo}))
    return out


def _alarm_events(ctx: Context, names: list[str] | None) -> pd.DataFrame:
    ev = ctx.run.events.loc[ctx.run.events["kind"] == "alarm_state"].copy()
    if names:
        ev = ev.loc[ev["resource"].isin(names)]
    ev["to"] = [parse_detail(d).get("to") for d in ev["detail"]]
    return ev


def time_to_detect(ctx: Context, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    max_s = float(cfg["max_s"])
    names = cfg.get("alarms")
    judged = ctx.faults
    if cfg.get("faults"):
        # only faults that should page are judged: an instance loss the ASG absorbs
        # without user impact is not expected to raise an alarm
        judged = judged.loc[judged["name"].isin(cfg["faults"])]
    if judged.empty:
        reason = ("none of the faults named in time_to_detect.faults ran"
                  if cfg.get("faults") else "no fault in this run")
        return [result("time to detect", "time_to_detect", SKIPPED, reason,
                       threshold=max_s, unit="s")]
    all_alarms = _alarm_events(ctx, None)
    planned = (ctx.run.plan.get("target") or {}).get("alarms")
    if all_alarms.empty and not planned and not names:
        return [result("time to detect", "time_to_detect", SKIPPED,
                       "no alarm history was collected (no alarm_state events, no alarms in "
                       "the plan)", threshold=max_s, unit="s")]
    alarms = _alarm_events(ctx, names)
    to_alarm = alarms.loc[alarms["to"] == "ALARM"]
    out = []
    for fault in judged.itertuples():
        start = ctx.run.t0 + fault.start_s
        window = {"name": f"fault:{fault.name}", "start_s": fault.start_s, "end_s": fault.end_s}
        after = to_alarm.loc[to_alarm["ts"] >= start]
        name = f"time to detect {fault.name}"
        if after.empty:
            out.append(result(name, "time_to_detect", FAIL,
                              "no alarm went to ALARM after the fault started",
                              threshold=max_s, unit="s", window=_win(window),
                              evidence={"alarms_watched": names or planned or "all"}))
            continue
        first = after.iloc[0]
        ttd = float(first["ts"] - start)
        verdict = PASS if ttd <= max_s else FAIL
        out.append(result(name, "time_to_detect", verdict,
                          f"{first['resource']} went to ALARM {ttd:.1f} s after the fault "
                          f"started ({'<=' if verdict == PASS else '>'} {max_s:g} s)",
                          measured=ttd, threshold=max_s, unit="s", window=_win(window),
                          evidence={"alarm": first["resource"],
                                    "alarm_s": float(first["ts"] - ctx.run.t0),
                                    "fault_start_s": fault.start_s,
                                    "window_source": fault.source}))
    return out


def _metric(ctx: Context, metric: str) -> pd.DataFrame:
    m = ctx.run.metrics
    frame = m.loc[m["metric"] == metric]
    if frame.empty:
        return frame
    return (frame.groupby("ts", as_index=False)["value"].max()
            .assign(t_s=lambda d: d["ts"] - ctx.run.t0).sort_values("t_s"))


def load_rise(ctx: Context, fraction: float = 0.1) -> float | None:
    """When the offered load starts to climb: the profile when recorded, else the
    scheduled arrival rate smoothed over 5 s."""
    if ctx.profile is not None:
        t, rps = ctx.profile[:, 0], ctx.profile[:, 1]
        grid = np.linspace(0, t[-1], 4001)
        rate = np.interp(grid, t, rps)
        base, top = rate[0], rate.max()
    else:
        intended = ctx.run.samples["intended_ts"].to_numpy() - ctx.run.t0
        if len(intended) == 0:
            return None
        counts = np.bincount(np.clip(intended, 0, None).astype(int))
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


def _level_before(frame: pd.DataFrame, t_s: float) -> float | None:
    before = frame.loc[frame["t_s"] <= t_s, "value"]
    if len(before):
        return float(before.iloc[-1])
    return float(frame["value"].iloc[0]) if len(frame) else None


def scale_out(ctx: Context, cfg: dict[str, Any]) -> dict[str, Any]:
    """Load rise -> alarm -> desired -> in service -> healthy, each from AWS evidence."""
    max_lag = float(cfg["max_lag_s"])
    name = "scale-out lag"
    desired_m, in_service_m = _metric(ctx, "GroupDesiredCapacity"), _metric(
        ctx, "GroupInServiceInstances")
    healthy_m = _metric(ctx, "HealthyHostCount")
    ev = ctx.run.events
    activities = ev.loc[ev["kind"] == "scaling_activity"]
    if desired_m.empty and in_service_m.empty and healthy_m.empty and activities.empty:
        return result(name, "scale_out", SKIPPED, "no Auto Scaling evidence collected (no group "
                      "metrics, no scaling activities)", threshold=max_lag, unit="s")
    rise = load_rise(ctx, float(cfg.get("rise", 0.1)))
    if rise is None:
        return result(name, "scale_out", SKIPPED, "the offered load never rises: nothing "
                      "should scale out", threshold=max_lag, unit="s")
    steps: dict[str, float | None] = {"load_rise_s": rise}
    alarms = _alarm_events(ctx, None)
    to_alarm = alarms.loc[(alarms["to"] == "ALARM") & (alarms["ts"] >= ctx.run.t0 + rise)]
    steps["alarm_s"] = float(to_alarm["ts"].iloc[0] - ctx.run.t0) if len(to_alarm) else None
    # A replacement after an instance kill is an activity too, but not a scale-out: only
    # an activity that raises the desired capacity counts (or the metric rising).
    acts = activities.loc[activities["ts"] >= ctx.run.t0 + rise]
    raising = [float(ts - ctx.run.t0) for ts, d in zip(acts["ts"], acts["detail"], strict=True)
               if _raises_desired(parse_detail(d))]
    candidates = raising[:1]
    if len(desired_m):
        d = _first_rise(desired_m, rise, _level_before(desired_m, rise))
        if d is not None:
            candidates.append(d)
    steps["desired_s"] = min(candidates) if candidates else None
    after = steps["desired_s"] if steps["desired_s"] is not None else rise
    steps["in_service_s"] = _first_rise(in_service_m, after, _level_before(
        in_service_m, rise)) if len(in_service_m) else None
    steps["healthy_s"] = _first_rise(healthy_m, after, _level_before(
        healthy_m, rise)) if len(healthy_m) else None
    evidence = {**steps, "metric_period_s": _period(ctx)}
    if steps["desired_s"] is None:
        return result(name, "scale_out", FAIL, f"the load rose at {rise:.0f} s but the group "
                      "never scaled out", threshold=max_lag, unit="s", evidence=evidence)
    last_key = next((k for k in ("healthy_s", "in_service_s") if steps[k] is not None), None)
    if last_key is None:
        return result(name, "scale_out", FAIL, "desired capacity rose at "
                      f"{steps['desired_s']:.0f} s but no new instance came into service",
                      threshold=max_lag, unit="s", evidence=evidence)
    lag = float(steps[last_key] - rise)
    verdict = PASS if lag <= max_lag else FAIL
    chain = " -> ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.0f} s"
                        for k, v in steps.items() if v is not None)
    return result(name, "scale_out", verdict,
                  f"{lag:.0f} s from load rise to {last_key.removesuffix('_s').replace('_', ' ')}"
                  f" ({chain})", measured=lag, threshold=max_lag, unit="s",
                  window={"name": "scale-out", "start_s": rise, "end_s": steps[last_key]},
                  evidence=evidence)


DESIRED_CHANGE = re.compile(r"desired capacity from (\d+) to (\d+)", re.IGNORECASE)


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


def plateaus(points: np.ndarray, min_s: float) -> list[tuple[float, float, float]]:
    """Flat stretches (start, end, rps) of the profile lasting at least ``min_s``."""
    out = []
    for (t1, r1), (t2, r2) in zip(points[:-1], points[1:], strict=True):
        if abs(r1 - r2) <= 1e-9 * max(1.0, abs(r1)) and t2 - t1 >= min_s and r1 > 0:
            if out and abs(out[-1][2] - r1) < 1e-9 and abs(out[-1][1] - t1) < 1e-9:
                out[-1] = (out[-1][0], t2, r1)
            else:
                out.append((t1, t2, r1))
    return out


def capacity(ctx: Context, cfg: dict[str, Any]) -> dict[str, Any]:
    """Highest plateau held within SLO, per in-service instance, where the profile steps."""
    name = "capacity per instance"
    if ctx.profile is None:
        return result(name, "capacity", SKIPPED, "no load profile recorded (settings.json): "
                      "cannot find plateaus")
    steps = plateaus(ctx.profile, float(cfg.get("min_plateau_s", 3.0)))
    if len({round(s[2], 6) for s in steps}) < 2:
        return result(name, "capacity", SKIPPED, "the profile does not step (fewer than two "
                      "plateaus): no capacity evidence")
    instances = _metric(ctx, "GroupInServiceInstances")
    if instances.empty:
        instances = _metric(ctx, "HealthyHostCount")
    rows = []
    for start, end, rps in steps:
        settle = start + 0.2 * (end - start)  # skip the transient after each step
        window = {"name": f"plateau {rps:g} rps", "start_s": settle, "end_s": end}
        part = ctx.samples(window, "*")
        if part.empty:
            continue
        ok = part["rt_ms"].to_numpy()[part["ok"].to_numpy()]
        p95 = float(np.quantile(ok, 0.95)) if len(ok) else float("nan")
        err = float(1 - len(ok) / len(part))
        achieved = len(part) / (end - settle)
        n_inst = None
        if len(instances):
            sel = instances.loc[(instances["t_s"] >= settle) & (instances["t_s"] < end), "value"]
            n_inst = float(sel.mean()) if len(sel) else _level_before(instances, settle)
        within = bool(len(ok) and p95 <= cfg["p95_ms"] and err <= cfg["error_rate"]
                      and achieved >= 0.95 * rps)
        rows.append({"offered_rps": rps, "achieved_rps": achieved, "p95_ms": p95,
                     "error_rate": err, "instances": n_inst, "within_slo": within,
                     "start_s": settle, "end_s": end})
    held = [r for r in rows if r["within_slo"]]
    evidence = {"plateaus": rows, "slo": {"p95_ms": cfg["p95_ms"],
                                           "error_rate": cfg["error_rate"]}}
    if not held:
        return result(name, "capacity", FAIL, "no plateau was held within SLO",
                      threshold=cfg.get("min_rps_per_instance"), comparison=">=", unit="rps",
                      evidence=evidence)
    best = max(held, key=lambda r: r["offered_rps"])
    per = best["achieved_rps"] / best["instances"] if best["instances"] else None
    evidence["highest_within_slo"] = best
    evidence["tested_maximum"] = bool(best["offered_rps"] == max(r["offered_rps"] for r in rows))
    limit = cfg.get("min_rps_per_instance")
    window = {"name": best and f"plateau {best['offered_rps']:g} rps",
              "start_s": best["start_s"], "end_s": best["end_s"]}
    measured = per if per is not None else best["achieved_rps"]
    unit = "rps/instance" if per is not None else "rps (instances unknown)"
    note = " (the highest plateau tested: true capacity may be higher)" if \
        evidence["tested_maximum"] else ""
    if limit is not None and per is not None and per < limit:
        return result(name, "capacity", FAIL, f"{per:.1f} rps per instance < {limit:g}",
                      measured=measured, threshold=limit, comparison=">=", unit=unit,
                      window=_win(window), evidence=evidence)
    return result(name, "capacity", PASS,
                  f"{best['offered_rps']:g} rps held within SLO"
                  + (f" on {best['instances']:.1f} instances = {per:.1f} rps per instance"
                     if per is not None else "") + note,
                  measured=measured, threshold=limit, comparison=">=", unit=unit,
                  window=_win(window), evidence=evidence)


def orders_integrity(ctx: Context) -> dict[str, Any]:
    """Every order the storefront confirmed must be found afterwards through its API."""
    name = "data integrity: confirmed orders"
    confirmed = ctx.run.orders
    checked = ctx.run.integrity
    if checked is None:
        if confirmed.empty:
            return result(name, "integrity", SKIPPED, "no confirmed orders in this run",
                          figure=None)
        return result(name, "integrity", SKIPPED,
                      f"{len(confirmed)} confirmed orders but integrity/orders.parquet was not "
                      "written (the orders were not looked up after the load)", figure=None)
    checked = checked.assign(order_id=lambda d: d["order_id"].astype(str))
    confirmed_ids = pd.Index(confirmed["order_id"]).unique()
    checked_ids = pd.Index(checked["order_id"]).unique()
    ids = confirmed_ids.union(checked_ids)
    if not len(ids):
        return result(name, "integrity", SKIPPED, "no confirmed orders in this run", figure=None)
    not_found = checked.loc[~checked["found"].astype(bool)]
    gone = not_found["status"].astype(int).isin([404, 410])
    missing = not_found.loc[gone, "order_id"].tolist()
    unverified = not_found.loc[~gone, "order_id"].tolist()
    unchecked = sorted(confirmed_ids.difference(checked_ids))
    lost = len(missing) + len(unverified) + len(unchecked)
    evidence = {"confirmed": len(ids), "looked_up": len(checked), "missing": len(missing),
                "lookup_failed": len(unverified), "not_looked_up": len(unchecked),
                "missing_ids": missing[:20], "lookup_failed_ids": unverified[:20],
                "not_looked_up_ids": unchecked[:20],
                "lookup_status": checked["status"].astype(str).value_counts().to_dict()}
    if lost:
        why = []
        if missing:
            why.append(f"{len(missing)} of {len(checked)} confirmed orders not found "
                       f"(e.g. {', '.join(missing[:3])})")
        if unverified:
            why.append(f"{len(unverified)} lookups failed without an answer (HTTP status "
                       f"{', '.join(sorted(set(not_found.loc[~gone, 'status'].astype(str))))})")
        if unchecked:
            why.append(f"{len(unchecked)} confirmed orders never looked up")
        return result(name, "integrity", FAIL, "; ".join(why), measured=lost, threshold=0,
                      unit="orders lost", evidence=evidence, figure=None)
    return result(name, "integrity", PASS, f"all {len(checked)} confirmed orders found",
                  measured=0, threshold=0, unit="orders lost", evidence=evidence, figure=None)


SESSION_LOST = "session lost"
LOGIN = "POST /api/login"


def _logged_in(samples: pd.DataFrame, before_ts: float) -> set[str]:
    """Users with a successful login before ``before_ts``: only they had a session to lose."""
    login = samples.loc[(samples["endpoint"] == LOGIN) & samples["ok"]
                        & (samples["ts"] < before_ts), "user"]
    return set(login.astype(str))


def session_survival(ctx: Context, required: bool | float) -> list[dict[str, Any]]:
    """Users with a session (logged in before a cache failover and active in the 30 s before
    it) whose session was lost during it; users who never logged in had nothing to lose."""
    need = 1.0 if required is True else float(required)
    cache = ctx.faults.loc[ctx.faults["kind"] == "cache"]
    if cache.empty:
        return [result("session survival", "integrity", SKIPPED,
                       "no cache failover in this run: session survival not exercised",
                       threshold=need, comparison=">=", unit="ratio")]
    out = []
    for fault in cache.itertuples():
        before = ctx.samples({"start_s": max(0.0, fault.start_s - 30.0),
                              "end_s": fault.start_s}, "*")
        during = ctx.samples({"start_s": fault.start_s, "end_s": fault.end_s + 30.0}, "*")
        active = set(before["user"].astype(str)) & _logged_in(ctx.run.samples,
                                                              ctx.run.t0 + fault.start_s)
        lost_mask = during["error"].astype(str).str.startswith(SESSION_LOST)
        lost = set(during.loc[lost_mask, "user"].astype(str))
        lost_active = lost & active
        name = f"session survival {fault.name}"
        window = {"name": f"fault:{fault.name}", "start_s": fault.start_s, "end_s": fault.end_s}
        if not active:
            out.append(result(name, "integrity", SKIPPED, "no logged-in user was active in the 30 s "
                              "before the cache failover", threshold=need, comparison=">=", unit="ratio",
                              window=_win(window)))
            continue
        survival = 1.0 - len(lost_active) / len(active)
        verdict = PASS if survival >= need else FAIL
        out.append(result(name, "integrity", verdict,
                          f"{len(active) - len(lost_active)} of {len(active)} active sessions "
                          f"survived ({survival:.1%} {'>=' if verdict == PASS else '<'} "
                          f"{need:.1%})", measured=survival, threshold=need, comparison=">=", unit="ratio",
                          window=_win(window),
                          evidence={"active_users": len(active), "lost": len(lost_active),
                                    "lost_requests": int(lost_mask.sum()),
                                    "lost_users": sorted(lost_active)[:20],
                                    "window_source": fault.source}))
    return out


def context(run: Run) -> Context:
    return Context(run, phases_mod.phases(run), phases_mod.faults(run),
                   phases_mod.profile_points(run))
