"""Aurora and ElastiCache failovers that move the real PostgreSQL and Redis processes.

An API call starts the failover and returns at once, as on AWS; a thread asks the data
plane to do it and only when the process has been promoted does moto's view flip
(``IsClusterWriter``, node roles). Events are recorded with the real times, in the
wording of RDS-EVENT-0073/0071 and ElastiCache's failover events.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from moto.elasticache.exceptions import InvalidParameterValueException
from moto.elasticache.models import elasticache_backends
from moto.rds.exceptions import InvalidDBClusterStateFault, InvalidDBInstanceStateFault
from moto.rds.models import rds_backends

from peakready.sandbox.aws import names
from peakready.sandbox.aws.extensions import LOCK
from peakready.sandbox.aws.queries import epoch

log = logging.getLogger(__name__)


@dataclass
class EventLog:
    """RDS / ElastiCache DescribeEvents items; default window the past hour, as AWS."""

    arn_prefix: str
    _items: list[dict] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, source_id: str, source_type: str, message: str,
            categories: tuple[str, ...] = ("failover",)) -> dict:
        item = {"SourceIdentifier": source_id, "SourceType": source_type, "Message": message,
                "EventCategories": list(categories), "Date": datetime.now(UTC),
                "SourceArn": f"{self.arn_prefix}{source_id}"}
        with self._lock:
            self._items.append(item)
        log.info("%s %s: %s", source_type, source_id, message)
        return item

    def query(self, source_id=None, source_type=None, start=None, end=None,
              duration_min: int | None = None) -> list[dict]:
        now = datetime.now(UTC)
        t1 = datetime.fromtimestamp(epoch(end), UTC) if end else now
        if start:
            t0 = datetime.fromtimestamp(epoch(start), UTC)
        else:
            t0 = t1 - timedelta(minutes=duration_min or 60)
        with self._lock:
            items = list(self._items)
        return [i for i in items if (not source_id or i["SourceIdentifier"] == source_id)
                and (not source_type or i["SourceType"] == source_type)
                and t0 <= i["Date"] <= t1]


@dataclass
class DataTier:
    stack: object
    timing: object
    rds_events: EventLog = field(default_factory=lambda: EventLog(
        f"arn:aws:rds:{names.REGION}:{names.ACCOUNT_ID}:cluster:"))
    cache_events: EventLog = field(default_factory=lambda: EventLog(
        f"arn:aws:elasticache:{names.REGION}:{names.ACCOUNT_ID}:replicationgroup:"))
    _busy: set[str] = field(default_factory=set)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    # ---- Aurora ------------------------------------------------------------------
    def start_db_failover(self, cluster, target_instance) -> None:
        """Called (under LOCK) by moto's failover_db_cluster after its validation."""
        if cluster.db_cluster_identifier in self._busy:
            raise InvalidDBClusterStateFault(
                f"DbCluster {cluster.db_cluster_identifier} is not in available state.")
        self._busy.add(cluster.db_cluster_identifier)
        cluster.status = "failing-over"
        target = target_instance.db_instance_identifier
        self.rds_events.add(cluster.db_cluster_identifier, "db-cluster",
                            f"Started cross AZ failover to DB instance: {target}")
        self._spawn(self._db_failover, cluster, target_instance)

    def _db_failover(self, cluster, target_instance) -> None:
        target = target_instance.db_instance_identifier
        try:
            timings = self.stack.failover_db(target)
        except Exception as exc:  # the process side failed: say so, keep the old writer
            log.exception("database failover to %s failed", target)
            with LOCK:
                cluster.status = "available"
                self._busy.discard(cluster.db_cluster_identifier)
            self.rds_events.add(cluster.db_cluster_identifier, "db-cluster",
                                f"Failover to DB instance {target} failed: {exc}",
                                ("failover", "failure"))
            return
        with LOCK:
            cluster.apply_failover(target_instance)
            cluster.status = "available"
            self._busy.discard(cluster.db_cluster_identifier)
        self.rds_events.add(cluster.db_cluster_identifier, "db-cluster",
                            f"Completed failover to DB instance: {target}")
        log.info("db failover timings: %s", timings)

    def start_db_reboot(self, database) -> None:
        """RebootDBInstance (called under LOCK): ``rebooting`` at once, the node's engine
        restarts, ``available`` once it serves again; RDS-EVENT-0006 when it is back."""
        ident = database.db_instance_identifier
        if ident in self._busy or names.DB_CLUSTER in self._busy:
            raise InvalidDBInstanceStateFault(f"DB instance {ident} is not in available state.")
        self._busy.add(ident)
        database.status = "rebooting"
        self.rds_events.add(ident, "db-instance", "DB instance shutdown", ("availability",))
        self._spawn(self._db_reboot, database)

    def _db_reboot(self, database) -> None:
        ident = database.db_instance_identifier
        try:
            timings = self.stack.reboot_db(ident)
            self.rds_events.add(ident, "db-instance", "DB instance restarted",
                                ("availability",))
            log.info("db reboot timings: %s", timings)
        except Exception as exc:  # the process side failed: recorded as an event
            log.exception("reboot of %s failed", ident)
            self.rds_events.add(ident, "db-instance", f"Reboot of DB instance {ident} failed: "
                                f"{exc}", ("availability", "failure"))
        finally:
            with LOCK:
                database.status = "available"
                self._busy.discard(ident)

    def sync_db_roles(self) -> None:
        """If the writer changed without the API (or the API is mid-failover), follow."""
        if names.DB_CLUSTER in self._busy:
            return
        writers = [n["name"] for n in self.stack.db_nodes() if n.get("role") == "writer"]
        if len(writers) != 1:
            return
        with LOCK:
            backend = rds_backends[names.ACCOUNT_ID][names.REGION]
            cluster = backend.clusters.get(names.DB_CLUSTER)
            if cluster is None or cluster.writer is None:
                return
            if cluster.writer.db_instance_identifier != writers[0]:
                member = backend.databases.get(writers[0])
                if member is not None:
                    cluster.apply_failover(member)

    # ---- ElastiCache -------------------------------------------------------------
    def _group(self, group_id: str):
        groups = elasticache_backends[names.ACCOUNT_ID][names.REGION].replication_groups
        if group_id not in groups:
            raise InvalidParameterValueException(
                f"Replication group {group_id} not found.")  # AWS: ReplicationGroupNotFound
        return groups[group_id]

    def _members(self, group) -> list[dict]:
        return [m for ng in group.node_groups for m in ng["node_group_members"]]

    def start_cache_failover(self, group_id: str, node_group_id: str):
        """TestFailover: kill the node group's primary, promote its replica."""
        group = self._group(group_id)
        if node_group_id not in {ng["node_group_id"] for ng in group.node_groups}:
            raise InvalidParameterValueException(
                f"Node group {node_group_id} not found in {group_id}.")
        self._claim(group)
        primary = next(m["cache_cluster_id"] for m in self._members(group)
                       if m.get("current_role") == "primary")
        self.cache_events.add(group_id, "replication-group",
                              f"Test Failover API called for node group {node_group_id}")
        self._spawn(self._cache_failover, group, primary)
        return group

    def start_cache_reboot(self, cluster_id: str, node_ids: list[str]) -> dict:
        """RebootCacheCluster on a member: the node's process is killed; a primary fails
        over to the replica, and the node returns as a replica."""
        group_id = cluster_id.rsplit("-", 1)[0]
        group = self._group(group_id)
        member = next((m for m in self._members(group) if m["cache_cluster_id"] == cluster_id),
                      None)
        if member is None:
            raise InvalidParameterValueException(f"Cache cluster {cluster_id} not found.")
        self._claim(group)
        self.cache_events.add(cluster_id, "cache-cluster",
                              f"Cache node {','.join(node_ids) or '0001'} reboot requested",
                              ("maintenance",))
        self._spawn(self._cache_failover, group, cluster_id)
        return {"CacheClusterId": cluster_id, "CacheClusterStatus": "rebooting cache cluster nodes",
                "ReplicationGroupId": group_id, "Engine": "redis", "CacheNodeType":
                "cache.t3.small", "NumCacheNodes": 1}

    def _claim(self, group) -> None:
        if group.replication_group_id in self._busy:
            raise InvalidParameterValueException(
                f"Replication group {group.replication_group_id} is not in available state.")
        self._busy.add(group.replication_group_id)
        group.status = "modifying"

    def _cache_failover(self, group, node: str) -> None:
        group_id = group.replication_group_id
        try:
            before = {n["name"]: n.get("role") for n in self.stack.cache_nodes()}
            self.stack.failover_cache(node)
            after = {n["name"]: n.get("role") for n in self.stack.cache_nodes()}
            new_primary = next((k for k, v in after.items() if v == "primary"), None)
            if before.get(node) == "primary" and new_primary and new_primary != node:
                self.cache_events.add(group_id, "replication-group",
                                      f"Failover from primary node {node} to replica node "
                                      f"{new_primary} completed")
            self.cache_events.add(node, "cache-cluster", "Recovering cache nodes 0001",
                                  ("recovery",))
            self.sync_cache_roles()
            self._wait_node_back(node)
        except Exception as exc:
            log.exception("cache failover of %s failed", node)
            self.cache_events.add(group_id, "replication-group",
                                  f"Failover of {node} failed: {exc}", ("failure",))
        finally:
            with LOCK:
                group.status = "available"
                self._busy.discard(group_id)

    def _wait_node_back(self, node: str) -> None:
        deadline = time.time() + self.timing.cache_node_recover_s + 30
        while time.time() < deadline:
            state = next((n for n in self.stack.cache_nodes() if n["name"] == node), None)
            if state and state.get("alive") and state.get("role") == "replica":
                self.cache_events.add(node, "cache-cluster",
                                      "Finished recovery for cache nodes 0001", ("recovery",))
                self.sync_cache_roles()
                return
            time.sleep(0.2)

    def sync_cache_roles(self) -> None:
        """moto's CurrentRole and primary endpoint follow the live Redis roles."""
        roles = {n["name"]: n.get("role") for n in self.stack.cache_nodes()}
        with LOCK:
            groups = elasticache_backends[names.ACCOUNT_ID][names.REGION].replication_groups
            group = groups.get(names.CACHE_GROUP)
            if group is None:
                return
            for ng in group.node_groups:
                for member in ng["node_group_members"]:
                    role = roles.get(member["cache_cluster_id"])
                    if role in ("primary", "replica"):
                        member["current_role"] = role

    def member_clusters(self, show_nodes: bool) -> list[dict]:
        """The replication groups' member clusters in DescribeCacheClusters' shape."""
        with LOCK:
            groups = list(elasticache_backends[names.ACCOUNT_ID][names.REGION]
                          .replication_groups.values())
            members = [(g, m) for g in groups for m in self._members(g)]
        out = []
        for group, member in members:
            cluster_id = member["cache_cluster_id"]
            item = {"CacheClusterId": cluster_id, "ReplicationGroupId": group.replication_group_id,
                    "CacheClusterStatus": "available", "Engine": "redis",
                    "EngineVersion": "7.1", "CacheNodeType": group.cache_node_type,
                    "NumCacheNodes": 1,
                    "PreferredAvailabilityZone": member.get("preferred_availability_zone")}
            nodes = self.cache_nodes_of(cluster_id)
            if nodes and nodes[0]["CacheNodeStatus"] != "available":
                item["CacheClusterStatus"] = "rebooting cache cluster nodes"
            if show_nodes:
                item["CacheNodes"] = nodes
            out.append(item)
        return out

    def cache_nodes_of(self, cluster_id: str) -> list[dict]:
        """CacheNodes for describe_cache_clusters(ShowCacheNodeInfo=True)."""
        node = next((n for n in self.stack.cache_nodes() if n["name"] == cluster_id), None)
        if node is None:
            return []
        return [{"CacheNodeId": "0001",
                 "CacheNodeStatus": "available" if node.get("alive") else "rebooting",
                 "Endpoint": {"Address": "127.0.0.1", "Port": int(node.get("port") or 0)},
                 "ParameterGroupStatus": "in-sync"}]

    def stop(self) -> None:
        for thread in self._threads:
            thread.join(timeout=1)
