"""A plain moto server with the sandbox's resource names, for collection tests that do
not need the whole sandbox (the run tests use the real one)."""

from __future__ import annotations

import logging
import urllib.request

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-central-1"


@pytest.fixture(scope="module")
def moto_endpoint():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    reset = urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST")
    # moto's backends are global to the process: start from a clean account, leave one
    urllib.request.urlopen(reset, timeout=60).close()
    try:
        yield {"endpoint_url": f"http://{host}:{port}", "region": REGION,
               "access_key_id": "testing", "secret_access_key": "testing",
               "account_id": "123456789012"}
    finally:
        urllib.request.urlopen(reset, timeout=60).close()
        server.stop()


def _client(aws, service):
    return boto3.client(service, endpoint_url=aws["endpoint_url"], region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def shop(moto_endpoint):
    """ALB + target group + ASG + Aurora cluster with two instances + cache group."""
    aws = moto_endpoint
    ec2 = _client(aws, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                 AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
               for i, az in enumerate("ab")]
    elb = _client(aws, "elbv2")
    lb = elb.create_load_balancer(Name="peakready-alb", Subnets=subnets)["LoadBalancers"][0]
    tg = elb.create_target_group(Name="peakready-web-tg", Protocol="HTTP", Port=80,
                                 VpcId=vpc)["TargetGroups"][0]
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    _client(aws, "autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="peakready-web", LaunchTemplate={"LaunchTemplateName": "web"},
        MinSize=2, MaxSize=6, DesiredCapacity=2, VPCZoneIdentifier=",".join(subnets),
        TargetGroupARNs=[tg["TargetGroupArn"]])
    rds = _client(aws, "rds")
    rds.create_db_cluster(DBClusterIdentifier="peakready-db", Engine="aurora-mysql",
                          MasterUsername="admin", MasterUserPassword="password123")
    for name in ("peakready-db-1", "peakready-db-2"):
        rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier="peakready-db",
                               Engine="aurora-mysql", DBInstanceClass="db.r6g.large")
    _client(aws, "elasticache").create_replication_group(
        ReplicationGroupId="peakready-sessions", ReplicationGroupDescription="sessions",
        Engine="redis", CacheNodeType="cache.t3.micro", ReplicasPerNodeGroup=1)
    return {
        "aws": aws,
        "lb_dim": lb["LoadBalancerArn"].split(":loadbalancer/")[1],
        "tg_dim": tg["TargetGroupArn"].split(":")[-1],
        "resources": {"autoscaling_group": "peakready-web", "load_balancer": "peakready-alb",
                      "target_group": "peakready-web-tg", "db_cluster": "peakready-db",
                      "cache_replication_group": "peakready-sessions"},
        "client": lambda service: _client(aws, service),
    }
