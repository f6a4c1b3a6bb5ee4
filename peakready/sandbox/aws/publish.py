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
    "elb_403": "HTTPCode_ELB_403_Count",  # blocked by the Web ACL
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


def healthy_hosts(stats: Mapping) -> tuple[int, int]:
    """(healthy, unhealthy) target counts of one ``lb_take_stats()`` snapshot."""
    lb = stats.get("lb") or {}
    return int(lb.get("healthy_host_count", 0)), int(lb.get("unhealthy_host_count", 0))


def alb_datums(stats: Mapping, lb_dim: str, tg_dim: str) -> list[Datum]:
    """AWS/ApplicationELB from one ``lb_take_stats()`` snapshot."""
    lb = stats.get("lb") or {}
    out = _alb_block(lb, _dims(LoadBalancer=lb_dim))
    for key, metric in (("new_connections", "NewConnectionCount"),
                        ("active_connections", "ActiveConnectionCount")):
        if lb.get(key):  # per load balancer only, omitted when zero
            out.append(_d("AWS/ApplicationELB", metric, _dims(LoadBalancer=lb_dim), "Count",
                          float(lb[key])))
    out += _alb_block(lb, _dims(TargetGroup=tg_dim, LoadBalancer=lb_dim))
    healthy, unhealthy = healthy_hosts(stats)
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


def _rate(node: Mapping, prev: Mapping | None, key: str, per: float) -> float | None:
    """Per-``per`` increase of a cumulative counter; None at the first period or a reset."""
    if prev is None or node.get(key) is None or prev.get(key) is None:
        return None
    delta = float(node[key]) - float(prev[key])
    return delta / per if delta >= 0 else None


def rds_datums(nodes: Iterable[Mapping], prev: Mapping[str, Mapping], period_s: float) -> list[Datum]:
    """AWS/RDS per instance and per cluster role, from ``db_stats()`` nodes."""
    nodes = list(nodes)
    lag_ms = {r["name"]: 1000.0 * float(r.get("replay_lag_s") or 0.0)
              for n in nodes for r in n.get("replicas") or () if r.get("name")}
    out = []
    for node in nodes:
        values = {
            ("DatabaseConnections", "Count"): node.get("connections"),
            ("CommitThroughput", "Count/Second"): _rate(node, prev.get(node["name"]), "commits",
                                                        period_s),
            ("RollbackThroughput", "Count/Second"): _rate(node, prev.get(node["name"]),
                                                          "rollbacks", period_s),
            ("AuroraReplicaLag", "Milliseconds"): lag_ms.get(node["name"]),
        }
        role = "WRITER" if node.get("role") == "writer" else "READER"
        for (metric, unit), value in values.items():
            if value is None:
                continue
            out.append(_d("AWS/RDS", metric, _dims(DBInstanceIdentifier=node["name"]), unit, value))
            out.append(_d("AWS/RDS", metric, _dims(DBClusterIdentifier=names.DB_CLUSTER, Role=role),
                          unit, value))
    return out


def cache_datums(nodes: Iterable[Mapping], prev: Mapping[str, Mapping]) -> list[Datum]:
    """AWS/ElastiCache per node, from ``cache_stats()`` nodes."""
    out = []
    for node in nodes:
        dims = _dims(CacheClusterId=node["name"], CacheNodeId="0001")
        before = prev.get(node["name"])
        values = {
            ("CurrConnections", "Count"): node.get("connections"),
            ("BytesUsedForCache", "Bytes"): node.get("memory_bytes"),
            ("CurrItems", "Count"): node.get("keys"),
            ("CacheHits", "Count"): _rate(node, before, "hits", 1.0),
            ("CacheMisses", "Count"): _rate(node, before, "misses", 1.0),
            ("Evictions", "Count"): _rate(node, before, "evictions", 1.0),
            ("IsPrimary", "Count"): 1.0 if node.get("role") == "primary" else 0.0,
        }
        out += [_d("AWS/ElastiCache", metric, dims, unit, value)
                for (metric, unit), value in values.items() if value is not None]
    return out
