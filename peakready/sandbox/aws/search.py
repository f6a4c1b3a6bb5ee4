"""The search domain in the control plane: an OpenSearch Service domain in moto, the
calls moto lacks (node maintenance, nodes, health) acting on the sandbox's real search
processes, and the ``AWS/ES`` metrics AWS publishes for a provisioned domain.

Grafted onto moto's ``OpenSearchServiceResponse`` (rest-json: moto routes by the
botocore model's request URI, so a method named after the operation answers it). Like
``extensions``, every graft asks the one attached control plane and falls back to moto.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from moto.opensearch.models import opensearch_backends
from moto.opensearch.responses import OpenSearchServiceResponse

from peakready.sandbox.aws import bootstrap, extensions, names
from peakready.sandbox.aws.publish import Datum, _d, _dims
from peakready.sandbox.search.config import DOMAIN

ENGINE = "OpenSearch_2.19"
INSTANCE_TYPE = "r6g.large.search"
_installed = {"done": False}


class ResourceNotFound(Exception):
    pass


def _err(status: int, code: str, message: str) -> tuple[int, dict, str]:
    return status, {"x-amzn-ErrorType": code}, json.dumps({"message": message,
                                                             "__type": code})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def create_domain(endpoint_url: str, stack: Any) -> None:
    """What a shop's IaC declares: a 3-node domain, zone awareness over 3 AZs."""
    if getattr(stack, "search", None) is None:
        return
    cfg = stack.search.cfg
    client = bootstrap.client("opensearch", endpoint_url)
    client.create_domain(
        DomainName=DOMAIN, EngineVersion=ENGINE,
        ClusterConfig={"InstanceType": INSTANCE_TYPE, "InstanceCount": cfg.nodes,
                       "DedicatedMasterEnabled": False, "ZoneAwarenessEnabled": cfg.nodes > 1,
                       "ZoneAwarenessConfig": {"AvailabilityZoneCount": min(3, cfg.nodes)}},
        EBSOptions={"EBSEnabled": True, "VolumeType": "gp3", "VolumeSize": 20})
    with extensions.LOCK:
        domain = opensearch_backends[names.ACCOUNT_ID][names.REGION].domains[DOMAIN]
        domain.endpoint = stack.search.url.split("://", 1)[1]  # host:port, as AWS shows it


def install() -> None:
    """Idempotent: the grafts (inert while no control plane is attached)."""
    if _installed["done"]:
        return
    _installed["done"] = True
    import moto.es.urls as es_urls  # the "es" signing name routes both services here

    for tail in ("nodes", "domainMaintenance", "domainMaintenances", "health"):
        es_urls.url_paths[f"{{0}}/2021-01-01/opensearch/domain/(?P<domainname>[^/]+)/{tail}$"] \
            = OpenSearchServiceResponse.dispatch
    for name in ("start_domain_maintenance", "get_domain_maintenance_status",
                 "list_domain_maintenances", "describe_domain_nodes", "describe_domain_health"):
        setattr(OpenSearchServiceResponse, name, _graft(globals()[f"_{name}"]))


def _graft(func):
    def method(self):
        plane = extensions._plane()
        search = getattr(getattr(plane, "stack", None), "search", None)
        if search is None:
            raise NotImplementedError(f"The {func.__name__[1:]} action has not been implemented")
        domain = (self.uri_match or {}).get("DomainName") or self.path.split("/")[4]
        if domain != search.name:
            return _err(409, "ResourceNotFoundException", f"Domain not found: {domain}")
        try:
            return func(self, search)
        except (KeyError, ValueError) as exc:
            return _err(400, "ValidationException", str(exc).strip("'\""))
        except RuntimeError as exc:
            return _err(409, "ConflictException", str(exc))
    method.__name__ = func.__name__[1:]
    return method


def _start_domain_maintenance(self, search) -> str:
    action, node = self._get_param("Action"), self._get_param("NodeId")
    if not node:
        raise ValueError("NodeId is required for this sandbox domain's maintenance actions")
    record = search.maintain(node, action)
    return json.dumps({"MaintenanceId": record["id"]})


def _maintenance(record: Mapping) -> dict:
    return {"Status": record["status"], "StatusMessage": f"{record['action']} of "
            f"{record['node']}", "NodeId": record["node"], "Action": record["action"],
            "CreatedAt": _iso(record["started_at"]), "UpdatedAt": _iso(record["updated_at"])}


def _get_domain_maintenance_status(self, search) -> str:
    mid = self._get_param("maintenanceId") or self.querystring.get("maintenanceId", [""])[0]
    record = search.maintenance.get(mid)
    if record is None:
        raise KeyError(f"no maintenance {mid}")
    return json.dumps(_maintenance(record))


def _list_domain_maintenances(self, search) -> str:
    items = [dict(_maintenance(r), DomainName=search.name, MaintenanceId=r["id"])
             for r in sorted(search.maintenance.values(), key=lambda r: r["started_at"])]
    return json.dumps({"DomainMaintenances": items})


def _describe_domain_nodes(self, search) -> str:
    zones = [f"{names.REGION}{z}" for z in "abc"]
    rows = [{"NodeId": n["name"], "NodeType": "Data", "AvailabilityZone": zones[i % 3],
             "InstanceType": INSTANCE_TYPE,
             "NodeStatus": "Active" if n["alive"] else "NotAvailable",
             "StorageType": "ebs", "StorageVolumeType": "gp3", "StorageSize": "20"}
            for i, n in enumerate(search.describe())]
    return json.dumps({"DomainNodesStatusList": rows})


