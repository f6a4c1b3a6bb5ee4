"""The domain endpoint: what the storefront's opensearch-py talks to, one URL as on AWS.

It coordinates as an OpenSearch node does: a search fans out to one started copy of each
shard (fewest in-flight first: adaptive replica selection in small), a copy that is down
or rejects (429) is retried on the next copy, and shards with no copy left are reported
in ``_shards.failed``/``failures`` of an HTTP 200 (partial results); only when every shard
failed is the answer an error (429 when all were rejections, else 503). ``_bulk`` routes
documents to shards by id and writes every copy on a live node. It also plays the elected
master: it pings the nodes, promotes replicas, recovers returning copies and computes
``_cluster/health``. OpenSearch REST subset: ``/{index}/_search``, ``/_bulk``,
``/{index}/_bulk``, ``/_cluster/health[/{index}]`` (``wait_for_status``, ``timeout``),
``/_cat/nodes``, ``/_cat/shards``, ``/_cat/thread_pool/search`` (``v``, ``format=json``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import time
import zlib
from typing import Any

from peakready.sandbox import http11, serve
from peakready.sandbox.search.cluster import ClusterState
from peakready.sandbox.search.config import DOMAIN, INDEX, from_dict
from peakready.sandbox.search.transport import NodeDown, NodeLink

SEARCH_PATH = re.compile(r"^/([^/_][^/]*)/_search$")
BULK_PATH = re.compile(r"^/(?:([^/_][^/]*)/)?_bulk$")
HEALTH_PATH = re.compile(r"^/_cluster/health(?:/([^/]+))?$")


def _error(status: int, kind: str, reason: str, **extra) -> tuple[int, dict]:
    cause = {"type": kind, "reason": reason}
    return status, {"error": {"root_cause": [cause], **cause, **extra}, "status": status}


def shard_of(doc_id: str, shards: int) -> int:
    return zlib.crc32(doc_id.encode()) % shards


class Domain:
    def __init__(self, name: str, nodes: dict[str, tuple[str, int]], cfg) -> None:
        self.name = name
        self.cfg = cfg
        self.links = {n: NodeLink(n, h, p) for n, (h, p) in nodes.items()}
        self.state = ClusterState(INDEX, list(nodes), cfg.shards, cfg.replicas, cfg.recovery_s)
        self.node_stats: dict[str, dict] = {}
        self.rr = itertools.count()
        self.counters = {"searches": 0, "partial": 0, "shard_failures": 0, "rejected": 0,
                         "retries": 0, "errors": 0}
        self.statuses: dict[int, int] = {}
        self.search_ms: list[float] = []  # since the last /_sandbox/stats take

    # --- master duties -------------------------------------------------------------
    async def ping_loop(self) -> None:
        while True:
            await asyncio.gather(*(self._ping(n) for n in self.links))
            self.state.refresh()
            await asyncio.sleep(self.cfg.ping_s)

    async def _ping(self, node: str) -> None:
        link = self.links[node]
        try:
            status, stats = await link.request("GET", "/_internal/stats", timeout=1.0)
        except NodeDown as exc:
            link.drop_idle()
            self.state.node_left(node, str(exc))
            self.node_stats.pop(node, None)
            return
        if status != 200:
            return
        before = self.node_stats.get(node)
        if before is not None and before.get("started_at") != stats.get("started_at"):
            self.state.node_left(node, "the node restarted")  # back before a ping saw it go
        self.node_stats[node] = stats
        self.state.node_joined(node)

    # --- requests ---------------------------------------------------------------------
    async def handle(self, req: http11.Request) -> bytes:
        try:
            status, body, ctype = await self._route(req)
        except (ValueError, TypeError) as exc:
            (status, body), ctype = _error(400, "parsing_exception", str(exc)), None
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if ctype == "text/plain":
            return http11.render_response(status, body.encode(), content_type="text/plain",
                                          keep_alive=req.keep_alive)
        return http11.json_response(status, body, keep_alive=req.keep_alive)

    async def _route(self, req: http11.Request) -> tuple[int, Any, str | None]:
        path, m = req.path, req.method
        if path == "/" and m in ("GET", "HEAD"):
            return 200, {"name": self.name, "cluster_name": self.name,
                         "version": {"distribution": "opensearch", "number": "2.19.0"},
                         "tagline": "The OpenSearch Project: https://opensearch.org/"}, None
        if (mt := SEARCH_PATH.match(path)) and m in ("GET", "POST"):
            return (*await self.search(mt.group(1), req.json() or {}, req.query), None)
        if (mt := BULK_PATH.match(path)) and m in ("POST", "PUT"):
            return (*await self.bulk(mt.group(1), req.body), None)
        if (mt := HEALTH_PATH.match(path)) and m == "GET":
            return (*await self.health(req.query), None)
        if path.startswith("/_cat/") and m == "GET":
            return self.cat(path[len("/_cat/"):], req.query)
        if path == "/_sandbox/stats":
            return 200, self.take_stats(), None
        return (*_error(404, "no_handler_found_exception",
                        f"no handler found for uri [{path}] and method [{m}]"), None)

    async def search(self, index: str, body: dict, params: dict) -> tuple[int, Any]:
        t0 = time.perf_counter()
        if index != INDEX:
            return _error(404, "index_not_found_exception", f"no such index [{index}]",
                          index=index)
        size = int(body.get("size", params.get("size", 10)))
        start = int(body.get("from", params.get("from", 0)))
        if size < 0 or start < 0:
            return _error(400, "illegal_argument_exception", "[from] and [size] must be >= 0")
        if "q" in params and "query" not in body:
            body = dict(body, query={"multi_match": {"query": params["q"]}})
        shard_body = {"query": body.get("query"), "size": start + size}
        self.counters["searches"] += 1
        results = await asyncio.gather(*(self._shard(index, s, shard_body)
                                         for s in range(self.cfg.shards)))
        ok = [r for r in results if "hits" in r]
        failures = [r for r in results if "hits" not in r]
        bad_query = next((f for f in failures if f.get("status") == 400), None)
        if bad_query is not None:
            return 400, bad_query["body"]
        took = int(1000 * (time.perf_counter() - t0))
        self.search_ms.append(1000 * (time.perf_counter() - t0))
        del self.search_ms[:-20000]
        if not ok:
            self.counters["errors"] += 1
            rejected = all(f["reason"]["type"] == "es_rejected_execution_exception"
                           for f in failures)
            status = 429 if rejected else 503
            self.counters["rejected"] += status == 429
            return _error(status, "search_phase_execution_exception", "all shards failed",
                          phase="query", grouped=True, failed_shards=failures)
        if failures:
            self.counters["partial"] += 1
            self.counters["shard_failures"] += len(failures)
        hits = sorted((h for r in ok for h in r["hits"]), key=lambda h: -h[0])[start:start + size]
        shards: dict[str, Any] = {"total": self.cfg.shards, "successful": len(ok), "skipped": 0,
                                  "failed": len(failures)}
        if failures:
            shards["failures"] = failures
        return 200, {"took": took, "timed_out": False, "_shards": shards,
                     "hits": {"total": {"value": sum(r["total"] for r in ok), "relation": "eq"},
                              "max_score": hits[0][0] if hits else None,
                              "hits": [{"_index": index, "_id": s["sku"], "_score": sc,
                                        "_source": s} for sc, s in hits]}}

    async def _shard(self, index: str, shard: int, body: dict) -> dict:
        """One shard on the best started copy, then the others; a failure dict if none."""
        copies = self.state.started(shard)
        turn = next(self.rr)
        copies.sort(key=lambda c: (self.links[c.node].in_flight,
                                   (self.state.nodes.index(c.node) + turn) % len(self.links)))
        reason = {"type": "no_shard_available_action_exception",
                  "reason": f"[{index}][{shard}] no started copy"}
        node = None
        for n, copy in enumerate(copies):
            node = copy.node
            if n:
                self.counters["retries"] += 1
            try:
                status, answer = await self.links[node].request(
                    "POST", f"/_internal/shard/{index}/{shard}/_search", body)
            except NodeDown as exc:
                reason = {"type": "node_disconnected_exception", "reason": str(exc)}
                continue
            if status == 200:
                return answer
            if status == 400:
                return {"status": 400, "body": answer, "reason": answer.get("error", {})}
            err = (answer or {}).get("error", {})
            reason = {"type": err.get("type", f"http_{status}"), "reason": err.get("reason", "")}
        return {"shard": shard, "index": index, "node": node, "reason": reason}

    async def bulk(self, default_index: str | None, raw: bytes) -> tuple[int, Any]:
        t0 = time.perf_counter()
        lines = [ln for ln in raw.decode().split("\n") if ln.strip()]
        ops: list[tuple[str, str, str, dict | None]] = []
        i = 0
        while i < len(lines):
            action = json.loads(lines[i])
            (verb, meta), = action.items()
            index = meta.get("_index") or default_index
            doc_id = str(meta.get("_id") or "")
            if verb not in ("index", "create", "delete") or not index or not doc_id:
                raise ValueError(f"bulk line {i + 1}: need index/create/delete with _index "
                                 "and _id")
            source = None
            if verb != "delete":
                i += 1
                source = json.loads(lines[i])
            ops.append((verb, index, doc_id, source))
            i += 1
        per_shard: dict[int, dict] = {}
        for verb, index, doc_id, source in ops:
            if index != INDEX:
                raise ValueError(f"no such index [{index}]")
            part = per_shard.setdefault(shard_of(doc_id, self.cfg.shards),
                                        {"docs": [], "deletes": []})
            if verb == "delete":
                part["deletes"].append(doc_id)
            else:
                part["docs"].append([doc_id, source])
        outcome = dict(zip(per_shard, await asyncio.gather(
            *(self._write(INDEX, s, part) for s, part in per_shard.items())), strict=True))
        items, errors = [], False
        for verb, index, doc_id, _ in ops:
            total, ok = outcome[shard_of(doc_id, self.cfg.shards)]
            item: dict[str, Any] = {"_index": index, "_id": doc_id}
            if ok:
                item.update(result="deleted" if verb == "delete" else "created",
                            status=200 if verb == "delete" else 201,
                            _shards={"total": total, "successful": ok, "failed": total - ok})
            else:
                errors = True
                item.update(status=503, error={"type": "unavailable_shards_exception",
                                               "reason": "primary shard is not active"})
            items.append({"index" if verb == "create" else verb: item})
        return 200, {"took": int(1000 * (time.perf_counter() - t0)), "errors": errors,
                     "items": items}

    async def _write(self, index: str, shard: int, part: dict) -> tuple[int, int]:
        copies = self.state.writable(shard)
        if not any(c.primary for c in copies):
            return self.cfg.replicas + 1, 0
        done = await asyncio.gather(*(self.links[c.node].request(
            "POST", f"/_internal/shard/{index}/{shard}/_bulk", part, timeout=30.0)
            for c in copies), return_exceptions=True)
        ok = sum(1 for d in done if isinstance(d, tuple) and d[0] == 200)
        return self.cfg.replicas + 1, ok

    async def health(self, params: dict) -> tuple[int, Any]:
        want = params.get("wait_for_status")
        order = {"red": 0, "yellow": 1, "green": 2}
        timeout = _seconds(params.get("timeout", "30s"))
        deadline = time.monotonic() + timeout
        while want in order and order[self.state.refresh()] < order[want]:
            if time.monotonic() >= deadline:
                return 408, dict(self.state.health(self.name), timed_out=True)
            await asyncio.sleep(0.05)
        return 200, self.state.health(self.name)

    def cat(self, what: str, params: dict) -> tuple[int, Any, str | None]:
        if what == "nodes":
            rows = [{"ip": "127.0.0.1", "port": str(link.port), "name": n,
                     "node.role": "dimr", "cluster_manager": "*" if n == self._manager() else "-",
                     "cpu": str(round(100 * self._busy(n))),
                     "status": "up" if self.state.alive.get(n) else "down"}
                    for n, link in self.links.items() if self.state.alive.get(n)]
        elif what == "shards":
            rows = self.state.shard_rows()
        elif what in ("thread_pool", "thread_pool/search"):
            rows = []
            for n in self.links:
                pool = (self.node_stats.get(n) or {}).get("thread_pool", {}).get("search")
                if pool:
                    rows.append({"node_name": n, "name": "search",
                                 "active": str(pool["active"]), "queue": str(pool["queue"]),
                                 "rejected": str(pool["rejected"]), "size": str(pool["threads"]),
                                 "queue_size": str(pool["queue_size"])})
        else:
            return (*_error(404, "no_handler_found_exception", f"no _cat/{what}"), None)
        if params.get("format") == "json":
            return 200, rows, None
        cols = list(rows[0]) if rows else []
        lines = [" ".join(cols)] if "v" in params and cols else []
        lines += [" ".join(str(r[c]) if r[c] is not None else "" for c in cols) for r in rows]
        return 200, "\n".join(lines) + "\n", "text/plain"

    def _manager(self) -> str | None:
        return next((n for n in self.state.nodes if self.state.alive.get(n)), None)

    def _busy(self, node: str) -> float:
        pool = (self.node_stats.get(node) or {}).get("thread_pool", {}).get("search") or {}
        return pool.get("active", 0) / max(pool.get("threads", 1), 1)

    def take_stats(self) -> dict:
        """Everything the control plane publishes: health, nodes' last stats (cumulative,
        reset on restart), the coordinator's counters and search times since last take."""
        times, self.search_ms = self.search_ms, []
        return {"domain": self.name, "health": self.state.health(self.name),
                "alive": dict(self.state.alive), "nodes": dict(self.node_stats),
                "shards": self.state.shard_rows(), "counters": dict(self.counters),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "search_ms": times, "events": list(self.state.events)}


def _seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", str(text).strip())
    if not m:
        raise ValueError(f"bad timeout [{text}]")
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value * 60 if m.group(2) == "m" else value


async def main(args: argparse.Namespace) -> None:
    cfg = from_dict(json.loads(args.config))
    nodes = {}
    for item in args.nodes.split(","):
        name, _, addr = item.partition("=")
        host, _, port = addr.rpartition(":")
        nodes[name] = (host, int(port))
    domain = Domain(args.name, nodes, cfg)
    sock = serve.listening_socket(args.fd, args.port)
    server = await asyncio.start_server(serve.connection_handler(domain.handle), sock=sock,
                                        backlog=1024)
    pinger = asyncio.create_task(domain.ping_loop())

    async def shutdown() -> None:
        pinger.cancel()
        server.close()

    await serve.run_until_stopped([shutdown])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="peakready-search-domain")
    p.add_argument("--name", default=DOMAIN)
    p.add_argument("--fd", type=int, help="inherited listening socket")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--nodes", required=True, help="name=host:port,... of the data nodes")
    p.add_argument("--config", default="{}", help="search config JSON")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
