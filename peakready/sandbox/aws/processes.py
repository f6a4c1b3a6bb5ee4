"""Suspended Auto Scaling processes: which of the group's own actions they block.

AWS semantics ("How suspended processes affect other processes", EC2 Auto Scaling
User Guide): ``Launch`` blocks every launch (scale-out, replacements) while desired
capacity may still change; ``Terminate`` blocks scale-in of InService instances and,
with it, ``ReplaceUnhealthy``; ``HealthCheck`` stops marking instances Unhealthy;
``ReplaceUnhealthy`` leaves instances marked Unhealthy in the group;
``AlarmNotification`` stops the scaling policies from acting on their alarms. Once a
process is resumed the group converges to its desired capacity at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from peakready.sandbox.aws.scaling import iso

PROCESSES = ("Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification", "AZRebalance",
             "HealthCheck", "InstanceRefresh", "ReplaceUnhealthy", "ScheduledActions")


def names_of(suspended: Iterable) -> frozenset[str]:
    """Process names from moto's ``suspended_processes`` (dicts) or plain names."""
    return frozenset(p["ProcessName"] if isinstance(p, dict) else str(p) for p in suspended)


def may_launch(suspended: frozenset[str]) -> bool:
    return "Launch" not in suspended


def may_scale_in(suspended: frozenset[str]) -> bool:
    """Terminating InService instances to shrink towards desired capacity."""
    return "Terminate" not in suspended


def may_mark_unhealthy(suspended: frozenset[str]) -> bool:
    """The group's own health checks (EC2 status, ELB) set Unhealthy."""
    return "HealthCheck" not in suspended


def may_replace_unhealthy(suspended: frozenset[str]) -> bool:
    """ReplaceUnhealthy terminates (Terminate) and replaces; without Launch it still
    terminates, and the replacement follows when Launch is resumed."""
    return "ReplaceUnhealthy" not in suspended and "Terminate" not in suspended


def may_execute_policies(suspended: frozenset[str]) -> bool:
    return "AlarmNotification" not in suspended


def suspension_reason(when: datetime) -> str:
    """What AWS reports in SuspendedProcesses[].SuspensionReason for a user request."""
    return f"User suspended at {iso(when)}"
