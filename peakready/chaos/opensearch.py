"""OpenSearch Service node faults, which neither AWS FIS nor chaostoolkit-aws offers.

``StartDomainMaintenance`` (``REBOOT_NODE`` or ``RESTART_SEARCH_PROCESS`` on one data
node) is the one native lever that takes a node away; the action waits until AWS says the
maintenance completed, and ``wait_for_green`` waits until the cluster is whole again, so
the journal spans the fault and the recovery. The same calls work on AWS and on the
sandbox's endpoint.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed

from peakready.chaos.aws import client, wait_for

logger = logging.getLogger("chaostoolkit")

__all__ = ["cluster_health", "domain_not_red", "reboot_node", "wait_for_green"]
ACTIONS = ("REBOOT_NODE", "RESTART_SEARCH_PROCESS")


def cluster_health(domain_name: str, configuration: dict | None = None,
                   secrets: dict | None = None) -> str:
    """Probe: ``Green|Yellow|Red|NotAvailable`` (DescribeDomainHealth)."""
    return client("opensearch", configuration).describe_domain_health(
        DomainName=domain_name)["ClusterHealth"]


def domain_not_red(domain_name: str, configuration: dict | None = None,
                   secrets: dict | None = None) -> bool:
    """Probe: every primary shard has a started copy (a yellow domain still serves)."""
    return cluster_health(domain_name, configuration) in ("Green", "Yellow")


def _data_nodes(os_client: Any, domain_name: str) -> list[dict]:
    nodes = os_client.describe_domain_nodes(DomainName=domain_name)["DomainNodesStatusList"]
    return [n for n in nodes if n.get("NodeType") == "Data"]


def reboot_node(domain_name: str, node_id: str = "", action: str = "REBOOT_NODE",
                timeout_s: float = 600.0, poll_s: float = 1.0,
                configuration: dict | None = None, secrets: dict | None = None) -> dict:
    """Action: node maintenance on one data node (``node_id``, else the first active one),
    waiting until the maintenance is COMPLETED."""
    if action not in ACTIONS:
        raise ActivityFailed(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    osc = client("opensearch", configuration)
    nodes = _data_nodes(osc, domain_name)
    if node_id and node_id not in {n["NodeId"] for n in nodes}:
        raise ActivityFailed(f"{domain_name} has no data node {node_id}")
    active = [n["NodeId"] for n in nodes if n.get("NodeStatus") == "Active"]
    target = node_id or (active[0] if active else "")
    if not target:
        raise ActivityFailed(f"{domain_name} has no active data node")
    requested_at = time.time()
    mid = osc.start_domain_maintenance(DomainName=domain_name, Action=action,
                                       NodeId=target)["MaintenanceId"]
    logger.info(f"{action} of {domain_name}/{target} started ({mid})")

    def done() -> str | None:
        status = osc.get_domain_maintenance_status(DomainName=domain_name,
                                                   MaintenanceId=mid)["Status"]
        if status in ("FAILED", "TIMED_OUT"):
            raise ActivityFailed(f"maintenance {mid} on {target}: {status}")
        return status if status == "COMPLETED" else None

    _, waited = wait_for(done, timeout_s, poll_s, f"maintenance {mid} on {target}")
    return {"domain": domain_name, "node": target, "action": action, "maintenance_id": mid,
            "requested_at": requested_at, "maintenance_s": waited}


def wait_for_green(domain_name: str, timeout_s: float = 600.0, poll_s: float = 0.5,
                   configuration: dict | None = None, secrets: dict | None = None) -> dict:
    """Action/rollback: wait until DescribeDomainHealth says Green."""
    osc = client("opensearch", configuration)
    health, waited = wait_for(
        lambda: "Green" if osc.describe_domain_health(
            DomainName=domain_name)["ClusterHealth"] == "Green" else None,
        timeout_s, poll_s, f"{domain_name} to be green")
    return {"domain": domain_name, "health": health, "waited_s": waited}
