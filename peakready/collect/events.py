"""What the infrastructure did during the run, as rows of ``events.parquet``.

Fetchers page through one AWS API each; the ``*_rows`` functions turn its answer into
event rows (pure, so they are tested on the shapes AWS documents). Chaos journals only
say when an API call was made (research/chaos-pitfalls.md #7); these events are what
the real fault and recovery windows are read from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from peakready.runfolder_schema import EVENT_COLUMNS

_INSTANCE_ACTIVITY = re.compile(r"^(Launching|Terminating)\b.*?\b(i-[0-9A-Za-z]+)")
_RDS_EVENT_ID = re.compile(r"RDS-EVENT-\d{4}")


def _epoch(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return pd.Timestamp(value).timestamp()


def event(ts: float, source: str, kind: str, resource: str, **detail: Any) -> dict[str, Any]:
    return {"ts": float(ts), "source": source, "kind": kind, "resource": resource,
            "detail": json.dumps(detail, sort_keys=True, default=str)}


def _in_window(ts: float | None, start: float, end: float) -> bool:
    return ts is not None and start <= ts <= end


def _pages(call: Callable[..., dict], key: str, token_in: str, token_out: str,
           **kwargs: Any) -> Iterable[dict]:
    token = None
    while True:
        page = call(**kwargs, **({token_in: token} if token else {}))
        yield from page.get(key, [])
        token = page.get(token_out)
        if not token:
            return


# --- Auto Scaling -----------------------------------------------------------------------

def scaling_rows(activities: Iterable[Mapping[str, Any]], start: float, end: float) -> list[dict]:
    """One ``scaling_activity`` per activity (at its StartTime), plus ``instance_launch`` (at
    its EndTime: in service) / ``instance_terminate`` (at its StartTime) read from its
    description (the ASG says which instance it launched or terminated)."""
    rows = []
    for act in activities:
        ts = _epoch(act.get("StartTime"))
        if not _in_window(ts, start, end):
            continue
        description = act.get("Description", "")
        rows.append(event(
            ts, "autoscaling", "scaling_activity", act.get("AutoScalingGroupName", ""),
            activity_id=act.get("ActivityId"), cause=act.get("Cause", ""),
            description=description, status=act.get("StatusCode", ""),
            start=_epoch(act.get("StartTime")), end=_epoch(act.get("EndTime")),
        ))
        match = _INSTANCE_ACTIVITY.match(description)
        if match:
            # a launch counts once it finished (the instance is in service); a termination
            # from the moment the instance was taken out
            launch = match.group(1) == "Launching"
            kind = "instance_launch" if launch else "instance_terminate"
            when = (_epoch(act.get("EndTime")) or ts) if launch else ts
            rows.append(event(when, "autoscaling", kind, match.group(2),
                              group=act.get("AutoScalingGroupName", ""),
                              activity_id=act.get("ActivityId"), status=act.get("StatusCode", ""),
                              end=_epoch(act.get("EndTime")), cause=act.get("Cause", "")))
    return rows


def fetch_scaling(autoscaling: Any, group: str, start: float, end: float) -> list[dict]:
    acts = []
    for act in _pages(autoscaling.describe_scaling_activities, "Activities", "NextToken",
                      "NextToken", AutoScalingGroupName=group):
        acts.append(act)
        ts = _epoch(act.get("StartTime"))
        if ts is not None and ts < start - 3600:  # newest first: older pages are not ours
            break
    return scaling_rows(acts, start, end)


# --- RDS ----------------------------------------------------------------------------------

def rds_kind(message: str) -> str:
    """RDS-EVENT-0072/0073 'Started ... failover', RDS-EVENT-0071 'Completed failover'."""
    text = message.lower()
    if "failover" in text and ("start" in text or "0072" in text or "0073" in text):
        return "db_failover_start"
    if "failover" in text and ("complet" in text or "0071" in text):
        return "db_failover_end"
    return "rds_event"


def rds_rows(events: Iterable[Mapping[str, Any]], start: float, end: float,
             cluster: str) -> list[dict]:
    rows = []
    for ev in events:
        ts = _epoch(ev.get("Date"))
        if not _in_window(ts, start, end):
            continue
        message = ev.get("Message", "")
        found = _RDS_EVENT_ID.search(message) or _RDS_EVENT_ID.search(str(ev.get("EventId", "")))
        kind = rds_kind(message)
        rows.append(event(
            ts, "rds", kind, cluster if kind != "rds_event" else ev.get("SourceIdentifier", cluster),
            message=message, event_id=found.group(0) if found else None,
            source_identifier=ev.get("SourceIdentifier"), source_type=ev.get("SourceType"),
            categories=ev.get("EventCategories", []),
        ))
    return rows


def fetch_rds(rds: Any, cluster: str, instances: Sequence[str], start: float,
              end: float) -> list[dict]:
    window = {"StartTime": datetime.fromtimestamp(start, UTC),
              "EndTime": datetime.fromtimestamp(end, UTC)}
    events = list(_pages(rds.describe_events, "Events", "Marker", "Marker",
                         SourceType="db-cluster", SourceIdentifier=cluster, **window))
    for instance in instances:
        events.extend(_pages(rds.describe_events, "Events", "Marker", "Marker",
                             SourceType="db-instance", SourceIdentifier=instance, **window))
    return rds_rows(events, start, end, cluster)


# --- ElastiCache ---------------------------------------------------------------------------

def cache_kind(message: str) -> str:
    """'Test Failover API called ...' / 'Failover ... started' -> start;
    'Failover ... completed' (FailoverComplete) -> end."""
    text = message.lower()
    if "failover" in text and "complete" in text:
        return "cache_failover_end"
    if "failover" in text and ("api called" in text or "start" in text or "initiat" in text):
        return "cache_failover_start"
    return "elasticache_event"


def cache_rows(events: Iterable[Mapping[str, Any]], start: float, end: float, group: str,
               members: Sequence[str]) -> list[dict]:
    ours = {group, *members}
    rows = []
    for ev in events:
        source = ev.get("SourceIdentifier", "")
        if source not in ours and not source.startswith(f"{group}-"):
            continue
        ts = _epoch(ev.get("Date"))
        if not _in_window(ts, start, end):
            continue
        message = ev.get("Message", "")
        kind = cache_kind(message)
        rows.append(event(ts, "elasticache", kind, group if kind != "elasticache_event" else source,
                          message=message, source_identifier=source,
                          source_type=ev.get("SourceType")))
    return rows


def fetch_cache(elasticache: Any, group: str, members: Sequence[str], start: float,
                end: float) -> list[dict]:
    events = list(_pages(elasticache.describe_events, "Events", "Marker", "Marker",
                         StartTime=datetime.fromtimestamp(start, UTC),
                         EndTime=datetime.fromtimestamp(end, UTC)))
    return cache_rows(events, start, end, group, members)


# --- CloudWatch alarms ---------------------------------------------------------------------

def alarm_rows(items: Iterable[Mapping[str, Any]], start: float, end: float,
               wanted: Callable[[str], bool]) -> list[dict]:
    rows = []
    for item in items:
        name = item.get("AlarmName", "")
        ts = _epoch(item.get("Timestamp"))
        if not wanted(name) or not _in_window(ts, start, end):
            continue
        if item.get("HistoryItemType", "StateUpdate") != "StateUpdate":
            continue
        try:
            data = json.loads(item.get("HistoryData") or "{}")
        except ValueError:
            data = {}
        old, new = data.get("oldState", {}), data.get("newState", {})
        rows.append(event(ts, "cloudwatch", "alarm_state", name,
                          **{"from": old.get("stateValue"), "to": new.get("stateValue"),
                             "reason": new.get("stateReason", item.get("HistorySummary", ""))}))
    return rows


def fetch_alarms(cloudwatch: Any, start: float, end: float,
                 wanted: Callable[[str], bool]) -> list[dict]:
    items = _pages(cloudwatch.describe_alarm_history, "AlarmHistoryItems", "NextToken",
                   "NextToken", HistoryItemType="StateUpdate",
                   StartDate=datetime.fromtimestamp(start, UTC),
                   EndDate=datetime.fromtimestamp(end, UTC))
    return alarm_rows(items, start, end, wanted)


# --- frame -------------------------------------------------------------------------------------

def to_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return (
        pd.DataFrame(list(rows), columns=EVENT_COLUMNS)
        .astype({"ts": "float64", "source": "str", "kind": "str", "resource": "str",
                 "detail": "str"})
        .sort_values(["ts", "source", "kind"], kind="stable")
        .reset_index(drop=True)
    )