def _describe_domain_health(self, search) -> str:
    try:
        health = search.request("GET", "/_cluster/health", timeout=1.0)
    except OSError:
        health = {"status": "red", "number_of_nodes": 0, "unassigned_shards": 0,
                  "active_shards": 0, "active_primary_shards": 0}
    nodes = search.describe()
    status = str(health.get("status", "red")).capitalize()
    return json.dumps({
        "DomainState": "Active" if health.get("number_of_nodes") else "NotAvailable",
        "AvailabilityZoneCount": str(min(3, len(nodes))),
        "ActiveAvailabilityZoneCount": str(min(3, sum(1 for n in nodes if n["alive"]))),
        "StandByAvailabilityZoneCount": "0",
        "DataNodeCount": str(sum(1 for n in nodes if n["alive"])),
        "DedicatedMaster": False, "MasterEligibleNodeCount": str(len(nodes)),
        "WarmNodeCount": "0", "MasterNode": "Available" if health.get("number_of_nodes")
        else "UnAvailable",
        "ClusterHealth": status if status in ("Green", "Yellow", "Red") else "NotAvailable",
        "TotalShards": str(health.get("active_shards", 0) + health.get("unassigned_shards", 0)
                           + health.get("initializing_shards", 0)),
        "TotalUnAssignedShards": str(health.get("unassigned_shards", 0)),
        "EnvironmentInformation": []})


# --- AWS/ES ----------------------------------------------------------------------------

def _delta(now: Mapping, before: Mapping | None, *path: str) -> float:
    """Increase of a cumulative node counter; after a restart (it went down) the counter
    started again from zero, so the increase is its current value."""
    def get(d: Mapping | None) -> float | None:
        for key in path:
            if not isinstance(d, Mapping):
                return None
            d = d.get(key)
        return float(d) if isinstance(d, int | float) else None

    cur, prev = get(now), get(before)
    if cur is None:
        return 0.0
    if prev is None or cur < prev or now.get("started_at") != (before or {}).get("started_at"):
        return cur if before is not None else 0.0
    return cur - prev


def es_datums(stats: Mapping, prev: Mapping, period_s: float) -> list[Datum]:
    """One period's ``AWS/ES`` metrics from the domain's ``/_sandbox/stats``; ``prev`` is
    the previous period's stats (None at the first)."""
    if not stats:
        return []
    ns = "AWS/ES"
    cluster = _dims(DomainName=stats.get("domain", DOMAIN), ClientId=names.ACCOUNT_ID)
    health = stats.get("health") or {}
    status = health.get("status")
    out = [_d(ns, f"ClusterStatus.{c}", cluster, "Count", 1.0 if status == c else 0.0)
           for c in ("green", "yellow", "red")]
    out.append(_d(ns, "Nodes", cluster, "Count", float(health.get("number_of_nodes", 0))))
    for key, metric in (("unassigned_shards", "Shards.unassigned"),
                        ("initializing_shards", "Shards.initializing"),
                        ("active_shards", "Shards.active"),
                        ("active_primary_shards", "Shards.activePrimary"),
                        ("delayed_unassigned_shards", "Shards.delayedUnassigned")):
        out.append(_d(ns, metric, cluster, "Count", float(health.get(key, 0))))
    before_nodes = (prev or {}).get("nodes") or {}
    per: dict[str, list[float]] = {m: [] for m in (
        "SearchRate", "SearchLatency", "ThreadpoolSearchQueue", "ThreadpoolSearchRejected",
        "ThreadpoolSearchThreads", "CPUUtilization")}
    for node, now in sorted((stats.get("nodes") or {}).items()):
        if not (stats.get("alive") or {}).get(node, True):
            continue
        before = before_nodes.get(node) if prev else None
        pool = (now.get("thread_pool") or {}).get("search") or {}
        queries = _delta(now, before, "search", "query_total")
        spent_ms = _delta(now, before, "search", "query_time_in_millis")
        busy = _delta(now, before, "thread_pool", "search", "busy_seconds")
        values = {
            "SearchRate": queries,  # per period (AWS: per minute), per shard query
            "SearchLatency": spent_ms / queries if queries else None,
            "ThreadpoolSearchQueue": float(pool.get("queue", 0)),
            "ThreadpoolSearchRejected": float(pool.get("rejected", 0)),  # cumulative
            "ThreadpoolSearchThreads": float(pool.get("threads", 0)),
            "CPUUtilization": min(100.0, 100.0 * busy / (period_s * max(pool.get("threads", 1),
                                                                          1))),
        }
        node_dims = _dims(DomainName=stats.get("domain", DOMAIN), NodeId=node,
                          ClientId=names.ACCOUNT_ID)
        units = {"SearchLatency": "Milliseconds", "CPUUtilization": "Percent"}
        for metric, value in values.items():
            if value is None:
                continue
            per[metric].append(value)
            out.append(_d(ns, metric, node_dims, units.get(metric, "Count"), value))
    for metric, values in per.items():
        if values:
            unit = {"SearchLatency": "Milliseconds", "CPUUtilization": "Percent"}.get(metric,
                                                                                     "Count")
            out.append(_d(ns, metric, cluster, unit, values=values))
    statuses, before_st = stats.get("statuses") or {}, (prev or {}).get("statuses") or {}
    if prev:
        total = 0.0
        for klass in ("2", "3", "4", "5"):
            n = sum(max(0, v - before_st.get(k, 0)) for k, v in statuses.items()
                    if k.startswith(klass))
            total += n
            out.append(_d(ns, f"{klass}xx", cluster, "Count", float(n)))
        out.append(_d(ns, "OpenSearchRequests", cluster, "Count", total))
    return out
