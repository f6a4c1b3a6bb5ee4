"""Sandbox saturation: one vs two storefront instances under a step load.

A small open-loop generator (asyncio, keep-alive connections, arrivals on a fixed
schedule whatever the latency) drives ``GET /api/products/{sku}`` through the balancer
in steps of increasing rate, on a stack with one instance, then on one with two.
Latency is measured from the *intended* send time, so queueing in the client counts.
Per step it prints throughput, p50/p95/p99, errors and the instances' busy fraction;
then the highest step each stack carries with p95 under the bound, and their ratio.
It also measures the CPU the balancer and a storefront spend per request (psutil), and
the balancer's ceiling on a request with no service cost.

Run: ``.venv/bin/python benchmarks/bench_saturation.py [--step-s 8] [--workers 2]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import replace

import psutil

from peakready.sandbox import http11
from peakready.sandbox.stack import Stack
from peakready.sandbox.timing import Timing

TIMING = replace(Timing(), boot_delay_s=0.5, health_interval_s=0.25)


async def open_loop(port: int, rate: float, duration: float, path_of, max_conns: int = 400,
                    request_of=None) -> list[tuple[float, int]]:
    """(latency s from the intended send time, status) per arrival; status 0 = error.
    ``request_of(i)`` (raw request bytes) replaces ``GET path_of(i)`` when given."""
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    results: list[tuple[float, int]] = []
    open_conns = 0
    start = time.monotonic() + 0.05

    async def one(i: int, intended: float) -> None:
        nonlocal open_conns
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                if open_conns >= max_conns:
                    results.append((time.monotonic() - intended, 0))
                    return
                open_conns += 1
                conn = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = conn
            writer.write(request_of(i) if request_of is not None
                         else http11.render_request("GET", path_of(i), "bench"))
            resp = await asyncio.wait_for(http11.read_response(reader), 30)
            status = resp.status if resp else 0
            results.append((time.monotonic() - intended, status))
            if resp is not None and resp.headers.get("connection") != "close":
                idle.append(conn)
            else:
                writer.close()
                open_conns -= 1
        except (OSError, TimeoutError, http11.ProtocolError, asyncio.IncompleteReadError):
            results.append((time.monotonic() - intended, 0))
            if conn is not None:
                conn[1].close()
                open_conns -= 1

    tasks = []
    n = int(rate * duration)
    for i in range(n):
        intended = start + i / rate
        delay = intended - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, intended)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return results


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def product_path(i: int) -> str:
    return f"/api/products/SKU-{(i * 7919) % 3000 + 1:05d}"


def run_steps(stack: Stack, rates: list[float], step_s: float) -> list[dict]:
    rows = []
    for rate in rates:
        busy_before = {k: v.get("busy_seconds", 0.0) for k, v in stack.instance_stats().items()}
        t0 = time.monotonic()
        res = asyncio.run(open_loop(stack.lb_port, rate, step_s, product_path))
        wall = time.monotonic() - t0
        time.sleep(1.1)  # let the monitor refresh the instances' busy seconds
        stats = stack.instance_stats()
        workers = next(iter(stats.values()))["workers"] if stats else 1
        busy = [(stats[k]["busy_seconds"] - busy_before.get(k, 0.0)) / (workers * wall)
                for k in stats]
        ok = [lat for lat, status in res if status == 200]
        rows.append({"rate": rate, "achieved": len(ok) / wall,
                     "p50_ms": 1000 * pct(ok, 0.50), "p95_ms": 1000 * pct(ok, 0.95),
                     "p99_ms": 1000 * pct(ok, 0.99),
                     "errors": sum(1 for _, s in res if s != 200) / max(1, len(res)),
                     "busy": statistics.fmean(busy) if busy else float("nan")})
    return rows


def cpu_per_request(stack: Stack, rate: float, seconds: float, path_of) -> dict:
    """CPU seconds the balancer and the storefronts spend per request at ``rate``."""
    lb = psutil.Process(stack.lb_proc.pid)
    fronts = [psutil.Process(i["pid"]) for i in stack.instances() if i["alive"]]

    def cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system

    # idle first: health checks, stats polling and samplers cost CPU without any request
    lb0, sf0 = cpu(lb), sum(cpu(p) for p in fronts)
    time.sleep(seconds)
    lb_idle, sf_idle = cpu(lb) - lb0, sum(cpu(p) for p in fronts) - sf0
    lb0, sf0 = cpu(lb), sum(cpu(p) for p in fronts)
    t0 = time.monotonic()
    res = asyncio.run(open_loop(stack.lb_port, rate, seconds, path_of))
    scale = (time.monotonic() - t0) / seconds
    n = sum(1 for _, s in res if s == 200)
    lb_busy = cpu(lb) - lb0 - lb_idle * scale
    sf_busy = sum(cpu(p) for p in fronts) - sf0 - sf_idle * scale
    return {"requests": n, "lb_us": 1e6 * lb_busy / max(n, 1),
            "storefront_us": 1e6 * sf_busy / max(n, 1),
            "lb_idle_pct": 100 * lb_idle / seconds, "sf_idle_pct": 100 * sf_idle / seconds}


def lb_ceiling(stack: Stack, seconds: float = 4.0) -> float:
    """Highest rate of /health (no service cost) that the balancer serves error-free."""
    best = 0.0
    for rate in (200, 400, 800, 1200):
        res = asyncio.run(open_loop(stack.lb_port, rate, seconds, lambda i: "/health"))
        ok = [lat for lat, s in res if s == 200]
        if len(ok) < 0.99 * len(res) or pct(ok, 0.95) > 0.05:
            break
        best = len(ok) / seconds
    return best


def print_steps(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'rate/s':>7} {'done/s':>7} {'p50 ms':>7} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'errors':>7} {'busy':>5}")
    for r in rows:
        print(f"{r['rate']:>7.0f} {r['achieved']:>7.1f} {r['p50_ms']:>7.1f} {r['p95_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {r['errors']:>7.1%} {r['busy']:>5.2f}")


def carried(rows: list[dict], bound_ms: float) -> float:
    ok = [r["rate"] for r in rows if r["p95_ms"] <= bound_ms and r["errors"] < 0.01]
    return max(ok) if ok else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--step-s", type=float, default=8.0)
    ap.add_argument("--workers", type=int, default=2,
                    help="workers per instance (default 2: saturates at a rate this 2-core "
                    "machine can generate)")
    args = ap.parse_args()
    sf = {"workers": args.workers}
    cost_ms = 25.0  # product detail, the default
    capacity = args.workers / (cost_ms / 1000.0)
    steps = [round(capacity * f) for f in (0.25, 0.5, 0.75, 0.9, 1.1, 1.3)]
    print(f"one instance: {args.workers} workers x {cost_ms:.0f} ms -> nominal capacity "
          f"{capacity:.0f} req/s; steps of {args.step_s:.0f} s")
    results = {}
    for n in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            stack = Stack(tmp, TIMING, storefront=sf)
            try:
                stack.start(n)
                assert stack.wait_healthy(n, 30)
                results[n] = run_steps(stack, [s * n for s in steps], args.step_s)
                if n == 2:
                    overhead = cpu_per_request(stack, 120, 6, product_path)
                    ceiling = lb_ceiling(stack)
            finally:
                stack.stop()
        print_steps(f"{n} instance(s)", results[n])
    base_p95 = results[1][0]["p95_ms"]
    bound = 2 * base_p95
    one, two = carried(results[1], bound), carried(results[2], bound)
    print(f"\np95 bound = 2 x the lightest step's p95 = {bound:.1f} ms")
    print(f"highest step carried within the bound: 1 instance {one:.0f}/s, "
          f"2 instances {two:.0f}/s, ratio {two / one if one else float('nan'):.2f}x")
    past = results[1][-1]
    print(f"past capacity (1 instance, {past['rate']:.0f}/s): p95 {past['p95_ms']:.0f} ms "
          f"= {past['p95_ms'] / base_p95:.1f}x the light-load p95, busy {past['busy']:.2f}")
    print(f"CPU per request at 120/s (idle cost subtracted): balancer "
          f"{overhead['lb_us']:.0f} us, storefronts {overhead['storefront_us']:.0f} us "
          f"(over {overhead['requests']} requests); idle: balancer "
          f"{overhead['lb_idle_pct']:.1f}% of a core, storefronts {overhead['sf_idle_pct']:.1f}%")
    print(f"balancer ceiling on /health with p95 <= 50 ms, no errors: >= {ceiling:.0f} req/s "
          "(the client shares the machine)")


if __name__ == "__main__":
    main()
