"""ElastiCache primary failover, which chaostoolkit-aws does not offer.

``TestFailover`` is the AWS API for "the primary node drops": the replica is promoted,
and the old primary comes back as a replica. The action waits until the primary changed,
so the journal's activity spans the failover. Cluster mode disabled has one node group.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed

from peakready.chaos.aws import client, wait_for

logger = logging.getLogger("chaostoolkit")

__all__ = ["failover_primary", "primary_node", "replication_group_has_primary",
           "wait_replication_group_available"]


def _group(ec, group_id: str) -> dict[str, Any]:
    found = ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"]
    if not found:
        raise ActivityFailed(f"no replication group {group_id}")
    return found[0]


def _node_group(group: dict[str, Any], node_group_id: str | None) -> dict[str, Any]:
    groups = group.get("NodeGroups") or []
    for ng in groups:
        if node_group_id in (None, "", ng["NodeGroupId"]):
            return ng
    raise ActivityFailed(f"{group['ReplicationGroupId']} has no node group {node_group_id}")


def _primary(node_group: dict[str, Any]) -> str | None:
    primaries = [m["CacheClusterId"] for m in node_group.get("NodeGroupMembers") or []
                 if m.get("CurrentRole") == "primary"]
    return primaries[0] if len(primaries) == 1 else None


def primary_node(replication_group_id: str, node_group_id: str = "",
                 configuration: dict | None = None, secrets: dict | None = None) -> str | None:
    """Probe: the cache cluster (node) that is primary now."""
    group = _group(client("elasticache", configuration), replication_group_id)
    return _primary(_node_group(group, node_group_id or None))


def replication_group_has_primary(replication_group_id: str, node_group_id: str = "",
                                  configuration: dict | None = None,
                                  secrets: dict | None = None) -> bool:
    """Probe: the node group has exactly one primary."""
    return primary_node(replication_group_id, node_group_id, configuration) is not None


def failover_primary(replication_group_id: str, node_group_id: str = "",
                     timeout_s: float = 180.0, poll_s: float = 1.0,
                     configuration: dict | None = None,
                     secrets: dict | None = None) -> dict[str, Any]:
    """Action: drop the primary of a node group (``TestFailover``) and wait until a
    replica is primary and the group is available again."""
    ec = client("elasticache", configuration)
    group = _group(ec, replication_group_id)
    ng = _node_group(group, node_group_id or None)
    old = _primary(ng)
    if old is None:
        raise ActivityFailed(f"{replication_group_id}/{ng['NodeGroupId']} has no primary")
    requested_at = time.time()
    ec.test_failover(ReplicationGroupId=replication_group_id, NodeGroupId=ng["NodeGroupId"])
    logger.info(f"failover of {replication_group_id}/{ng['NodeGroupId']} from {old} requested")

    def promoted() -> str | None:
        now = _group(ec, replication_group_id)
        primary = _primary(_node_group(now, ng["NodeGroupId"]))
        return primary if primary not in (None, old) and now["Status"] == "available" \
            else None

    new, waited = wait_for(promoted, timeout_s, poll_s,
                           f"a new primary in {replication_group_id}")
    return {"replication_group": replication_group_id, "node_group": ng["NodeGroupId"],
            "from": old, "to": new, "requested_at": requested_at, "failover_s": waited}


def wait_replication_group_available(replication_group_id: str, timeout_s: float = 180.0,
                                     poll_s: float = 1.0, configuration: dict | None = None,
                                     secrets: dict | None = None) -> dict[str, Any]:
    """Action (rollback): wait until the group is available with one primary."""
    ec = client("elasticache", configuration)

    def available() -> str | None:
        group = _group(ec, replication_group_id)
        return _primary(_node_group(group, None)) if group["Status"] == "available" else None

    primary, waited = wait_for(available, timeout_s, poll_s,
                               f"{replication_group_id} to be available")
    return {"replication_group": replication_group_id, "primary": primary,
            "waited_s": waited}
