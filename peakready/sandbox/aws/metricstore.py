"""CloudWatch's metric store, with what moto lacks: exact ``pNN`` statistics.

Datapoints keep their raw values (the balancer's individual response times), so a
percentile over any window is the percentile of the real measurements, not of
per-period summaries. Buckets start at StartTime and follow each other by the period,
as CloudWatch returns them (for a StartTime on a period boundary, the usual case).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
BASIC_STATS = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")


def dims_key(dimensions: Iterable[Mapping[str, str]] | None) -> tuple[tuple[str, str], ...]:
    """Dimensions as a hashable, order-free key."""
    return tuple(sorted((d["Name"], str(d["Value"])) for d in dimensions or ()))


def is_percentile(stat: str) -> bool:
    return bool(_PERCENTILE.match(stat))


def check_stat(stat: str) -> str:
    """The stat, or ValueError naming it when CloudWatch would reject it."""
    if stat in BASIC_STATS or is_percentile(stat):
        return stat
    raise ValueError(f"unsupported statistic {stat!r}")


@dataclass
class _Entry:
    ts: float
    count: float
    total: float
    low: float
    high: float
    values: np.ndarray | None  # raw values (repeated by their counts) when known
    unit: str | None


def _entry_from_datum(ts: float, datum: Mapping) -> _Entry:
    unit = datum.get("Unit")
    if "StatisticValues" in datum:
        sv = datum["StatisticValues"]
        return _Entry(ts, float(sv["SampleCount"]), float(sv["Sum"]), float(sv["Minimum"]),
                      float(sv["Maximum"]), None, unit)
    if datum.get("Values"):
        values = np.asarray(datum["Values"], dtype=float)
        counts = datum.get("Counts")
        if counts:
            values = np.repeat(values, np.asarray(counts, dtype=int))
    else:
        values = np.asarray([float(datum["Value"])])
    return _Entry(ts, float(values.size), float(values.sum()), float(values.min()),
                  float(values.max()), values, unit)


def summarize(entries: Sequence[_Entry], stat: str) -> float | None:
    """One statistic over the entries of one bucket; None when it cannot be computed."""
    count = sum(e.count for e in entries)
    if count <= 0:
        return None
    if stat == "SampleCount":
        return count
    if stat == "Sum":
        return sum(e.total for e in entries)
    if stat == "Average":
        return sum(e.total for e in entries) / count
    if stat == "Minimum":
        return min(e.low for e in entries)
    if stat == "Maximum":
        return max(e.high for e in entries)
    if is_percentile(stat):
        raw = [e.values for e in entries if e.values is not None]
        if not raw:
            return None
        return float(np.percentile(np.concatenate(raw), float(stat[1:])))
    raise ValueError(f"unsupported statistic {stat!r}")


@dataclass
class MetricStore:
    """Thread-safe: the publisher thread writes while API threads read."""

    _data: dict[tuple, list[_Entry]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, namespace: str, datum: Mapping, ts: float) -> None:
        """One MetricData member (Value, Values/Counts or StatisticValues) at ``ts``."""
        key = (namespace, datum["MetricName"], dims_key(datum.get("Dimensions")))
        entry = _entry_from_datum(ts, datum)
        with self._lock:
            self._data.setdefault(key, []).append(entry)

    def prune(self, before: float) -> int:
        """Forget datapoints older than ``before`` (CloudWatch keeps 1 s data 3 hours)."""
        dropped = 0
        with self._lock:
            for key, entries in self._data.items():
                kept = [e for e in entries if e.ts >= before]
                dropped += len(entries) - len(kept)
                self._data[key] = kept
        return dropped

    def metrics(self, namespace: str | None = None, metric_name: str | None = None,
                dimensions: Sequence[Mapping] = ()) -> list[dict]:
        """``list_metrics``: a metric matches when it has every dimension asked for."""
        wanted = [(d["Name"], d.get("Value")) for d in dimensions]
        with self._lock:
            keys = list(self._data)
        out = []
        for ns, name, dims in keys:
            if namespace and ns != namespace or metric_name and name != metric_name:
                continue
            have = dict(dims)
            if all(n in have and (v is None or have[n] == v) for n, v in wanted):
                out.append({"Namespace": ns, "MetricName": name,
                            "Dimensions": [{"Name": n, "Value": v} for n, v in dims]})
        return out

    def series(self, namespace: str, metric_name: str, dimensions: Iterable[Mapping] | None,
               stat: str, period: int, start: float, end: float,
               unit: str | None = None) -> list[tuple[float, float]]:
        """(bucket start, value) ascending for buckets within [start, end)."""
        check_stat(stat)
        if period <= 0:
            raise ValueError("period must be positive")
        key = (namespace, metric_name, dims_key(dimensions))
        with self._lock:
            entries = [e for e in self._data.get(key, ()) if start <= e.ts < end
                       and (unit is None or e.unit in (None, unit))]
        buckets: dict[float, list[_Entry]] = {}
        for e in entries:
            buckets.setdefault(start + math.floor((e.ts - start) / period) * period, []).append(e)
        out = []
        for bucket in sorted(buckets):
            value = summarize(buckets[bucket], stat)
            if value is not None:
                out.append((bucket, value))
        return out
