"""A plain moto server on a free loopback port with the sandbox's resource names, for
testing AWS-side actions and safety rails before (and besides) the full sandbox."""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator

import boto3
from moto.server import ThreadedMotoServer

REGION = "eu-central-1"
ACCOUNT = "123456789012"  # moto's default account id


def aws_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_MAX_ATTEMPTS": "1"}


def client(env: dict[str, str], service: str):
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def create_world(env: dict[str, str], web_instances: int = 2) -> None:
    """ASG peakready-web behind ALB peakready-alb / TG peakready-web-tg, Aurora cluster
    peakready-db with two instances, ElastiCache group peakready-sessions (1 + 1 replica),
    OpenSearch domain peakready-search (3 data nodes)."""
    ec2 = client(env, "ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName="peakready-web",
                               LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.small"})
    elb = client(env, "elbv2")
    lb = elb.create_load_balancer(Name="peakready-alb", Subnets=subnets)["LoadBalancers"][0]
    tg = elb.create_target_group(Name="peakready-web-tg", Protocol="HTTP", Port=80,
                                 VpcId=vpc)["TargetGroups"][0]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward",
                                         "TargetGroupArn": tg["TargetGroupArn"]}])
    client(env, "autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="peakready-web",
        LaunchTemplate={"LaunchTemplateName": "peakready-web", "Version": "$Latest"},
        MinSize=web_instances, MaxSize=6, DesiredCapacity=web_instances,
        VPCZoneIdentifier=subnets[0], TargetGroupARNs=[tg["TargetGroupArn"]])
    rds = client(env, "rds")
    rds.create_db_cluster(DBClusterIdentifier="peakready-db", Engine="aurora-postgresql",
                          MasterUsername="peakready", MasterUserPassword="peakready-pw")
    for n in (1, 2):
        rds.create_db_instance(DBInstanceIdentifier=f"peakready-db-{n}",
                               DBClusterIdentifier="peakready-db", Engine="aurora-postgresql",
                               DBInstanceClass="db.r6g.large")
    for alarm, metric in (("peakready-web-5xx", "HTTPCode_Target_5XX_Count"),
                          ("peakready-web-latency", "TargetResponseTime"),
                          ("peakready-web-healthy-hosts", "HealthyHostCount")):
        client(env, "cloudwatch").put_metric_alarm(
            AlarmName=alarm, Namespace="AWS/ApplicationELB", MetricName=metric,
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold")
    client(env, "elasticache").create_replication_group(
        ReplicationGroupId="peakready-sessions", ReplicationGroupDescription="sessions",
        Engine="redis", CacheNodeType="cache.t3.small", ReplicasPerNodeGroup=1)
    client(env, "opensearch").create_domain(
        DomainName="peakready-search", EngineVersion="OpenSearch_2.11",
        ClusterConfig={"InstanceType": "r6g.large.search", "InstanceCount": 3})


@contextlib.contextmanager
def moto_world(create: bool = True) -> Iterator[dict[str, str]]:
    """A running moto server (stopped on exit) and the env that points boto3 at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = aws_env(f"http://{host}:{port}")
        # moto's state lives in this process, shared by every server it starts: start from
        # a clean account and leave one (resetting every backend is slow on a loaded machine)
        _reset(env)
        if create:
            create_world(env)
        yield env
        _reset(env)
    finally:
        server.stop()


def _reset(env: dict[str, str]) -> None:
    urllib.request.urlopen(urllib.request.Request(
        f"{env['AWS_ENDPOINT_URL']}/moto-api/reset", method="POST"), timeout=60).close()
