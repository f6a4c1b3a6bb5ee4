"""Pure pieces of the control plane: statistics, metric math, alarm decisions, scaling."""

from __future__ import annotations

import numpy as np
import pytest

from peakready.sandbox.aws import alarms, publish, scaling
from peakready.sandbox.aws.metricstore import MetricStore
from peakready.sandbox.aws.queries import metric_data

LB = [{"Name": "LoadBalancer", "Value": "app/peakready-alb/1"}]


def _store_with_times(rng):
    store = MetricStore()
    per_period = [rng.exponential(0.05, 200) for _ in range(4)]
    for n, times in enumerate(per_period):
        store.put("AWS/ApplicationELB", {"MetricName": "TargetResponseTime", "Dimensions": LB,
                                         "Values": list(times), "Unit": "Seconds"}, 1000 + 5 * n)
    return store, per_period


def test_percentile_is_exact_over_raw_values_for_any_window():
    store, per_period = _store_with_times(np.random.default_rng(1))
    stat = {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime",
                       "Dimensions": LB}, "Stat": "p95"}
    per5 = metric_data(store, [{"Id": "a", "MetricStat": {**stat, "Period": 5}}], 1000, 1020,
                       "TimestampAscending")[0]
    assert per5["Values"] == pytest.approx([np.percentile(t, 95) for t in per_period])
    per20 = metric_data(store, [{"Id": "a", "MetricStat": {**stat, "Period": 20}}], 1000, 1020)[0]
    assert per20["Values"] == pytest.approx([np.percentile(np.concatenate(per_period), 95)])


def test_counts_expand_values_and_basic_stats_agree():
    store = MetricStore()
    store.put("X", {"MetricName": "m", "Values": [1.0, 3.0], "Counts": [3, 1]}, 10)
    store.put("X", {"MetricName": "m", "StatisticValues": {
        "SampleCount": 2, "Sum": 10, "Minimum": 4, "Maximum": 6}}, 11)
    got = {s: store.series("X", "m", [], s, 60, 0, 60)[0][1]
           for s in ("SampleCount", "Sum", "Average", "Minimum", "Maximum", "p50")}
    assert got == {"SampleCount": 6, "Sum": 16, "Average": 16 / 6, "Minimum": 1, "Maximum": 6,
                   "p50": 1.0}  # the percentile only sees raw values


def test_metric_math_fill_adds_sparse_counts():
    store = MetricStore()
    store.put("AWS/ApplicationELB", {"MetricName": "A", "Value": 3}, 100)
    store.put("AWS/ApplicationELB", {"MetricName": "B", "Value": 4}, 105)
    stat = {"Period": 5, "Stat": "Sum"}
    queries = [
        {"Id": "a", "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "A"}, **stat}},
        {"Id": "b", "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "B"}, **stat}},
        {"Id": "t", "Expression": "FILL(a, 0) + FILL(b, 0)"},
    ]
    (result,) = metric_data(store, queries, 100, 115, "TimestampAscending")
    assert result["Values"] == [3.0, 4.0, 0.0]
    with pytest.raises(ValueError, match="not supported"):
        metric_data(store, [*queries[:2], {"Id": "x", "Expression": "ANOMALY_DETECTION_BAND(a)"}],
                    100, 115)


def _spec(**kw):
    base = dict(name="a", arn="arn", queries=({"Id": "m", "MetricStat": {"Stat": "Sum"}},),
                period=5, evaluation_periods=3, datapoints_to_alarm=2, threshold=5.0,
                comparison="GreaterThanThreshold", treat_missing="missing")
    return alarms.AlarmSpec(**{**base, **kw})


def test_alarm_needs_n_of_m_breaching_datapoints():
    spec = _spec()
    assert alarms.decide(spec, [(0, 9.0), (5, 1.0), (10, 2.0)], "OK")[0] == "OK"
    state, reason, _ = alarms.decide(spec, [(0, 9.0), (5, 1.0), (10, 7.0)], "OK")
    assert state == "ALARM" and "2 out of the last 3" in reason
    assert alarms.decide(spec, [(0, None)] * 3, "OK")[0] == "INSUFFICIENT_DATA"
    missing_bad = _spec(treat_missing="breaching")
    assert alarms.decide(missing_bad, [(0, None), (5, None), (10, 1.0)], "OK")[0] == "ALARM"
    missing_ok = _spec(treat_missing="notBreaching")
    assert alarms.decide(missing_ok, [(0, None)] * 3, "ALARM")[0] == "OK"


def test_alarm_window_reads_complete_periods_from_store():
    store = MetricStore()
    for ts, value in ((100, 9), (105, 9), (110, 9), (115, 1)):
        store.put("NS", {"MetricName": "m", "Value": value}, ts)
    spec = _spec(queries=({"Id": "m", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "NS", "MetricName": "m", "Dimensions": []},
        "Period": 5, "Stat": "Sum"}},))
    # at t=117 the period [115,120) is incomplete: the window is 100..110
    assert [v for _, v in alarms.window(spec, store, 117)] == [9, 9, 9]
    assert [v for _, v in alarms.window(spec, store, 120)] == [9, 9, 1]


