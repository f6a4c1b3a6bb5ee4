"""One search node under the storefront's queries: p95 at 100 and 400 requests/s, and the
rate where its search pool starts rejecting (HTTP 429).

A node of the sandbox domain (default settings: 2 pool threads, queue 50, 4 ms held per
shard query plus the real tantivy search) holding the 3 shards of the catalog, driven
with the storefront's query (``ProductSearch.body``, terms from
``scenarios/data/search_terms.txt``) on its shard endpoint, round-robin over the shards:
one request = one shard query, what each node of the 3-node domain serves per storefront
search. Open loop (arrivals on schedule whatever the latency; latency from the intended
send time), steps of ``--step-s``. The ratios are the result: absolute times depend on
the machine and on what else runs on it.

Run: ``.venv/bin/python benchmarks/bench_search.py [--step-s 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_saturation import open_loop, pct  # noqa: E402

from peakready.sandbox import catalog, http11  # noqa: E402
from peakready.sandbox.ports import PortHold  # noqa: E402
from peakready.sandbox.procs import Spawner  # noqa: E402
from peakready.sandbox.search.config import from_dict  # noqa: E402
from peakready.sandbox.search.group import SearchDomain  # noqa: E402
from peakready.sandbox.storefront.search import ProductSearch  # noqa: E402

TERMS = [t for t in (Path(__file__).resolve().parents[1] / "scenarios" / "data"
                     / "search_terms.txt").read_text().split("\n") if t]


def requests(shards: int) -> list[bytes]:
    out = []
    for i, term in enumerate(TERMS * 3):
        body = json.dumps({"query": ProductSearch.body(term)["query"], "size": 20}).encode()
        out.append(http11.render_request("POST", f"/_internal/shard/products/{i % shards}/"
                                         "_search", "bench", body,
                                         {"Content-Type": "application/json"}))
    return out


def step(port: int, rate: float, seconds: float, reqs: list[bytes]) -> dict:
    t0 = time.monotonic()
    res = asyncio.run(open_loop(port, rate, seconds, None,
                                request_of=lambda i: reqs[i % len(reqs)]))
    wall = time.monotonic() - t0
    ok = [lat for lat, s in res if s == 200]
    return {"rate": rate, "done": len(ok) / wall, "p50_ms": 1000 * pct(ok, 0.5),
            "p95_ms": 1000 * pct(ok, 0.95),
            "rejected": sum(1 for _, s in res if s == 429) / max(1, len(res)),
            "errors": sum(1 for _, s in res if s not in (200, 429)) / max(1, len(res))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--step-s", type=float, default=5.0)
    args = ap.parse_args()
    cfg = from_dict({"nodes": 1, "replicas": 0})
    rates = [100, 200, 300, 400, 500, 600]  # past ~600/s this generator is the limit
    with tempfile.TemporaryDirectory() as tmp:
        ports, spawner = PortHold(), Spawner()
        domain = SearchDomain(cfg, ports.take_many(1), Path(tmp) / "search", spawner,
                              Path(tmp) / "logs")
        try:
            domain.start(catalog.load())
            port = domain.nodes[0].port
            reqs = requests(cfg.shards)
            step(port, 50, 2, reqs)  # warm the connections and the readers
            rows = [step(port, r, args.step_s, reqs) for r in rates]
        finally:
            domain.stop()
            spawner.shutdown()
            ports.release()
    print(f"one node: {cfg.threads} threads, queue {cfg.queue_size}, {cfg.query_cost_ms:g} ms "
          f"held per shard query (nominal {1000 * cfg.threads / cfg.query_cost_ms:.0f}/s "
          f"before the search itself); steps of {args.step_s:g} s")
    print(f"{'rate/s':>7} {'done/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'429':>6} {'other':>6}")
    for r in rows:
        print(f"{r['rate']:>7.0f} {r['done']:>7.1f} {r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f} "
              f"{r['rejected']:>6.1%} {r['errors']:>6.1%}")
    by = {r["rate"]: r for r in rows}
    print(f"p95 at 400/s = {by[400]['p95_ms'] / by[100]['p95_ms']:.2f}x the p95 at 100/s "
          f"({by[100]['p95_ms']:.1f} -> {by[400]['p95_ms']:.1f} ms)")
    first = next((r for r in rows if r["rejected"] > 0.005), None)
    if first is None:
        print(f"no step rejected more than 0.5 % (up to {rates[-1]}/s)")
    else:
        print(f"starts rejecting at {first['rate']:.0f}/s ({first['rejected']:.1%} answered "
              f"429) = {first['rate'] / 100:.0f}x the 100/s step; carried "
              f"{first['done']:.0f}/s there")


if __name__ == "__main__":
    main()
