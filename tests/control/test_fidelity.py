"""Stock chaostoolkit-aws actions on the sandbox have the effect they have on AWS (issue 16;
the rows of docs/sandbox-fidelity.md): a catalog-style experiment run with plain
``chaos run`` and ``peakready sandbox env``, deregistered targets drain and stay out,
actions the sandbox cannot model are refused, a foreign region reaches the sandbox."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from chaosaws.ec2.actions import restart_instances, revoke_security_group_ingress
from chaosaws.rds.actions import reboot_db_instance, stop_db_instance
from chaoslib.exceptions import FailedActivity

from peakready.cli import main
from peakready.sandbox.aws import names
from peakready.sandbox.timing import Timing

from .conftest import FAST, asg_instances, component, live_status, wait_for

TG = names.TARGET_GROUP
EXPERIMENT = {  # as the public catalogs write it; the region is someone's production one
    "version": "1.0.0",
    "title": "Losing a target behind the ALB keeps two healthy targets",
    "description": "deregister one target; the group should still serve with two",
    "configuration": {"aws_region": "us-east-1"},
    "steady-state-hypothesis": {
        "title": "two healthy targets",
        "probes": [{
            "type": "probe", "name": "healthy-targets",
            "tolerance": {"type": "jsonpath", "path": f'$["{TG}"]["healthy"]', "expect": 2},
            "provider": {"type": "python", "module": "chaosaws.elbv2.probes",
                         "func": "targets_health_count", "arguments": {"tg_names": [TG]}}}]},
    "method": [{
        "type": "action", "name": "deregister-a-target",
        "provider": {"type": "python", "module": "chaosaws.elbv2.actions",
                     "func": "deregister_target", "arguments": {"tg_name": TG}},
        "pauses": {"after": FAST.deregistration_delay_s + 1.5}}],
}


def _env_exports(state_dir: str, capsys) -> dict[str, str]:
    """What ``peakready sandbox env`` prints, as a shell would evaluate it."""
    assert main(["sandbox", "env", "--state-dir", state_dir]) == 0
    out = capsys.readouterr().out
    env = {}
    for line in out.splitlines():
        words = shlex.split(line)
        if words[0] == "export":
            key, _, value = words[1].partition("=")
            env[key] = value
    return env


def _health(aws) -> dict[str, dict]:
    arn = aws("elbv2").describe_target_groups(Names=[TG])["TargetGroups"][0]["TargetGroupArn"]
    return {h["Target"]["Id"]: h["TargetHealth"] for h in aws("elbv2").describe_target_health(
        TargetGroupArn=arn)["TargetHealthDescriptions"]}


def test_sandbox_env_without_a_sandbox_is_one_line(tmp_path, capsys):
    assert main(["sandbox", "env", "--state-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "peakready sandbox up" in captured.err


def test_catalog_experiment_deviates_as_on_aws(sandbox_status, aws, tmp_path, capsys):
    env = _env_exports(sandbox_status["state_dir"], capsys)
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == names.REGION
    assert env["AWS_ENDPOINT_URL"] == sandbox_status["aws"]["endpoint_url"]
    wait_for(lambda: [s["State"] for s in _health(aws).values()] == ["healthy"] * 2, 20,
             what="two healthy targets")
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(EXPERIMENT))
    chaos = shutil.which("chaos", path=str(Path(sys.executable).parent)) or "chaos"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [chaos, "--no-version-check", "run", "--journal-path", str(tmp_path / "journal.json"),
         str(path)], env={**clean, **env}, cwd=tmp_path, capture_output=True, text=True,
        timeout=60)
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["steady_states"]["before"]["steady_state_met"], proc.stderr[-2000:]
    assert journal["status"] == "completed" and journal["deviated"] is True, proc.stderr[-2000:]
    after = journal["steady_states"]["after"]["probes"][0]["output"]
    assert after == {TG: {"healthy": 1}}  # drained and gone, not re-registered
    assert proc.returncode == 1  # chaos run's exit code for a deviated experiment

    # the instance is still in the group (the capacity is lost at the balancer only), and a
    # capacity change (moto then re-registers every member) does not bring it back
    members = {i["InstanceId"] for i in asg_instances(aws)}
    out = members - set(_health(aws))
    assert len(members) == 2 and len(out) == 1
    aws("autoscaling").update_auto_scaling_group(AutoScalingGroupName=names.ASG,
                                                 MaxSize=names.ASG_MAX)
    time.sleep(1.0)  # four reconcile passes
    assert set(_health(aws)) == members - out
    arn = aws("elbv2").describe_target_groups(Names=[TG])["TargetGroups"][0]["TargetGroupArn"]
    aws("elbv2").register_targets(TargetGroupArn=arn, Targets=[{"Id": out.pop(), "Port": 80}])


def test_deregistered_target_drains_for_the_delay_then_is_gone(sandbox_status, aws):
    elbv2 = aws("elbv2")
    arn = elbv2.describe_target_groups(Names=[TG])["TargetGroups"][0]["TargetGroupArn"]
    healthy = wait_for(lambda: [i for i, h in _health(aws).items() if h["State"] == "healthy"],
                       20, what="a healthy target")
    victim = healthy[0]
    t0 = time.monotonic()
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": victim, "Port": 80}])
    assert _health(aws)[victim] == {"State": "draining",
                                    "Reason": "Target.DeregistrationInProgress"}
    wait_for(lambda: victim not in _health(aws), 10, interval=0.05, what="the drain to end")
    assert time.monotonic() - t0 >= FAST.deregistration_delay_s * 0.9  # the whole delay
    time.sleep(0.6)  # reconcile passes: Auto Scaling does not register it again
    assert victim not in _health(aws)

    # registering it again (a rollback) starts its health checks from `initial`
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": victim, "Port": 80}])
    assert _health(aws)[victim]["State"] == "initial"
    wait_for(lambda: _health(aws).get(victim, {}).get("State") == "healthy", 10,
             what="the re-registered target to pass its checks")


def test_the_target_group_s_deregistration_delay_is_the_drain_time(sandbox_status, aws):
    elbv2 = aws("elbv2")
    arn = elbv2.describe_target_groups(Names=[TG])["TargetGroups"][0]["TargetGroupArn"]

    def delay() -> str:
        attrs = elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
        return next(a["Value"] for a in attrs
                    if a["Key"] == "deregistration_delay.timeout_seconds")

    assert float(delay()) == FAST.deregistration_delay_s  # what the balancer drains for
    elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "3"}])
    try:
        assert delay() == "3"
        victim = wait_for(lambda: [i for i, h in _health(aws).items()
                                   if h["State"] == "healthy"], 20, what="a healthy target")[0]
        t0 = time.monotonic()
        elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": victim, "Port": 80}])
        wait_for(lambda: victim not in _health(aws), 10, interval=0.1, what="the drain to end")
        assert time.monotonic() - t0 >= 2.7
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": victim, "Port": 80}])
    finally:
        elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds",
             "Value": f"{FAST.deregistration_delay_s:g}"}])


def test_actions_the_sandbox_cannot_model_are_refused(sandbox_status, aws, chaos_config):
    writer_before = _writer(aws)
    with pytest.raises(FailedActivity, match=r"\(UnsupportedBySandbox\).*refuses "
                       r"RebootDBInstance: ForceFailover"):
        reboot_db_instance(writer_before, force_failover=True, configuration=chaos_config)
    with pytest.raises(FailedActivity, match="cannot be stopped individually"):
        stop_db_instance("peakready-db-2", configuration=chaos_config)  # AWS: not for Aurora
    assert _writer(aws) == writer_before
    group = aws("ec2").describe_security_groups(GroupNames=["peakready-web"])[
        "SecurityGroups"][0]["GroupId"]
    with pytest.raises(FailedActivity, match="refuses RevokeSecurityGroupIngress"):
        revoke_security_group_ingress(group, ip_protocol="tcp", from_port=80, to_port=80,
                                      cidr_ip="0.0.0.0/0", configuration=chaos_config)


def test_restarted_instance_reboots_and_fails_its_health_checks(sandbox_status, aws,
                                                                chaos_config):
    victim = wait_for(lambda: [i for i, h in _health(aws).items() if h["State"] == "healthy"],
                      20, what="a healthy target")[0]
    before = _component(sandbox_status, victim)
    restart_instances(instance_ids=[victim], configuration=chaos_config)
    after = wait_for(lambda: (_component(sandbox_status, victim) or before)["pid"]
                     != before["pid"] and _component(sandbox_status, victim), 5,
                     interval=0.1, what="the instance's process to restart")
    assert after["port"] == before["port"] and after["alive"]  # the same VM, booting again
    wait_for(lambda: _health(aws).get(victim, {}).get("State") != "healthy", 10,
             interval=0.1, what="the balancer to see the rebooting instance fail")


def _component(sandbox_status, name: str) -> dict | None:
    try:
        return component(live_status(sandbox_status), name)
    except StopIteration:  # replaced meanwhile
        return None


def test_rebooted_writer_is_unavailable_for_its_reboot_time(sandbox_status, aws, shop,
                                                            chaos_config):
    writer = _writer(aws)
    assert shop.request("GET", "/api/products?page=1")[0] == 200
    t0 = time.monotonic()
    reboot_db_instance(writer, configuration=chaos_config)
    assert _db_status(aws, writer) == "rebooting"
    wait_for(lambda: shop.request("GET", "/api/products?page=1")[0] == 503, 5, interval=0.1,
             what="reads to fail while the writer is down")
    wait_for(lambda: _db_status(aws, writer) == "available", 20, what="the reboot to end")
    assert time.monotonic() - t0 >= Timing().db_reboot_s  # down for the reboot time
    assert _writer(aws) == writer  # a reboot is not a failover
    wait_for(lambda: shop.request("GET", "/api/products?page=1")[0] == 200, 10,
             what="reads to work again")
    events = aws("rds").describe_events(SourceIdentifier=writer, SourceType="db-instance")
    assert [e["Message"] for e in events["Events"]][-2:] == ["DB instance shutdown",
                                                            "DB instance restarted"]


def _db_status(aws, ident: str) -> str:
    return aws("rds").describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0][
        "DBInstanceStatus"]


def _writer(aws) -> str:
    members = aws("rds").describe_db_clusters(DBClusterIdentifier=names.DB_CLUSTER)[
        "DBClusters"][0]["DBClusterMembers"]
    return next(m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"])


def test_a_request_for_another_region_reaches_the_sandbox(sandbox_status):
    client = boto3.client("autoscaling", region_name="us-west-2",
                          endpoint_url=sandbox_status["aws"]["endpoint_url"],
                          aws_access_key_id=names.ACCESS_KEY_ID,
                          aws_secret_access_key=names.SECRET_ACCESS_KEY)
    groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[names.ASG])
    assert [g["AutoScalingGroupName"] for g in groups["AutoScalingGroups"]] == [names.ASG]
