"""The run's timeline: phases (warm-up, ramp, peak, recovery) and fault windows.

Offsets are seconds from the load start (``Run.t0``). Phases come, in this order of
trust, from ``phase`` events the run recorded, the plan's ``phases``, the load profile
(derived), or one whole-run phase. Fault windows start and end at the infrastructure
events (failover start/end, instance terminate/launch) when present, else at the chaos
``fault_start``/``fault_end`` events, else at the journal; ``source`` says which.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import Run, parse_detail

WINDOW_COLUMNS = ["name", "kind", "start_s", "end_s", "source"]
FAULT_COLUMNS = ["name", "kind", "start_s", "end_s", "source", "chaos_start_s", "chaos_end_s",
                 "resource", "status"]
INFRA_START = {"db_failover_start": "db", "cache_failover_start": "cache",
               "instance_terminate": "instance"}
INFRA_END = {"db": "db_failover_end", "cache": "cache_failover_end", "instance": "instance_launch"}


def validate(phases: Any) -> list[str]:
    """Errors naming the field (``phases[1].end_s: ...``); empty when the list is fine."""
    if phases is None:
        return []
    if not isinstance(phases, list):
        return ["phases: must be a list of {name, start_s, end_s}"]
    errors: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(phases):
        where = f"phases[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be a mapping with name, start_s, end_s")
            continue
        unknown = set(item) - {"name", "start_s", "end_s", "description"}
        if unknown:
            errors.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{where}.name: must be a non-empty string")
        elif name in seen:
            errors.append(f"{where}.name: duplicate phase name {name!r}")
        elif name.startswith("fault:") or name in ("*", "faults", "run"):
            errors.append(f"{where}.name: {name!r} is reserved")
        else:
            seen.add(name)
        start, end = item.get("start_s"), item.get("end_s")
        if not _number(start) or start < 0:
            errors.append(f"{where}.start_s: must be a number >= 0")
        if not _number(end):
            errors.append(f"{where}.end_s: must be a number")
        elif _number(start) and end <= start:
            errors.append(f"{where}.end_s: must be greater than start_s ({start})")
    return errors


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def profile_points(run: Run) -> np.ndarray | None:
    """The offered-load profile ``[[t_s, rps], ...]`` after scale and speed, if recorded."""
    raw = None
    for key in ("profile", "profile_points", "points"):
        if run.settings.get(key):
            raw = run.settings[key]
            break
    if raw is None:
        return None
    if isinstance(raw, dict) and "t_s" in raw and "rps" in raw:  # columns, as load writes it
        raw = [{"t_s": t, "rps": r} for t, r in zip(raw["t_s"], raw["rps"], strict=False)]
    try:
        rows = [(float(p["t_s"]), float(p["rps"])) if isinstance(p, dict) else
                (float(p[0]), float(p[1])) for p in raw]
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return np.asarray(sorted(rows), dtype=float) if rows else None


def derive_phases(points: np.ndarray, duration_s: float) -> list[dict[str, Any]]:
    """warm-up / ramp / peak / recovery from the profile: peak is where the rate is within
    10% of its maximum, ramp is the climb from the last base-level point before it."""
    t, rps = points[:, 0], points[:, 1]
    end = max(duration_s, float(t[-1]))
    lo, hi = float(rps.min()), float(rps.max())
    if hi - lo < 1e-9 * max(hi, 1.0):
        return [{"name": "steady", "start_s": 0.0, "end_s": end}]
    grid = np.linspace(0.0, float(t[-1]), 2001)
    rate = np.interp(grid, t, rps)
    peak_idx = np.flatnonzero(rate >= hi - 0.1 * (hi - lo))
    peak_start, peak_end = grid[peak_idx[0]], grid[peak_idx[-1]]
    base = np.flatnonzero((rate <= lo + 0.1 * (hi - lo)) & (grid < peak_start))
    ramp_start = grid[base[-1]] if len(base) else 0.0
    phases = [("warm-up", 0.0, ramp_start), ("ramp", ramp_start, peak_start),
              ("peak", peak_start, peak_end), ("recovery", peak_end, end)]
    return [{"name": n, "start_s": round(s, 3), "end_s": round(e, 3)} for n, s, e in phases
            if e - s > 1e-6]


def phases(run: Run) -> pd.DataFrame:
    """The phase windows of the run with where each came from."""
    recorded = run.events.loc[run.events["kind"] == "phase"]
    if len(recorded):
        rows = []
        for ev in recorded.itertuples():
            detail = parse_detail(ev.detail)
            start = float(detail.get("start", ev.ts))
            end = float(detail.get("end", run.t_end))
            rows.append((ev.resource, "phase", start - run.t0, end - run.t0, "recorded events"))
        return pd.DataFrame(rows, columns=WINDOW_COLUMNS)
    planned = run.plan.get("phases")
    if planned and not validate(planned):
        return pd.DataFrame([(p["name"], "phase", float(p["start_s"]), float(p["end_s"]), "plan")
                             for p in planned], columns=WINDOW_COLUMNS)
    points = profile_points(run)
    if points is not None:
        return pd.DataFrame([(p["name"], "phase", p["start_s"], p["end_s"], "profile")
                             for p in derive_phases(points, run.duration_s)],
                            columns=WINDOW_COLUMNS)
    return pd.DataFrame([("run", "phase", 0.0, run.duration_s, "whole run")],
                        columns=WINDOW_COLUMNS)


def _kind_from_name(name: str) -> str:
    low = name.lower()
    for kind, words in (("db", ("db", "aurora", "rds", "postgres")),
                        ("cache", ("cache", "redis", "elasticache", "session")),
                        ("instance", ("instance", "ec2", "asg", "web", "kill"))):
        if any(w in low for w in words):
            return kind
    return "other"


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def chaos_windows(run: Run) -> list[dict[str, Any]]:
    """Faults as the chaos side saw them: fault_start/fault_end events, else journals."""
    ev = run.events
    out: list[dict[str, Any]] = []
    starts = ev.loc[ev["kind"] == "fault_start"]
    for start in starts.itertuples():
        ends = ev.loc[(ev["kind"] == "fault_end") & (ev["resource"] == start.resource)
                      & (ev["ts"] >= start.ts)]
        end = ends.iloc[0] if len(ends) else None
        detail = parse_detail(end["detail"]) if end is not None else {}
        out.append({"name": str(start.resource), "start": float(start.ts),
                    "end": float(end["ts"]) if end is not None else None,
                    "status": detail.get("status", "no fault_end event")})
    if out:
        return out
    for name, journal in run.journals.items():
        acts = journal.get("run") or []
        start = _epoch(acts[0].get("start")) if acts else _epoch(journal.get("start"))
        end = _epoch(journal.get("end"))
        if start is not None:
            out.append({"name": name, "start": start, "end": end,
                        "status": journal.get("status", "unknown")})
    return out


def faults(run: Run) -> pd.DataFrame:
    """One row per fault with its real window (offsets from load start) and its source."""
    ev = run.events
    infra = ev.loc[ev["kind"].isin(list(INFRA_START))].copy()
    used: set[int] = set()
    rows = []
    for chaos in chaos_windows(run):
        c_end = chaos["end"] if chaos["end"] is not None else run.t_end
        near = infra.loc[(infra["ts"] >= chaos["start"] - 2.0) & (infra["ts"] <= c_end + 5.0)
                         & ~infra.index.isin(list(used))]
        if len(near):
            guess = _kind_from_name(chaos["name"])
            same = near.loc[near["kind"].map(INFRA_START) == guess]
            first = (same if len(same) else near).iloc[0]
            used.add(int(first.name))
            kind = INFRA_START[first["kind"]]
            start, end = float(first["ts"]), _infra_end(run, kind, float(first["ts"]))
            source, resource = "infrastructure events", str(first["resource"])
            end = end if end is not None else c_end
        else:
            kind, start, end = _kind_from_name(chaos["name"]), chaos["start"], c_end
            source, resource = "chaos events" if len(ev.loc[ev["kind"] == "fault_start"]) \
                else "journal", ""
        rows.append((chaos["name"], kind, start - run.t0, end - run.t0, source,
                     chaos["start"] - run.t0, c_end - run.t0, resource, chaos["status"]))
    for idx, first in infra.iterrows():
        kind = INFRA_START[first["kind"]]
        # An instance terminated outside any fault is a scale-in, not a fault; a second
        # start event inside a window already found is the same failover seen twice.
        if idx in used or kind == "instance":
            continue
        t = float(first["ts"]) - run.t0
        if any(r[1] == kind and r[2] - 2.0 <= t <= r[3] + 5.0 for r in rows):
            continue
        end = _infra_end(run, kind, float(first["ts"]))
        end = end if end is not None else run.t_end
        rows.append((f"{first['kind'].removesuffix('_start')} {first['resource']}", kind,
                     float(first["ts"]) - run.t0, end - run.t0, "infrastructure events",
                     None, None, str(first["resource"]), "not injected by this run"))
    frame = pd.DataFrame(rows, columns=FAULT_COLUMNS)
    return frame.sort_values("start_s", kind="stable").reset_index(drop=True)


def _infra_end(run: Run, kind: str, start: float) -> float | None:
    """The matching end event; for an instance, also wait until the load balancer has as
    many healthy hosts as before (a replacement launched is not yet serving)."""
    ev = run.events
    ends = ev.loc[(ev["kind"] == INFRA_END[kind]) & (ev["ts"] >= start), "ts"]
    end = float(ends.iloc[0]) if len(ends) else None
    if kind == "instance":
        restored = _healthy_restored(run.metrics, start)
        if restored is not None:
            end = max(end or restored, restored)
    return end


def _healthy_restored(metrics: pd.DataFrame, start: float) -> float | None:
    """Start of the first period at or after ``start`` whose minimum HealthyHostCount is
    back to the level of the last period that ended before ``start``."""
    hh = metrics.loc[metrics["metric"] == "HealthyHostCount"]
    if hh.empty:
        return None
    if (hh["stat"] == "Minimum").any():
        hh = hh.loc[hh["stat"] == "Minimum"]
    series = hh.groupby("ts", as_index=False).agg(value=("value", "min"),
                                                  period=("period_s", "max"))
    period = series["period"].fillna(0.0)
    before = series.loc[series["ts"] + period <= start, "value"]
    if before.empty:
        return None
    after = series.loc[(series["ts"] + period > start) & (series["value"] >= before.iloc[-1])]
    return float(after["ts"].iloc[0]) if len(after) else None


def windows(run: Run, phase_frame: pd.DataFrame | None = None,
            fault_frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Phases and fault windows together, the unit every per-window statistic uses."""
    ph = phases(run) if phase_frame is None else phase_frame
    fa = faults(run) if fault_frame is None else fault_frame
    fault_rows = fa.assign(name=lambda d: "fault:" + d["name"], kind="fault")[WINDOW_COLUMNS]
    parts = [p for p in (ph[WINDOW_COLUMNS], fault_rows) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=WINDOW_COLUMNS)
