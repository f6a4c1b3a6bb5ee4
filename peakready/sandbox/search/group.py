"""The search domain's processes, owned by the Stack: ``nodes`` data node processes and
one domain endpoint process in front of them.

Start is cheap (~0.3-0.6 s, in parallel with PostgreSQL): the nodes open their shard
folders, the domain pings them, and the catalog is indexed with one real ``_bulk``
request through the domain (every copy written). A node reboot (``REBOOT_NODE``) or
process restart (``RESTART_SEARCH_PROCESS``) stops the node's process and starts it again
on its held port after ``reboot_s``/``restart_s``; its on-disk copies come back, and the
domain recovers them (yellow while they initialise, then green).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peakready.sandbox import procs
from peakready.sandbox.procs import Spawner
from peakready.sandbox.search.config import DOMAIN, INDEX, SearchConfig, as_dict, node_name
from peakready.sandbox.serve import bind_listener

ACTIONS = ("REBOOT_NODE", "RESTART_SEARCH_PROCESS")


@dataclass
class SearchNode:
    name: str
    port: int
    proc: subprocess.Popen | None = None
    state: str = "stopped"  # running | rebooting | restarting | stopped
    restarts: int = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class SearchDomain:
    cfg: SearchConfig
    ports: tuple[int, ...]  # the nodes' held ports
    data_dir: Path
    spawner: Spawner
    log_dir: Path
    on_event: Any = None  # (kind, detail) -> None
    name: str = DOMAIN
    nodes: list[SearchNode] = field(default_factory=list)
    domain_proc: subprocess.Popen | None = None
    domain_port: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    maintenance: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.nodes = [SearchNode(node_name(i), p) for i, p in enumerate(self.ports)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.domain_port}"

    # --- lifecycle --------------------------------------------------------------------
    def reserve(self) -> str:
        """Bind the domain's listener now, so its URL is known before it starts."""
        self._listener = bind_listener(0)
        self.domain_port = self._listener.getsockname()[1]
        return self.url

    def start(self, rows: list[tuple]) -> None:
        """Nodes and the domain in parallel, then the catalog through ``_bulk``."""
        for node in self.nodes:
            self._launch(node)
        listener = getattr(self, "_listener", None) or bind_listener(0)
        self._listener = None
        self.domain_port = listener.getsockname()[1]
        nodes = ",".join(f"{n.name}=127.0.0.1:{n.port}" for n in self.nodes)
        cmd = procs.python_module_cmd("peakready.sandbox.search.domain", "--name", self.name,
                                      "--fd", str(listener.fileno()), "--nodes", nodes,
                                      "--config", json.dumps(as_dict_cfg(self.cfg)))
        try:
            self.domain_proc = self.spawner.spawn(cmd, self.log_dir / "search-domain.log",
                                                  pass_fds=(listener.fileno(),))
        finally:
            listener.close()
        if not procs.wait_until(self._all_joined, 20, 0.03):
            raise RuntimeError(f"search nodes did not join (see {self.log_dir}/search-*.log)")
        # a node slow to answer its first ping (a busy machine) left and joined again: its
        # copies recover before they take writes, as a shop's indexer waits for green
        health = self.request("GET", "/_cluster/health?wait_for_status=green&timeout=30s",
                              timeout=35)
        if health.get("status") != "green":
            raise RuntimeError(f"search domain not green after 30 s ({health.get('status')}; "
                               f"see {self.log_dir}/search-*.log)")
        self.index_catalog(rows)

    def _launch(self, node: SearchNode) -> None:
        cmd = procs.python_module_cmd(
            "peakready.sandbox.search.node", "--name", node.name, "--port", str(node.port),
            "--data", str(self.data_dir / node.name), "--config",
            json.dumps(as_dict_cfg(self.cfg)))
        node.proc = self.spawner.spawn(cmd, self.log_dir / f"search-{node.name}.log")
        node.state = "running"

    def _all_joined(self) -> bool:
        if self.domain_proc is not None and self.domain_proc.poll() is not None:
            raise RuntimeError(f"the search domain exited (see {self.log_dir}/search-domain.log)")
        try:
            health = self.request("GET", "/_cluster/health", timeout=0.5)
        except OSError:
            return False
        return health.get("number_of_nodes") == len(self.nodes)

    def index_catalog(self, rows: list[tuple]) -> dict:
        """The catalog as one ``_bulk`` request (what a shop's indexer sends)."""
        lines = []
        for sku, name, category, price, stock, flash in rows:
            lines.append(json.dumps({"index": {"_index": INDEX, "_id": sku}}))
            lines.append(json.dumps({"sku": sku, "name": name, "category": category,
                                     "price": float(price), "stock": int(stock),
                                     "flash_sale": bool(flash)}))
        body = ("\n".join(lines) + "\n").encode()
        out = self.request("POST", "/_bulk", body, timeout=60,
                           content_type="application/x-ndjson")
        if out.get("errors"):
            first = next((v for item in out.get("items", []) for v in item.values()
                          if v.get("error")), {})
            raise RuntimeError("search: indexing the catalog failed: "
                               f"{first.get('error', {}).get('reason', 'unknown')}")
        return out

    def stop(self) -> None:
        with self.lock:
            procs.stop(self.domain_proc, timeout=3)
            for node in self.nodes:
                procs.stop(node.proc, timeout=3)
                node.state = "stopped"

    # --- faults -------------------------------------------------------------------
    def node(self, name: str) -> SearchNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no search node {name}")

    def maintain(self, name: str, action: str) -> dict:
        """Stop the node's process now, start it again after the action's delay (in the
        background). Returns the maintenance record (``status`` IN_PROGRESS)."""
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        node = self.node(name)
        down_s = self.cfg.reboot_s if action == "REBOOT_NODE" else self.cfg.restart_s
        with self.lock:
            if node.state != "running":
                raise RuntimeError(f"{name} is already in maintenance ({node.state})")
            record = {"id": f"{name}-{int(time.time() * 1000)}", "node": name,
                      "action": action, "status": "IN_PROGRESS", "started_at": time.time(),
                      "updated_at": time.time()}
            self.maintenance[record["id"]] = record
            node.state = "rebooting" if action == "REBOOT_NODE" else "restarting"
            if action == "RESTART_SEARCH_PROCESS":
                procs.kill(node.proc)  # the search process is killed and started again
        self._emit("search_node_maintenance_start", {"node": name, "action": action,
                                                     "id": record["id"]})
        threading.Thread(target=self._return, args=(node, record, down_s),
                         name=f"search-{name}-return", daemon=True).start()
        return dict(record)

    def _return(self, node: SearchNode, record: dict, down_s: float) -> None:
        procs.stop(node.proc, timeout=3)  # REBOOT_NODE: the OS shuts the process down
        time.sleep(down_s)
        with self.lock:
            if node.state == "stopped":
                return
            self._launch(node)
            node.restarts += 1
        ok = procs.wait_until(lambda: self._joined(node.name), 30, 0.05)
        record.update(status="COMPLETED" if ok else "FAILED", updated_at=time.time())
        self._emit("search_node_maintenance_end", {"node": node.name, "id": record["id"],
                                                   "status": record["status"],
                                                   "duration_s": round(time.time()
                                                                       - record["started_at"],
                                                                       3)})

    def _joined(self, name: str) -> bool:
        try:
            rows = self.request("GET", "/_cat/nodes?format=json", timeout=0.5)
        except OSError:
            return False
        return any(r["name"] == name for r in rows)

    def _emit(self, kind: str, detail: dict) -> None:
        if self.on_event is not None:
            self.on_event(kind, detail)

    # --- views --------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None,
                timeout: float = 5.0, content_type: str = "application/json") -> Any:
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}")

    def stats(self) -> dict:
        """The domain's ``/_sandbox/stats``: health, node stats, counters (one consumer:
        search times are handed out once)."""
        return self.request("GET", "/_sandbox/stats", timeout=2.0)

    def describe(self) -> list[dict]:
        return [{"name": n.name, "pid": n.pid, "port": n.port, "alive": n.alive(),
                 "state": n.state if n.alive() or n.state != "running" else "crashed",
                 "restarts": n.restarts} for n in self.nodes]

    def status(self) -> dict:
        try:
            health = self.request("GET", "/_cluster/health", timeout=0.5)
        except OSError:
            health = {"status": "unreachable"}
        alive = self.domain_proc is not None and self.domain_proc.poll() is None
        return {"name": self.name, "endpoint": self.url, "pid": self.domain_proc.pid
                if self.domain_proc else None, "alive": alive,
                "health": health.get("status"), "config": as_dict(self.cfg),
                "nodes": self.describe()}


def as_dict_cfg(cfg: SearchConfig) -> dict:
    """The config as its own fields (what from_dict reads back)."""
    out = as_dict(cfg)
    out.pop("threads", None)
    return out
