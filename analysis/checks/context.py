"""What every check reads (the run, its phases and faults, the profile, the baseline) and
the window helpers several kinds share: one definition of a fault's window, of a window's
p95 and error rate, of the alarm transitions and of a metric's series."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis import phases as phases_mod
from analysis.checks.fields import is_number
from analysis.checks.result import SKIPPED, CheckResult
from analysis.load import Run, parse_detail
from analysis.samplestore import SampleStore, qkey
from analysis.stats import QUANTILES, window_slice


@dataclass
class Context:
    """The run plus its timeline, computed once for all checks."""

    run: Run
    phases: pd.DataFrame
    faults: pd.DataFrame
    profile: np.ndarray | None
    baseline: Run | None = None
    _windows: dict[tuple[float, float], tuple[pd.DataFrame, dict[str, float]]] = field(
        default_factory=dict, repr=False)

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

    def prefetch(self, checks: Mapping[str, Any] | None,
                 extra: Sequence[tuple[float, float]] = ()) -> None:
        """Tell the store every window and SLO grid the plan's kinds declare (``asks``)
        plus ``extra`` windows (the report's table), so out of core they are answered in
        one pass over the shards rather than one scan each."""
        from analysis.checks.registry import REGISTRY

        windows = [(float(a), float(b)) for a, b in extra]
        quantiles = dict.fromkeys(QUANTILES)
        grids = []
        for kind in REGISTRY.ordered():
            cfg = (checks or {}).get(kind.name)
            if kind.asks is None or (not cfg and not kind.implicit) or (
                    kind.needs_baseline and self.baseline is None):
                continue
            asks = kind.asks(self, cfg)
            for start_s, end_s, qs in asks.windows:
                windows.append((float(start_s), float(end_s)))
                quantiles.update(dict.fromkeys(qs))
            grids += asks.grids
        t0 = self.run.t0
        self.store.prefetch([(t0 + a, t0 + b) for a, b in dict.fromkeys(windows)],
                            list(quantiles), [(t0 + np.asarray(starts, dtype=float), width, q)
                                              for starts, width, q in grids])

    def samples(self, window: dict[str, Any], endpoint: str) -> pd.DataFrame:
        """The window's raw samples. Fine for a small run; at campaign scale this reads the
        whole run into memory: ask ``stats``/``slo_windows``/``users`` instead."""
        part = window_slice(self.run.samples, self.run.t0 + window["start_s"],
                            self.run.t0 + window["end_s"])
        return part if endpoint == "*" else part.loc[part["endpoint"] == endpoint]

    @property
    def store(self) -> SampleStore:
        assert self.run.store is not None
        return self.run.store

    def stats(self, window: dict[str, Any], endpoint: str = "*",
              quantiles: tuple[float, ...] = QUANTILES) -> WindowStats:
        """Counts, error rate and exact percentiles of one window and endpoint, computed
        where the samples are (in memory or out of core); per window the answer for every
        endpoint is computed once and kept."""
        cached = self.window_frame(window["start_s"], window["end_s"], quantiles)
        quantiles = tuple({qkey(q): q for q in (*QUANTILES, *quantiles)}.values())
        if endpoint not in cached.index:
            return WindowStats(0, 0, 0, {}, {}, float("nan"), float("nan"), float("nan"),
                               float("nan"))
        row = cached.loc[endpoint]
        return WindowStats(int(row["requests"]), int(row["errors"]), int(row["ok"]),
                           {q: float(row[f"rt_{qkey(q)}"]) for q in quantiles},
                           {q: float(row[f"corr_{qkey(q)}"]) for q in quantiles},
                           float(row["rt_max"]), float(row["corr_max"]),
                           float(row["max_lag_ms"]), float(row["max_lag_ok_ms"]))

    def window_frame(self, start_s: float, end_s: float,
                     quantiles: tuple[float, ...] = QUANTILES) -> pd.DataFrame:
        """``SampleStore.window`` of ``[start_s, end_s)``, kept per window: the checks and
        the report's table ask the same windows (one pass over a phase, not one per ask)."""
        key = (start_s, end_s)
        cached, have = self._windows.get(key, (None, {}))
        wanted = {qkey(q): q for q in (*QUANTILES, *quantiles)}
        if cached is None or not set(wanted) <= set(have):
            have = {**wanted, **have}
            cached = self.store.window(self.run.t0 + start_s, self.run.t0 + end_s,
                                       list(have.values()))
            self._windows[key] = (cached, have)
        return cached

    def slo_windows(self, starts: np.ndarray, width_s: float,
                    quantile: float = 0.95) -> pd.DataFrame:
        """Fixed windows ``[start, start + width_s)`` (``starts`` evenly spaced by
        ``width_s``): ``start_s``, ``end_s``, ``requests``, ``error_rate`` and ``p95_ms``
        (the ``quantile`` of successful requests) in one pass over the samples."""
        got = self.store.slo_bins(self.run.t0, starts, width_s, quantile)
        edges = np.asarray(starts, dtype=float)
        return pd.DataFrame({"start_s": edges, "end_s": edges + width_s,
                             "requests": got["requests"].to_numpy(),
                             "error_rate": got["error_rate"].to_numpy(),
                             "p95_ms": got["p"].to_numpy()})

    def top_errors(self, window: dict[str, Any], endpoint: str = "*",
                   k: int = 3) -> dict[str, int]:
        return self.store.top_errors(self.run.t0 + window["start_s"],
                                     self.run.t0 + window["end_s"], endpoint, k)

    def outcomes(self, window: dict[str, Any], endpoint: str = "*") -> pd.DataFrame:
        """Requests per endpoint, status and error in the window (``SampleStore.outcomes``):
        what a kind counting particular answers (403, 429, partial results) filters."""
        return self.store.outcomes(self.run.t0 + window["start_s"],
                                   self.run.t0 + window["end_s"], endpoint)

    def users(self, window: dict[str, Any], endpoint: str | None = None,
              ok: bool | None = None, error_prefix: str | None = None) -> pd.Series:
        """Requests per user (index: user) in the window, of ``endpoint``, ``ok`` or not,
        whose error starts with ``error_prefix`` (None: any)."""
        return self.store.users(self.run.t0 + window["start_s"], self.run.t0 + window["end_s"],
                                endpoint, ok, error_prefix)

    def endpoints(self, selector: str) -> list[str]:
        if selector == "each":
            return self.store.endpoints()
        return [selector]

    def speed(self) -> float:
        """The plan's time compression: a 10x run's 6 s stand for 60 s of campaign."""
        speed = ((self.run.plan.get("load") or {}).get("speed")
                 or self.run.settings.get("speed") or 1.0)
        return float(speed) if is_number(speed) and speed > 0 else 1.0


@dataclass(frozen=True)
class WindowStats:
    """One window and endpoint: ``quantiles``/``corrected`` map q (0..1) to the exact
    percentile of successful requests' response time (plain / from the intended start)."""

    requests: int
    errors: int
    ok: int
    quantiles: dict[float, float]
    corrected: dict[float, float]
    max_ms: float
    max_corrected_ms: float
    max_lag_ms: float
    max_lag_ok_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else float("nan")

    def slo(self) -> tuple[int, float, float]:
        """``(requests, error_rate, p95)`` as ``slo_stats`` gives them."""
        return self.requests, self.error_rate, self.quantiles.get(0.95, float("nan"))


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
