"""Collection against a real moto endpoint: what lands in metrics.parquet/events.parquet."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pandas as pd

from peakready.collect import AwsClients, collect_run
from peakready.collect.events import event


def _put(cw, namespace, metric, dims, points):
    cw.put_metric_data(Namespace=namespace, MetricData=[
        {"MetricName": metric, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
         "Timestamp": datetime.fromtimestamp(ts, UTC), "Value": value, "StorageResolution": 1}
        for ts, value in points])


def test_collect_zero_fills_alb_counts_and_keeps_other_gaps(shop, tmp_path):
    cw = shop["client"]("cloudwatch")
    start = (int(time.time()) // 5) * 5 - 60
    end = start + 60
    lb = {"LoadBalancer": shop["lb_dim"]}
    # requests in 10 of 12 periods: 2 gaps the ALB would leave empty
    _put(cw, "AWS/ApplicationELB", "RequestCount", lb,
         [(start + 5 * i + 1, 100.0 + i) for i in range(12) if i not in (4, 5)])
    _put(cw, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb, [(start + 31, 7.0)])
    _put(cw, "AWS/ApplicationELB", "HealthyHostCount",
         {"LoadBalancer": shop["lb_dim"], "TargetGroup": shop["tg_dim"]},
         [(start + 5 * i + 2, 2.0) for i in range(0, 12, 2)])
    _put(cw, "AWS/ApplicationELB", "TargetResponseTime", lb,
         [(start + 5 * i + 1, 0.05) for i in range(12)])
    _put(cw, "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": "peakready-db-1"},
         [(start + 5 * i + 1, 10.0 + i) for i in range(12)])
    # a metric of somebody else's load balancer must not be collected
    _put(cw, "AWS/ApplicationELB", "RequestCount", {"LoadBalancer": "app/other-alb/1"},
         [(start + 1, 5.0)])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    abort = event(start + 40, "peakready", "abort", "run", reason="test")
    summary = collect_run(run_dir, AwsClients("eu-central-1", shop["aws"]), shop["resources"],
                          start, end, base_period_s=5, extra_events=[abort])

    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    assert list(metrics.columns) == ["ts", "source", "namespace", "metric", "dimensions",
                                     "stat", "period_s", "value"]
    assert summary.period_s == 5
    requests = metrics.query("metric == 'RequestCount' and stat == 'Sum'")
    assert set(requests["dimensions"]) == {f"LoadBalancer={shop['lb_dim']}"}
    assert len(requests) == 12  # every period of the window, gaps included
    assert requests.set_index("ts").loc[[start + 20.0, start + 25.0], "value"].tolist() == [0.0, 0.0]
    assert requests["value"].sum() == sum(100.0 + i for i in range(12) if i not in (4, 5))
    errors = metrics.query("metric == 'HTTPCode_Target_5XX_Count'")
    assert len(errors) == 12 and errors["value"].sum() == 7.0
    healthy = metrics.query("metric == 'HealthyHostCount' and stat == 'Minimum'")
    assert len(healthy) == 6  # a gauge: gaps stay gaps
    assert "LoadBalancer=" in healthy["dimensions"].iloc[0] and ",TargetGroup=" in healthy["dimensions"].iloc[0]
    rds = metrics.query("namespace == 'AWS/RDS' and stat == 'Maximum'")
    assert rds["value"].tolist() == [10.0 + i for i in range(12)]

    events = pd.read_parquet(run_dir / "events.parquet")
    assert list(events.columns) == ["ts", "source", "kind", "resource", "detail"]
    assert events.query("kind == 'abort'")["detail"].map(json.loads).iloc[0]["reason"] == "test"
    # plain moto cannot compute percentiles nor serve alarm history: warned, not fatal
    print(summary.warnings)
    assert any("p95" in w for w in summary.warnings)
    average = metrics.query("metric == 'TargetResponseTime' and stat == 'Average'")
    assert average["value"].round(3).tolist() == [0.05] * 12
    assert any("alarm_history" in w for w in summary.warnings)
    # ... and named as data, so a re-collection keeps that source's earlier rows
    failed = {(f.source, f.file) for f in summary.failures}
    assert failed == {("cloudwatch", "metrics.parquet"), ("cloudwatch", "events.parquet"),
                      ("elasticache", "events.parquet")}
    assert [f.warning for f in summary.failures] == summary.warnings
