"""AWS state and processes in step, both ways, beyond the Must-show cases: a crashed
process is replaced, desired capacity starts and stops processes (with draining),
stopped instances are replaced, AWS's limits hold, cache node reboots move Redis."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from chaosaws.elasticache.actions import reboot_cache_clusters

from peakready.sandbox.aws import names

from .conftest import asg_instances, live_status, wait_for


def _in_service(aws) -> set[str]:
    return {i["InstanceId"] for i in asg_instances(aws) if i["LifecycleState"] == "InService"}


def _activities(aws, since):
    return [a for a in aws("autoscaling").describe_scaling_activities(
        AutoScalingGroupName=names.ASG)["Activities"] if a["StartTime"] >= since]


def _pid(sandbox_status, instance_id: str) -> int:
    return next(c["pid"] for c in live_status(sandbox_status)["components"]
                if c["name"] == instance_id)


def _gone(pid: int) -> bool:
    import psutil
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_crashed_process_turns_unhealthy_and_is_replaced(sandbox_status, aws):
    since = datetime.now(UTC) - timedelta(seconds=1)
    victim = sorted(_in_service(aws))[0]
    os.kill(_pid(sandbox_status, victim), signal.SIGKILL)  # a process this sandbox started
    wait_for(lambda: victim not in {i["InstanceId"] for i in asg_instances(aws)}, 20,
             what="the group to take the crashed instance out")
    wait_for(lambda: len(_in_service(aws)) == 2, 20, what="a healthy replacement")
    causes = [a["Cause"] for a in _activities(aws, since)
              if a["Description"] == f"Terminating EC2 instance: {victim}"]
    assert causes and "ELB system health check failure" in causes[0], causes


def test_desired_capacity_starts_and_drains_processes(sandbox_status, aws):
    autoscaling = aws("autoscaling")
    since = datetime.now(UTC) - timedelta(seconds=1)
    before = _in_service(aws)
    autoscaling.set_desired_capacity(AutoScalingGroupName=names.ASG, DesiredCapacity=3)
    new = wait_for(lambda: _in_service(aws) - before, 20, what="a third instance in service")
    (new_id,) = new
    assert _pid(sandbox_status, new_id) > 0

    autoscaling.set_desired_capacity(AutoScalingGroupName=names.ASG, DesiredCapacity=2)
    removed = wait_for(lambda: (before | new) - {i["InstanceId"] for i in asg_instances(aws)},
                       5, what="the group to shrink")
    (removed_id,) = removed
    zones = [i["AvailabilityZone"] for i in asg_instances(aws)]
    assert sorted(zones) == [f"{names.REGION}a", f"{names.REGION}b"]  # still balanced
    pid = _pid(sandbox_status, removed_id)
    assert not _gone(pid)  # deregistered first; the VM ends after the deregistration delay
    wait_for(lambda: _gone(pid), 10, what="the drained process to stop")
    tg_arn = aws("elbv2").describe_target_groups(Names=[names.TARGET_GROUP])["TargetGroups"][0][
        "TargetGroupArn"]
    health = aws("elbv2").describe_target_health(TargetGroupArn=tg_arn)[
        "TargetHealthDescriptions"]
    assert removed_id not in {h["Target"]["Id"] for h in health}
    by_desc = {a["Description"]: a for a in _activities(aws, since)}
    assert "explicitly set group desired capacity changing the desired capacity from 2 to 3" \
        in by_desc[f"Launching a new EC2 instance: {new_id}"]["Cause"]
    term = by_desc[f"Terminating EC2 instance: {removed_id}"]
    assert term["StatusCode"] == "Successful"
    assert (term["EndTime"] - term["StartTime"]).total_seconds() >= 1.0  # FAST's delay

    with pytest.raises(ClientError, match="above max"):
        autoscaling.set_desired_capacity(AutoScalingGroupName=names.ASG,
                                         DesiredCapacity=names.ASG_MAX + 1)


def test_stopped_instance_is_replaced(sandbox_status, aws):
    victim = sorted(_in_service(aws))[0]
    pid = _pid(sandbox_status, victim)
    aws("ec2").stop_instances(InstanceIds=[victim])
    wait_for(lambda: _gone(pid), 5, what="the stopped instance's process to end")
    wait_for(lambda: len(_in_service(aws) - {victim}) == 2, 20, what="a replacement")


def test_detached_instance_keeps_running_outside_the_group(sandbox_status, aws):
    victim = sorted(_in_service(aws))[0]
    pid = _pid(sandbox_status, victim)
    aws("autoscaling").detach_instances(AutoScalingGroupName=names.ASG, InstanceIds=[victim],
                                        ShouldDecrementDesiredCapacity=False)
    wait_for(lambda: len(_in_service(aws)) == 2 and victim not in _in_service(aws), 20,
             what="a replacement for the detached instance")
    assert not _gone(pid)  # detached, not terminated
    tg_arn = aws("elbv2").describe_target_groups(Names=[names.TARGET_GROUP])["TargetGroups"][0][
        "TargetGroupArn"]
    targets = aws("elbv2").describe_target_health(TargetGroupArn=tg_arn)[
        "TargetHealthDescriptions"]
    assert victim not in {t["Target"]["Id"] for t in targets if t["TargetHealth"]["State"]
                          != "draining"}


def test_instances_spread_over_azs_so_an_az_fault_takes_only_part(sandbox_status, aws,
                                                                   chaos_config):
    from chaosaws.asg.actions import terminate_random_instances

    wait_for(lambda: len(_in_service(aws)) == 2, 20, what="two instances in service")
    zones = {i["InstanceId"]: i["AvailabilityZone"] for i in asg_instances(aws)}
    assert sorted(zones.values()) == [f"{names.REGION}a", f"{names.REGION}b"]
    survivor = next(i for i, z in zones.items() if z.endswith("b"))
    pid = _pid(sandbox_status, survivor)
    result = terminate_random_instances(asg_names=[names.ASG], az=f"{names.REGION}a",
                                        configuration=chaos_config)
    killed = {i["InstanceId"] for r in result for i in r["TerminatingInstances"]}
    assert killed == {i for i, z in zones.items() if z.endswith("a")}
    assert not _gone(pid) and survivor in _in_service(aws)


def test_reboot_cache_cluster_moves_the_primary_and_node_info_is_live(sandbox_status, aws,
                                                                     chaos_config):
    cache = aws("elasticache")
    group = cache.describe_replication_groups(ReplicationGroupId=names.CACHE_GROUP)[
        "ReplicationGroups"][0]
    primary = next(m["CacheClusterId"] for m in group["NodeGroups"][0]["NodeGroupMembers"]
                   if m["CurrentRole"] == "primary")
    port = next(c["port"] for c in live_status(sandbox_status)["components"]
                if c["name"] == primary)
    info = cache.describe_cache_clusters(CacheClusterId=primary, ShowCacheNodeInfo=True)
    assert info["CacheClusters"][0]["CacheNodes"][0]["Endpoint"]["Port"] == port

    reboot_cache_clusters(cluster_ids=[primary], configuration=chaos_config)

    def roles():
        group = cache.describe_replication_groups(ReplicationGroupId=names.CACHE_GROUP)[
            "ReplicationGroups"][0]
        return {m["CacheClusterId"]: m["CurrentRole"]
                for m in group["NodeGroups"][0]["NodeGroupMembers"]}
    wait_for(lambda: roles()[primary] == "replica", 15, what="the rebooted primary to hand over")
    wait_for(lambda: any(e["Message"] == "Finished recovery for cache nodes 0001"
                         and e["SourceIdentifier"] == primary
                         for e in cache.describe_events()["Events"]), 20,
             what="the node to come back as a replica")


def test_failover_without_a_target_promotes_the_reader(sandbox_status, aws):
    """Plain boto3 (chaosaws cannot: research/chaos-pitfalls.md): AWS picks the reader."""
    rds = aws("rds")

    def writer() -> str:
        members = rds.describe_db_clusters(DBClusterIdentifier=names.DB_CLUSTER)[
            "DBClusters"][0]["DBClusterMembers"]
        return next(m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"])

    old = writer()
    response = rds.failover_db_cluster(DBClusterIdentifier=names.DB_CLUSTER)
    assert response["DBCluster"]["Status"] == "failing-over"
    new = wait_for(lambda: (lambda w: w != old and w)(writer()), 60, what="a new writer")
    assert new in names.DB_INSTANCES
    wait_for(lambda: any(n["role"] == "reader" and n.get("state") == "running"
                         for n in live_status(sandbox_status)["components"]
                         if n["kind"] == "postgres"), 60, what="the old writer to rejoin")
    rds.failover_db_cluster(DBClusterIdentifier=names.DB_CLUSTER)
    with pytest.raises(ClientError, match="not in available state"):  # one at a time
        rds.failover_db_cluster(DBClusterIdentifier=names.DB_CLUSTER)
    wait_for(lambda: rds.describe_db_clusters(DBClusterIdentifier=names.DB_CLUSTER)[
        "DBClusters"][0]["Status"] == "available", 60, what="the cluster to settle")


def _tg_health(aws) -> dict[str, str]:
    elbv2 = aws("elbv2")
    arn = elbv2.describe_target_groups(Names=[names.TARGET_GROUP])["TargetGroups"][0][
        "TargetGroupArn"]
    return {t["Target"]["Id"]: t["TargetHealth"]["State"]
            for t in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}


def test_ec2_terminate_of_every_member_registers_the_replacements(sandbox_status, aws, shop):
    """Plain EC2 TerminateInstances on all members: the replacements are the target
    group's targets (and only they), and the storefront answers again."""
    victims = sorted(wait_for(lambda: _in_service(aws) if len(_in_service(aws)) == 2 else None,
                              20, what="two instances in service"))
    aws("ec2").terminate_instances(InstanceIds=victims)
    fresh = wait_for(lambda: (_in_service(aws) - set(victims))
                     if len(_in_service(aws) - set(victims)) == 2 else None,
                     30, what="two replacements in service")
    wait_for(lambda: {i: s for i, s in _tg_health(aws).items() if s != "draining"}
             == dict.fromkeys(fresh, "healthy"), 10,
             what="the target group to hold exactly the healthy replacements")
    wait_for(lambda: shop.request("GET", "/api/products?page=1")[0] == 200, 10,
             what="the storefront to answer 200 again")


