"""What a PagerDuty CloudWatch integration does with the SNS notifications it receives.

Pure bookkeeping, so the rules are tested on their own (research A2): an ``ALARM``
notification triggers an alert; while an incident for the same de-duplication key
(the alarm name: the setting teams choose, "Derive name from: Alarm Name") is open,
another trigger joins it instead of opening a second one; ``OK`` resolves the open
incident (only if the alarm's ``OKActions`` point at the topic, which is why the sandbox's
alarms have them); ``INSUFFICIENT_DATA`` cannot resolve; a resolve with nothing open is
dropped. After a resolve, a new trigger opens a new incident.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

SERVICE_ID = "PSANDBOX"  # the one service the sandbox's integration belongs to


@dataclass
class Incident:
    id: str
    incident_number: int
    incident_key: str
    title: str
    status: str  # triggered | resolved
    created_at: float
    last_status_change_at: float
    resolved_at: float | None = None
    alert_count: int = 1
    service_id: str = SERVICE_ID


@dataclass
class Book:
    """Every page (notification received) and the incidents they opened or resolved."""

    pages: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, envelope: dict[str, Any], arrived_at: float,
                message_type: str = "Notification") -> dict[str, Any]:
        """Record one SNS POST; returns the page record (with the incident action)."""
        try:
            alarm = json.loads(envelope.get("Message") or "{}")
        except ValueError:
            alarm = {}
        if not isinstance(alarm, dict):
            alarm = {}
        page = {"arrived_at": arrived_at, "type": message_type,
                "message_id": envelope.get("MessageId"), "topic_arn": envelope.get("TopicArn"),
                "subject": envelope.get("Subject"), "sns_timestamp": envelope.get("Timestamp"),
                "alarm": alarm.get("AlarmName"), "state": alarm.get("NewStateValue"),
                "old_state": alarm.get("OldStateValue"),
                "state_change_time": alarm.get("StateChangeTime")}
        with self._lock:
            if message_type == "Notification":
                page.update(self._apply(page, arrived_at))
            self.pages.append(page)
        return dict(page)

    def _apply(self, page: dict[str, Any], now: float) -> dict[str, Any]:
        key, state = page.get("alarm"), page.get("state")
        if not key:
            return {"incident_action": "dropped", "incident_id": None,
                    "incident_reason": "not a CloudWatch alarm notification"}
        open_ = next((i for i in self.incidents if i.incident_key == key
                      and i.status == "triggered"), None)
        if state == "ALARM":
            if open_ is not None:
                open_.alert_count += 1
                return {"incident_action": "deduplicated", "incident_id": open_.id}
            number = len(self.incidents) + 1
            incident = Incident(f"Q{number:06d}", number, key, page.get("subject") or key,
                                "triggered", now, now)
            self.incidents.append(incident)
            return {"incident_action": "triggered", "incident_id": incident.id}
        if state == "OK":
            if open_ is None:
                return {"incident_action": "dropped", "incident_id": None,
                        "incident_reason": "resolve with no open incident"}
            open_.status, open_.resolved_at, open_.last_status_change_at = "resolved", now, now
            return {"incident_action": "resolved", "incident_id": open_.id}
        return {"incident_action": "dropped", "incident_id": None,
                "incident_reason": f"{state} neither triggers nor resolves"}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"pages": [dict(p) for p in self.pages],
                    "incidents": [asdict(i) for i in self.incidents]}

    def list_incidents(self, since: float | None = None, until: float | None = None,
                       statuses: list[str] | None = None,
                       service_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """REST ``GET /incidents`` semantics: created in [since, until)."""
        with self._lock:
            found = [asdict(i) for i in self.incidents
                     if (since is None or i.created_at >= since)
                     and (until is None or i.created_at < until)
                     and (not statuses or i.status in statuses)
                     and (not service_ids or i.service_id in service_ids)]
        return found
