"""Create the seed architecture's AWS resources in a fresh moto endpoint.

Plain boto3 against the endpoint, exactly what a user would run against AWS, so the
resources are shaped by moto's own create calls. Runs once at sandbox boot.
"""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.config import Config

from peakready.sandbox.aws import names


def client(service: str, endpoint_url: str):
    """A boto3 client for the sandbox endpoint that fails fast instead of retrying."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=names.REGION,
        aws_access_key_id=names.ACCESS_KEY_ID,
        aws_secret_access_key=names.SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@dataclass(frozen=True)
class Resources:
    target_group_arn: str
    load_balancer_arn: str
    load_balancer_dim: str  # "app/peakready-alb/<id>", the LoadBalancer dimension
    target_group_dim: str  # "targetgroup/peakready-web-tg/<id>"
    policy_arn: str


def create_all(endpoint_url: str, period_s: int, scale_out_dp: int = 3, scale_in_dp: int = 15,
               desired: int = names.ASG_DESIRED) -> Resources:
    """Everything DESIGN.md names: VPC, ALB + target group, ASG, Aurora, ElastiCache,
    alarms and the target-tracking policy (its own alarms are created by the plane)."""
    resources = create_web(endpoint_url, period_s, desired)
    create_data_and_alarms(endpoint_url, period_s, resources)
    return resources


def create_web(endpoint_url: str, period_s: int, desired: int = names.ASG_DESIRED) -> Resources:
    """The web tier first: its instances boot while the rest is created."""
    ec2 = client("ec2", endpoint_url)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    azs = [f"{names.REGION}a", f"{names.REGION}b"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate(azs)
    ]
    sg = ec2.create_security_group(GroupName="peakready-web", Description="web", VpcId=vpc)[
        "GroupId"
    ]
    ec2.create_launch_template(
        LaunchTemplateName=names.LAUNCH_TEMPLATE,
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.small",
                            "SecurityGroupIds": [sg]},
    )

    elb = client("elbv2", endpoint_url)
    lb = elb.create_load_balancer(Name=names.ALB, Subnets=subnets, SecurityGroups=[sg],
                                  Scheme="internet-facing", Type="application")
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(
        Name=names.TARGET_GROUP, Protocol="HTTP", Port=names.WEB_PORT, VpcId=vpc,
        TargetType="instance", HealthCheckPath="/health", HealthCheckIntervalSeconds=5,
        HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]
    tg_arn = tg["TargetGroupArn"]
    elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])

    asg = client("autoscaling", endpoint_url)
    asg.create_auto_scaling_group(
        AutoScalingGroupName=names.ASG,
        LaunchTemplate={"LaunchTemplateName": names.LAUNCH_TEMPLATE, "Version": "$Latest"},
        MinSize=min(names.ASG_MIN, desired), MaxSize=names.ASG_MAX, DesiredCapacity=desired,
        VPCZoneIdentifier=",".join(subnets), TargetGroupARNs=[tg_arn],
        HealthCheckType="ELB", HealthCheckGracePeriod=0,
        DefaultInstanceWarmup=0,
    )
    asg.enable_metrics_collection(AutoScalingGroupName=names.ASG, Granularity="1Minute")
    lb_dim = lb_arn.split(":loadbalancer/", 1)[1]
    tg_dim = tg_arn.split(":", 5)[5]
    asg.put_scaling_policy(
        AutoScalingGroupName=names.ASG, PolicyName=names.SCALING_POLICY,
        PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ALBRequestCountPerTarget",
                "ResourceLabel": f"{lb_dim}/{tg_dim}",
            },
            "TargetValue": names.TARGET_REQUESTS_PER_TARGET_PER_S * period_s,
        },
    )

    return Resources(target_group_arn=tg_arn, load_balancer_arn=lb_arn,
                     load_balancer_dim=lb_dim, target_group_dim=tg_dim,
                     policy_arn=asg.describe_policies(AutoScalingGroupName=names.ASG)[
                         "ScalingPolicies"][0]["PolicyARN"])


def create_data_and_alarms(endpoint_url: str, period_s: int, resources: Resources,
                           topic_arn: str | None = None) -> None:
    """Aurora, ElastiCache and the alarms a shop pages on (``shop_alarms``)."""
    rds = client("rds", endpoint_url)
    rds.create_db_cluster(DBClusterIdentifier=names.DB_CLUSTER, Engine="aurora-postgresql",
                          MasterUsername="peakready", MasterUserPassword="peakready-pw")
    for ident in names.DB_INSTANCES:
        rds.create_db_instance(DBInstanceIdentifier=ident, DBClusterIdentifier=names.DB_CLUSTER,
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")

    cache = client("elasticache", endpoint_url)
    cache.create_replication_group(
        ReplicationGroupId=names.CACHE_GROUP, ReplicationGroupDescription="sessions and carts",
        Engine="redis", CacheNodeType="cache.t3.small", ReplicasPerNodeGroup=1,
        AutomaticFailoverEnabled=True,
    )
    cw = client("cloudwatch", endpoint_url)
    for alarm in shop_alarms(resources, period_s, topic_arn):
        cw.put_metric_alarm(**alarm)


# 5xx share (%) of one period above which shoppers are hurt enough to page: measured on the
# demo, an Aurora failover's 503s are ~17 % of a 5 s period and the session-cache
# failover's failed cart writes 1.5-3.6 %; an instance the group absorbs loses only its
# in-flight requests (0-0.74 %). See docs/control-plane.md "Alarms".
FIVE_XX_PERCENT = 1.0
P99_SECONDS = 1.0  # the demo's user-facing SLO is p95 <= 1 s


def shop_alarms(resources: Resources, period_s: int, topic_arn: str | None) -> list[dict]:
    """PutMetricAlarm requests for the alarms an on-call team sets on this architecture,
    each notifying ``topic_arn`` on ALARM and on OK (so incidents resolve)."""
    lb_dim, tg_dim = resources.load_balancer_dim, resources.target_group_dim
    actions = {"AlarmActions": [topic_arn], "OKActions": [topic_arn]} if topic_arn else {}
    lb = [{"Name": "LoadBalancer", "Value": lb_dim}]

    def stat(qid: str, metric: str) -> dict:
        return {"Id": qid, "ReturnData": False, "MetricStat": {"Metric": {
            "Namespace": "AWS/ApplicationELB", "MetricName": metric, "Dimensions": lb},
            "Period": period_s, "Stat": "Sum"}}

    return [
        {"AlarmName": names.ALARM_5XX,
         "AlarmDescription": f"More than {FIVE_XX_PERCENT:g} % of requests answered 5xx "
                             "(targets or the balancer itself) in one period: shoppers see "
                             "errors",
         "Metrics": [stat("t", "HTTPCode_Target_5XX_Count"), stat("e", "HTTPCode_ELB_5XX_Count"),
                     stat("r", "RequestCount"),
                     {"Id": "rate", "Expression": "100 * (FILL(t, 0) + FILL(e, 0)) / FILL(r, 1)",
                      "ReturnData": True, "Label": "5xx %"}],
         "Threshold": FIVE_XX_PERCENT, "ComparisonOperator": "GreaterThanThreshold",
         "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "TreatMissingData": "notBreaching",
         **actions},
        {"AlarmName": names.ALARM_LATENCY,
         "AlarmDescription": f"p99 target response time above {P99_SECONDS:g} s for 2 of 3 "
                             "periods",
         "Namespace": "AWS/ApplicationELB", "MetricName": "TargetResponseTime",
         "Dimensions": lb, "ExtendedStatistic": "p99", "Period": period_s,
         "Threshold": P99_SECONDS, "ComparisonOperator": "GreaterThanThreshold",
         "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Unit": "Seconds",
         "TreatMissingData": "notBreaching", **actions},
        {"AlarmName": names.ALARM_HOSTS,
         "AlarmDescription": f"fewer than {names.ASG_MIN} healthy targets for 3 periods "
                             "(longer than a replacement takes to boot)",
         "Namespace": "AWS/ApplicationELB", "MetricName": "HealthyHostCount",
         "Dimensions": [{"Name": "TargetGroup", "Value": tg_dim}, *lb],
         "Statistic": "Minimum", "Period": period_s, "Threshold": float(names.ASG_MIN),
         "ComparisonOperator": "LessThanThreshold", "EvaluationPeriods": 3,
         "DatapointsToAlarm": 3, "TreatMissingData": "breaching", **actions},
    ]
