"""What AWS publishes each period, built from the data plane's measurements.

Pure functions: one period's snapshot in, CloudWatch MetricData members out, shaped
and named as AWS does (namespaces, metric names, dimensions, units). ALB count metrics
are omitted when zero, as on AWS; analysis zero-fills them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from peakready.sandbox.aws import names

Datum = tuple[str, dict]  # (namespace, MetricData member)

# lb_take_stats() counter -> ALB metric name (summed per period, omitted when zero)
ALB_COUNTS = {
    "requests": "RequestCount",
    "target_2xx": "HTTPCode_Target_2XX_Count",
    "target_3xx": "HTTPCode_Target_3XX_Count",
    "target_4xx": "HTTPCode_Target_4XX_Count",
    "target_5xx": "HTTPCode_Target_5XX_Count",
    "elb_502": "HTTPCode_ELB_502_Count",
    "elb_503": "HTTPCode_ELB_503_Count",
    "elb_504": "HTTPCode_ELB_504_Count",
    "elb_4xx": "HTTPCode_ELB_4XX_Count",
    "target_connection_errors": "TargetConnectionErrorCount",
    "rejected_connections": "RejectedConnectionCount",
}


def _dims(**kv: str) -> list[dict]:
    return [{"Name": k, "Value": v} for k, v in kv.items()]


def _d(namespace: str, metric: str, dims: list[dict], unit: str, value: float | None = None,
       values: Iterable[float] | None = None) -> Datum:
    datum: dict[str, Any] = {"MetricName": metric, "Dimensions": dims, "Unit": unit}
    if values is not None:
        datum["Values"] = list(values)
    else:
        datum["Value"] = float(value or 0.0)
    return namespace, datum


def _alb_block(stats: Mapping, dims: list[dict]) -> list[Datum]:
    ns = "AWS/ApplicationELB"
    out = []
    for key, metric in ALB_COUNTS.items():
        count = float(stats.get(key) or 0)
        if count:
            out.append(_d(ns, metric, dims, "Count", count))
    elb_5xx = sum(float(stats.get(k) or 0) for k in ("elb_502", "elb_503", "elb_504", "elb_5xx_other"))
    if elb_5xx:
        out.append(_d(ns, "HTTPCode_ELB_5XX_Count", dims, "Count", elb_5xx))
    times = stats.get("response_times") or []
    if len(times):
        out.append(_d(ns, "TargetResponseTime", dims, "Seconds", values=times))
    return out


def alb_datums(stats: Mapping, lb_dim: str, tg_dim: str) -> list[Datum]:
    """AWS/ApplicationELB from one ``lb_take_stats()`` snapshot."""
    lb = stats.get("lb") or {}
    out = _alb_block(lb, _dims(LoadBalancer=lb_dim))
    out += _alb_block(lb, _dims(TargetGroup=tg_dim, LoadBalancer=lb_dim))
    healthy = int(lb.get("healthy", 0))
    unhealthy = int(lb.get("unhealthy", 0))
    both = _dims(TargetGroup=tg_dim, LoadBalancer=lb_dim)
    out.append(_d("AWS/ApplicationELB", "HealthyHostCount", both, "Count", healthy))
    out.append(_d("AWS/ApplicationELB", "UnHealthyHostCount", both, "Count", unhealthy))
    requests = float(lb.get("requests") or 0)
    if requests:
        per_target = requests / max(healthy, 1)
        out.append(_d("AWS/ApplicationELB", "RequestCountPerTarget", _dims(TargetGroup=tg_dim),
                      "Count", per_target))
        out.append(_d("AWS/ApplicationELB", "RequestCountPerTarget", both, "Count", per_target))
    return out


def asg_datums(counts: Mapping[str, int]) -> list[Datum]:
    """AWS/AutoScaling group metrics (what enable_metrics_collection turns on)."""
    dims = _dims(AutoScalingGroupName=names.ASG)
    return [_d("AWS/AutoScaling", metric, dims, "None", value) for metric, value in counts.items()]


def ec2_datums(instances: Iterable[Mapping]) -> list[Datum]:
    """AWS/EC2 CPUUtilization per instance and aggregated by group, from busy fraction."""
    busy = {i["id"]: 100.0 * float(i.get("busy") or 0.0) for i in instances if i.get("alive")}
    out = [_d("AWS/EC2", "CPUUtilization", _dims(InstanceId=i), "Percent", v)
           for i, v in busy.items()]
    if busy:
        out.append(_d("AWS/EC2", "CPUUtilization", _dims(AutoScalingGroupName=names.ASG),
                      "Percent", values=busy.values()))
    return out


# db_stats()/cache_stats() key -> (metric, unit); absent keys are simply not published
RDS_METRICS = {
    "connections": ("DatabaseConnections", "Count"),
    "commits_per_s": ("CommitThroughput", "Count/Second"),
    "replica_lag_ms": ("AuroraReplicaLag", "Milliseconds"),
    "replication_lag_s": ("ReplicaLag", "Seconds"),
    "cpu_percent": ("CPUUtilization", "Percent"),
    "deadlocks": ("Deadlocks", "Count/Second"),
}
CACHE_METRICS = {
    "connections": ("CurrConnections", "Count"),
    "hits": ("CacheHits", "Count"),
    "misses": ("CacheMisses", "Count"),
    "memory_bytes": ("BytesUsedForCache", "Bytes"),
    "replication_lag_s": ("ReplicationLag", "Seconds"),
    "keys": ("CurrItems", "Count"),
    "evictions": ("Evictions", "Count"),
}


def rds_datums(nodes: Iterable[Mapping]) -> list[Datum]:
    out = []
    for node in nodes:
        dims = _dims(DBInstanceIdentifier=node["name"])
        for key, (metric, unit) in RDS_METRICS.items():
            if node.get(key) is not None:
                out.append(_d("AWS/RDS", metric, dims, unit, node[key]))
        role = "WRITER" if node.get("role") == "writer" else "READER"
        for key, (metric, unit) in RDS_METRICS.items():
            if node.get(key) is not None:
                out.append(_d("AWS/RDS", metric,
                              _dims(DBClusterIdentifier=names.DB_CLUSTER, Role=role), unit,
                              node[key]))
    return out


def cache_datums(nodes: Iterable[Mapping]) -> list[Datum]:
    out = []
    for node in nodes:
        dims = _dims(CacheClusterId=node["name"], CacheNodeId="0001")
        for key, (metric, unit) in CACHE_METRICS.items():
            if node.get(key) is not None:
                out.append(_d("AWS/ElastiCache", metric, dims, unit, node[key]))
        out.append(_d("AWS/ElastiCache", "IsPrimary", dims, "Count",
                      1.0 if node.get("role") == "primary" else 0.0))
    return out
