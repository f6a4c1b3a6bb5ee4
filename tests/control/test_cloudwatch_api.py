"""CloudWatch answers what moto lacks, through a real moto server and stock boto3:
pNN statistics, alarm evaluation with history, INSUFFICIENT_DATA at creation."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from botocore.exceptions import ClientError
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
    _reset(f"http://{host}:{port}")  # another in-process moto test may have run before
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
                           timeout=60).read()  # resetting every backend: slow when loaded


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
        _reset(url)  # another in-process moto test may have run before (parallel workers)
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


def _history(cw, **kwargs) -> list[dict]:
    """Every page of DescribeAlarmHistory, through boto3's own paginator."""
    pages = cw.get_paginator("describe_alarm_history").paginate(**kwargs)
    return [item for page in pages for item in page["AlarmHistoryItems"]]


def test_set_alarm_state_is_in_history_and_holds_until_the_next_evaluation(cloudwatch):
    plane, cw = cloudwatch
    url = cw.meta.endpoint_url
    topic = bootstrap.client("sns", url).create_topic(Name="drills")["TopicArn"]
    cw.put_metric_alarm(AlarmName="orders", Namespace="Shop", MetricName="Failed",
                        Statistic="Sum", Period=5, EvaluationPeriods=1, Threshold=3,
                        ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic])
    now = (int(time.time()) // 5) * 5
    cw.put_metric_data(Namespace="Shop", MetricData=[
        {"MetricName": "Failed", "Value": 0, "Timestamp": datetime.fromtimestamp(now - 4, UTC)}])
    assert plane.evaluate_alarms(now) == [("orders", "INSUFFICIENT_DATA", "OK")]

    cw.set_alarm_state(AlarmName="orders", StateValue="ALARM", StateReason="game day drill",
                       StateReasonData='{"drill": 7}')
    newest = _history(cw, AlarmName="orders", HistoryItemType="StateUpdate")[0]
    assert newest["HistorySummary"] == "Alarm updated from OK to ALARM"
    data = json.loads(newest["HistoryData"])
    assert data["oldState"]["stateValue"] == "OK"
    assert data["newState"] == {"stateValue": "ALARM", "stateReason": "game day drill",
                                "stateReasonData": {"drill": 7}}
    actions = _history(cw, AlarmName="orders", HistoryItemType="Action")
    assert [a["HistorySummary"] for a in actions] == [f"Successfully executed action {topic}"]
    assert cw.describe_alarms(AlarmNames=["orders"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    # the same state again is no transition: nothing recorded, no action
    cw.set_alarm_state(AlarmName="orders", StateValue="ALARM", StateReason="again")
    assert len(_history(cw, AlarmName="orders")) == 3

    # the next evaluation finds the datapoint (0, not above 3): back to OK, as on AWS
    assert plane.evaluate_alarms(now) == [("orders", "ALARM", "OK")]
    back = json.loads(_history(cw, AlarmName="orders", HistoryItemType="StateUpdate")[0][
        "HistoryData"])
    assert back["newState"]["stateReason"].startswith("Threshold Crossed: 0 out of the last 1")


def test_describe_alarm_history_pages_and_rejects_bad_input(cloudwatch):
    plane, cw = cloudwatch
    cw.put_metric_alarm(AlarmName="quiet", Namespace="Shop", MetricName="Failed",
                        Statistic="Sum", Period=5, EvaluationPeriods=1, Threshold=3,
                        ComparisonOperator="GreaterThanThreshold")
    assert cw.describe_alarm_history(AlarmName="quiet")["AlarmHistoryItems"] == []
    for n in range(7):
        cw.set_alarm_state(AlarmName="quiet", StateValue=("ALARM", "OK")[n % 2],
                           StateReason=f"step {n}")
    first = cw.describe_alarm_history(AlarmName="quiet", MaxRecords=3)
    assert len(first["AlarmHistoryItems"]) == 3 and first["NextToken"]
    reasons = [json.loads(i["HistoryData"])["newState"]["stateReason"]
               for i in _history(cw, AlarmName="quiet", PaginationConfig={"PageSize": 3})]
    assert reasons == [f"step {n}" for n in reversed(range(7))]
    oldest = _history(cw, AlarmName="quiet", ScanBy="TimestampAscending",
                      PaginationConfig={"PageSize": 2})
    assert [i["HistorySummary"] for i in oldest][:2] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM", "Alarm updated from ALARM to OK"]
    window = _history(cw, StartDate=datetime.now(UTC) - timedelta(minutes=5),
                      EndDate=datetime.now(UTC) + timedelta(minutes=5))
    assert len(window) == 7
    assert _history(cw, EndDate=datetime.now(UTC) - timedelta(minutes=5)) == []
    for bad in ({"MaxRecords": 101}, {"HistoryItemType": "Everything"},
                {"NextToken": "not-a-token"}):
        with pytest.raises(ClientError) as caught:
            cw.describe_alarm_history(**bad)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400, bad


def test_describe_alarm_history_under_concurrent_transitions(cloudwatch):
    """Alarms change state from two threads (the evaluator and SetAlarmState calls)
    while DescribeAlarmHistory is paged in a loop: every call answers, every page set
    is complete, and each alarm's history is one unbroken chain of transitions."""
    plane, cw = cloudwatch
    url = cw.meta.endpoint_url
    treatments = ("missing", "notBreaching", "breaching", "ignore")
    for n, treat in enumerate(treatments):
        cw.put_metric_alarm(AlarmName=f"a{n}", Namespace="Stress", MetricName="m",
                            Statistic="Sum", Period=1, EvaluationPeriods=1, Threshold=1,
                            ComparisonOperator="GreaterThanThreshold", TreatMissingData=treat)
    stop = threading.Event()
    failures: list[str] = []

    def churn(seed: int) -> None:
        rng = random.Random(seed)
        client = bootstrap.client("cloudwatch", url)
        t = int(time.time()) - 50_000 + 20_000 * seed
        try:
            while not stop.is_set():
                t += 1
                if rng.random() < 0.7:
                    client.put_metric_data(Namespace="Stress", MetricData=[{
                        "MetricName": "m", "Value": rng.choice([0, 5]),
                        "Timestamp": datetime.fromtimestamp(t - 1, UTC)}])
                plane.evaluate_alarms(t)
                if rng.random() < 0.3:
                    client.set_alarm_state(AlarmName=f"a{rng.randrange(4)}",
                                           StateValue=rng.choice(["OK", "ALARM"]),
                                           StateReason="stress")
        except Exception as exc:  # noqa: BLE001 - reported by the test
            failures.append(repr(exc))

    threads = [threading.Thread(target=churn, args=(s,)) for s in (1, 2)]
    for thread in threads:
        thread.start()
    calls = 0
    deadline = time.monotonic() + 4
    try:
        while time.monotonic() < deadline:
            name = f"a{calls % 4}"
            items = _history(cw, AlarmName=name, HistoryItemType="StateUpdate",
                             ScanBy="TimestampAscending", PaginationConfig={"PageSize": 7})
            _assert_chain(items, name)
            cw.describe_alarm_history(MaxRecords=5, StartDate=datetime(2020, 1, 1),
                                      EndDate=datetime.now(UTC))
            calls += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert not failures, failures
    assert calls > 5
    for n in range(4):
        items = _history(cw, AlarmName=f"a{n}", HistoryItemType="StateUpdate")
        assert len(items) > 3
        _assert_chain(list(reversed(items)), f"a{n}")
        last = json.loads(items[0]["HistoryData"])["newState"]["stateValue"]
        state = cw.describe_alarms(AlarmNames=[f"a{n}"])["MetricAlarms"][0]["StateValue"]
        assert last == state, (f"a{n}", last, state)


def _assert_chain(items: list[dict], name: str) -> None:
    """Oldest first: each transition starts where the previous one ended."""
    states = [json.loads(i["HistoryData"]) for i in items]
    for before, after in zip(states, states[1:], strict=False):
        assert after["oldState"]["stateValue"] == before["newState"]["stateValue"], name
