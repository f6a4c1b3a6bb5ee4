"""A temporary SQS queue subscribed to the plan's alarm topics, for one run.

How a run sees pages on AWS without PagerDuty credentials (research A4): the queue's
policy lets only ``sns.amazonaws.com`` send, and only from the named topics
(``aws:SourceArn``); subscriptions are not raw, so the SNS envelope keeps ``MessageId``
and ``Timestamp``; each message's ``SentTimestamp`` is when SNS handed it over. The queue
and its subscriptions are deleted at the end of the run, and by the reaper
(``peakready.run.reaper --cleanup``) if the run process dies first.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class QueueResources:
    """What ``delete`` needs; written to a cleanup file the reaper reads (no secrets)."""

    region: str
    queue_url: str = ""
    queue_arn: str = ""
    subscriptions: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> QueueResources:
        return cls(**json.loads(path.read_text()))


def queue_name(run_id: str) -> str:
    """``peakready-pages-<run id>``: at most 80 characters of ``[A-Za-z0-9_-]``."""
    return ("peakready-pages-" + re.sub(r"[^A-Za-z0-9_-]", "-", run_id))[:80]


def policy(queue_arn: str, topic_arns: list[str]) -> str:
    """Only SNS, only from these topics, only SendMessage."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "peakready-alarm-topics", "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arns}}}]})


def create(sqs: Any, sns: Any, run_id: str, topic_arns: list[str], region: str,
           cleanup_file: Path | None = None) -> QueueResources:
    """Queue, policy, one subscription per topic; the cleanup file is rewritten after each
    step so a crash at any point leaves nothing the reaper does not know about."""
    res = QueueResources(region)
    res.queue_url = sqs.create_queue(QueueName=queue_name(run_id), Attributes={
        "MessageRetentionPeriod": "86400"}, tags={"peakready:run": run_id})["QueueUrl"]
    if cleanup_file:
        res.save(cleanup_file)
    res.queue_arn = sqs.get_queue_attributes(QueueUrl=res.queue_url, AttributeNames=[
        "QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=res.queue_url,
                             Attributes={"Policy": policy(res.queue_arn, topic_arns)})
    for topic in topic_arns:
        res.subscriptions.append(sns.subscribe(TopicArn=topic, Protocol="sqs",
                                               Endpoint=res.queue_arn,
                                               ReturnSubscriptionArn=True)["SubscriptionArn"])
        if cleanup_file:
            res.save(cleanup_file)
    return res


def receive(sqs: Any, res: QueueResources) -> list[dict[str, Any]]:
    """Every message waiting now (no long poll), as page records; deleted once read."""
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=res.queue_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=0, AttributeNames=["All"],
                                  MessageSystemAttributeNames=["All"]).get("Messages", [])
        if not got:
            return out
        now = time.time()
        for msg in got:
            out.append(record(msg, now))
        sqs.delete_message_batch(QueueUrl=res.queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])


def record(msg: dict[str, Any], received_at: float) -> dict[str, Any]:
    """One SQS message holding an SNS envelope -> a page record (``arrived_at`` is SQS's
    ``SentTimestamp``: when SNS delivered it, not when we polled)."""
    attrs = msg.get("Attributes") or {}
    sent = attrs.get("SentTimestamp")
    try:
        envelope = json.loads(msg.get("Body") or "{}")
    except ValueError:
        envelope = {}
    try:
        alarm = json.loads(envelope.get("Message") or "{}")
    except (TypeError, ValueError):
        alarm = {}
    alarm = alarm if isinstance(alarm, dict) else {}
    return {"arrived_at": int(sent) / 1000 if sent else received_at,
            "received_at": received_at, "type": envelope.get("Type", "Notification"),
            "message_id": envelope.get("MessageId"), "topic_arn": envelope.get("TopicArn"),
            "subject": envelope.get("Subject"), "sns_timestamp": envelope.get("Timestamp"),
            "alarm": alarm.get("AlarmName"), "state": alarm.get("NewStateValue"),
            "old_state": alarm.get("OldStateValue"),
            "state_change_time": alarm.get("StateChangeTime")}


def delete(sqs: Any, sns: Any, res: QueueResources) -> list[str]:
    """Unsubscribe and delete the queue; returns what failed (empty when all is gone)."""
    problems = []
    for arn in res.subscriptions:
        try:
            sns.unsubscribe(SubscriptionArn=arn)
        except Exception as exc:  # noqa: BLE001 - try the rest, report it
            problems.append(f"unsubscribe {arn}: {exc}")
    if res.queue_url:
        try:
            sqs.delete_queue(QueueUrl=res.queue_url)
        except Exception as exc:  # noqa: BLE001
            if "NonExistentQueue" not in str(exc):
                problems.append(f"delete_queue {res.queue_url}: {exc}")
    return problems
