"""Target tracking decisions and the scaling-activity log.

Pure arithmetic of AWS target tracking (capacity proportional to metric/target) and a
thread-safe log in the DescribeScalingActivities shape (Cause, StartTime, EndTime,
StatusCode), which moto always returns empty.
"""

from __future__ import annotations

import math
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from peakready.sandbox.aws import names


def capacity_for(metric_per_target: float, target: float, counted: int) -> int:
    """Instances needed so that ``metric_per_target`` measured over ``counted`` serving
    instances falls to the target (AWS: proportional, rounded up)."""
    if target <= 0:
        raise ValueError("target value must be positive")
    return math.ceil(metric_per_target * max(counted, 1) / target - 1e-9)


def scale_out_to(metric: float, target: float, counted: int, desired: int, max_size: int) -> int:
    """New desired capacity on AlarmHigh: only ever up, never above MaxSize."""
    return max(desired, min(max_size, capacity_for(metric, target, counted)))


def scale_in_to(metric: float, target: float, counted: int, desired: int, min_size: int) -> int:
    """New desired capacity on AlarmLow: only ever down, never below MinSize."""
    return min(desired, max(min_size, capacity_for(metric, target, counted)))


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def launch_cause(when: datetime, before: int, after: int, trigger: str = "") -> str:
    return (f"{trigger}At {iso(when)} an instance was started in response to a difference "
            f"between desired and actual capacity, increasing the capacity from {before} "
            f"to {after}.")


def policy_trigger(when: datetime, alarm: str, before: int, after: int) -> str:
    return (f"At {iso(when)} a monitor alarm {alarm} in state ALARM triggered policy "
            f"{names.SCALING_POLICY} changing the desired capacity from {before} to {after}.  ")


@dataclass
class ActivityLog:
    _items: dict[str, dict] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, description: str, cause: str, group: str = names.ASG,
              details: dict | None = None) -> str:
        activity_id = str(uuid.uuid4())
        item = {"ActivityId": activity_id, "AutoScalingGroupName": group,
                "Description": description, "Cause": cause,
                "StartTime": datetime.now(UTC), "StatusCode": "InProgress", "Progress": 0,
                "Details": "{}" if details is None else str(details).replace("'", '"')}
        with self._lock:
            self._items[activity_id] = item
        return activity_id

    def finish(self, activity_id: str, status: str = "Successful", message: str = "") -> None:
        with self._lock:
            item = self._items[activity_id]
            if item["StatusCode"] != "InProgress":
                return
            item.update(StatusCode=status, Progress=100, EndTime=datetime.now(UTC))
            if message:
                item["StatusMessage"] = message

    def query(self, group: str | None = None, ids: list[str] | None = None,
              limit: int | None = None) -> list[dict]:
        """Newest first, as AWS returns them."""
        with self._lock:
            items = [dict(i) for i in self._items.values()]
        items = [i for i in items if (not group or i["AutoScalingGroupName"] == group)
                 and (not ids or i["ActivityId"] in ids)]
        items.sort(key=lambda i: i["StartTime"], reverse=True)
        return items[:limit] if limit else items
