"""Issue 4 "Must show": stock boto3 and stock chaostoolkit-aws against a running sandbox,
with real effects on the processes behind it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psutil
from chaosaws.asg.actions import terminate_random_instances
from chaosaws.cloudwatch.probes import get_metric_data
from chaosaws.elasticache.actions import test_failover as elasticache_test_failover
from chaosaws.elbv2.probes import all_targets_healthy
from chaosaws.rds.actions import failover_db_cluster

from peakready.sandbox.aws import names

from .conftest import asg_instances, component, live_status, wait_for


def _dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _served_by(shop, instance_id: str, tries: int = 40) -> bool:
    return any(shop.request("GET", "/api/products?page=1")[2].get("X-Instance-Id") == instance_id
               for _ in range(tries))


def test_stock_probes_see_a_healthy_sandbox(sandbox_status, chaos_config):
    assert sandbox_status["aws"]["region"] == names.REGION
    # (a storefront starved of CPU can miss two 1-s health checks of the tests' fast
    # timing and be out for a moment: the probe must see the fleet healthy, not at once)
    assert wait_for(lambda: all_targets_healthy(tg_names=[names.TARGET_GROUP],
                                                configuration=chaos_config), 20,
                    what="every target healthy")


def test_terminate_random_instance_kills_process_and_asg_replaces_it(
        sandbox_status, aws, shop, chaos_config):
    before = {i["InstanceId"] for i in asg_instances(aws)}
    pids = {c["name"]: c["pid"] for c in live_status(sandbox_status)["components"]
            if c["kind"] == "storefront" and c["alive"]}
    response = terminate_random_instances(asg_names=[names.ASG], instance_count=1,
                                          configuration=chaos_config)
    (victim,) = [i["InstanceId"] for r in response for i in r["TerminatingInstances"]]
    assert victim in before
    wait_for(lambda: _dead(pids[victim]), 5, what=f"process of {victim} to die")

    def replacement():
        fresh = [i for i in asg_instances(aws) if i["InstanceId"] not in before]
        return fresh and fresh[0]
    new = wait_for(replacement, 5, what="a replacement instance in the group")
    assert new["LifecycleState"] == "Pending"  # booting: not in service before the boot delay
    wait_for(lambda: any(i["InstanceId"] == new["InstanceId"] and
                         i["LifecycleState"] == "InService" for i in asg_instances(aws)),
             20, what="the replacement to be InService")
    assert _served_by(shop, new["InstanceId"])

    activities = aws("autoscaling").describe_scaling_activities(
        AutoScalingGroupName=names.ASG)["Activities"]
    by_desc = {a["Description"]: a for a in activities}
    term = by_desc[f"Terminating EC2 instance: {victim}"]
    launch = by_desc[f"Launching a new EC2 instance: {new['InstanceId']}"]
    assert term["StatusCode"] == "Successful" and "terminated or stopped" in term["Cause"]
    assert launch["StatusCode"] == "Successful"
    assert "difference between desired and actual capacity" in launch["Cause"]
    boot = (launch["EndTime"] - launch["StartTime"]).total_seconds()
    assert boot >= 2.0  # the boot delay is real
    assert all_targets_healthy(tg_names=[names.TARGET_GROUP], configuration=chaos_config)


def _order(shop, cookie: str, sku: str = "SKU-00001") -> tuple[int, object]:
    status, body, _ = shop.request("POST", "/api/cart/items", {"sku": sku, "qty": 1},
                                   cookie=cookie)
    if status != 200:
        return status, body
    status, body, _ = shop.request("POST", "/api/checkout", cookie=cookie)
    return status, body


def _writer(aws) -> str:
    cluster = aws("rds").describe_db_clusters(DBClusterIdentifier=names.DB_CLUSTER)["DBClusters"][0]
    return next(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]
                if m["IsClusterWriter"])


class _Buyer:
    """Checks out in a loop (bounded by the ``with``), recording confirmed orders."""

    def __init__(self, shop, cookie: str):
        import threading

        self.shop, self.cookie = shop, cookie
        self.confirmed: list[str] = []
        self.confirmed_at: list[float] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self):
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                status, body = _order(self.shop, self.cookie, sku=f"SKU-{1 + n % 50:05d}")
            except OSError:
                status, body = 0, None
            if status == 200:
                self.confirmed.append(body["order_id"])
                self.confirmed_at.append(time.time())
            else:
                self.failed += 1
            self._stop.wait(0.1)

    def confirmed_after(self, ts: float) -> bool:
        return any(t > ts - 0.5 for t in self.confirmed_at[-3:])


def _assert_not_flipped_yet(aws, old: str) -> None:
    """The call returns at once, as on AWS; nothing flips before the process does."""
    cluster = aws("rds").describe_db_clusters(DBClusterIdentifier=names.DB_CLUSTER)
    assert cluster["DBClusters"][0]["Status"] == "failing-over"
    assert _writer(aws) == old


def test_rds_failover_promotes_standby_and_keeps_every_order(
        sandbox_status, aws, shop, chaos_config):
    cookie = shop.login("failover@example.com")
    orders = []
    for _ in range(3):
        status, body = _order(shop, cookie)
        assert status == 200, body
        orders.append(body["order_id"])
    old = _writer(aws)
    target = next(n for n in names.DB_INSTANCES if n != old)
    started = datetime.now(UTC) - timedelta(seconds=1)
    buyer = _Buyer(shop, shop.login("during-failover@example.com"))
    with buyer:
        time.sleep(0.5)
        failover_db_cluster(db_cluster_identifier=names.DB_CLUSTER,
                            target_db_instance_identifier=target, configuration=chaos_config)
        _assert_not_flipped_yet(aws, old)
        wait_for(lambda: _writer(aws) == target, 60, what="IsClusterWriter to flip")
        wait_for(lambda: buyer.confirmed_after(time.time()), 30,
                 what="a confirmed checkout on the new writer")
    orders += buyer.confirmed
    wait_for(lambda: component(live_status(sandbox_status), target)["role"] == "writer", 3,
             what="the promoted PostgreSQL process to report itself writer")

    events = aws("rds").describe_events(SourceType="db-cluster",
                                        SourceIdentifier=names.DB_CLUSTER,
                                        StartTime=started)["Events"]
    messages = [e["Message"] for e in events]
    assert f"Started cross AZ failover to DB instance: {target}" in messages
    assert f"Completed failover to DB instance: {target}" in messages
    assert events[0]["Date"] <= events[-1]["Date"]

    # every order the storefront confirmed, before and during the failover, still exists
    assert len(orders) > 3
    for order_id in orders:
        assert shop.request("GET", f"/api/orders/{order_id}")[0] == 200, order_id


def test_elasticache_test_failover_kills_primary_and_sessions_survive(
        sandbox_status, aws, shop, chaos_config):
    cookie = shop.login("cache-failover@example.com")
    assert shop.request("POST", "/api/cart/items", {"sku": "SKU-00002", "qty": 2},
                        cookie=cookie)[0] == 200
    status = live_status(sandbox_status)
    primary = next(c for c in status["components"]
                   if c["kind"] == "redis" and c["role"] == "primary")
    started = datetime.now(UTC) - timedelta(seconds=1)
    elasticache_test_failover(replication_group_id=names.CACHE_GROUP, node_group_id="0001",
                              configuration=chaos_config)
    wait_for(lambda: _dead(primary["pid"]), 10, what="the Redis primary process to die")

    cache = aws("elasticache")

    def roles():
        group = cache.describe_replication_groups(
            ReplicationGroupId=names.CACHE_GROUP)["ReplicationGroups"][0]
        return {m["CacheClusterId"]: m["CurrentRole"]
                for m in group["NodeGroups"][0]["NodeGroupMembers"]}
    wait_for(lambda: roles()[primary["name"]] == "replica", 15, what="roles to flip")
    messages = [e["Message"] for e in cache.describe_events(StartTime=started)["Events"]]
    assert "Test Failover API called for node group 0001" in messages
    assert any(m.startswith(f"Failover from primary node {primary['name']}") for m in messages)

    code, cart, _ = shop.request("GET", "/api/cart", cookie=cookie)
    assert code == 200, cart  # still logged in, cart intact
    assert any(item.get("sku") == "SKU-00002" for item in cart["items"]), cart
    wait_for(lambda: "Finished recovery for cache nodes 0001" in [
        e["Message"] for e in cache.describe_events(StartTime=started)["Events"]], 20,
        what="the old primary to come back as a replica")


def test_get_metric_data_probe_and_p95_match_the_balancer_log(sandbox_status, aws, shop,
                                                              chaos_config):
    """Quiet, then load for three periods, then quiet: every request the balancer logged
    in the window is in the published datapoints, and the p95 is theirs."""
    import math

    import numpy as np
    import pytest

    from .conftest import access_log_rows, read_access_log

    period = sandbox_status["control_plane"]["target_tracking"]["period_s"]
    time.sleep(period)
    # load from a period's start: three whole loaded periods (a loop started late in its
    # first period, on a busy machine, finished no request in it: no datapoint)
    w0 = (math.floor(time.time() / period) + 1) * period
    time.sleep(w0 - time.time())
    while time.time() < w0 + 3 * period:
        shop.request("GET", "/api/products?page=2")
    time.sleep(period + 1.5)  # the last loaded period is published
    w1 = math.floor(time.time() / period) * period
    count = get_metric_data(namespace="AWS/ApplicationELB", metric_name="RequestCount",
                            dimension_name="LoadBalancer", dimension_value=_lb_dim(aws),
                            statistic="Sum", duration=60, period=period,
                            configuration=chaos_config)
    assert count > 0

    metric = {"Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime",
              "Dimensions": [{"Name": "LoadBalancer", "Value": _lb_dim(aws)}]}
    window = {"StartTime": datetime.fromtimestamp(w0, UTC),
              "EndTime": datetime.fromtimestamp(w1, UTC)}
    def query(stat, length):
        return {"Id": stat.lower(), "MetricStat": {"Metric": metric, "Period": length,
                                                   "Stat": stat}}
    data = aws("cloudwatch").get_metric_data(
        MetricDataQueries=[query("p95", w1 - w0), query("SampleCount", w1 - w0)],
        **window)["MetricDataResults"]
    results = {r["Id"]: r["Values"] for r in data}
    logged = wait_for(lambda: read_access_log(sandbox_status, w0 - period, w1 + period), 5,
                      what="the access log flush")
    assert results["samplecount"] == [len(logged)]  # every proxied request, once
    assert results["p95"][0] == pytest.approx(np.percentile(logged, 95), rel=0.05, abs=0.002)

    # per period: the balancer publishes what finished in the period (a response finishing
    # within the few ms between the boundary and the publish may land one period early)
    per = aws("cloudwatch").get_metric_data(
        MetricDataQueries=[query("p95", period), query("SampleCount", period)],
        ScanBy="TimestampAscending", **window)["MetricDataResults"]
    per = {r["Id"]: dict(zip([t.timestamp() for t in r["Timestamps"]], r["Values"],
                             strict=True)) for r in per}
    rows = access_log_rows(sandbox_status)
    assert len(per["p95"]) >= 3
    for bucket, p95 in per["p95"].items():
        times = [sec for _, done, sec in rows if bucket <= done < bucket + period]
        assert abs(per["samplecount"][bucket] - len(times)) <= 3
        assert p95 == pytest.approx(np.percentile(times, 95), rel=0.25, abs=0.005), bucket


def _lb_dim(aws) -> str:
    arn = aws("elbv2").describe_load_balancers(Names=[names.ALB])["LoadBalancers"][0][
        "LoadBalancerArn"]
    return arn.split(":loadbalancer/", 1)[1]


def test_target_tracking_scales_out_under_load_and_back_in_after(sandbox_status, aws, shop):
    period = sandbox_status["control_plane"]["target_tracking"]["period_s"]
    autoscaling = aws("autoscaling")
    policy = autoscaling.describe_policies(AutoScalingGroupName=names.ASG)["ScalingPolicies"][0]
    config = policy["TargetTrackingConfiguration"]

    def set_target(value: float) -> None:
        autoscaling.put_scaling_policy(
            AutoScalingGroupName=names.ASG, PolicyName=policy["PolicyName"],
            PolicyType="TargetTrackingScaling",
            TargetTrackingConfiguration={**config, "TargetValue": value})

    # 10 requests per target per period: 2 instances hold 10 req/s, 15 req/s needs a third
    set_target(10.0 * period / 2)
    try:
        _scale_out_and_back_in(sandbox_status, aws, shop, period)
    finally:  # the sandbox is shared with the other control modules
        set_target(config["TargetValue"])


def _scale_out_and_back_in(sandbox_status, aws, shop, period: int) -> None:
    from .conftest import PacedLoad

    autoscaling, cw = aws("autoscaling"), aws("cloudwatch")
    started = datetime.now(UTC)

    def group():
        return autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[names.ASG])["AutoScalingGroups"][0]

    def in_service():
        return sum(1 for i in group()["Instances"] if i["LifecycleState"] == "InService")

    assert group()["DesiredCapacity"] == 2
    with PacedLoad(shop, rps=15):
        wait_for(lambda: in_service() >= 3, 45, what="a scale-out to 3 in-service instances")
    high = next(a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]
                if "AlarmHigh" in a["AlarmName"])
    history = cw.describe_alarm_history(AlarmName=high, StartDate=started)["AlarmHistoryItems"]
    assert any(h["HistorySummary"].endswith("to ALARM") for h in history)
    activities = autoscaling.describe_scaling_activities(
        AutoScalingGroupName=names.ASG)["Activities"]
    out = [a for a in activities if a["StartTime"] >= started
           and a["Description"].startswith("Launching") and high in a["Cause"]]
    assert out and out[0]["StatusCode"] == "Successful", activities[:3]

    with PacedLoad(shop, rps=2):  # traffic drops but does not vanish (no data = no scale-in)
        wait_for(lambda: group()["DesiredCapacity"] == 2 and in_service() == 2, 60,
                 what="a scale-in back to 2")
    activities = autoscaling.describe_scaling_activities(
        AutoScalingGroupName=names.ASG)["Activities"]
    scale_in = [a for a in activities if a["StartTime"] >= started
                and a["Description"].startswith("Terminating") and "AlarmLow" in a["Cause"]]
    assert scale_in, activities[:3]
    wait_for(lambda: all(a["StatusCode"] == "Successful" for a in autoscaling.
                         describe_scaling_activities(ActivityIds=[scale_in[0]["ActivityId"]])[
                             "Activities"]), 10, what="the drained instance to be terminated")
    def in_service_points():
        return cw.get_metric_data(
            StartTime=started - timedelta(seconds=period), EndTime=datetime.now(UTC),
            MetricDataQueries=[{"Id": "n", "MetricStat": {"Metric": {
                "Namespace": "AWS/AutoScaling", "MetricName": "GroupInServiceInstances",
                "Dimensions": [{"Name": "AutoScalingGroupName", "Value": names.ASG}]},
                "Period": period, "Stat": "Maximum"}}])["MetricDataResults"][0]["Values"]
    points = wait_for(lambda: (lambda p: p[0] == 2 and p)(in_service_points()), 3 * period,
                      what="GroupInServiceInstances back to 2")  # newest first
    assert max(points) >= 3
