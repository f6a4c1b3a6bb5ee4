"""Pages as events: what reached the on-call side, and what the alarms' actions did.

Two sources, both turned into rows of ``events.parquet`` (docs/run-folder.md, "Paging"):

- the run folder's ``paging/*.jsonl``, written during the run by the page observer
  (``peakready.paging``: the sandbox's pager, or the temporary SQS queue on AWS, and the
  PagerDuty incidents): one ``page`` per notification received, one ``incident`` per
  incident. Read from the folder, so ``peakready collect`` rebuilds them too;
- CloudWatch's alarm history ``Action`` items: ``alarm_action`` when the action ran,
  ``page_failed`` when it failed (the summary says why).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peakready.collect.events import _epoch, _in_window, _pages, event

PAGING_DIR = "paging"
PAGES_FILES = ("pager.jsonl", "sqs.jsonl")
INCIDENTS_FILE = "incidents.jsonl"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Lines of a JSON-lines file; a torn last line (a crash mid-write) is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _iso_epoch(text: Any) -> float | None:
    """``2026-11-26T04:40:00.123+0000`` / ``...Z`` / ISO: epoch seconds, else None."""
    if not text or not isinstance(text, str):
        return None
    value = text.replace("Z", "+00:00")
    if len(value) > 5 and value[-5] in "+-" and ":" not in value[-5:]:
        value = f"{value[:-2]}:{value[-2:]}"
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def page_rows(records: Iterable[Mapping[str, Any]], observer: str, start: float,
              end: float) -> list[dict]:
    """``page`` rows (ts = arrival: the pager's clock, or SQS ``SentTimestamp``)."""
    rows = []
    for r in records:
        ts = r.get("arrived_at")
        if not _in_window(ts, start, end) or r.get("type", "Notification") != "Notification":
            continue
        rows.append(event(ts, observer, "page", r.get("alarm") or "",
                          state=r.get("state"), old_state=r.get("old_state"),
                          topic_arn=r.get("topic_arn"), message_id=r.get("message_id"),
                          subject=r.get("subject"),
                          state_change_ts=_iso_epoch(r.get("state_change_time")),
                          sns_ts=_iso_epoch(r.get("sns_timestamp")),
                          incident_action=r.get("incident_action"),
                          incident_id=r.get("incident_id")))
    return rows


def incident_rows(records: Iterable[Mapping[str, Any]], start: float, end: float) -> list[dict]:
    """``incident`` rows from PagerDuty REST incidents (ts = ``created_at``)."""
    rows = []
    for i in records:
        ts = _iso_epoch(i.get("created_at"))
        if not _in_window(ts, start, end):
            continue
        rows.append(event(ts, "pagerduty", "incident", i.get("incident_key") or i.get("title")
                          or "", id=i.get("id"), status=i.get("status"),
                          resolved_ts=_iso_epoch(i.get("resolved_at")), title=i.get("title"),
                          service=(i.get("service") or {}).get("id")))
    return rows


def folder_rows(run_dir: Path, start: float, end: float) -> list[dict]:
    """Every ``page`` and ``incident`` the run's observer wrote."""
    folder = Path(run_dir) / PAGING_DIR
    rows = []
    for name in PAGES_FILES:
        rows += page_rows(read_jsonl(folder / name), name.split(".")[0], start, end)
    return rows + incident_rows(read_jsonl(folder / INCIDENTS_FILE), start, end)


def action_rows(items: Iterable[Mapping[str, Any]], start: float, end: float,
                wanted: Callable[[str], bool]) -> list[dict]:
    """``alarm_action`` / ``page_failed`` from alarm-history ``Action`` items."""
    rows = []
    for item in items:
        name, ts = item.get("AlarmName", ""), _epoch(item.get("Timestamp"))
        if item.get("HistoryItemType") != "Action" or not wanted(name) \
                or not _in_window(ts, start, end):
            continue
        try:
            data = json.loads(item.get("HistoryData") or "{}")
        except ValueError:
            data = {}
        try:
            published = json.loads(data.get("publishedMessage") or "{}")
        except (TypeError, ValueError):
            published = {}
        failed = data.get("actionState") == "Failed"
        updated = data.get("stateUpdateTimestamp")
        rows.append(event(ts, "cloudwatch", "page_failed" if failed else "alarm_action", name,
                          state=published.get("NewStateValue") if isinstance(published, dict)
                          else None,
                          topic=data.get("notificationResource"),
                          summary=item.get("HistorySummary", ""), error=data.get("error"),
                          state_update_ts=updated / 1000 if isinstance(updated, int | float)
                          else None))
    return rows


def fetch_actions(cloudwatch: Any, start: float, end: float,
                  wanted: Callable[[str], bool]) -> list[dict]:
    items = _pages(cloudwatch.describe_alarm_history, "AlarmHistoryItems", "NextToken",
                   "NextToken", HistoryItemType="Action",
                   StartDate=datetime.fromtimestamp(start, UTC),
                   EndDate=datetime.fromtimestamp(end, UTC))
    return action_rows(items, start, end, wanted)
