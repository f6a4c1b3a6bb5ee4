"""CloudWatch answers what moto lacks, through a real moto server and stock boto3:
pNN statistics, alarm evaluation with history, INSUFFICIENT_DATA at creation."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from moto.server import ThreadedMotoServer

from peakready.sandbox import timing
from peakready.sandbox.aws import bootstrap, extensions
from peakready.sandbox.aws.plane import ControlPlane


@pytest.fixture()
def cloudwatch():
    plane = ControlPlane(stack=None, timing=timing.Timing())
    extensions.attach(plane)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield plane, bootstrap.client("cloudwatch", f"http://{host}:{port}")
    finally:
        _reset(f"http://{host}:{port}")
        server.stop()
        extensions.detach(plane)


def test_alarm_actions_notify_sns_subscribers(cloudwatch):
    plane, cw = cloudwatch
    url = cw.meta.endpoint_url
    sns, sqs = bootstrap.client("sns", url), bootstrap.client("sqs", url)
    topic = sns.create_topic(Name="oncall")["TopicArn"]
    queue = sqs.create_queue(QueueName="pager")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"RawMessageDelivery": "true"})
    cw.put_metric_alarm(AlarmName="errors", Namespace="Shop", MetricName="Errors",
                        Statistic="Sum", Period=5, EvaluationPeriods=1, Threshold=1,
                        ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic])
    now = (int(time.time()) // 5) * 5
    cw.put_metric_data(Namespace="Shop", MetricData=[
        {"MetricName": "Errors", "Value": 7, "Timestamp": datetime.fromtimestamp(now - 4, UTC)}])
    assert plane.evaluate_alarms(now) == [("errors", "INSUFFICIENT_DATA", "ALARM")]
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    body = json.loads(message["Body"])
    assert body["AlarmName"] == "errors" and body["NewStateValue"] == "ALARM"
    actions = cw.describe_alarm_history(AlarmName="errors", HistoryItemType="Action")
    assert actions["AlarmHistoryItems"][0]["HistorySummary"] == \
        f"Successfully executed action {topic}"


def _reset(url: str) -> None:
    """moto's state is per process: leave none behind for other in-process tests."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"),
                           timeout=5).read()


def _put_times(cw, times, ts):
    cw.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[{
        "MetricName": "TargetResponseTime", "Timestamp": ts, "Unit": "Seconds",
        "Dimensions": [{"Name": "LoadBalancer", "Value": "app/lb/1"}], "Values": times}])


def test_get_metric_data_and_statistics_serve_percentiles(cloudwatch):
    _, cw = cloudwatch
    rng = np.random.default_rng(7)
    base = (int(time.time()) // 60) * 60 - 120
    chunks = [list(np.round(rng.exponential(0.08, 150), 6)) for _ in range(2)]
    for n, chunk in enumerate(chunks):
        _put_times(cw, chunk, datetime.fromtimestamp(base + 60 * n + 1, UTC))
    metric = {"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime",
              "Dimensions": [{"Name": "LoadBalancer", "Value": "app/lb/1"}]}
    window = {"StartTime": datetime.fromtimestamp(base, UTC),
              "EndTime": datetime.fromtimestamp(base + 120, UTC)}
    got = cw.get_metric_data(ScanBy="TimestampAscending", MetricDataQueries=[
        {"Id": "p95", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "p95"}},
        {"Id": "n", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "SampleCount"}},
    ], **window)["MetricDataResults"]
    assert got[0]["Values"] == pytest.approx([np.percentile(c, 95) for c in chunks])
    assert got[1]["Values"] == [150.0, 150.0]
    stats = cw.get_metric_statistics(Period=120, ExtendedStatistics=["p99"],
                                     Statistics=["Average"], **metric, **window)["Datapoints"]
    assert stats[0]["ExtendedStatistics"]["p99"] == pytest.approx(
        np.percentile(np.concatenate(chunks), 99))
    assert stats[0]["Average"] == pytest.approx(np.mean(np.concatenate(chunks)))


def test_alarm_starts_insufficient_then_transitions_are_in_history(cloudwatch):
    plane, cw = cloudwatch
    cw.put_metric_alarm(AlarmName="latency", Namespace="AWS/ApplicationELB",
                        MetricName="TargetResponseTime", ExtendedStatistic="p95",
                        Dimensions=[{"Name": "LoadBalancer", "Value": "app/lb/1"}], Period=5,
                        EvaluationPeriods=2, DatapointsToAlarm=2, Threshold=0.5,
                        ComparisonOperator="GreaterThanThreshold")
    state = cw.describe_alarms(AlarmNames=["latency"])["MetricAlarms"][0]["StateValue"]
    assert state == "INSUFFICIENT_DATA"
    now = (int(time.time()) // 5) * 5
    for k in (3, 2):  # two slow periods just before `now`
        _put_times(cw, [0.9, 1.1, 0.2], datetime.fromtimestamp(now - 5 * k + 1, UTC))
    assert plane.evaluate_alarms(now - 5) == [("latency", "INSUFFICIENT_DATA", "ALARM")]
    _put_times(cw, [0.1, 0.1], datetime.fromtimestamp(now - 4, UTC))
    assert plane.evaluate_alarms(now) == [("latency", "ALARM", "OK")]
    assert cw.describe_alarms(AlarmNames=["latency"])["MetricAlarms"][0]["StateValue"] == "OK"
    items = cw.describe_alarm_history(AlarmName="latency", HistoryItemType="StateUpdate")
    summaries = [i["HistorySummary"] for i in items["AlarmHistoryItems"]]
    assert summaries == ["Alarm updated from ALARM to OK",
                         "Alarm updated from INSUFFICIENT_DATA to ALARM"]


def test_without_a_plane_moto_behaves_as_shipped():
    """The grafted methods fall back to moto's own when no control plane is attached, so
    other in-process users of moto (collect's tests) see stock moto."""
    extensions.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        bootstrap.client("cloudwatch", url).put_metric_alarm(
            AlarmName="plain", Namespace="NS", MetricName="m", Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
        alarm = bootstrap.client("cloudwatch", url).describe_alarms(
            AlarmNames=["plain"])["MetricAlarms"][0]
        assert alarm["StateValue"] == "OK"  # moto's initial state, not the plane's
        activities = bootstrap.client("autoscaling", url).describe_scaling_activities()
        assert activities["Activities"] == []
    finally:
        _reset(url)
        server.stop()
