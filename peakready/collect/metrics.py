"""CloudWatch metrics for a run window, as the long ``metrics.parquet`` frame.

Three things make this more than one API call: the period must be one CloudWatch still
keeps for data of that age (high resolution is gone after 3 h, 60 s after 15 days, ...);
one ``get_metric_data`` call takes at most 500 queries and 100,800 datapoints; and the
ALB publishes nothing for a period with zero requests/errors, so those series are
zero-filled over the window (otherwise "no 5xx" reads as "no data").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from peakready.runfolder_schema import METRIC_COLUMNS

NAMESPACES = ("AWS/ApplicationELB", "AWS/AutoScaling", "AWS/EC2", "AWS/RDS", "AWS/ElastiCache",
              "AWS/WAFV2", "AWS/ES")

MAX_QUERIES_PER_CALL = 500
MAX_POINTS_PER_CALL = 100_800

# (namespace, metric) -> statistics fetched; anything else gets the namespace default.
_STATS: dict[tuple[str, str], tuple[str, ...]] = {
    ("AWS/ApplicationELB", "TargetResponseTime"): ("Average", "p50", "p95", "p99"),
    ("AWS/ApplicationELB", "HealthyHostCount"): ("Minimum", "Maximum"),
    ("AWS/ApplicationELB", "UnHealthyHostCount"): ("Minimum", "Maximum"),
    ("AWS/ElastiCache", "CacheHits"): ("Sum",),
    ("AWS/ElastiCache", "CacheMisses"): ("Sum",),
    ("AWS/ElastiCache", "Evictions"): ("Sum",),
    # AWS/ES: the statistics AWS's metrics table names for each (cumulative rejections:
    # Maximum, differenced by analysis with a reset guard)
    ("AWS/ES", "SearchRate"): ("Sum", "Average", "Maximum"),
    ("AWS/ES", "ThreadpoolSearchQueue"): ("Maximum", "Average"),
    ("AWS/ES", "Nodes"): ("Minimum", "Maximum"),
    ("AWS/ES", "2xx"): ("Sum",), ("AWS/ES", "4xx"): ("Sum",), ("AWS/ES", "5xx"): ("Sum",),
    ("AWS/ES", "OpenSearchRequests"): ("Sum",),
}
_DEFAULT_STATS: dict[str, tuple[str, ...]] = {
    "AWS/ApplicationELB": ("Sum",),
    "AWS/AutoScaling": ("Maximum",),
    "AWS/EC2": ("Average", "Maximum"),
    "AWS/RDS": ("Average", "Maximum"),
    "AWS/ElastiCache": ("Average", "Maximum"),
    "AWS/WAFV2": ("Sum",),
    "AWS/ES": ("Maximum",),
}


def stats_for(namespace: str, metric: str) -> tuple[str, ...]:
    return _STATS.get((namespace, metric), _DEFAULT_STATS.get(namespace, ("Average",)))


def is_percentile(stat: str) -> bool:
    return stat.startswith("p") and stat[1:].replace(".", "", 1).isdigit()


def zero_filled(namespace: str, stat: str) -> bool:
    """The ALB omits zero counts; every ALB ``Sum`` series is a count."""
    return namespace == "AWS/ApplicationELB" and stat in ("Sum", "SampleCount")


def choose_period(start: float, end: float, now: float, base_period_s: int) -> int:
    """The finest period CloudWatch still serves for data starting at ``start``.

    Retention: under 60 s kept 3 h, 60 s kept 15 days, 300 s kept 63 days, then 1 h.
    Beyond 60 s the period must be a multiple of 60; it also grows until one query's
    datapoints fit in one call.
    """
    age = now - start
    floor = 1
    if age > 63 * 86400:
        floor = 3600
    elif age > 15 * 86400:
        floor = 300
    elif age > 3 * 3600:
        floor = 60
    period = max(int(base_period_s), floor, 1)
    if period >= 60:
        period = math.ceil(period / 60) * 60
    span = max(end - start, 1.0)
    while span / period > MAX_POINTS_PER_CALL:
        period = period * 2 if period < 60 else math.ceil(period * 2 / 60) * 60
    return period


def grid(start: float, end: float, period_s: int) -> list[float]:
    """Period starts covering [start, end), aligned to multiples of the period."""
    first = math.floor(start / period_s) * period_s
    n = max(0, math.ceil((end - first) / period_s))
    return [float(first + k * period_s) for k in range(n)]


def dimensions_key(dims: Iterable[Mapping[str, str]]) -> str:
    return ",".join(f"{d['Name']}={d['Value']}" for d in sorted(dims, key=lambda d: d["Name"]))


def _name_part(value: str) -> str:
    """``app/peakready-alb/50dc6c...`` and ``targetgroup/peakready-web-tg/...`` -> the name."""
    parts = value.split("/")
    return parts[1] if len(parts) == 3 else value


def refers_to(dims: Iterable[Mapping[str, str]], names: set[str]) -> bool:
    """Does this metric belong to one of our resources (by any dimension value)?"""
    return any(_name_part(d["Value"]) in names or d["Value"] in names for d in dims)


@dataclass(frozen=True)
class Query:
    id: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str

    def as_api(self, period_s: int) -> dict[str, Any]:
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions],
                },
                "Period": period_s,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }

    @property
    def dimensions_key(self) -> str:
        return dimensions_key({"Name": n, "Value": v} for n, v in self.dimensions)


def build_queries(metrics: Sequence[Mapping[str, Any]]) -> list[Query]:
    """One query per (metric, statistic); ids are what GetMetricData accepts."""
    queries: list[Query] = []
    seen: set[tuple] = set()
    for m in metrics:
        dims = tuple(sorted((d["Name"], d["Value"]) for d in m.get("Dimensions", [])))
        for stat in stats_for(m["Namespace"], m["MetricName"]):
            key = (m["Namespace"], m["MetricName"], dims, stat)
            if key in seen:
                continue
            seen.add(key)
            queries.append(Query(f"q{len(queries)}", m["Namespace"], m["MetricName"], dims, stat))
    return queries


def batches(queries: Sequence[Query], points_per_query: int) -> list[list[Query]]:
    """Split into calls within the API limits; percentile queries go in calls of their own
    (an endpoint that cannot compute percentiles then fails only those)."""
    per_call = max(1, min(MAX_QUERIES_PER_CALL, MAX_POINTS_PER_CALL // max(points_per_query, 1)))
    out: list[list[Query]] = []
    for group in ([q for q in queries if not is_percentile(q.stat)],
                  [q for q in queries if is_percentile(q.stat)]):
        out.extend(list(group[i:i + per_call]) for i in range(0, len(group), per_call))
    return out


def discover(list_metrics: Callable[..., dict], names: set[str]) -> list[dict]:
    """Metrics CloudWatch holds for our resources (``list_metrics`` of each namespace)."""
    found: list[dict] = []
    for namespace in NAMESPACES:
        token = None
        while True:
            kwargs: dict[str, Any] = {"Namespace": namespace}
            if token:
                kwargs["NextToken"] = token
            page = list_metrics(**kwargs)
            found.extend(m for m in page.get("Metrics", []) if refers_to(m.get("Dimensions", []), names))
            token = page.get("NextToken")
            if not token:
                break
    return found


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def short_error(exc: BaseException) -> str:
    """One line: botocore puts the whole HTML error page of a failing endpoint in it."""
    text = str(exc).split("\n", 1)[0].split(": <!doctype", 1)[0]
    return f"{type(exc).__name__}: {text}"[:240]


def fetch(get_metric_data: Callable[..., dict], queries: Sequence[Query], start: float,
          end: float, period_s: int) -> tuple[list[dict], list[str]]:
    """Run every batch; a failing batch is retried query by query so one unsupported
    statistic costs only itself. Returns raw rows and warnings."""
    rows: list[dict] = []
    warnings: list[str] = []
    points = max(1, math.ceil((end - start) / period_s))
    by_id = {q.id: q for q in queries}
    aligned_start = math.floor(start / period_s) * period_s

    def call(batch: Sequence[Query]) -> None:
        token = None
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": [q.as_api(period_s) for q in batch],
                "StartTime": datetime.fromtimestamp(aligned_start, UTC),
                "EndTime": datetime.fromtimestamp(end, UTC),
                "ScanBy": "TimestampAscending",
            }
            if token:
                kwargs["NextToken"] = token
            page = get_metric_data(**kwargs)
            for result in page.get("MetricDataResults", []):
                q = by_id[result["Id"]]
                for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    rows.append({"ts": _epoch(ts), "query": q.id, "value": float(value)})
            token = page.get("NextToken")
            if not token:
                return

    for batch in batches(queries, points):
        try:
            call(batch)
        except Exception as exc:  # noqa: BLE001 - an endpoint error must not lose the rest
            if len(batch) == 1:
                q = batch[0]
                warnings.append(f"{q.namespace} {q.metric} {q.stat}: {short_error(exc)}")
                continue
            for q in batch:
                try:
                    call([q])
                except Exception as one:  # noqa: BLE001
                    warnings.append(f"{q.namespace} {q.metric} {q.stat} [{q.dimensions_key}]: "
                                    f"{short_error(one)}")
    return rows, warnings


def to_frame(rows: Sequence[Mapping[str, Any]], queries: Sequence[Query], start: float,
             end: float, period_s: int) -> pd.DataFrame:
    """Tidy long frame per docs/run-folder.md, zero-filled where AWS omits zeros."""
    meta = pd.DataFrame(
        [{"query": q.id, "namespace": q.namespace, "metric": q.metric,
          "dimensions": q.dimensions_key, "stat": q.stat} for q in queries],
        columns=["query", "namespace", "metric", "dimensions", "stat"],
    )
    data = pd.DataFrame(list(rows), columns=["ts", "query", "value"])
    fill_ids = [q.id for q in queries if zero_filled(q.namespace, q.stat)]
    slots = grid(start, end, period_s)
    zeros = pd.DataFrame(
        [{"ts": ts, "query": qid, "value": 0.0} for qid in fill_ids for ts in slots],
        columns=["ts", "query", "value"],
    )
    frame = (
        pd.concat([data, zeros], ignore_index=True)
        .drop_duplicates(["query", "ts"], keep="first")  # real datapoints win over zeros
        .merge(meta, on="query", how="inner")
        .assign(source="cloudwatch", period_s=int(period_s))
        .astype({"ts": "float64", "value": "float64", "period_s": "int64"})
        .sort_values(["namespace", "metric", "dimensions", "stat", "ts"], kind="stable")
        .reset_index(drop=True)
    )
    return frame[METRIC_COLUMNS]


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "ts": pd.Series(dtype="float64"), "source": pd.Series(dtype="str"),
        "namespace": pd.Series(dtype="str"), "metric": pd.Series(dtype="str"),
        "dimensions": pd.Series(dtype="str"), "stat": pd.Series(dtype="str"),
        "period_s": pd.Series(dtype="int64"), "value": pd.Series(dtype="float64"),
    })[METRIC_COLUMNS]
