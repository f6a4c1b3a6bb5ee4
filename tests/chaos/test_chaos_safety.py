"""Safety rails against a real moto endpoint: the account id, the allow-list by name and
by tag, missing resources, experiments that do not validate, missing credentials. Each
refusal is one BadInput line and the resources are left exactly as they were."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from chaos_awsworld import client, moto_world
from demo_plan import DEMO, ROOT, demo_raw, on_aws, with_faults

from peakready.chaos.safety import dry_run, preflight, violations
from peakready.errors import BadInput
from peakready.plan import parse_plan


def plan_from(raw: dict):
    return parse_plan(raw, DEMO)


def world_state(env) -> dict:
    """Everything a fault could have changed."""
    asg = client(env, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["peakready-web"])["AutoScalingGroups"][0]
    members = client(env, "rds").describe_db_clusters(
        DBClusterIdentifier="peakready-db")["DBClusters"][0]["DBClusterMembers"]
    return {"instances": sorted(i["InstanceId"] for i in asg["Instances"]),
            "suspended": asg["SuspendedProcesses"],
            "writer": [m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"]]}


def _tags(env) -> list:
    return client(env, "autoscaling").describe_tags()["Tags"]


@pytest.fixture(scope="module")
def _world():
    with moto_world() as env:
        yield env


@pytest.fixture
def aws(_world):
    """One moto world for the module (building one takes seconds): the safety rails only
    read it, and a test that changes it undoes the change; checked after every test."""
    before = world_state(_world), _tags(_world)
    yield _world
    assert (world_state(_world), _tags(_world)) == before, "a test left the shared world changed"


def test_violations_is_pure_and_names_fault_and_resource():
    touched = [("kill", "autoscaling_group", "web"), ("db", "db_cluster", "prod-db")]
    allow = {"resources": ["web"], "tags": {"peakready": "allowed"}}
    assert violations(touched, allow, {("db_cluster", "prod-db"): {"peakready": "allowed"}}) == []
    [line] = violations(touched, allow, {("db_cluster", "prod-db"): {"peakready": "no"}})
    assert "fault db would act on db_cluster prod-db" in line


def test_preflight_passes_on_the_demo_plan(aws):
    notes = preflight(plan_from(demo_raw()), aws)
    assert "account 123456789012 is allowed" in notes
    assert any("cache-node-failover may act on cache_replication_group peakready-sessions"
               in n for n in notes)
    assert sum("valid (chaos validate)" in n for n in notes) == len(demo_raw()["faults"])


def test_allow_list_excluding_a_target_refuses_and_touches_nothing(aws):
    before = world_state(aws)
    raw = demo_raw()
    raw["target"]["allow"]["resources"] = ["peakready-web", "peakready-db", "peakready-search"]
    with pytest.raises(BadInput, match="fault cache-node-failover would act on "
                                       "cache_replication_group peakready-sessions"):
        preflight(plan_from(raw), aws)
    assert world_state(aws) == before


def test_account_not_allowed_refuses(aws):
    raw = demo_raw()
    raw["target"]["allow"]["account_ids"] = ["111122223333"]
    with pytest.raises(BadInput, match="account 123456789012, which is not allowed"):
        preflight(plan_from(raw), aws)


def test_allowed_by_tag(aws):
    tag = {"ResourceId": "peakready-web", "ResourceType": "auto-scaling-group",
           "Key": "peakready", "Value": "allowed", "PropagateAtLaunch": False}
    client(aws, "autoscaling").create_or_update_tags(Tags=[tag])
    try:
        raw = demo_raw()
        with_faults(raw, raw["faults"][:2])  # kill (tagged ASG) and aurora (untagged cluster)
        raw["target"]["allow"] = {"account_ids": ["123456789012"], "resources": [],
                                  "tags": {"peakready": "allowed"}}
        with pytest.raises(BadInput, match="db_cluster peakready-db, which is not in "
                                           r"target.allow.resources or tagged"):
            preflight(plan_from(raw), aws)
        with_faults(raw, raw["faults"][:1])
        assert any("kill-web-instance may act on" in n for n in preflight(plan_from(raw), aws))
    finally:  # the world is shared by the module
        client(aws, "autoscaling").delete_tags(Tags=[tag])


def test_missing_resource_is_named(aws):
    raw = demo_raw()
    raw["target"]["resources"]["db_cluster"] = "no-such-db"
    raw["target"]["allow"]["resources"].append("no-such-db")
    with pytest.raises(BadInput, match=r"target.resources.db_cluster: .*no-such-db.* not found"):
        preflight(plan_from(raw), aws)


def test_named_failover_target_must_be_in_the_cluster(aws):
    raw = demo_raw()
    raw["faults"][1]["configuration"]["target_instance"] = "other-db-9"
    with pytest.raises(BadInput, match="target_instance: other-db-9 is not a member"):
        preflight(plan_from(raw), aws)


def test_experiment_that_fails_validation_is_named(aws, tmp_path):
    broken = json.loads((ROOT / "experiments" / "aurora-failover.json").read_text())
    broken["method"][0]["provider"]["func"] = "no_such_action"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    raw = demo_raw()
    raw["faults"][1]["experiment"] = str(path)
    before = world_state(aws)
    with pytest.raises(BadInput, match=r"faults\[1\].experiment: .*broken.json does not "
                                       r"validate \(chaos validate\):.*no_such_action"):
        preflight(plan_from(raw), aws)
    assert world_state(aws) == before


def test_dry_run_against_the_endpoint_reports_everything(aws):
    report = dry_run(plan_from(demo_raw()), aws)
    assert "peak 80.0 rps" in report["profile"]
    assert len(report["experiments"]) == len(demo_raw()["faults"])
    assert "target_group peakready-web-tg: found" in report["resources"]
    assert report["permissions"]  # simulated, or said why it could not be


def test_dry_run_of_sandbox_plan_without_endpoint_is_static():
    report = dry_run(plan_from(demo_raw()))
    assert "preflight" in report["account"]
    assert len(report["experiments"]) == len(demo_raw()["faults"])


@pytest.mark.spawns
def test_missing_credentials_for_aws_target_exit_2(tmp_path):
    raw = on_aws(demo_raw(), allow={"account_ids": ["111122223333"],
                                    "resources": ["peakready-web", "peakready-db",
                                                  "peakready-sessions", "peakready-search"]})
    plan = tmp_path / "plans" / "aws.yaml"
    plan.parent.mkdir()
    plan.write_text(yaml.safe_dump(raw))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    proc = subprocess.run([sys.executable, "-m", "peakready.cli", "run", str(plan),
                           "--dry-run"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no AWS credentials found" in lines[0]


# --- a fault never acts on a resource the allow-list did not see ------------------------------

def aws_raw(resources: dict | None) -> dict:
    """The demo plan against an aws target that names only ``resources``."""
    return on_aws(demo_raw(), resources or {},
                  {"account_ids": ["123456789012"],
                   "resources": ["peakready-web", "peakready-db", "peakready-sessions",
                                 "peakready-search"]})


def test_preflight_refuses_a_fault_left_to_its_experiment_default(aws):
    """No target.resources.autoscaling_group: kill-web-instance would act on the
    experiment's default peakready-web, which exists and is even allow-listed by name, but
    the plan never said so: refused, naming the fault and the field, nothing touched."""
    before = world_state(aws)
    plan = plan_from(aws_raw({"db_cluster": "peakready-db",
                              "cache_replication_group": "peakready-sessions"}))
    with pytest.raises(BadInput) as exc:
        preflight(plan, aws)
    line = str(exc.value)
    assert "\n" not in line
    assert line.startswith(f"{DEMO}: target.resources.autoscaling_group: fault "
                           "kill-web-instance would act on the autoscaling_group "
                           "peakready-web taken from the experiment's default")
    assert "faults[0].configuration.asg_name" in line
    assert world_state(aws) == before
    with pytest.raises(BadInput, match="target.resources.autoscaling_group: fault "
                                       "kill-web-instance"):
        dry_run(plan, aws)


def test_an_env_default_is_named_as_the_source():
    plan = plan_from(aws_raw({}))
    problems = plan.unnamed_resources({"PEAKREADY_ASG": "prod-web"})
    assert [p.split(":")[0] for p in problems] == [
        "target.resources.autoscaling_group", "target.resources.db_cluster",
        "target.resources.search_domain", "target.resources.cache_replication_group"]
    assert "autoscaling_group prod-web taken from env PEAKREADY_ASG" in problems[0]
    assert "db_cluster peakready-db taken from the experiment's default " \
           "(PEAKREADY_DB_CLUSTER unset)" in problems[1]
    named = plan_from(aws_raw({"autoscaling_group": "shop-web", "db_cluster": "shop-db",
                               "cache_replication_group": "shop-cache",
                               "search_domain": "shop-search"}))
    assert named.unnamed_resources({"PEAKREADY_ASG": "prod-web"}) == []
    # the plan's value reaches chaos run through --var-file, which beats the environment
    assert ("kill-web-instance", "autoscaling_group", "shop-web") in \
        named.touched_resources({"PEAKREADY_ASG": "prod-web"})


def test_selectors_inside_a_resource_never_come_from_the_environment():
    """PEAKREADY_DB_FAILOVER_TARGET would pick a failover target behind the plan's back:
    the resolved plan says "" (the action chooses within the allowed cluster)."""
    plan = plan_from(demo_raw())
    faults = {f["name"]: f["configuration"] for f in plan.faults}
    assert faults["aurora-failover"]["target_instance"] == ""
    assert faults["cache-node-failover"]["node_group"] == ""
    env = {"PEAKREADY_DB_FAILOVER_TARGET": "other-db-9", "PEAKREADY_CACHE_NODE_GROUP": "0009"}
    assert plan.unnamed_resources(env) == []
    assert not [t for t in plan.touched_resources(env) if t[1] == "db_instance"]


def test_a_literal_resource_in_an_experiment_is_allow_listed(aws, tmp_path):
    """An experiment that names its group in the action itself (no variable) is still
    seen: the allow-list decides, and it does not list peakready-web here."""
    doc = json.loads((ROOT / "experiments" / "scale-out-blocked.json").read_text())
    del doc["configuration"]["asg_name"]
    text = json.dumps(doc).replace("${asg_name}", "peakready-web")
    path = tmp_path / "hard-coded.json"
    path.write_text(text)
    raw = aws_raw({"autoscaling_group": "peakready-web"})
    raw["target"]["allow"]["resources"] = ["peakready-db"]
    with_faults(raw, [{"name": "hard-coded", "experiment": str(path), "at_s": 5}])
    plan = plan_from(raw)
    assert plan.unnamed_resources() == []
    assert plan.touched_resources() == [("hard-coded", "autoscaling_group", "peakready-web")]
    before = world_state(aws)
    with pytest.raises(BadInput, match="fault hard-coded would act on autoscaling_group "
                                       "peakready-web, which is not in target.allow"):
        preflight(plan, aws)
    assert world_state(aws) == before


@pytest.mark.spawns
def test_cli_dry_run_refuses_an_unnamed_resource_with_exit_2(aws, tmp_path):
    raw = aws_raw({"autoscaling_group": "peakready-web", "db_cluster": "peakready-db",
                   "search_domain": "peakready-search"})
    plan = tmp_path / "plans" / "aws.yaml"
    plan.parent.mkdir()
    plan.write_text(yaml.safe_dump(raw))
    before = world_state(aws)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PEAKREADY_C"))}
    env.update(aws)
    proc = subprocess.run([sys.executable, "-m", "peakready.cli", "run", str(plan),
                           "--dry-run"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "target.resources.cache_replication_group: fault cache-node-failover" in line
    assert "faults[3].configuration.replication_group" in line
    assert world_state(aws) == before


def test_a_steady_state_on_the_experiments_default_group_is_a_warning(aws):
    """The probe only reads, so it is no refusal, but it would judge a target group the
    plan never named: preflight and the dry run say so."""
    plan = plan_from(aws_raw({"autoscaling_group": "peakready-web", "db_cluster": "peakready-db",
                              "cache_replication_group": "peakready-sessions",
                              "search_domain": "peakready-search"}))
    warning = ("warning: fault kill-web-instance's steady state reads target_group "
               "peakready-web-tg taken from the experiment's default (PEAKREADY_TARGET_GROUP "
               "unset), not from the plan; set target.resources.target_group")
    assert warning in preflight(plan, aws)
    assert dry_run(plan, aws)["probes"] == [warning]
    raw = aws_raw({"autoscaling_group": "peakready-web", "db_cluster": "peakready-db",
                   "cache_replication_group": "peakready-sessions",
                   "search_domain": "peakready-search", "target_group": "peakready-web-tg"})
    assert not [n for n in preflight(plan_from(raw), aws) if n.startswith("warning")]


def test_an_aws_action_that_selects_by_zone_is_refused(aws, tmp_path):
    """chaostoolkit-aws' terminate_random_instances(az=...) would kill whatever runs in the
    zone: no name the allow-list could check, so refused before any AWS call."""
    doc = json.loads((ROOT / "experiments" / "kill-web-instance.json").read_text())
    doc["method"][0]["provider"] = {"type": "python", "module": "chaosaws.ec2.actions",
                                    "func": "terminate_instances",
                                    "arguments": {"az": "eu-central-1a"}}
    path = tmp_path / "zone-kill.json"
    path.write_text(json.dumps(doc))
    raw = demo_raw()
    with_faults(raw, [{"name": "zone-kill", "experiment": str(path), "at_s": 5}])
    with pytest.raises(BadInput, match=r"faults\[0\].experiment: action "
                                       "'terminate-one-web-instance'.* names no resource"):
        plan_from(raw)  # refused when the plan loads, before any target starts
    # and by preflight on its own, should the file change after the plan loaded
    path.write_text((ROOT / "experiments" / "kill-web-instance.json").read_text())
    plan = plan_from(raw)
    path.write_text(json.dumps(doc))
    before = world_state(aws)
    with pytest.raises(BadInput, match=r"faults\[0\].experiment: fault zone-kill: action "
                                       r"'terminate-one-web-instance' \(chaosaws.ec2.actions."
                                       r"terminate_instances\) names no resource"):
        preflight(plan, aws)
    with pytest.raises(BadInput, match="names no resource"):
        dry_run(plan)
    assert world_state(aws) == before


def test_a_waf_rule_change_fault_is_allow_listed_by_its_web_acl(aws):
    """The rule-change fault names its Web ACL (web_acl_name): the allow-list sees it, and
    the preflight finds it by name or says it is missing."""
    from peakready.chaos.safety import _Aws, _describe

    raw = demo_raw()
    raw["faults"].append({"name": "waf-change", "experiment": "experiments/waf-rule-change.json",
                          "at_s": 150})
    plan = plan_from(raw)
    assert ("waf-change", "web_acl", "peakready-web-acl") in plan.touched_resources()
    client(aws, "wafv2").create_web_acl(Name="peakready-web-acl", Scope="REGIONAL",
                          DefaultAction={"Allow": {}}, Rules=[],
                          Tags=[{"Key": "team", "Value": "shop"}],
                          VisibilityConfig={"SampledRequestsEnabled": False,
                                            "CloudWatchMetricsEnabled": False,
                                            "MetricName": "acl"})
    tags, found = _describe(_Aws(plan, aws), "web_acl", "peakready-web-acl")
    assert tags == {"team": "shop"} and found["Name"] == "peakready-web-acl"
    with pytest.raises(BadInput, match="target.resources.web_acl: Web ACL other not found"):
        _describe(_Aws(plan, aws), "web_acl", "other")


LOG_FAULTS = [{"name": "throttle", "experiment": "experiments/firehose-throttle.json",
               "at_s": 60},
              {"name": "denied", "experiment": "experiments/log-destination-denied.json",
               "at_s": 100}]


def test_the_log_pipeline_faults_are_allow_listed_by_stream_and_bucket(aws):
    """Both faults name what they act on (the stream, the bucket), from target.resources;
    a missing one is named, and an allow-list without them refuses."""
    raw = with_faults(demo_raw(), [dict(f) for f in LOG_FAULTS])
    touched = plan_from(raw).touched_resources()
    assert ("throttle", "delivery_stream", "peakready-api-logs") in touched
    assert ("denied", "log_bucket", "peakready-api-logs") in touched
    with pytest.raises(BadInput, match="target.resources.delivery_stream: peakready-api-logs "
                                       "not found"):
        preflight(plan_from(raw), aws)
    s3, firehose = client(aws, "s3"), client(aws, "firehose")
    s3.create_bucket(Bucket="peakready-api-logs",
                     CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    firehose.create_delivery_stream(
        DeliveryStreamName="peakready-api-logs", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::peakready-api-logs"})
    try:
        with pytest.raises(BadInput, match="fault throttle would act on delivery_stream "
                                           "peakready-api-logs, which is not in"):
            preflight(plan_from(raw), aws)
        raw["target"]["allow"]["resources"] += ["peakready-api-logs"]
        notes = preflight(plan_from(raw), aws)
        assert "fault denied may act on log_bucket peakready-api-logs: allowed" in notes
    finally:
        firehose.delete_delivery_stream(DeliveryStreamName="peakready-api-logs")
        s3.delete_bucket(Bucket="peakready-api-logs")


def _logs_on_aws(faults: list[dict]) -> dict:
    raw = with_faults(demo_raw(), [dict(f) for f in faults])
    return on_aws(raw, resources={**raw["target"]["resources"],
                                  "delivery_stream": "shop-api-logs",
                                  "log_bucket": "shop-api-logs"},
                  allow={"account_ids": ["123456789012"], "resources": ["shop-api-logs"]})


def test_a_sandbox_only_fault_against_an_aws_target_is_refused_naming_the_field():
    raw = _logs_on_aws(LOG_FAULTS)
    with pytest.raises(BadInput) as err:
        plan_from(raw)
    line = str(err.value)
    assert "faults[0].experiment: experiments/firehose-throttle.json only lands on the " \
           "sandbox" in line and "\n" not in line
    assert "AWS has no API to change a Firehose stream's quota" in line
    # the bucket policy fault is an AWS fault: on its own, it is accepted
    raw["faults"] = raw["faults"][1:]
    plan = plan_from(raw)
    assert plan.faults[0]["configuration"]["log_bucket"] == "shop-api-logs"


@pytest.mark.spawns
def test_cli_refuses_the_throttle_fault_on_aws_with_exit_2(tmp_path):
    raw = _logs_on_aws(LOG_FAULTS[:1])
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, "-m", "peakready.cli", "run", "--dry-run",
                           str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "faults[0].experiment" in proc.stderr and "only lands on the sandbox" in proc.stderr
