"""Alarm evaluation (N out of M datapoints) and alarm history, as CloudWatch does it.

moto stores alarms but never evaluates them; these functions decide a state from the
alarm's own datapoints and record each transition for ``describe_alarm_history``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from peakready.sandbox.aws.metricstore import MetricStore
from peakready.sandbox.aws.queries import as_datetime, epoch, metric_data

_OPS = {
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}


@dataclass(frozen=True)
class AlarmSpec:
    """What evaluation needs from an alarm, independent of moto's classes."""

    name: str
    arn: str
    queries: tuple[dict, ...]  # GetMetricData queries; the one with ReturnData is judged
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing: str  # missing | notBreaching | breaching | ignore
    actions: tuple[str, ...] = ()


def spec_from_moto(alarm) -> AlarmSpec:
    """AlarmSpec from a moto ``Alarm`` (single metric or metric math)."""
    def dims(ds):
        return [{"Name": d.name, "Value": d.value} for d in ds]

    if alarm.metric_data_queries:
        queries = []
        for q in alarm.metric_data_queries:
            query = {"Id": q.id, "ReturnData": q.return_data in (None, True, "true", "True")}
            if q.expression:
                query["Expression"] = q.expression
            if q.metric_stat:
                ms = q.metric_stat
                query["MetricStat"] = {"Metric": {"Namespace": ms.metric.namespace,
                                                  "MetricName": ms.metric.metric_name,
                                                  "Dimensions": dims(ms.metric.dimensions)},
                                       "Period": int(ms.period), "Stat": ms.stat}
            queries.append(query)
        period = int(next((q["MetricStat"]["Period"] for q in queries if "MetricStat" in q),
                          alarm.period or 60))
    else:
        period = int(alarm.period)
        queries = [{"Id": "m", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": alarm.namespace, "MetricName": alarm.metric_name,
                       "Dimensions": dims(alarm.dimensions)},
            "Period": period, "Stat": alarm.extended_statistic or alarm.statistic}}]
    evaluation = int(alarm.evaluation_periods)
    return AlarmSpec(
        name=alarm.name, arn=alarm.alarm_arn, queries=tuple(queries), period=period,
        evaluation_periods=evaluation,
        datapoints_to_alarm=int(alarm.datapoints_to_alarm or evaluation),
        threshold=float(alarm.threshold), comparison=alarm.comparison_operator,
        treat_missing=alarm.treat_missing_data or "missing",
        actions=tuple(alarm.alarm_actions or ()))


def window(spec: AlarmSpec, store: MetricStore, now: float) -> list[tuple[float, float | None]]:
    """The last ``evaluation_periods`` complete periods, oldest first; None = missing."""
    end = math.floor(now / spec.period) * spec.period
    start = end - spec.evaluation_periods * spec.period
    result = next(r for r in metric_data(store, spec.queries, start, end, "TimestampAscending"))
    values = {t.timestamp(): v for t, v in zip(result["Timestamps"], result["Values"], strict=True)}
    return [(start + i * spec.period, values.get(start + i * spec.period))
            for i in range(spec.evaluation_periods)]


def decide(spec: AlarmSpec, points: Sequence[tuple[float, float | None]],
           current: str) -> tuple[str, str, dict]:
    """(state, reason, reason data) for the window ``points``."""
    test, words = _OPS[spec.comparison]
    present = [(t, v) for t, v in points if v is not None]
    missing = len(points) - len(present)
    breaching = sum(1 for _, v in present if test(v, spec.threshold))
    if spec.treat_missing == "breaching":
        breaching += missing
    data = {"version": "1.0", "queryDate": datetime.now(UTC).isoformat(),
            "statistic": spec.queries[0].get("MetricStat", {}).get("Stat"),
            "period": spec.period, "recentDatapoints": [v for _, v in present],
            "threshold": spec.threshold,
            "evaluatedDatapoints": [{"timestamp": as_datetime(t).isoformat(), "value": v}
                                    for t, v in reversed(present)]}
    if not present and spec.treat_missing in ("missing", "ignore"):
        state = current if spec.treat_missing == "ignore" else "INSUFFICIENT_DATA"
        return state, "Insufficient Data: no datapoints were received.", data
    shown = ", ".join(f"{v:g} ({as_datetime(t):%d/%m/%y %H:%M:%S})" for t, v in reversed(present))
    state = "ALARM" if breaching >= spec.datapoints_to_alarm else "OK"
    verb = "were" if state == "ALARM" else "were not"
    reason = (f"Threshold Crossed: {breaching} out of the last {len(points)} datapoints "
              f"[{shown}] {verb} {words} the threshold ({spec.threshold:g}) (minimum "
              f"{spec.datapoints_to_alarm} datapoints for OK -> ALARM transition).")
    return state, reason, data


HISTORY_ITEM_TYPES = ("ConfigurationUpdate", "StateUpdate", "Action",
                      "AlarmContributorStateUpdate", "AlarmContributorAction")
MAX_RECORDS = 100  # DescribeAlarmHistory's MaxRecords: 1..100


