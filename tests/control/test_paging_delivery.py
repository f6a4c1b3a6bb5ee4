"""SNS HTTP delivery as AWS runs it, on a real moto server with the control plane's
patches (no sandbox processes needed): a subscription is confirmed before anything is
delivered; a dead receiver is a failed action in the alarm history; a receiver that hangs
holds neither the alarm evaluator nor the AWS endpoint. Plus the notification format and
the PagerDuty-style incident rules."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.request import urlopen

import pytest
from moto.server import ThreadedMotoServer

from peakready.sandbox import timing
from peakready.sandbox.aws import bootstrap, extensions, notification, snsdelivery
from peakready.sandbox.aws.plane import ControlPlane
from peakready.sandbox.pagerduty import Book


class Receiver:
    """A real HTTP endpoint that confirms like PagerDuty (GETs SubscribeURL) and can be
    made to hang."""

    def __init__(self) -> None:
        self.got: list[dict] = []
        self.hang = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.hang.is_set():
                    time.sleep(5)
                outer.got.append({"type": self.headers.get("x-amz-sns-message-type"), **body})
                if body.get("Type") == "SubscriptionConfirmation":
                    urlopen(body["SubscribeURL"], timeout=5).read()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/enqueue"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def world():
    fast = timing.Timing(sns_http_timeout_s=1.0, sns_http_retries=1, sns_http_retry_delay_s=0.2)
    plane = ControlPlane(stack=None, timing=fast)
    extensions.attach(plane)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    snsdelivery.attach(url, fast)
    receiver = Receiver()
    try:
        yield plane, url, receiver
    finally:
        receiver.close()
        snsdelivery.detach()
        urlopen(f"{url}/moto-api/reset", data=b"", timeout=5).read()
        server.stop()
        extensions.detach(plane)


def _alarm(cw, topic: str) -> int:
    cw.put_metric_alarm(AlarmName="errors", Namespace="Shop", MetricName="Errors",
                        Statistic="Sum", Period=5, EvaluationPeriods=1, Threshold=1,
                        ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
                        OKActions=[topic])
    now = (int(time.time()) // 5) * 5
    cw.put_metric_data(Namespace="Shop", MetricData=[
        {"MetricName": "Errors", "Value": 7, "Timestamp": datetime.fromtimestamp(now - 4, UTC)}])
    return now


def _actions(cw) -> list[dict]:
    return cw.describe_alarm_history(AlarmName="errors", HistoryItemType="Action")[
        "AlarmHistoryItems"]


def test_confirmed_subscription_receives_the_alarm_in_aws_format(world):
    plane, url, receiver = world
    sns, cw = bootstrap.client("sns", url), bootstrap.client("cloudwatch", url)
    topic = sns.create_topic(Name="oncall")["TopicArn"]
    arn = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)["SubscriptionArn"]
    deadline = time.time() + 10
    while sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"][
            "PendingConfirmation"] != "false":
        assert time.time() < deadline, "never confirmed"
        time.sleep(0.05)
    assert receiver.got[0]["type"] == "SubscriptionConfirmation"
    assert plane.evaluate_alarms(_alarm(cw, topic)) == [("errors", "INSUFFICIENT_DATA", "ALARM")]
    deadline = time.time() + 10
    while len(receiver.got) < 2 or not _actions(cw):
        assert time.time() < deadline, "no delivery"
        time.sleep(0.05)
    note = receiver.got[1]
    assert note["type"] == "Notification" and note["Subject"] == 'ALARM: "errors" in EU (Frankfurt)'
    body = json.loads(note["Message"])
    assert body["StateChangeTime"].endswith("+0000") and len(body["StateChangeTime"]) == 28
    assert body["Trigger"]["Statistic"] == "SUM" and body["Trigger"]["Period"] == 5
    data = json.loads(_actions(cw)[0]["HistoryData"])
    assert data["actionState"] == "Succeeded" and data["notificationResource"] == topic
    assert json.loads(data["publishedMessage"])["AlarmName"] == "errors"


def test_dead_receiver_is_a_failed_action_and_a_hanging_one_blocks_nothing(world):
    plane, url, receiver = world
    sns, cw = bootstrap.client("sns", url), bootstrap.client("cloudwatch", url)
    topic = sns.create_topic(Name="oncall")["TopicArn"]
    arn = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)["SubscriptionArn"]
    time.sleep(1.0)
    assert sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"][
        "PendingConfirmation"] == "false"
    receiver.hang.set()  # answers only after 5 s: beyond the 1 s delivery timeout
    began = time.time()
    plane.evaluate_alarms(_alarm(cw, topic))
    assert time.time() - began < 1.0  # the evaluator did not wait for the receiver
    began = time.time()
    cw.describe_alarms()  # the AWS endpoint answers while the delivery hangs
    assert time.time() - began < 1.0
    receiver.close()  # and then the receiver is gone altogether
    deadline = time.time() + 15
    while not _actions(cw):
        assert time.time() < deadline, "no Action item"
        time.sleep(0.1)
    item = _actions(cw)[0]
    assert item["HistorySummary"].startswith(f"Failed to execute action {topic}")
    assert "failed after 2 attempts" in item["HistorySummary"]
    assert json.loads(item["HistoryData"])["actionState"] == "Failed"


def test_subject_shortens_the_name_and_keeps_the_region():
    long = "x" * 120
    subject = notification.subject("ALARM", long, "eu-central-1")
    assert len(subject) == 100 and subject.endswith('..." in EU (Frankfurt)')
    stamp = notification.aws_time(datetime(2015, 6, 3, 17, 43, 27, 123000, tzinfo=UTC))
    assert stamp == "2015-06-03T17:43:27.123+0000"


def test_incidents_are_deduplicated_by_alarm_and_resolved_by_ok():
    book = Book()

    def note(state: str, alarm: str = "web-5xx") -> dict:
        return {"MessageId": state, "Message": json.dumps({"AlarmName": alarm,
                                                           "NewStateValue": state})}

    actions = [book.receive(note(s), float(i))["incident_action"] for i, s in enumerate(
        ["ALARM", "ALARM", "INSUFFICIENT_DATA", "OK", "OK", "ALARM"])]
    assert actions == ["triggered", "deduplicated", "dropped", "resolved", "dropped", "triggered"]
    first, second = book.snapshot()["incidents"]
    assert first["status"] == "resolved" and first["alert_count"] == 2
    assert second["status"] == "triggered" and second["incident_key"] == "web-5xx"
