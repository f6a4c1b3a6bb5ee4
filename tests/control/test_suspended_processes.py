"""Suspended Auto Scaling processes hold the real processes back, as on AWS: with Launch
suspended no storefront process starts (not for a replacement, not for a higher desired
capacity) until Launch is resumed; Terminate, HealthCheck, ReplaceUnhealthy and
AlarmNotification block what they block on AWS."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta

from chaosaws.asg.actions import resume_processes, suspend_processes

from peakready.sandbox.aws import names

from .conftest import PacedLoad, asg_instances, live_status, wait_for

HOLD_S = 3.0  # how long a blocked action must stay blocked


def _group(aws) -> dict:
    return aws("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[names.ASG])["AutoScalingGroups"][0]


def _in_service(aws) -> set[str]:
    return {i["InstanceId"] for i in asg_instances(aws) if i["LifecycleState"] == "InService"}


def _storefronts(sandbox_status) -> dict[str, int]:
    """Live storefront processes: instance id -> pid."""
    return {c["name"]: c["pid"] for c in live_status(sandbox_status)["components"]
            if c["kind"] == "storefront" and c["alive"]}


def _activities(aws, since: datetime, prefix: str) -> list[dict]:
    return [a for a in aws("autoscaling").describe_scaling_activities(
        AutoScalingGroupName=names.ASG)["Activities"]
        if a["StartTime"] >= since and a["Description"].startswith(prefix)]


def _served_by(shop, instance_id: str, tries: int = 40) -> bool:
    return any(shop.request("GET", "/api/products?page=1")[2].get("X-Instance-Id") == instance_id
               for _ in range(tries))


def _holds(predicate, seconds: float = HOLD_S) -> None:
    """``predicate`` stays true for ``seconds`` (checked every 0.25 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate()
        time.sleep(0.25)


def _back_to_two(aws) -> None:
    aws("autoscaling").resume_processes(AutoScalingGroupName=names.ASG)
    aws("autoscaling").set_desired_capacity(AutoScalingGroupName=names.ASG, DesiredCapacity=2)
    wait_for(lambda: len(_in_service(aws)) == 2 and len(asg_instances(aws)) == 2, 30,
             what="the group back at two in-service instances")


def test_launch_suspended_blocks_replacements_and_scale_out_until_resumed(
        sandbox_status, aws, shop, chaos_config):
    wait_for(lambda: len(_in_service(aws)) == 2, 20, what="two instances in service")
    since = datetime.now(UTC) - timedelta(seconds=1)
    suspend_processes(asg_names=[names.ASG], process_names=["Launch"],
                      configuration=chaos_config)
    (suspended,) = _group(aws)["SuspendedProcesses"]
    assert suspended["ProcessName"] == "Launch"
    assert suspended["SuspensionReason"].startswith("User suspended at 20")
    wait_for(lambda: live_status(sandbox_status)["control_plane"]["suspended_processes"]
             == ["Launch"], 3, what="sandbox status to show the suspension")

    victim = sorted(_in_service(aws))[0]
    aws("ec2").terminate_instances(InstanceIds=[victim])
    aws("autoscaling").set_desired_capacity(AutoScalingGroupName=names.ASG, DesiredCapacity=3)
    wait_for(lambda: victim not in _storefronts(sandbox_status), 5, what="the victim to die")
    assert _group(aws)["DesiredCapacity"] == 3  # the request is taken, nothing launches
    _holds(lambda: len(_storefronts(sandbox_status)) == 1 and len(asg_instances(aws)) == 1
           and not _activities(aws, since, "Launching"))
    assert _activities(aws, since, f"Terminating EC2 instance: {victim}")

    resumed_at = datetime.now(UTC) - timedelta(seconds=1)
    resume_processes(asg_names=[names.ASG], process_names=["Launch"],
                     configuration=chaos_config)
    assert _group(aws)["SuspendedProcesses"] == []
    wait_for(lambda: len(_in_service(aws)) == 3, 20, what="the launches held back to boot")
    launches = _activities(aws, since, "Launching")
    assert len(launches) == 2 and all(a["StartTime"] >= resumed_at for a in launches)
    assert all(a["StatusCode"] == "Successful" for a in launches)
    causes = sorted(a["Cause"] for a in launches)
    # the desired-capacity change (made while suspended) and the launch at resume time
    assert all("explicitly set group desired capacity changing the desired capacity from 2 "
               "to 3" in c for c in causes), causes
    assert "increasing the capacity from 1 to 2" in causes[0]
    assert "increasing the capacity from 2 to 3" in causes[1]
    launched = {a["Description"].rsplit(" ", 1)[-1] for a in launches}
    assert launched <= set(_storefronts(sandbox_status))  # real processes behind them
    assert all(_served_by(shop, i) for i in launched)
    _back_to_two(aws)


def test_terminate_suspended_keeps_instances_on_scale_in(sandbox_status, aws):
    autoscaling = aws("autoscaling")
    autoscaling.suspend_processes(AutoScalingGroupName=names.ASG, ScalingProcesses=["Terminate"])
    autoscaling.set_desired_capacity(AutoScalingGroupName=names.ASG, DesiredCapacity=3)
    wait_for(lambda: len(_in_service(aws)) == 3, 20, what="a third instance (Launch runs)")
    since = datetime.now(UTC) - timedelta(seconds=1)
    autoscaling.set_desired_capacity(AutoScalingGroupName=names.ASG, DesiredCapacity=2)
    assert _group(aws)["DesiredCapacity"] == 2
    _holds(lambda: len(_in_service(aws)) == 3 and len(_storefronts(sandbox_status)) == 3
           and not _activities(aws, since, "Terminating"))

    autoscaling.resume_processes(AutoScalingGroupName=names.ASG, ScalingProcesses=["Terminate"])
    wait_for(lambda: len(asg_instances(aws)) == 2, 5, what="the scale-in held back")
    (term,) = _activities(aws, since, "Terminating")
    assert "explicitly set group desired capacity changing the desired capacity from 3 to 2" \
        in term["Cause"] and "shrinking the capacity from 3 to 2" in term["Cause"]
    wait_for(lambda: len(_storefronts(sandbox_status)) == 2, 10,
             what="the drained process to stop")


def test_health_check_and_replace_unhealthy_suspended(sandbox_status, aws):
    autoscaling = aws("autoscaling")
    wait_for(lambda: len(_in_service(aws)) == 2, 20, what="two instances in service")
    autoscaling.suspend_processes(AutoScalingGroupName=names.ASG,
                                  ScalingProcesses=["HealthCheck", "ReplaceUnhealthy"])
    since = datetime.now(UTC) - timedelta(seconds=1)
    victim = sorted(_in_service(aws))[0]
    os.kill(_storefronts(sandbox_status)[victim], signal.SIGKILL)  # a process we started

    def health() -> str | None:
        return next((i["HealthStatus"] for i in asg_instances(aws)
                     if i["InstanceId"] == victim), None)

    # replace_unhealthy_after_s (2 s) passes twice over: nobody marks it
    _holds(lambda: health() == "Healthy", 4.0)
    autoscaling.resume_processes(AutoScalingGroupName=names.ASG, ScalingProcesses=["HealthCheck"])
    wait_for(lambda: health() == "Unhealthy", 5, what="HealthCheck to mark the instance")
    _holds(lambda: health() == "Unhealthy" and not _activities(aws, since, "Terminating"))

    autoscaling.resume_processes(AutoScalingGroupName=names.ASG,
                                 ScalingProcesses=["ReplaceUnhealthy"])
    wait_for(lambda: health() is None, 5, what="ReplaceUnhealthy to take it out")
    (term,) = _activities(aws, since, f"Terminating EC2 instance: {victim}")
    assert "ELB system health check failure" in term["Cause"]
    wait_for(lambda: len(_in_service(aws)) == 2, 20, what="a replacement in service")


def test_spike_with_alarm_notification_then_launch_suspended(sandbox_status, aws, shop):
    """The scale-out-blocked experiment's situation: target tracking wants more instances
    under a spike while the group may not launch them."""
    autoscaling, cw = aws("autoscaling"), aws("cloudwatch")
    period = sandbox_status["control_plane"]["target_tracking"]["period_s"]
    policy = autoscaling.describe_policies(AutoScalingGroupName=names.ASG)["ScalingPolicies"][0]
    config = policy["TargetTrackingConfiguration"]
    high = next(a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]
                if "AlarmHigh" in a["AlarmName"])

    def set_target(value: float) -> None:
        autoscaling.put_scaling_policy(
            AutoScalingGroupName=names.ASG, PolicyName=policy["PolicyName"],
            PolicyType="TargetTrackingScaling",
            TargetTrackingConfiguration={**config, "TargetValue": value})

    def alarm_state() -> str:
        return cw.describe_alarms(AlarmNames=[high])["MetricAlarms"][0]["StateValue"]

    wait_for(lambda: len(_in_service(aws)) == 2, 20, what="two instances in service")
    autoscaling.suspend_processes(AutoScalingGroupName=names.ASG,
                                  ScalingProcesses=["AlarmNotification"])
    set_target(10.0 * period / 2)  # 2 instances hold 10 req/s; 15 req/s wants a third
    since = datetime.now(UTC) - timedelta(seconds=1)
    try:
        with PacedLoad(shop, rps=15):
            wait_for(lambda: alarm_state() == "ALARM", 30, what="AlarmHigh in ALARM")
            _holds(lambda: _group(aws)["DesiredCapacity"] == 2, 2.5 * period)

            autoscaling.suspend_processes(AutoScalingGroupName=names.ASG,
                                          ScalingProcesses=["Launch"])
            autoscaling.resume_processes(AutoScalingGroupName=names.ASG,
                                         ScalingProcesses=["AlarmNotification"])
            wait_for(lambda: _group(aws)["DesiredCapacity"] >= 3, 4 * period,
                     what="target tracking to raise desired capacity")
            _holds(lambda: len(asg_instances(aws)) == 2 and len(_storefronts(sandbox_status))
                   == 2 and not _activities(aws, since, "Launching"))

            autoscaling.resume_processes(AutoScalingGroupName=names.ASG,
                                         ScalingProcesses=["Launch"])
            wait_for(lambda: len(_in_service(aws)) >= 3, 20, what="the held-back scale-out")
        launches = _activities(aws, since, "Launching")
        assert launches and all(f"a monitor alarm {high} in state ALARM triggered policy"
                                in a["Cause"] for a in launches), launches
    finally:
        set_target(config["TargetValue"])
        _back_to_two(aws)


def test_user_marked_unhealthy_instance_is_replaced(sandbox_status, aws, shop):
    wait_for(lambda: len(_in_service(aws)) == 2, 20, what="two instances in service")
    since = datetime.now(UTC) - timedelta(seconds=1)
    victim = sorted(_in_service(aws))[0]
    pid = _storefronts(sandbox_status)[victim]
    aws("autoscaling").set_instance_health(InstanceId=victim, HealthStatus="Unhealthy")
    wait_for(lambda: victim not in {i["InstanceId"] for i in asg_instances(aws)}, 5,
             what="ReplaceUnhealthy to take the instance out")
    (term,) = _activities(aws, since, f"Terminating EC2 instance: {victim}")
    assert "in response to a user health-check" in term["Cause"]
    wait_for(lambda: victim not in _storefronts(sandbox_status)
             and pid not in _storefronts(sandbox_status).values(), 5, what="its process to end")
    new = wait_for(lambda: _in_service(aws) - {victim} if len(_in_service(aws)) == 2 else None,
                   20, what="a replacement in service")
    assert all(_served_by(shop, i) for i in new)
