"""What every check reads (the run, its phases and faults, the profile, the baseline) and
the window helpers several kinds share: one definition of a fault's window, of a window's
p95 and error rate, of the alarm transitions and of a metric's series."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis import phases as phases_mod
from analysis.checks.fields import is_number
from analysis.checks.result import SKIPPED, CheckResult
from analysis.load import Run, parse_detail
from analysis.stats import window_slice


@dataclass
class Context:
    """The run plus its timeline, computed once for all checks."""

    run: Run
    phases: pd.DataFrame
    faults: pd.DataFrame
    profile: np.ndarray | None
    baseline: Run | None = None

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

    def speed(self) -> float:
        """The plan's time compression: a 10x run's 6 s stand for 60 s of campaign."""
        speed = ((self.run.plan.get("load") or {}).get("speed")
                 or self.run.settings.get("speed") or 1.0)
        return float(speed) if is_number(speed) and speed > 0 else 1.0


def context(run: Run, baseline: Run | None = None) -> Context:
    return Context(run, phases_mod.phases(run), phases_mod.faults(run),
                   phases_mod.profile_points(run), baseline)


def win(window: dict[str, Any]) -> dict[str, Any]:
    """A window as verdict.json shows it."""
    return {"name": window["name"], "start_s": round(window["start_s"], 3),
            "end_s": round(window["end_s"], 3)}


def fault_window(fault: Any, end_s: float | None = None) -> dict[str, Any]:
    """A fault's window (start to end, or to ``end_s``), named ``fault:NAME``."""
    return {"name": f"fault:{fault.name}", "start_s": float(fault.start_s),
            "end_s": float(fault.end_s if end_s is None else end_s)}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-") or "fault"


def fault_figure(name: str) -> str:
    return f"figures/fault-{slug(name)}.png"


def slo_stats(part: pd.DataFrame) -> tuple[int, float, float]:
    """``(requests, error_rate, p95 of successful requests)``; NaN where there is none."""
    ok = part["rt_ms"].to_numpy()[part["ok"].to_numpy()]
    n = len(part)
    err = float(1 - len(ok) / n) if n else float("nan")
    p95 = float(np.quantile(ok, 0.95)) if len(ok) else float("nan")
    return n, err, p95


def within_slo(n: int, err: float, p95: float, p95_ms: float, max_error_rate: float) -> bool:
    return bool(n and np.isfinite(p95) and p95 <= p95_ms and err <= max_error_rate)


def no_window(check: str, selector: str, ctx: Context) -> CheckResult:
    known = ", ".join(ctx.phases["name"]) or "none"
    return CheckResult(f"{check} {selector}", check, SKIPPED,
                       f"no window {selector!r} in this run (phases: {known}; faults: "
                       f"{', '.join(ctx.faults['name']) or 'none'})")


def alarm_events(ctx: Context, names: list[str] | None) -> pd.DataFrame:
    """Alarm state transitions (``to`` column added), optionally of the named alarms."""
    ev = ctx.run.events.loc[ctx.run.events["kind"] == "alarm_state"].copy()
    if names:
        ev = ev.loc[ev["resource"].isin(names)]
    ev["to"] = [parse_detail(d).get("to") for d in ev["detail"]]
    return ev


def metric(ctx: Context, name: str) -> pd.DataFrame:
    """One metric's series (max over dimensions per timestamp) with ``t_s`` from run start."""
    m = ctx.run.metrics
    frame = m.loc[m["metric"] == name]
    if frame.empty:
        return frame
    return (frame.groupby("ts", as_index=False)["value"].max()
            .assign(t_s=lambda d: d["ts"] - ctx.run.t0).sort_values("t_s"))


def level_before(frame: pd.DataFrame, t_s: float) -> float | None:
    before = frame.loc[frame["t_s"] <= t_s, "value"]
    if len(before):
        return float(before.iloc[-1])
    return float(frame["value"].iloc[0]) if len(frame) else None
