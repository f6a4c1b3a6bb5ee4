"""The sandbox's data plane as one object: storefront instances, the balancer, the
PostgreSQL pair and the Redis pair, all real child processes of the caller.

Thread-safe: the control plane calls it from its request threads inside the sandbox
daemon (an ASG launching an instance, an RDS failover, ...). Every child is spawned from
one long-lived thread (see ``procs.Spawner``).
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peakready.sandbox import catalog, procs
from peakready.sandbox.aws import names
from peakready.sandbox.ports import PortHold
from peakready.sandbox.postgres import PgCluster
from peakready.sandbox.procs import Spawner
from peakready.sandbox.redisnodes import RedisGroup
from peakready.sandbox.search import config as search_config
from peakready.sandbox.search.availability import engine_missing
from peakready.sandbox.search.group import SearchDomain
from peakready.sandbox.serve import bind_listener
from peakready.sandbox.storefront import config as sf_config
from peakready.sandbox.timing import Timing, as_dict

log = logging.getLogger(__name__)

RESOURCES = {
    **names.RESOURCES,
    "db_instances": list(names.DB_INSTANCES),
    "search_domain": names.SEARCH_DOMAIN,
}


FORGET_AFTER_S = 120.0  # a dead instance stays listed this long (alive=False), then goes


def new_instance_id() -> str:
    return "i-" + secrets.token_hex(9)[:17]


@dataclass
class Instance:
    id: str
    port: int
    proc: subprocess.Popen
    launched_at: float
    state: str = "running"  # running | crashed | killed | terminated
    ended_at: float | None = None
    busy: float = 0.0
    stats: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def describe(self) -> dict:
        return {"id": self.id, "pid": self.proc.pid, "port": self.port, "url": self.url,
                "alive": self.alive(), "state": self.state, "launched_at": self.launched_at,
                "ended_at": self.ended_at, "busy": round(self.busy, 4)}


class Stack:
    def __init__(self, state_dir: Path | str, timing: Timing | None = None, lb_port: int = 0,
                 storefront: dict | None = None, search: dict | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.search_cfg = search_config.load(search)
        self.search: SearchDomain | None = None
        self.search_missing: str | None = None  # why there is no search domain, if none
        self.timing = timing or Timing()
        self.sf = sf_config.load(storefront)
        self.requested_lb_port = lb_port
        self.log_dir = self.state_dir / "logs"
        self.spawner = Spawner()
        self.ports = PortHold()  # the data tier's ports, held while the stack lives
        self.lock = threading.RLock()
        self._instances: dict[str, Instance] = {}
        self._listeners: list[Callable[[dict], None]] = []
        self.events: list[dict] = []
        self.lb_proc: subprocess.Popen | None = None
        self.lb_port = 0
        self.lb_admin_port = 0
        self.lb_port_note = ""
        self.pg_dir: Path | None = None
        self.pg: PgCluster | None = None
        self.redis: RedisGroup | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.started_at = 0.0
        # Instances launched before the sandbox is first ready are the shop's running fleet:
        # they serve at once. Later launches (scale-out, replacements, reboots) boot for
        # timing.boot_delay_s, as a new VM does. Cleared by start() when it launched the
        # fleet itself, else by whoever waits for the fleet (the daemon).
        self.booting = True

    # --- lifecycle --------------------------------------------------------------------
    def start(self, instances: int = 2) -> None:
        """Balancer, PostgreSQL pair and Redis pair (in parallel), then ``instances``
        storefronts launched while the databases initialise (boot delays overlap)."""
        self.started_at = time.time()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._start_balancer()
        run_as = procs.pg_run_as()
        if run_as is not None:  # the unprivileged user must reach its data folder
            self.pg_dir = Path(tempfile.mkdtemp(prefix="peakready-pg-"))
            (self.state_dir / "pgdata.path").write_text(str(self.pg_dir))
        else:
            self.pg_dir = self.state_dir / "pg"
        self.pg = PgCluster(self.pg_dir, self.ports.take_many(2), self.spawner, self.log_dir,
                            run_as)
        self.redis = RedisGroup(self.ports.take_many(2), self.state_dir / "redis",
                                self.spawner, self.log_dir)
        self.search_missing = engine_missing()
        if self.search_missing is None:
            self.search = SearchDomain(self.search_cfg,
                                       self.ports.take_many(self.search_cfg.nodes),
                                       self.state_dir / "search", self.spawner, self.log_dir,
                                       on_event=self._emitter("es", search_config.DOMAIN))
            self.search.reserve()
        else:
            log.warning("%s", self.search_missing)
        rows = catalog.load()
        with ThreadPoolExecutor(3, thread_name_prefix="stack-start") as pool:
            pg_job = pool.submit(self.pg.start, rows)
            redis_job = pool.submit(self.redis.start)
            search_job = pool.submit(self.search.start, rows) if self.search else None
            launched = [self.launch_instance(new_instance_id())["id"] for _ in range(instances)]
            self._wait_balancer()  # its sockets are bound already: it started in parallel
            log.info("balancer up after %.2f s", time.time() - self.started_at)
            for iid in launched:
                self.register_target(iid)
            redis_job.result()
            log.info("redis pair up after %.2f s", time.time() - self.started_at)
            pg_job.result()
            log.info("postgres pair up after %.2f s", time.time() - self.started_at)
            if search_job is not None:
                search_job.result()
                log.info("search domain up after %.2f s", time.time() - self.started_at)
        self._monitor = threading.Thread(target=self._monitor_loop, name="stack-monitor",
                                         daemon=True)
        self._monitor.start()
        if instances:
            self.booting = False  # the fleet is launched: what comes later boots

    def wait_healthy(self, count: int, timeout: float = 30.0) -> bool:
        """True once ``count`` targets are healthy in the balancer."""
        def ok() -> bool:
            states = self.target_health()
            return sum(1 for s in states.values() if s == "healthy") >= count

        return procs.wait_until(ok, timeout, 0.1)

    def stop(self) -> None:
        """Stop every child (instances first, so no request hits a dead database), and
        remove the PostgreSQL folder when it lives outside the state folder."""
        self._stop.set()
        with self.lock:
            for inst in list(self._instances.values()):
                procs.stop(inst.proc, timeout=3)
            procs.stop(self.lb_proc, timeout=3)
        for group in (self.search, self.redis, self.pg):
            if group is not None:
                try:
                    group.stop()
                except Exception:  # noqa: BLE001 - keep stopping the rest
                    pass
        if self._monitor is not None:
            self._monitor.join(3)
        self.spawner.shutdown()
        self.ports.release()
        if self.pg_dir is not None and self.pg_dir != self.state_dir / "pg":
            shutil.rmtree(self.pg_dir, ignore_errors=True)

    def _start_balancer(self) -> None:
        try:
            listener = bind_listener(self.requested_lb_port)
        except OSError:
            listener = bind_listener(0)
            self.lb_port_note = (f"port {self.requested_lb_port} is taken; "
                                 f"the balancer listens on {listener.getsockname()[1]}")
        admin = bind_listener(0)
        self.lb_port = listener.getsockname()[1]
        self.lb_admin_port = admin.getsockname()[1]
        t = self.timing
        settings = {"health_interval_s": t.health_interval_s, "health_timeout_s": t.health_timeout_s,
                    "healthy_threshold": t.healthy_threshold,
                    "unhealthy_threshold": t.unhealthy_threshold,
                    "idle_timeout_s": t.idle_timeout_s,
                    "deregistration_delay_s": t.deregistration_delay_s}
        cmd = procs.python_module_cmd(
            "peakready.sandbox.balancer", "--name", RESOURCES["load_balancer"],
            "--fd", str(listener.fileno()), "--admin-fd", str(admin.fileno()),
            "--timing", json.dumps(settings),
            "--access-log", str(self.log_dir / "alb-access.log"),
            "--waf-log", str(self.log_dir / "waf-log.jsonl"))
        try:
            self.lb_proc = self.spawner.spawn(cmd, self.log_dir / "balancer.log",
                                              pass_fds=(listener.fileno(), admin.fileno()))
        finally:
            listener.close()  # the child owns them now
            admin.close()

    def _wait_balancer(self) -> None:
        if not procs.wait_until(lambda: self._lb_ok(), 15, 0.05):
            raise RuntimeError(f"the balancer did not start (see {self.log_dir}/balancer.log)")

    def _lb_ok(self) -> bool:
        if self.lb_proc is not None and self.lb_proc.poll() is not None:
            raise RuntimeError(f"the balancer exited (see {self.log_dir}/balancer.log)")
        try:
            self._admin("GET", "/status", timeout=0.5)
            return True
        except OSError:
            return False

    # --- events -----------------------------------------------------------------------
    def subscribe(self, callback: Callable[[dict], None]) -> None:
        """``callback(event)`` for every event (same shape as a row of events.parquet)."""
        self._listeners.append(callback)

    def _event(self, source: str, kind: str, resource: str, detail: dict) -> None:
        event = {"ts": time.time(), "source": source, "kind": kind, "resource": resource,
                 "detail": detail}
        with self.lock:
            self.events.append(event)
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a listener must not break the stack
                # as Locust's EventHook does: the stack goes on, the error is not lost
                log.exception("event listener %r failed on %s %s", callback, source, kind)

    def events_since(self, ts: float = 0.0) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["ts"] >= ts]

    # --- web tier -----------------------------------------------------------------------
    def launch_instance(self, instance_id: str, port: int = 0) -> dict:
        """Start a storefront process for ``instance_id`` (on ``port``, else a free one); it
        passes /health only after ``timing.boot_delay_s`` (at once while ``booting``: the
        fleet the sandbox starts with). Returns at once."""
        if self.pg is None or self.redis is None:
            raise RuntimeError("the data tier is not started")
        with self.lock:
            existing = self._instances.get(instance_id)
            if existing is not None and existing.alive():
                return existing.describe()
            sock = bind_listener(port)
            port = sock.getsockname()[1]
            launched = time.time()
            db_nodes = ",".join(f"127.0.0.1:{n.port}" for n in self.pg.nodes)
            redis_nodes = ",".join(f"127.0.0.1:{n.port}" for n in self.redis.nodes)
            cmd = procs.python_module_cmd(
                "peakready.sandbox.storefront", "--instance-id", instance_id,
                "--fd", str(sock.fileno()), "--db", db_nodes, "--redis", redis_nodes,
                "--boot-delay", str(0 if self.booting else self.timing.boot_delay_s),
                "--launched-at", str(launched),
                "--search", self.search.url if self.search else "",
                "--config", json.dumps(sf_config.as_dict(self.sf)))
            try:
                proc = self.spawner.spawn(cmd, self.log_dir / f"storefront-{instance_id}.log",
                                          pass_fds=(sock.fileno(),))
            finally:
                sock.close()  # else a killed instance's port would still accept connections
            inst = Instance(instance_id, port, proc, launched)
            self._instances[instance_id] = inst
        self._event("autoscaling", "instance_launch", instance_id,
                    {"pid": proc.pid, "port": port})
        return inst.describe()

    def kill_instance(self, instance_id: str) -> dict:
        """SIGKILL: a crashed or force-terminated VM. In-flight requests get 502s."""
        inst = self._instance(instance_id)
        procs.kill(inst.proc)
        inst.state, inst.ended_at = "killed", time.time()
        self._event("autoscaling", "instance_terminate", instance_id, {"signal": "SIGKILL"})
        return inst.describe()

    def reboot_instance(self, instance_id: str) -> dict:
        """An EC2 reboot: the process dies (in-flight requests fail) and the same instance
        boots again on the same port, failing /health for ``timing.boot_delay_s``, so the
        balancer's checks see it down as they would a rebooting VM. Returns at once."""
        inst = self._instance(instance_id)
        if not inst.alive():
            raise RuntimeError(f"instance {instance_id} is not running")
        procs.kill(inst.proc)
        return self.launch_instance(instance_id, port=inst.port)

    def terminate_instance(self, instance_id: str) -> dict:
        """Graceful stop (SIGTERM), as a scale-in does after draining."""
        inst = self._instance(instance_id)
        procs.stop(inst.proc, timeout=3)
        inst.state, inst.ended_at = "terminated", time.time()
        self._event("autoscaling", "instance_terminate", instance_id, {"signal": "SIGTERM"})
        return inst.describe()

    def instances(self) -> list[dict]:
        with self.lock:
            return [i.describe() for i in self._instances.values()]

    def _instance(self, instance_id: str) -> Instance:
        with self.lock:
            inst = self._instances.get(instance_id)
        if inst is None:
            raise KeyError(f"no instance {instance_id}")
        return inst

    # --- balancer ---------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.lb_admin_port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise KeyError(f"balancer: {method} {path}: {exc.code} {detail}") from exc

    def register_target(self, instance_id: str) -> dict:
        inst = self._instance(instance_id)
        return self._admin("POST", "/targets", {"id": instance_id, "host": "127.0.0.1",
                                                "port": inst.port})

    def deregister_target(self, instance_id: str) -> dict | None:
        try:
            return self._admin("DELETE", f"/targets/{instance_id}")
        except KeyError:
            return None

    def target_health(self) -> dict[str, str]:
        """ALB states by instance id: initial | healthy | unhealthy | draining."""
        targets = self._admin("GET", "/targets")["targets"]
        return {tid: t["state"] for tid, t in targets.items()}

    def targets(self) -> dict[str, dict]:
        """Target states with the reason code, as DescribeTargetHealth reports them."""
        return self._admin("GET", "/targets")["targets"]

    def set_deregistration_delay(self, seconds: float) -> dict:
        """The target group's ``deregistration_delay.timeout_seconds``, applied to the
        balancer's draining from the next deregistration on."""
        return self._admin("PUT", "/settings", {"deregistration_delay_s": seconds})

    def set_web_acl(self, payload: dict) -> dict:
        """Put the ALB's Web ACL on the balancer's request path (``{"web_acl": None}``
        removes it); see peakready/sandbox/balancer/waf.py."""
        return self._admin("PUT", "/waf", payload, timeout=30.0)

    def lb_take_stats(self) -> dict:
        """Everything the balancer measured since the previous call (one consumer)."""
        return self._admin("POST", "/stats/take")

    # --- data tier ------------------------------------------------------------------
    def db_nodes(self) -> list[dict]:
        assert self.pg is not None
        return self.pg.describe()

    def failover_db(self, target: str | None = None) -> dict:
        """Crash the writer, promote the standby (or ``target``); blocks until the new
        writer takes writes. The old writer rejoins as the standby in the background."""
        assert self.pg is not None
        return self.pg.failover(target, self.timing.db_failover_dns_s,
                                on_event=self._emitter("rds", self.pg.cluster))

    def reboot_db(self, name: str) -> dict:
        """Reboot one PostgreSQL node (down for ``timing.db_reboot_s``, same role after);
        blocks until it is back."""
        assert self.pg is not None
        return self.pg.reboot(name, self.timing.db_reboot_s)

    def db_stats(self) -> dict:
        assert self.pg is not None
        return self.pg.stats()

    def cache_nodes(self) -> list[dict]:
        assert self.redis is not None
        return self.redis.describe()

    def failover_cache(self, node: str | None = None) -> dict:
        """Kill the primary's process (or ``node``), promote the replica; the killed node
        returns as a replica after ``timing.cache_node_recover_s``."""
        assert self.redis is not None
        return self.redis.failover(node, self.timing.cache_failover_s,
                                   self.timing.cache_node_recover_s,
                                   on_event=self._emitter("elasticache", self.redis.group))

    def cache_stats(self) -> dict:
        assert self.redis is not None
        return self.redis.stats()

    # --- search tier ----------------------------------------------------------------
    def search_nodes(self) -> list[dict]:
        assert self.search is not None
        return self.search.describe()

    def maintain_search_node(self, node: str, action: str) -> dict:
        """Stop a search node's process and start it again (REBOOT_NODE |
        RESTART_SEARCH_PROCESS); returns at once with the maintenance record."""
        assert self.search is not None
        return self.search.maintain(node, action)

    def search_stats(self) -> dict:
        """The domain's health, node stats and counters (search times: one consumer)."""
        assert self.search is not None
        return self.search.stats()

    def _emitter(self, source: str, resource: str):
        return lambda kind, detail: self._event(source, kind, resource, detail)

    # --- monitoring and status ------------------------------------------------------------
    def _monitor_loop(self) -> None:
        while not self._stop.wait(1.0):
            with self.lock:
                current = list(self._instances.values())
            for inst in current:
                if inst.state == "running" and not inst.alive():
                    inst.state, inst.ended_at = "crashed", time.time()
                    self._event("autoscaling", "instance_exit", inst.id,
                                {"returncode": inst.proc.returncode})
                if not inst.alive():
                    inst.busy = 0.0
                    if inst.ended_at and time.time() - inst.ended_at > FORGET_AFTER_S:
                        with self.lock:  # a long run replaces many: keep the list short
                            if self._instances.get(inst.id) is inst:
                                del self._instances[inst.id]
                    continue
                try:
                    with urllib.request.urlopen(f"{inst.url}/_sandbox/stats", timeout=0.5) as r:
                        inst.stats = json.loads(r.read())
                        inst.busy = float(inst.stats.get("busy", 0.0))
                except (OSError, ValueError):
                    pass

    def instance_stats(self) -> dict[str, dict]:
        """The last /_sandbox/stats of each live instance (busy seconds, queue, ...)."""
        with self.lock:
            return {i.id: dict(i.stats) for i in self._instances.values() if i.alive()}

    def status(self) -> dict:
        """The data plane part of ``peakready sandbox status --json``."""
        try:
            targets = self.targets()
        except (OSError, KeyError):
            targets = {}
        lb_alive = self.lb_proc is not None and self.lb_proc.poll() is None
        components: list[dict] = []
        with self.lock:
            insts = list(self._instances.values())
        for inst in insts:
            if inst.state == "terminated" and inst.id not in targets:
                continue
            health = targets.get(inst.id, {}).get("state", "unregistered")
            components.append({"kind": "storefront", "name": inst.id, "pid": inst.proc.pid,
                               "port": inst.port, "role": "web",
                               "health": health if inst.alive() else "down",
                               "target_state": health, "busy": round(inst.busy, 4),
                               "alive": inst.alive(), "state": inst.state,
                               "url": inst.url, "launched_at": inst.launched_at})
        components.append({"kind": "loadbalancer", "name": RESOURCES["load_balancer"],
                           "pid": self.lb_proc.pid if self.lb_proc else None,
                           "port": self.lb_port, "admin_port": self.lb_admin_port,
                           "role": "alb", "health": "healthy" if lb_alive else "down",
                           "alive": lb_alive,
                           "access_log": str(self.log_dir / "alb-access.log")})
        for kind, group in (("postgres", self.pg), ("redis", self.redis)):
            if group is None:
                continue
            for node in group.describe():
                components.append({"kind": kind, "name": node["name"], "pid": node["pid"],
                                   "port": node["port"], "role": node["role"],
                                   "health": "healthy" if node["alive"] else node["state"],
                                   "alive": node["alive"], "state": node["state"]})
        if self.search is not None:
            search = self.search.status()
            components.append({"kind": "search-domain", "name": search["name"],
                               "pid": search["pid"], "port": self.search.domain_port,
                               "role": "endpoint",
                               "health": "healthy" if search["alive"]
                               and search["health"] in ("green", "yellow") else "down",
                               "cluster_status": search["health"],
                               "alive": search["alive"], "url": search["endpoint"]})
            for node in search["nodes"]:
                components.append({"kind": "search-node", "name": node["name"],
                                   "pid": node["pid"], "port": node["port"], "role": "data",
                                   "health": "healthy" if node["alive"] else node["state"],
                                   "alive": node["alive"], "state": node["state"]})
        out = {
            "storefront_url": f"http://127.0.0.1:{self.lb_port}",
            "resources": dict(RESOURCES),
            "components": components,
            "timing": as_dict(self.timing),
            "storefront": sf_config.as_dict(self.sf),
            "logs": str(self.log_dir),
        }
        if self.search is not None:
            out["search"] = search
        elif self.search_missing:
            out["search"] = {"unavailable": self.search_missing}
        if self.lb_port_note:
            out["note"] = self.lb_port_note
        return out
