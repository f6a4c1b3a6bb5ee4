"""Aurora failover that works without naming a target, and waits until it happened.

chaostoolkit-aws 0.35.1 passes ``TargetDBInstanceIdentifier=None`` to boto3 when no
target is named, which botocore rejects before any request. Here the target is chosen
(the available reader with the best promotion tier, as Aurora itself would), and the
action returns only once the cluster's writer really changed, so the journal's activity
spans the failover.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed

from peakready.chaos.aws import client, wait_for

logger = logging.getLogger("chaostoolkit")

__all__ = ["choose_reader", "cluster_has_writer", "cluster_writer", "failover_db_cluster",
           "wait_cluster_available"]


def _cluster(rds, cluster_id: str) -> dict[str, Any]:
    found = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"]
    if not found:
        raise ActivityFailed(f"no DB cluster {cluster_id}")
    return found[0]


def _writer(cluster: dict[str, Any]) -> str | None:
    writers = [m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]
               if m["IsClusterWriter"]]
    return writers[0] if len(writers) == 1 else None


def choose_reader(members: list[dict[str, Any]], instance_status: dict[str, str]) -> str | None:
    """The reader Aurora would promote: available, lowest promotion tier, then name."""
    readers = [m for m in members if not m["IsClusterWriter"]
               and instance_status.get(m["DBInstanceIdentifier"]) == "available"]
    readers.sort(key=lambda m: (m.get("PromotionTier", 15), m["DBInstanceIdentifier"]))
    return readers[0]["DBInstanceIdentifier"] if readers else None


def cluster_writer(db_cluster_identifier: str, configuration: dict | None = None,
                   secrets: dict | None = None) -> str | None:
    """Probe: the writer instance's id (None while there is not exactly one)."""
    return _writer(_cluster(client("rds", configuration), db_cluster_identifier))


def cluster_has_writer(db_cluster_identifier: str, configuration: dict | None = None,
                       secrets: dict | None = None) -> bool:
    """Probe: the cluster has exactly one writer."""
    return cluster_writer(db_cluster_identifier, configuration) is not None


def failover_db_cluster(db_cluster_identifier: str, target_db_instance_identifier: str = "",
                        timeout_s: float = 180.0, poll_s: float = 1.0,
                        configuration: dict | None = None,
                        secrets: dict | None = None) -> dict[str, Any]:
    """Action: fail the cluster over to ``target_db_instance_identifier`` (empty: the
    best available reader) and wait until that instance is the writer."""
    rds = client("rds", configuration)
    cluster = _cluster(rds, db_cluster_identifier)
    old = _writer(cluster)
    target = target_db_instance_identifier or None
    if target is None:
        ids = [m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]]
        status = {i["DBInstanceIdentifier"]: i["DBInstanceStatus"] for i in
                  rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": ids}])
                  ["DBInstances"]}
        target = choose_reader(cluster["DBClusterMembers"], status)
        if target is None:
            raise ActivityFailed(f"{db_cluster_identifier} has no available reader to fail "
                                 "over to")
    elif target == old:
        raise ActivityFailed(f"{target} is already the writer of {db_cluster_identifier}")
    requested_at = time.time()
    rds.failover_db_cluster(DBClusterIdentifier=db_cluster_identifier,
                            TargetDBInstanceIdentifier=target)
    logger.info(f"failover of {db_cluster_identifier} requested: {old} -> {target}")

    def promoted() -> str | None:
        now = _cluster(rds, db_cluster_identifier)
        writer = _writer(now)
        return writer if writer == target and now["Status"] == "available" else None

    writer, waited = wait_for(promoted, timeout_s, poll_s,
                              f"{target} to become the writer of {db_cluster_identifier}")
    return {"cluster": db_cluster_identifier, "from": old, "to": writer,
            "requested_at": requested_at, "failover_s": waited}


def wait_cluster_available(db_cluster_identifier: str, timeout_s: float = 180.0,
                           poll_s: float = 1.0, configuration: dict | None = None,
                           secrets: dict | None = None) -> dict[str, Any]:
    """Action (rollback): wait until the cluster is available with one writer."""
    rds = client("rds", configuration)

    def available() -> str | None:
        cluster = _cluster(rds, db_cluster_identifier)
        return _writer(cluster) if cluster["Status"] == "available" else None

    writer, waited = wait_for(available, timeout_s, poll_s,
                              f"{db_cluster_identifier} to be available")
    return {"cluster": db_cluster_identifier, "writer": writer, "waited_s": waited}
