"""The domain's view of its cluster: which node holds which shard copy in which state,
promotion of a replica when a primary's node leaves, recovery when it returns, and the
health colour OpenSearch derives from that (green: every copy started; yellow: every
primary started, some replica not; red: some shard has no started copy)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

STARTED, INITIALIZING, UNASSIGNED = "STARTED", "INITIALIZING", "UNASSIGNED"


@dataclass
class Copy:
    shard: int
    node: str
    primary: bool
    state: str = STARTED
    ready_at: float = 0.0  # INITIALIZING until then


@dataclass
class ClusterState:
    index: str
    nodes: list[str]
    shards: int
    replicas: int
    recovery_s: float
    copies: list[Copy] = field(default_factory=list)
    alive: dict[str, bool] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    _status: str = "green"

    def __post_init__(self) -> None:
        n = len(self.nodes)
        for s in range(self.shards):
            for r in range(self.replicas + 1):
                self.copies.append(Copy(s, self.nodes[(s + r) % n], primary=r == 0))
        self.alive = dict.fromkeys(self.nodes, True)

    def _event(self, kind: str, **detail) -> None:
        self.events.append({"ts": time.time(), "kind": kind, **detail})
        del self.events[:-500]

    def node_left(self, node: str, reason: str) -> None:
        if not self.alive.get(node, False):
            return
        self.alive[node] = False
        self._event("search_node_left", node=node, reason=reason)
        for c in self.copies:
            if c.node != node:
                continue
            c.state = UNASSIGNED
            if c.primary:
                c.primary = False
                best = next((o for o in self.copies if o.shard == c.shard and o.state == STARTED
                             and o.node != node), None)
                if best is not None:
                    best.primary = True
                    self._event("search_primary_promoted", shard=c.shard, node=best.node)
        self.refresh()

    def node_joined(self, node: str, now: float | None = None) -> None:
        if self.alive.get(node, False):
            return
        now = now or time.time()
        self.alive[node] = True
        self._event("search_node_joined", node=node)
        for c in self.copies:
            if c.node == node:
                c.state, c.ready_at = INITIALIZING, now + self.recovery_s
                has_primary = any(o.primary and o.state == STARTED for o in self.copies
                                  if o.shard == c.shard)
                c.primary = False if has_primary else c.primary
        self.refresh()

    def refresh(self, now: float | None = None) -> str:
        """Finish recoveries that are due, give primaries back where none is started,
        and record a health change."""
        now = now or time.time()
        for c in self.copies:
            if c.state == INITIALIZING and now >= c.ready_at:
                c.state = STARTED
        for s in range(self.shards):
            mine = [c for c in self.copies if c.shard == s]
            if not any(c.primary and c.state == STARTED for c in mine):
                started = [c for c in mine if c.state == STARTED]
                if started:
                    for c in mine:
                        c.primary = c is started[0]
        status = self.status()
        if status != self._status:
            self._event("search_cluster_status", status=status, previous=self._status)
            self._status = status
        return status

    def status(self) -> str:
        primaries = all(any(c.primary and c.state == STARTED for c in self.copies
                            if c.shard == s) for s in range(self.shards))
        if not primaries:
            return "red"
        return "green" if all(c.state == STARTED for c in self.copies) else "yellow"

    def started(self, shard: int) -> list[Copy]:
        return [c for c in self.copies if c.shard == shard and c.state == STARTED]

    def writable(self, shard: int) -> list[Copy]:
        return [c for c in self.copies if c.shard == shard and c.state != UNASSIGNED]

    def health(self, name: str) -> dict:
        count = {st: sum(1 for c in self.copies if c.state == st)
                 for st in (STARTED, INITIALIZING, UNASSIGNED)}
        total = len(self.copies)
        live = sum(1 for v in self.alive.values() if v)
        return {
            "cluster_name": name, "status": self.status(), "timed_out": False,
            "number_of_nodes": live, "number_of_data_nodes": live, "discovered_master": True,
            "discovered_cluster_manager": True,
            "active_primary_shards": sum(1 for c in self.copies
                                         if c.primary and c.state == STARTED),
            "active_shards": count[STARTED], "relocating_shards": 0,
            "initializing_shards": count[INITIALIZING], "unassigned_shards": count[UNASSIGNED],
            "delayed_unassigned_shards": count[UNASSIGNED], "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": round(100.0 * count[STARTED] / total, 1),
        }

    def shard_rows(self) -> list[dict]:
        return [{"index": self.index, "shard": str(c.shard), "prirep": "p" if c.primary else "r",
                 "state": c.state, "node": c.node if c.state != UNASSIGNED else None}
                for c in sorted(self.copies, key=lambda c: (c.shard, not c.primary))]