@dataclass
class AlarmHistory:
    """State transitions in AWS's DescribeAlarmHistory shape.

    Items are immutable once recorded and carry a sequence number, so a page is a
    snapshot that the evaluator thread cannot change under the serializer, and a
    NextToken ("the last item I gave you") stays valid while new items arrive.
    """

    _items: list[tuple[int, dict]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _add(self, item: dict) -> dict:
        with self._lock:
            self._items.append((len(self._items), item))
        return dict(item)

    def record(self, name: str, old: str, new: str, reason: str, data: dict | None,
               when: datetime | None = None) -> dict:
        new_state = {"stateValue": new, "stateReason": reason}
        if data is not None:
            new_state["stateReasonData"] = data
        return self._add({
            "AlarmName": name, "AlarmType": "MetricAlarm",
            "Timestamp": _aware(when or datetime.now(UTC)),
            "HistoryItemType": "StateUpdate",
            "HistorySummary": f"Alarm updated from {old} to {new}",
            "HistoryData": json.dumps({"version": "1.0", "oldState": {"stateValue": old},
                                       "newState": new_state}),
        })

    def record_action(self, name: str, summary: str, resource: str | None = None,
                      published: str | None = None, state_updated: datetime | None = None,
                      ok: bool | None = None, error: str | None = None) -> dict:
        """An ``Action`` item as AWS writes it: ``actionState``, the topic as
        ``notificationResource``, the state change's time (epoch ms) and the message."""
        succeeded = summary.startswith("Successfully") if ok is None else ok
        data: dict = {"actionState": "Succeeded" if succeeded else "Failed"}
        if resource:
            data["notificationResource"] = resource
        if state_updated is not None:
            data["stateUpdateTimestamp"] = int(_aware(state_updated).timestamp() * 1000)
        if published is not None:
            data["publishedMessage"] = published
        if error:
            data["error"] = error
        return self._add({
            "AlarmName": name, "AlarmType": "MetricAlarm", "Timestamp": datetime.now(UTC),
            "HistoryItemType": "Action", "HistorySummary": summary,
            "HistoryData": json.dumps(data)})

    def query(self, name: str | None = None, item_type: str | None = None,
              start: datetime | None = None, end: datetime | None = None,
              oldest_first: bool = False, limit: int | None = None) -> list[dict]:
        """Every matching item (no paging), newest first unless ``oldest_first``."""
        items, _ = self.page(name, item_type, start, end, oldest_first, limit or None,
                             page_size=None)
        return items

    def page(self, name: str | None = None, item_type: str | None = None,
             start: datetime | float | str | None = None,
             end: datetime | float | str | None = None, oldest_first: bool = False,
             limit: int | None = None, token: str | None = None,
             page_size: int | None = MAX_RECORDS) -> tuple[list[dict], str | None]:
        """One DescribeAlarmHistory page and its NextToken (None on the last page).

        ``limit`` is MaxRecords (1..100); raises ValueError for what AWS rejects."""
        if item_type and item_type not in HISTORY_ITEM_TYPES:
            raise ValueError(f"Value '{item_type}' at 'historyItemType' failed to satisfy "
                             f"constraint: Member must satisfy enum value set: "
                             f"[{', '.join(HISTORY_ITEM_TYPES)}]")
        if limit is not None and page_size is not None and not 1 <= limit <= MAX_RECORDS:
            raise ValueError(f"Value '{limit}' at 'maxRecords' failed to satisfy constraint: "
                             f"Member must have value between 1 and {MAX_RECORDS}")
        after = _token_seq(token) if token else None
        t0 = _epoch_or_fail(start, "StartDate") if start is not None else float("-inf")
        t1 = _epoch_or_fail(end, "EndDate") if end is not None else float("inf")
        with self._lock:
            items = list(self._items)
        rows = [(seq, i) for seq, i in items
                if (not name or i["AlarmName"] == name)
                and (not item_type or i["HistoryItemType"] == item_type)
                and t0 <= i["Timestamp"].timestamp() <= t1]
        rows.sort(key=lambda r: (r[1]["Timestamp"], r[0]), reverse=not oldest_first)
        if after is not None:
            position = next((n for n, (seq, _) in enumerate(rows) if seq == after), None)
            if position is None:
                raise ValueError("Invalid NextToken")
            rows = rows[position + 1:]
        size = limit or page_size
        shown = rows[:size] if size else rows
        more = size is not None and len(rows) > size
        return [dict(i) for _, i in shown], (f"h{shown[-1][0]}" if more else None)


def _token_seq(token: str) -> int:
    if not (token.startswith("h") and token[1:].isdigit()):
        raise ValueError("Invalid NextToken")
    return int(token[1:])


def _epoch_or_fail(value: datetime | float | str, what: str) -> float:
    try:
        return epoch(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{what} is not a valid timestamp: {value!r}") from exc


def _aware(when: datetime) -> datetime:
    """A naive datetime is UTC (moto's convention); items compare and sort as aware."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)
