"""Web-tier actions and probes (Auto Scaling group + target group).

chaostoolkit-aws's ``terminate_random_instances`` terminates fine, but its
``wait_desired_equals_healthy`` can return before the group has noticed the loss, and
``all_targets_healthy`` passes on an empty target group. Here the kill waits until the
killed instance has left the group and the group is back at its desired capacity, so the
journal's activity spans the real fault window, and the probes count.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed

from peakready.chaos.aws import client, wait_for

logger = logging.getLogger("chaostoolkit")

__all__ = ["healthy_in_service", "healthy_targets", "terminate_instance",
           "wait_desired_capacity"]


def _group(asg, asg_name: str) -> dict[str, Any]:
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])
    if not groups["AutoScalingGroups"]:
        raise ActivityFailed(f"no Auto Scaling group {asg_name}")
    return groups["AutoScalingGroups"][0]


def _healthy(group: dict[str, Any]) -> list[str]:
    return [i["InstanceId"] for i in group["Instances"]
            if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"]


def healthy_in_service(asg_name: str, configuration: dict | None = None,
                       secrets: dict | None = None) -> int:
    """Probe: instances InService and Healthy in the group."""
    return len(_healthy(_group(client("autoscaling", configuration), asg_name)))


def healthy_targets(target_group_name: str, configuration: dict | None = None,
                    secrets: dict | None = None) -> int:
    """Probe: targets in state ``healthy`` (an empty group counts 0, not "all healthy")."""
    elb = client("elbv2", configuration)
    groups = elb.describe_target_groups(Names=[target_group_name])["TargetGroups"]
    health = elb.describe_target_health(TargetGroupArn=groups[0]["TargetGroupArn"])
    return sum(1 for t in health["TargetHealthDescriptions"]
               if t["TargetHealth"]["State"] == "healthy")


def terminate_instance(asg_name: str, instance_id: str | None = None,
                       wait_replaced: bool = True, timeout_s: float = 180.0,
                       poll_s: float = 1.0, configuration: dict | None = None,
                       secrets: dict | None = None) -> dict[str, Any]:
    """Action: terminate one InService instance of the group (a random one unless named)
    with EC2 TerminateInstances, as a crashed VM would vanish, and wait until the group
    has replaced it (the killed instance gone, desired capacity healthy again)."""
    asg = client("autoscaling", configuration)
    group = _group(asg, asg_name)
    healthy = _healthy(group)
    if instance_id is None:
        if not healthy:
            raise ActivityFailed(f"{asg_name} has no healthy InService instance to kill")
        instance_id = random.choice(healthy)
    elif instance_id not in {i["InstanceId"] for i in group["Instances"]}:
        raise ActivityFailed(f"{instance_id} is not in {asg_name}")
    before = set(healthy)
    client("ec2", configuration).terminate_instances(InstanceIds=[instance_id])
    killed_at = time.time()
    logger.info(f"terminated {instance_id} of {asg_name}")
    result: dict[str, Any] = {"asg_name": asg_name, "terminated": instance_id,
                              "terminated_at": killed_at, "healthy_before": len(before)}
    if not wait_replaced:
        return result

    def replaced() -> dict[str, Any] | None:
        now = _group(asg, asg_name)
        ids = {i["InstanceId"] for i in now["Instances"]}
        healthy_now = _healthy(now)
        if instance_id in ids or len(healthy_now) < now["DesiredCapacity"]:
            return None
        return {"replacements": sorted(set(healthy_now) - before),
                "healthy_after": len(healthy_now)}

    done, waited = wait_for(replaced, timeout_s, poll_s, f"{asg_name} to replace {instance_id}")
    return {**result, **done, "replaced_after_s": waited}


def wait_desired_capacity(asg_name: str, timeout_s: float = 180.0, poll_s: float = 1.0,
                          configuration: dict | None = None,
                          secrets: dict | None = None) -> dict[str, Any]:
    """Action (rollback): wait until the group's healthy InService count reaches its
    desired capacity, so the next fault starts from a whole web tier."""
    asg = client("autoscaling", configuration)

    def whole() -> dict[str, Any] | None:
        group = _group(asg, asg_name)
        n = len(_healthy(group))
        return {"healthy": n, "desired": group["DesiredCapacity"]} \
            if n >= group["DesiredCapacity"] else None

    state, waited = wait_for(whole, timeout_s, poll_s, f"{asg_name} at desired capacity")
    return {**state, "waited_s": waited}
