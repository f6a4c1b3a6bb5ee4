"""One search node process: shard copies (tantivy on disk) behind a bounded search pool,
on the sandbox's HTTP/1.1 serving loop.

Internal API (the domain endpoint's transport): ``POST /_internal/shard/{index}/{n}/_search``
and ``.../_bulk``, ``GET /_internal/stats``. ``/{index}/_search`` searches every local
copy (one pool task per shard, as a coordinating node does), so one node can be measured
alone. Run as ``python -m peakready.sandbox.search.node``; it binds its own (held) port
with SO_REUSEADDR so a restart returns on the same port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

from peakready.sandbox import http11, serve
from peakready.sandbox.search.config import from_dict
from peakready.sandbox.search.engine import QueryError, Shard
from peakready.sandbox.search.pool import Rejected, SearchPool

SHARD_PATH = re.compile(r"^/_internal/shard/([^/]+)/(\d+)/(_search|_bulk)$")
INDEX_SEARCH = re.compile(r"^/([^/_][^/]*)/_search$")


class Node:
    def __init__(self, name: str, data_dir: Path, threads: int, queue_size: int,
                 query_cost_ms: float) -> None:
        self.name = name
        self.data_dir = Path(data_dir)
        self.pool = SearchPool(name, threads, queue_size)
        self.cost_s = query_cost_ms / 1000.0
        self.shards: dict[tuple[str, int], Shard] = {}
        self.started_at = time.time()
        self.query_total = 0
        self.query_time_s = 0.0
        self.query_current = 0
        self.statuses: dict[int, int] = {}
        for path in sorted(self.data_dir.glob("*/*")):
            if path.is_dir() and path.name.isdigit():
                self.shards[(path.parent.name, int(path.name))] = Shard(path)

    def shard(self, index: str, n: int, create: bool = False) -> Shard | None:
        key = (index, n)
        if key not in self.shards and create:
            self.shards[key] = Shard(self.data_dir / index / str(n))
        return self.shards.get(key)

    async def shard_search(self, index: str, n: int, body: dict) -> dict:
        """One shard-level query in a pool slot: held cost, then the real search."""
        shard = self.shard(index, n)
        if shard is None:
            raise LookupError(f"no copy of [{index}][{n}] on {self.name}")

        async def work() -> dict:
            t0 = time.perf_counter()
            self.query_current += 1
            try:
                if self.cost_s > 0:
                    await asyncio.sleep(self.cost_s)
                total, hits = shard.search(body.get("query"), int(body.get("size", 10)))
            finally:
                self.query_current -= 1
                self.query_total += 1
                self.query_time_s += time.perf_counter() - t0
            return {"total": total, "hits": hits,
                    "took_ms": round(1000 * (time.perf_counter() - t0), 3)}

        return await self.pool.run(work)

    async def handle(self, req: http11.Request) -> bytes:
        status, body = await self._route(req)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return http11.json_response(status, body, keep_alive=req.keep_alive)

    async def _route(self, req: http11.Request) -> tuple[int, Any]:
        path = req.path
        try:
            if path == "/_internal/stats":
                return 200, self.stats()
            if path == "/":
                return 200, {"name": self.name, "cluster_name": "peakready-search",
                             "version": {"distribution": "opensearch", "number": "2.19.0"},
                             "tagline": "The OpenSearch Project: https://opensearch.org/"}
            body = req.json() or {}
            if (m := SHARD_PATH.match(path)) and req.method == "POST":
                index, n, op = m.group(1), int(m.group(2)), m.group(3)
                if op == "_bulk":
                    shard = self.shard(index, n, create=True)
                    await asyncio.to_thread(shard.bulk, [(d, s) for d, s in body.get("docs", [])],
                                            list(body.get("deletes", [])))
                    return 200, {"docs": shard.num_docs()}
                return 200, await self.shard_search(index, n, body)
            if (m := INDEX_SEARCH.match(path)) and req.method in ("GET", "POST"):
                return await self._local_search(m.group(1), body)
        except Rejected as exc:
            return 429, exc.error()
        except QueryError as exc:
            return 400, exc.error()
        except LookupError as exc:
            return 404, {"error": {"type": "shard_not_found_exception", "reason": str(exc)},
                         "status": 404}
        except (ValueError, TypeError) as exc:
            return 400, {"error": {"type": "parsing_exception", "reason": str(exc)},
                         "status": 400}
        return 404, {"error": {"type": "no_handler_found", "reason": f"{req.method} {path}"},
                     "status": 404}

    async def _local_search(self, index: str, body: dict) -> tuple[int, Any]:
        t0 = time.perf_counter()
        size, start = int(body.get("size", 10)), int(body.get("from", 0))
        ns = sorted(n for i, n in self.shards if i == index)
        if not ns:
            return 404, {"error": {"type": "index_not_found_exception",
                                   "reason": f"no such index [{index}]"}, "status": 404}
        shard_body = {"query": body.get("query"), "size": start + size}
        results = await asyncio.gather(*(self.shard_search(index, n, shard_body) for n in ns),
                                       return_exceptions=True)
        ok = [r for r in results if isinstance(r, dict)]
        failed = [r for r in results if not isinstance(r, dict)]
        if not ok:
            if all(isinstance(r, Rejected) for r in failed):
                return 429, failed[0].error()
            raise failed[0]
        hits = sorted((h for r in ok for h in r["hits"]), key=lambda h: -h[0])[start:start + size]
        return 200, {"took": int(1000 * (time.perf_counter() - t0)), "timed_out": False,
                     "_shards": {"total": len(ns), "successful": len(ok), "skipped": 0,
                                 "failed": len(failed)},
                     "hits": {"total": {"value": sum(r["total"] for r in ok),
                                        "relation": "eq"},
                              "max_score": hits[0][0] if hits else None,
                              "hits": [{"_index": index, "_id": s["sku"], "_score": sc,
                                        "_source": s} for sc, s in hits]}}

    def stats(self) -> dict:
        return {"name": self.name, "started_at": self.started_at,
                "uptime_s": round(time.time() - self.started_at, 3),
                "thread_pool": {"search": self.pool.stats()},
                "search": {"query_total": self.query_total,
                           "query_time_in_millis": round(1000 * self.query_time_s, 3),
                           "query_current": self.query_current},
                "shards": {f"{i}/{n}": s.num_docs() for (i, n), s in sorted(self.shards.items())},
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}}


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def main(args: argparse.Namespace) -> None:
    cfg = from_dict(json.loads(args.config))
    node = Node(args.name, Path(args.data), cfg.threads, cfg.queue_size, cfg.query_cost_ms)
    server = await asyncio.start_server(serve.connection_handler(node.handle),
                                        sock=_listen(args.port), backlog=1024)
    print(f"node {args.name} listening on {args.port}", flush=True)

    async def shutdown() -> None:
        server.close()

    await serve.run_until_stopped([shutdown])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="peakready-search-node")
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--data", required=True, help="folder of this node's shard copies")
    p.add_argument("--config", default="{}", help="search config JSON")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
