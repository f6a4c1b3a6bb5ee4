"""The alarm notification CloudWatch publishes to an SNS topic, in AWS's own shape.

Pure functions, so the format is tested against the documented examples
(research/alerting-distributed-anchors.md A1): ``StateChangeTime`` with milliseconds and a
``+0000`` offset, the region's long name, the full ``Trigger`` (single metric or
``Metrics[]`` for metric math), ``AlarmConfigurationUpdatedTimestamp``, and a subject that
shortens the alarm name, never the region.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

REGION_NAMES = {
    "eu-central-1": "EU (Frankfurt)", "eu-west-1": "EU (Ireland)",
    "us-east-1": "US East (N. Virginia)", "us-west-2": "US West (Oregon)",
}
SUBJECT_MAX = 100  # SNS: a subject is at most 100 characters


def aws_time(when: datetime) -> str:
    """``2015-06-03T17:43:27.123+0000`` (what the alarm body carries)."""
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{when.astimezone(UTC).microsecond // 1000:03d}+0000"


def subject(state: str, alarm_name: str, region: str) -> str:
    """``ALARM: "name" in EU (Frankfurt)``; a long name is cut with ``...`` inside the
    quotes so the region stays (AWS does the same)."""
    region_name = REGION_NAMES.get(region, region)
    whole = f'{state}: "{alarm_name}" in {region_name}'
    if len(whole) <= SUBJECT_MAX:
        return whole
    room = SUBJECT_MAX - len(f'{state}: "..." in {region_name}')
    return f'{state}: "{alarm_name[:max(room, 0)]}..." in {region_name}'


def _dimensions(dims: Any) -> list[dict[str, str]]:
    return [{"value": d.value, "name": d.name} for d in dims or ()]


def trigger(alarm: Any) -> dict[str, Any]:
    """``Trigger`` of a moto ``Alarm``: the metric (or the metric-math queries), the
    statistic in upper case, and the evaluation settings."""
    common = {
        "Period": int(alarm.period) if alarm.period else None,
        "EvaluationPeriods": int(alarm.evaluation_periods),
        "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods),
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": float(alarm.threshold),
        "TreatMissingData": alarm.treat_missing_data or "missing",
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
    }
    if alarm.metric_data_queries:
        metrics = []
        for q in alarm.metric_data_queries:
            item: dict[str, Any] = {"Id": q.id,
                                    "ReturnData": q.return_data in (None, True, "true", "True")}
            if q.expression:
                item["Expression"] = q.expression
            if q.label:
                item["Label"] = q.label
            if q.metric_stat:
                ms = q.metric_stat
                item["MetricStat"] = {"Metric": {"Dimensions": _dimensions(ms.metric.dimensions),
                                                 "MetricName": ms.metric.metric_name,
                                                 "Namespace": ms.metric.namespace},
                                      "Period": int(ms.period), "Stat": ms.stat}
            metrics.append(item)
        period = next((m["MetricStat"]["Period"] for m in metrics if "MetricStat" in m), None)
        return {"Metrics": metrics, **common, "Period": common["Period"] or period}
    extended = alarm.extended_statistic
    return {"MetricName": alarm.metric_name, "Namespace": alarm.namespace,
            "StatisticType": "ExtendedStatistic" if extended else "Statistic",
            "Statistic": (extended or alarm.statistic or "").upper(),
            "Unit": alarm.unit, "Dimensions": _dimensions(alarm.dimensions), **common}


def message(alarm: Any, old: str, new: str, reason: str, when: datetime, account_id: str,
            region: str) -> str:
    """The JSON string CloudWatch puts in the SNS ``Message``."""
    updated = getattr(alarm, "configuration_updated_timestamp", None)
    updated_text = aws_time(updated) if isinstance(updated, datetime) else (
        str(updated) if updated else aws_time(when))
    return json.dumps({
        "AlarmName": alarm.name, "AlarmDescription": alarm.description,
        "AWSAccountId": account_id, "AlarmConfigurationUpdatedTimestamp": updated_text,
        "NewStateValue": new, "NewStateReason": reason, "StateChangeTime": aws_time(when),
        "Region": REGION_NAMES.get(region, region), "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old, "OKActions": list(alarm.ok_actions or ()),
        "AlarmActions": list(alarm.alarm_actions or ()),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or ()),
        "Trigger": trigger(alarm)})
