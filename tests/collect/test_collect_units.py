"""Pure parts of collection: periods CloudWatch still serves, API limits, event mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from peakready.collect import events as ev
from peakready.collect import metrics as mx

NOW = 1_800_000_000.0


def test_period_follows_retention_of_the_data_age():
    assert mx.choose_period(NOW - 600, NOW, NOW, 5) == 5  # fresh: high resolution kept
    assert mx.choose_period(NOW - 4 * 3600, NOW - 3 * 3600, NOW, 5) == 60  # older than 3 h
    assert mx.choose_period(NOW - 20 * 86400, NOW - 19 * 86400, NOW, 60) == 300
    assert mx.choose_period(NOW - 70 * 86400, NOW - 69 * 86400, NOW, 60) == 3600
    assert mx.choose_period(NOW - 600, NOW, NOW, 90) == 120  # multiples of 60 above 60 s
    # a long window grows the period until one query fits in one call
    long = mx.choose_period(NOW - 2 * 3600, NOW, NOW, 1)
    assert 7200 / long <= mx.MAX_POINTS_PER_CALL


def test_batches_respect_limits_and_isolate_percentiles():
    metrics = [{"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime",
                "Dimensions": [{"Name": "LoadBalancer", "Value": f"app/lb{i}/1"}]}
               for i in range(300)]
    queries = mx.build_queries(metrics)
    assert len(queries) == 1200 and len({q.id for q in queries}) == 1200
    calls = mx.batches(queries, points_per_query=100)
    assert all(len(c) <= 500 for c in calls)
    assert all(len(c) * 100 <= mx.MAX_POINTS_PER_CALL for c in calls)
    for call in calls:
        kinds = {mx.is_percentile(q.stat) for q in call}
        assert len(kinds) == 1  # never a percentile in the same call as a plain statistic
    assert sum(len(c) for c in calls) == 1200
    # many points per query: fewer queries per call
    assert max(len(c) for c in mx.batches(queries, points_per_query=10_080)) == 10


def test_resource_matching_reads_arn_style_dimension_values():
    names = {"peakready-alb", "peakready-web-tg", "peakready-db-1"}
    assert mx.refers_to([{"Name": "LoadBalancer", "Value": "app/peakready-alb/50dc"}], names)
    assert mx.refers_to([{"Name": "TargetGroup", "Value": "targetgroup/peakready-web-tg/9"}], names)
    assert mx.refers_to([{"Name": "DBInstanceIdentifier", "Value": "peakready-db-1"}], names)
    assert not mx.refers_to([{"Name": "LoadBalancer", "Value": "app/other/1"}], names)


def _t(ts):
    return datetime.fromtimestamp(ts, UTC)


def test_scaling_activities_give_launch_and_terminate_events():
    acts = [
        {"ActivityId": "a1", "AutoScalingGroupName": "web", "StatusCode": "Successful",
         "Description": "Launching a new EC2 instance: i-0abc123",
         "Cause": "... changing the desired capacity from 2 to 3 ...",
         "StartTime": _t(NOW + 10), "EndTime": _t(NOW + 16)},
        {"ActivityId": "a2", "AutoScalingGroupName": "web", "StatusCode": "Successful",
         "Description": "Terminating EC2 instance: i-0def456", "Cause": "unhealthy",
         "StartTime": _t(NOW + 5), "EndTime": _t(NOW + 6)},
        {"ActivityId": "old", "AutoScalingGroupName": "web", "Description": "Launching a new EC2 instance: i-1",
         "StartTime": _t(NOW - 999)},
    ]
    rows = ev.scaling_rows(acts, NOW, NOW + 100)
    kinds = sorted((r["kind"], r["resource"]) for r in rows)
    assert kinds == [("instance_launch", "i-0abc123"), ("instance_terminate", "i-0def456"),
                     ("scaling_activity", "web"), ("scaling_activity", "web")]
    launch = next(r for r in rows if r["kind"] == "instance_launch")
    assert launch["ts"] == NOW + 16  # in service when the launch activity ended
    terminate = next(r for r in rows if r["kind"] == "instance_terminate")
    assert terminate["ts"] == NOW + 5
    assert json.loads(launch["detail"])["end"] == NOW + 16  # epoch seconds, like every ts


def test_failover_messages_map_to_start_and_end():
    assert ev.rds_kind("Started cross AZ failover to DB instance: peakready-db-2") == "db_failover_start"
    assert ev.rds_kind("Completed failover to DB instance: peakready-db-2") == "db_failover_end"
    assert ev.rds_kind("DB instance restarted") == "rds_event"
    assert ev.cache_kind("Test Failover API called for node group 0001") == "cache_failover_start"
    assert ev.cache_kind("Failover from primary node peakready-sessions-001 to replica node "
                         "peakready-sessions-002 completed") == "cache_failover_end"
    rows = ev.cache_rows([
        {"SourceIdentifier": "peakready-sessions", "Message": "Test Failover API called for node group 0001", "Date": _t(NOW + 1)},
        {"SourceIdentifier": "someone-else", "Message": "Failover completed", "Date": _t(NOW + 2)},
    ], NOW, NOW + 10, "peakready-sessions", [])
    assert [r["kind"] for r in rows] == ["cache_failover_start"]


def test_alarm_history_rows_carry_from_to_and_reason():
    data = {"oldState": {"stateValue": "OK"},
            "newState": {"stateValue": "ALARM", "stateReason": "Threshold Crossed: 3 datapoints"}}
    items = [{"AlarmName": "peakready-web-5xx", "Timestamp": _t(NOW + 3),
              "HistoryItemType": "StateUpdate", "HistoryData": json.dumps(data)},
             {"AlarmName": "unrelated", "Timestamp": _t(NOW + 3),
              "HistoryItemType": "StateUpdate", "HistoryData": json.dumps(data)}]
    rows = ev.alarm_rows(items, NOW, NOW + 10, lambda name: name.startswith("peakready"))
    assert len(rows) == 1
    detail = json.loads(rows[0]["detail"])
    assert (detail["from"], detail["to"]) == ("OK", "ALARM") and "Threshold" in detail["reason"]
