"""Stop conditions, like AWS FIS: an error rate above a bound for N seconds (from the
load's live status) or named CloudWatch alarms in ALARM. Either aborts the run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LIVE_WINDOW = "10"  # live.json's short trailing window: reacts within seconds


@dataclass
class ErrorRateGuard:
    """Fires once the error rate stayed above ``max_rate`` for ``for_s`` seconds.

    Fed with successive live snapshots; a window with fewer than ``min_requests``
    requests is not evidence either way and neither starts nor resets a breach.
    """

    max_rate: float
    for_s: float
    min_requests: int = 10
    breach_since: float | None = None
    last_rate: float | None = None

    def feed(self, live: Mapping[str, Any] | None) -> str | None:
        if not live:
            return None
        window = (live.get("windows") or {}).get(LIVE_WINDOW) or {}
        ts = float(live.get("ts") or 0.0)
        requests = int(window.get("requests") or 0)
        if requests < self.min_requests:
            return None
        rate = float(window.get("error_rate") or 0.0)
        self.last_rate = rate
        if rate <= self.max_rate:
            self.breach_since = None
            return None
        if self.breach_since is None:
            self.breach_since = ts
        held = ts - self.breach_since
        if held >= self.for_s:
            return (f"stop condition: error rate {rate:.1%} above {self.max_rate:.1%} "
                    f"for {held:.0f} s (live {LIVE_WINDOW} s window)")
        return None

    def held_s(self, now: float) -> float:
        return 0.0 if self.breach_since is None else max(0.0, now - self.breach_since)


def alarms_in_alarm(describe_alarms: Callable[..., dict], names: Sequence[str]) -> list[dict]:
    """The named alarms (metric and composite) whose state is ALARM."""
    if not names:
        return []
    page = describe_alarms(AlarmNames=list(names), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    found = page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
    return [a for a in found if a.get("StateValue") == "ALARM"]


def missing_alarms(describe_alarms: Callable[..., dict], names: Sequence[str]) -> list[str]:
    """Stop-condition alarms that do not exist: a typo would silently disable the guard."""
    if not names:
        return []
    page = describe_alarms(AlarmNames=list(names), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    known = {a["AlarmName"] for a in page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])}
    return [n for n in names if n not in known]


def alarm_reason(alarms: Sequence[Mapping[str, Any]]) -> str:
    first = alarms[0]
    return (f"stop condition: alarm {first['AlarmName']} in ALARM"
            + (f" ({first.get('StateReason')})" if first.get("StateReason") else ""))
