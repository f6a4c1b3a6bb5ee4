"""``get_metric_data`` / ``get_metric_statistics`` over the MetricStore.

Pure functions from a request's parameters to the response's data, so the same code
answers API calls and evaluates alarms. Metric math: ids, numbers, + - * /, and
``FILL(x, value)``; anything else is rejected with a clear message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from peakready.sandbox.aws.metricstore import MetricStore, check_stat, is_percentile

_EXPR_TOKENS = re.compile(r"^[A-Za-z0-9_().,+\-*/ ]+$")
_FUNCS = re.compile(r"\b([A-Z][A-Z_]*)\s*\(")


def epoch(value: datetime | float | int | str) -> float:
    """A request timestamp (datetime, epoch seconds or ISO string) as epoch seconds."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def as_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _grid(start: float, end: float, period: int) -> pd.Index:
    return pd.Index(np.arange(start, end, period, dtype=float))


def _fill(series: pd.Series, value: float) -> pd.Series:
    return series.reindex(series.attrs["grid"]).fillna(value)


def _stat_series(store: MetricStore, stat_spec: Mapping, start: float, end: float) -> pd.Series:
    metric = stat_spec["Metric"]
    period = int(stat_spec["Period"])
    points = store.series(metric["Namespace"], metric["MetricName"], metric.get("Dimensions"),
                          check_stat(stat_spec["Stat"]), period, start, end,
                          unit=stat_spec.get("Unit"))
    series = pd.Series(dict(points), dtype=float)
    series.attrs["grid"] = _grid(start, end, period)
    return series


def evaluate_expression(expression: str, known: Mapping[str, pd.Series]) -> pd.Series:
    """A small, safe subset of CloudWatch metric math over named series."""
    if not _EXPR_TOKENS.match(expression):
        raise ValueError(f"metric math expression not supported by the sandbox: {expression!r}")
    unknown = set(_FUNCS.findall(expression)) - {"FILL"}
    if unknown:
        raise ValueError(f"metric math functions not supported by the sandbox: {sorted(unknown)}")
    grid = next((s.attrs["grid"] for s in known.values() if "grid" in s.attrs), None)
    namespace = {"__builtins__": {}, "FILL": _fill, **known}
    try:
        result = eval(expression, namespace)  # noqa: S307 - charset and names checked above
    except Exception as exc:  # a name that is not an id, a syntax error
        raise ValueError(f"metric math expression {expression!r}: {exc}") from exc
    if not isinstance(result, pd.Series):
        raise ValueError(f"metric math expression {expression!r} does not use a metric")
    result = result.dropna()
    if grid is not None:
        result.attrs["grid"] = grid
    return result


def metric_data(store: MetricStore, queries: Sequence[Mapping], start: datetime | float,
                end: datetime | float, scan_by: str = "TimestampDescending") -> list[dict]:
    """MetricDataResults for a GetMetricData request."""
    t0, t1 = epoch(start), epoch(end)
    series: dict[str, pd.Series] = {}
    for query in queries:
        if "MetricStat" in query:
            series[query["Id"]] = _stat_series(store, query["MetricStat"], t0, t1)
    for query in queries:
        if "Expression" in query:
            series[query["Id"]] = evaluate_expression(query["Expression"], series)
    results = []
    for query in queries:
        if not query.get("ReturnData", True):
            continue
        data = series[query["Id"]].sort_index(ascending=scan_by != "TimestampDescending")
        label = query.get("Label") or query.get("MetricStat", {}).get("Metric", {}).get(
            "MetricName", query["Id"])
        results.append({"Id": query["Id"], "Label": label, "StatusCode": "Complete",
                        "Timestamps": [as_datetime(t) for t in data.index],
                        "Values": [float(v) for v in data.to_numpy()], "Messages": []})
    return results


def metric_statistics(store: MetricStore, namespace: str, metric_name: str,
                      dimensions: Sequence[Mapping] | None, start: datetime | float,
                      end: datetime | float, period: int, statistics: Sequence[str] = (),
                      extended: Sequence[str] = (), unit: str | None = None) -> list[dict]:
    """Datapoints for GetMetricStatistics, percentiles under ExtendedStatistics."""
    t0, t1 = epoch(start), epoch(end)
    by_ts: dict[float, dict] = {}
    for stat in list(statistics) + list(extended):
        for ts, value in store.series(namespace, metric_name, dimensions, check_stat(stat),
                                      period, t0, t1, unit=unit):
            point = by_ts.setdefault(ts, {"Timestamp": as_datetime(ts)})
            if is_percentile(stat):
                point.setdefault("ExtendedStatistics", {})[stat] = value
            else:
                point[stat] = value
            if unit:
                point["Unit"] = unit
    return [by_ts[t] for t in sorted(by_ts)]
