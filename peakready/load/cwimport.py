"""Read ``AWS/ApplicationELB RequestCount`` of a past window (the side-effect half of
``peakready profile import``; the conversion is ``profiles.from_request_counts``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from peakready.errors import BadInput
from peakready.profiles import Profile, from_request_counts


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


def import_profile(load_balancer: str, start_text: str, end_text: str, period_s: int,
                   out: Path | str, *, target_group: str | None = None,
                   region: str | None = None, endpoint_url: str | None = None) -> Profile:
    """``peakready profile import``: RequestCount of a past window (ordinary boto3
    credential chain) into a profile CSV at ``out``; BadInput names the bad option."""
    import boto3
    import botocore.exceptions

    start, end = parse_time(start_text, "start"), parse_time(end_text, "end")
    if end <= start:
        raise BadInput("--end must be after --start")
    if period_s <= 0:
        raise BadInput(f"--period must be a positive number of seconds, got {period_s}")
    try:
        client = boto3.client("cloudwatch", region_name=region, endpoint_url=endpoint_url)
        counts = request_counts(client, load_balancer, start, end, period_s, target_group)
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.NoRegionError,
            botocore.exceptions.EndpointConnectionError) as exc:
        raise BadInput(f"CloudWatch: {exc}") from None
    except botocore.exceptions.ClientError as exc:
        raise BadInput("CloudWatch get_metric_data: "
                       f"{exc.response['Error'].get('Message', exc)}") from None
    profile = from_request_counts(counts, start, end, period_s)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# imported from AWS/ApplicationELB RequestCount LoadBalancer={load_balancer}"
                   f" {start_text}..{end_text}, period {period_s}s\n")
    with out.open("a") as fh:
        profile.points.to_csv(fh, index=False, float_format="%.6g")
    return profile