def test_target_tracking_capacity_is_proportional_and_bounded():
    assert scaling.capacity_for(250, 125, 2) == 4
    assert scaling.scale_out_to(250, 125, 2, desired=2, max_size=6) == 4
    assert scaling.scale_out_to(1000, 125, 2, desired=2, max_size=6) == 6
    assert scaling.scale_out_to(100, 125, 2, desired=3, max_size=6) == 3  # never down
    assert scaling.scale_in_to(20, 125, 4, desired=4, min_size=2) == 2
    assert scaling.scale_in_to(200, 125, 4, desired=4, min_size=2) == 4  # never up


def test_activity_log_newest_first_with_times():
    log = scaling.ActivityLog()
    first = log.start("Launching a new EC2 instance: i-1", "cause 1")
    second = log.start("Terminating EC2 instance: i-2", "cause 2")
    log.finish(first)
    items = log.query()
    assert [i["ActivityId"] for i in items] == [second, first]
    assert items[1]["StatusCode"] == "Successful" and items[1]["EndTime"] >= items[1]["StartTime"]
    assert items[0]["StatusCode"] == "InProgress" and "EndTime" not in items[0]


def test_alb_datums_omit_zero_counts_and_keep_raw_times():
    stats = {"lb": {"requests": 4, "target_2xx": 3, "target_5xx": 0, "elb_502": 1,
                    "new_connections": 2, "active_connections": 0,
                    "response_times": [0.1, 0.2, 0.3], "healthy_host_count": 2,
                    "unhealthy_host_count": 1}}
    datums = {(d["MetricName"], tuple(x["Name"] for x in d["Dimensions"])): d
              for _, d in publish.alb_datums(stats, "app/x/1", "targetgroup/y/2")}
    assert ("HTTPCode_Target_5XX_Count", ("LoadBalancer",)) not in datums
    assert datums[("HTTPCode_ELB_5XX_Count", ("LoadBalancer",))]["Value"] == 1
    assert datums[("TargetResponseTime", ("LoadBalancer",))]["Values"] == [0.1, 0.2, 0.3]
    assert datums[("RequestCountPerTarget", ("TargetGroup",))]["Value"] == 2.0
    assert datums[("HealthyHostCount", ("TargetGroup", "LoadBalancer"))]["Value"] == 2
    assert datums[("NewConnectionCount", ("LoadBalancer",))]["Value"] == 2
    assert ("ActiveConnectionCount", ("LoadBalancer",)) not in datums


def test_counter_metrics_are_rates_between_snapshots():
    prev = {"peakready-db-1": {"commits": 100}}
    now = [{"name": "peakready-db-1", "role": "writer", "commits": 150, "connections": 7}]
    got = {(d["MetricName"], d["Dimensions"][0]["Value"]): d["Value"]
           for _, d in publish.rds_datums(now, prev, 5)}
    assert got[("CommitThroughput", "peakready-db-1")] == 10.0
    assert got[("DatabaseConnections", "peakready-db")] == 7


def test_prune_forgets_old_datapoints_only():
    store = MetricStore()
    for ts in (10, 20, 30):
        store.put("NS", {"MetricName": "m", "Value": ts}, ts)
    assert store.prune(before=20) == 1
    assert [t for t, _ in store.series("NS", "m", [], "Sum", 10, 0, 40)] == [20, 30]


def test_termination_order_takes_the_busiest_az_and_oldest_first():
    from types import SimpleNamespace as NS

    from peakready.sandbox.aws.extensions import termination_order

    def state(name, az, launched):
        return NS(name=name, availability_zone=az, instance=NS(launch_time=launched))
    states = [state("a-new", "a", 3), state("b-old", "b", 1), state("a-old", "a", 2)]
    assert [s.name for s in termination_order(states)] == ["a-old", "b-old", "a-new"]


def test_suspended_processes_block_what_aws_documents():
    from datetime import UTC, datetime

    from peakready.sandbox.aws import processes as p

    moto_style = [{"ProcessName": "Terminate", "SuspensionReason": ""}]
    assert p.names_of(moto_style) == {"Terminate"}
    assert not p.may_scale_in(p.names_of(moto_style))
    assert not p.may_replace_unhealthy(p.names_of(moto_style))  # it needs Terminate
    assert p.may_launch(p.names_of(moto_style)) and p.may_mark_unhealthy(frozenset())
    launch = p.names_of(["Launch"])
    assert not p.may_launch(launch) and p.may_replace_unhealthy(launch)  # terminates only
    assert not p.may_execute_policies(p.names_of(["AlarmNotification"]))
    assert not p.may_mark_unhealthy(p.names_of(["HealthCheck"]))
    assert p.suspension_reason(datetime(2026, 11, 26, 4, 40, tzinfo=UTC)) == \
        "User suspended at 2026-11-26T04:40:00Z"
