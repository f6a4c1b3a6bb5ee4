"""Campaign traffic profiles: an arrival rate (requests/s) over time, as a CSV ``t_s,rps``.

The rate between two points is interpolated linearly, so a profile of a few rows
describes ramps exactly, and the number of arrivals up to any time is the exact
integral of that piecewise-linear curve (see ``arrival_times``). After the last point the
profile ends: ``duration_s`` is the last ``t_s``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from peakready.errors import BadInput

COLUMNS = ["t_s", "rps"]


@dataclass(frozen=True)
class Profile:
    """Validated points; every transform returns a new profile."""

    points: pd.DataFrame
    source: str = ""

    @property
    def duration_s(self) -> float:
        return float(self.points["t_s"].iloc[-1])

    @property
    def peak_rps(self) -> float:
        return float(self.points["rps"].max())

    def scaled(self, x: float) -> Profile:
        """Growth: every rate times ``x`` (1.5 = plan for 50 % more traffic)."""
        if not (x > 0 and math.isfinite(x)):
            raise BadInput(f"scale must be a positive number, got {x!r}")
        return Profile(self.points.assign(rps=self.points["rps"] * x), self.source)

    def compressed(self, speed: float) -> Profile:
        """Time compression: a day at speed 96 lasts 15 min, with the same rates."""
        if not (speed > 0 and math.isfinite(speed)):
            raise BadInput(f"speed must be a positive number, got {speed!r}")
        return Profile(self.points.assign(t_s=self.points["t_s"] / speed), self.source)

    def truncated(self, duration_s: float) -> Profile:
        """Cut at ``duration_s`` (the rate there is interpolated, so the shape is kept)."""
        if not (duration_s > 0 and math.isfinite(duration_s)):
            raise BadInput(f"duration must be a positive number of seconds, got {duration_s!r}")
        if duration_s >= self.duration_s:
            return self
        head = self.points[self.points["t_s"] < duration_s]
        tail = pd.DataFrame({"t_s": [float(duration_s)], "rps": [self.rate_at(duration_s)]})
        return Profile(pd.concat([head, tail], ignore_index=True), self.source)

    def rate_at(self, t_s: float) -> float:
        """Linear interpolation; 0 outside the profile."""
        if t_s < 0 or t_s > self.duration_s:
            return 0.0
        return float(np.interp(t_s, self.points["t_s"], self.points["rps"]))

    def arrivals_until(self, t_s: float) -> float:
        """Expected number of arrivals in [0, t_s]: the integral of the rate."""
        t = self.points["t_s"].to_numpy()
        r = self.points["rps"].to_numpy()
        t_end = min(max(t_s, 0.0), self.duration_s)
        grid = np.append(t[t < t_end], t_end)
        return float(np.trapezoid(np.interp(grid, t, r), grid))

    @property
    def total_arrivals(self) -> float:
        return self.arrivals_until(self.duration_s)

    def to_csv(self, path: Path | str) -> None:
        self.points.to_csv(path, index=False, float_format="%.6g")


def from_points(t_s: list[float], rps: list[float], source: str = "") -> Profile:
    """Build and validate a profile from two columns (what import and tests use)."""
    return _validated(pd.DataFrame({"t_s": t_s, "rps": rps}), source or "points")


def load_profile(path: Path | str) -> Profile:
    """Read and validate a profile CSV; any problem is one BadInput line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"profile {path}: file not found")
    try:
        frame = pd.read_csv(path, comment="#", skipinitialspace=True, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BadInput(f"profile {path}: not a CSV with columns t_s,rps ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise BadInput(f"profile {path}: missing column(s) {', '.join(missing)} (need t_s,rps)")
    return _validated(frame[COLUMNS], str(path))


def _validated(frame: pd.DataFrame, source: str) -> Profile:
    if frame.empty:
        raise BadInput(f"profile {source}: no points (need at least one row t_s,rps)")
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    for col in COLUMNS:
        bad = numeric[col].isna() | ~np.isfinite(numeric[col].fillna(0))
        if bad.any():
            row = int(bad.idxmax())
            raise BadInput(f"profile {source}: {col} on data row {row + 1} is not a number: "
                           f"{frame[col].iloc[row]!r}")
        negative = numeric[col] < 0
        if negative.any():
            row = int(negative.idxmax())
            raise BadInput(f"profile {source}: {col} on data row {row + 1} is negative: "
                           f"{frame[col].iloc[row]}")
    t = numeric["t_s"]
    step = t.diff().iloc[1:]
    if (step == 0).any():
        row = int(step.eq(0).idxmax())
        raise BadInput(f"profile {source}: duplicate t_s {t.iloc[row]} on data row {row + 1}")
    if (step < 0).any():
        row = int(step.lt(0).idxmax())
        raise BadInput(f"profile {source}: t_s not sorted ascending at data row {row + 1} "
                       f"({t.iloc[row - 1]} then {t.iloc[row]})")
    points = numeric.astype("float64").reset_index(drop=True)
    if points["t_s"].iloc[0] != 0:
        # the schedule starts at 0: hold the first rate from 0 to the first point
        points = pd.concat([pd.DataFrame({"t_s": [0.0], "rps": [points["rps"].iloc[0]]}),
                            points], ignore_index=True)
    if len(points) == 1:
        raise BadInput(f"profile {source}: a single point at t_s=0 has no duration "
                       "(add a last row with the end time)")
    if points["rps"].max() <= 0:
        raise BadInput(f"profile {source}: every rps is 0, nothing to send")
    return Profile(points, source)


def arrival_times(profile: Profile, worker: int = 0, workers: int = 1,
                  from_s: float = 0.0) -> Iterator[float]:
    """Offsets (s from the start) at which arrivals are due, for one of ``workers``.

    Arrival k (k = 0, 1, ...) is due when the integral of the rate reaches k, so the
    schedule is exact for any piecewise-linear profile; worker w takes k = w, w+W, ... so
    the workers together produce exactly the profile, interleaved. ``from_s``: start at
    the first of those due at or after that offset, without walking the ones before.
    """
    if not 0 <= worker < workers:
        raise ValueError(f"worker index {worker} outside 0..{workers - 1}")
    t = profile.points["t_s"].to_numpy()
    r = profile.points["rps"].to_numpy()
    seg_area = (r[:-1] + r[1:]) / 2 * np.diff(t)
    cum = np.concatenate([[0.0], np.cumsum(seg_area)])
    total = cum[-1]
    k = worker
    if from_s > 0:  # the first arrival due at or after from_s (a lost worker's remainder)
        j = min(int(np.searchsorted(t, from_s, side="right")) - 1, len(t) - 2)
        x = min(max(from_s - t[j], 0.0), t[j + 1] - t[j])
        slope = (r[j + 1] - r[j]) / (t[j + 1] - t[j])
        area = cum[j] + r[j] * x + slope / 2 * x * x
        k = worker + max(math.ceil((area - worker) / workers - 1e-9), 0) * workers
    i = 0
    while k < total:
        while cum[i + 1] <= k:
            i += 1
        need = k - cum[i]
        r0, r1, dt = r[i], r[i + 1], t[i + 1] - t[i]
        slope = (r1 - r0) / dt
        # r0*x + slope/2*x^2 = need; the rationalised root is stable for any slope sign
        disc = max(r0 * r0 + 2 * slope * need, 0.0)
        denom = r0 + math.sqrt(disc)
        x = 2 * need / denom if denom > 0 else 0.0
        yield float(t[i] + min(max(x, 0.0), dt))
        k += workers


def from_request_counts(counts: pd.DataFrame, start: float, end: float,
                        period_s: int) -> Profile:
    """A profile from per-period ``RequestCount`` sums (columns ``ts``, ``value``).

    Periods without a datapoint had no requests (the ALB publishes nothing then), so they
    are filled with 0. Each period's rate is placed at the period's start, and the curve
    ends at ``end`` holding the last rate.
    """
    if period_s <= 0:
        raise BadInput(f"period must be a positive number of seconds, got {period_s}")
    if end <= start:
        raise BadInput("the import window must end after it starts")
    grid = np.arange(start, end, period_s, dtype="float64")
    sums = (counts.assign(ts=lambda f: f["ts"].astype("float64"))
            .groupby("ts")["value"].sum()
            .reindex(grid, fill_value=0.0))
    if sums.sum() <= 0:
        raise BadInput("no RequestCount datapoints in the import window "
                       "(check the load balancer name, region and time range)")
    points = (pd.DataFrame({"t_s": grid - start, "rps": sums.to_numpy() / period_s})
              .pipe(lambda f: pd.concat(
                  [f, pd.DataFrame({"t_s": [end - start], "rps": [f["rps"].iloc[-1]]})],
                  ignore_index=True)))
    return _validated(points, f"RequestCount {period_s}s")