def test_standby_leaves_the_target_group_and_exit_standby_returns(sandbox_status, aws):
    autoscaling = aws("autoscaling")
    wait_for(lambda: len(_in_service(aws)) == 2, 20, what="two instances in service")
    victim = sorted(_in_service(aws))[0]
    autoscaling.enter_standby(AutoScalingGroupName=names.ASG, InstanceIds=[victim],
                              ShouldDecrementDesiredCapacity=True)
    wait_for(lambda: _tg_health(aws).get(victim) in (None, "draining"), 5,
             what="the standby instance to leave the target group")
    assert victim not in _in_service(aws)
    # a capacity change (moto re-registers every member) keeps it out
    autoscaling.set_desired_capacity(AutoScalingGroupName=names.ASG, DesiredCapacity=2)
    wait_for(lambda: len(_in_service(aws)) == 2, 20, what="a replacement in service")
    assert _tg_health(aws).get(victim) in (None, "draining")
    autoscaling.exit_standby(AutoScalingGroupName=names.ASG, InstanceIds=[victim])
    wait_for(lambda: _tg_health(aws).get(victim) == "healthy" and victim in _in_service(aws),
             20, what="the instance back in service and healthy in the target group")
    autoscaling.set_desired_capacity(AutoScalingGroupName=names.ASG, DesiredCapacity=2)
    wait_for(lambda: len(_in_service(aws)) == 2 and set(_tg_health(aws).values())
             <= {"healthy", "draining"}, 20, what="two instances again")
