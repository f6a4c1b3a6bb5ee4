"""Read ``AWS/ApplicationELB RequestCount`` of a past window (the side-effect half of
``peakready profile import``; the conversion is ``profiles.from_request_counts``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from peakready.errors import BadInput


def request_counts(cloudwatch, load_balancer: str, start: float, end: float, period_s: int,
                   target_group: str | None = None) -> pd.DataFrame:
    """Sum of RequestCount per period as a frame ``ts, value`` (ts = period start, epoch s)."""
    dimensions = [{"Name": "LoadBalancer", "Value": load_balancer}]
    if target_group:
        dimensions.append({"Name": "TargetGroup", "Value": target_group})
    query = {"Id": "requests", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "RequestCount",
                   "Dimensions": dimensions},
        "Period": int(period_s), "Stat": "Sum"}}
    rows: list[tuple[float, float]] = []
    kwargs = {"MetricDataQueries": [query], "ScanBy": "TimestampAscending",
              "StartTime": datetime.fromtimestamp(start, UTC),
              "EndTime": datetime.fromtimestamp(end, UTC)}
    while True:
        page = cloudwatch.get_metric_data(**kwargs)
        for result in page.get("MetricDataResults", []):
            rows += [(ts.timestamp(), float(v))
                     for ts, v in zip(result.get("Timestamps", []), result.get("Values", []),
                                      strict=True)]
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    return pd.DataFrame(rows, columns=["ts", "value"]).sort_values("ts", ignore_index=True)


def parse_time(text: str, field: str) -> float:
    """ISO 8601 (``2025-11-28T00:00:00Z``; no zone means UTC) or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"--{field} must be ISO 8601 (2025-11-28T00:00:00Z) or epoch seconds, "
                       f"got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
