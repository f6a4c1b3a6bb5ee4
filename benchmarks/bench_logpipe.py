"""API-log pipeline: what logging costs the storefront, and how fast completeness answers.

1. **Storefront CPU per request, logging on vs off.** One stack (real PostgreSQL and
   Redis), three storefront instances launched from it: one without an API log, two
   shipping every request through the background batcher to a real sandbox Firehose
   (``logpipe.Standalone``: moto + peakready's grafts), one with boto3's client and one
   with the raw signed HTTP client (``api_logs.client``). Open-loop ``GET
   /api/products/{sku}`` straight at each instance's port, all three at the same rate at
   the same time (``--one-at-a-time``: rounds alternating between them); CPU seconds of each storefront process (psutil, batcher thread
   included), minus its own idle CPU, per request answered. The ratio on/off is the
   overhead.
2. **Completeness query over 1 million log records.** 1,000,000 records (200 gzip NDJSON
   objects under the Firehose key layout) in the sandbox S3; the two queries collection
   runs (per-bucket counts, paged through GetQueryResults; every request id with copies
   and landing time, read from the result CSV) through stock boto3 Athena, timed from
   StartQueryExecution to the frame in hand; then the check's join of those ids with 1M
   sample rows.

Run: ``.venv/bin/python benchmarks/bench_logpipe.py [--rounds 3] [--seconds 10] [--rate 80]
[--records 1000000]`` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_saturation import open_loop, product_path  # noqa: E402

from analysis.checks.log_pipeline import per_bucket  # noqa: E402
from peakready.collect import apilogs  # noqa: E402
from peakready.sandbox.aws import names  # noqa: E402
from peakready.sandbox.aws.logpipe import BUCKET, PREFIX, STREAM, Standalone  # noqa: E402
from peakready.sandbox.stack import Stack  # noqa: E402
from peakready.sandbox.timing import Timing  # noqa: E402

TIMING = replace(Timing(), boot_delay_s=0.5, health_interval_s=0.25)
CLIENTS = ("boto3", "http")  # api_logs.client of the logging instances


def client(ep: Standalone, service: str):
    return boto3.client(service, endpoint_url=ep.endpoint_url, region_name=names.REGION,
                        aws_access_key_id=names.ACCESS_KEY_ID,
                        aws_secret_access_key=names.SECRET_ACCESS_KEY)


def cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def one_round(port: int, proc: psutil.Process, rate: float, seconds: float) -> float:
    """CPU microseconds per answered request, the process's idle CPU taken out."""
    c0 = cpu(proc)
    time.sleep(2.0)
    idle_per_s = (cpu(proc) - c0) / 2.0
    c0, t0 = cpu(proc), time.monotonic()
    res = asyncio.run(open_loop(port, rate, seconds, product_path))
    time.sleep(0.5)  # the batcher's last flush belongs to these requests
    wall = time.monotonic() - t0
    n = sum(1 for _, s in res if s == 200)
    return 1e6 * (cpu(proc) - c0 - idle_per_s * wall) / max(n, 1)


def together_round(ports: dict[str, int], procs: dict[str, psutil.Process], rate: float,
                   seconds: float) -> dict[str, float]:
    """``one_round`` for every instance at once: the same arrival rate at each, at the same
    time, so a change in the machine's load (4 agents share 2 cores here) hits them
    alike instead of favouring whichever ran in a quiet moment."""
    c0 = {k: cpu(p) for k, p in procs.items()}
    time.sleep(2.0)
    idle = {k: (cpu(p) - c0[k]) / 2.0 for k, p in procs.items()}
    c0, t0 = {k: cpu(p) for k, p in procs.items()}, time.monotonic()

    async def all_loops() -> list:
        return await asyncio.gather(*(open_loop(port, rate, seconds, product_path)
                                      for port in ports.values()))

    results = dict(zip(ports, asyncio.run(all_loops()), strict=True))
    time.sleep(0.5)
    wall = time.monotonic() - t0
    out = {}
    for k, p in procs.items():
        n = sum(1 for _, s in results[k] if s == 200)
        out[k] = 1e6 * (cpu(p) - c0[k] - idle[k] * wall) / max(n, 1)
    return out


def bench_overhead(rounds: int, seconds: float, rate: float, together: bool = True) -> dict:
    with Standalone() as ep, tempfile.TemporaryDirectory(prefix="bench-logpipe-") as tmp:
        Path(tmp).chmod(0o755)
        stack = Stack(tmp, TIMING, storefront={"workers": 4})
        stack.start(instances=0)
        try:
            instances = {"off": stack.launch_instance("i-logoff")}
            for client_kind in CLIENTS:
                stack.sf = replace(stack.sf, api_logs={
                    "stream": STREAM, "endpoint_url": ep.endpoint_url, "region": names.REGION,
                    "access_key_id": names.ACCESS_KEY_ID,
                    "secret_access_key": names.SECRET_ACCESS_KEY, "client": client_kind})
                instances[client_kind] = stack.launch_instance(f"i-log{client_kind}")
            time.sleep(TIMING.boot_delay_s + 2.0)
            procs = {k: psutil.Process(i["pid"]) for k, i in instances.items()}
            ports = {k: i["port"] for k, i in instances.items()}
            for key in ports:  # warm all: pools, the client, first Firehose call
                asyncio.run(open_loop(ports[key], rate, 2.0, product_path))
            rows = []
            for r in range(rounds):
                if together:
                    row = together_round(ports, procs, rate, seconds)
                else:
                    order = list(ports)[r % len(ports):] + list(ports)[:r % len(ports)]
                    row = {k: one_round(ports[k], procs[k], rate, seconds) for k in order}
                for k in CLIENTS:
                    row[f"ratio_{k}"] = row[k] / row["off"]
                rows.append(row)
                print(f"round {r + 1}: off {row['off']:.0f} us/req, "
                      + ", ".join(f"{k} {row[k]:.0f} us/req (ratio {row[f'ratio_{k}']:.3f})"
                                  for k in CLIENTS), flush=True)
            for k in CLIENTS:
                stats = stack.instance_stats().get(f"i-log{k}", {}).get("api_log") or {}
                print(f"batcher of the {k} instance: {json.dumps(stats)}")
        finally:
            stack.stop()
    return {"rounds": rows, **{f"median_ratio_{k}": statistics.median(
        r[f"ratio_{k}"] for r in rows) for k in CLIENTS}}


def bench_query(records: int, objects: int = 200) -> dict:
    with Standalone() as ep:
        s3 = client(ep, "s3")
        t_start = time.time() - 3600
        per = records // objects
        rng = np.random.default_rng(1)
        ids = [uuid.UUID(int=int(x)).hex for x in rng.integers(0, 2**63, size=records)]
        t_build = time.perf_counter()
        for o in range(objects):
            lines = []
            for i in range(o * per, (o + 1) * per):
                ts = t_start + i * 3600 / records
                stamp = datetime.fromtimestamp(ts, UTC)
                lines.append(json.dumps({
                    "request_id": ids[i], "ts": stamp.isoformat(timespec="milliseconds")
                    .replace("+00:00", "Z"), "method": "GET", "route": "/api/cart",
                    "status": 200, "latency_ms": 12.5, "instance": "i-0abc",
                    "client": "10.0.0.1", "user_agent": "bench"}, separators=(",", ":")))
            first = datetime.fromtimestamp(t_start + o * per * 3600 / records, UTC)
            landed = datetime.fromtimestamp(t_start + (o + 1) * per * 3600 / records + 5, UTC)
            key = (f"{PREFIX}{first:%Y/%m/%d/%H}/{STREAM}-1-{landed:%Y-%m-%d-%H-%M-%S}-"
                   f"{uuid.uuid4()}.gz")
            s3.put_object(Bucket=BUCKET, Key=key,
                          Body=gzip.compress(("\n".join(lines) + "\n").encode(), 6))
        print(f"{records} records in {objects} objects written in "
              f"{time.perf_counter() - t_build:.1f} s", flush=True)
        athena = client(ep, "athena")
        cfg = apilogs.settings({"min_completeness": 1}, sandbox=True)
        out = {}
        start, end = t_start - 1, t_start + 3601
        t0 = time.perf_counter()
        ex = apilogs.run_query(athena, apilogs.minutes_query(cfg["table"], start, end), cfg)
        minutes = apilogs.results_frame(athena, ex["QueryExecutionId"])
        out["minutes_s"] = time.perf_counter() - t0
        out["minutes_engine_ms"] = ex["Statistics"]["EngineExecutionTimeInMillis"]
        t0 = time.perf_counter()
        ex = apilogs.run_query(athena, apilogs.ids_query(cfg["table"], start, end), cfg,
                               timeout_s=600)
        landed = apilogs.csv_frame(client(ep, "s3"), ex["ResultConfiguration"]["OutputLocation"])
        out["ids_s"] = time.perf_counter() - t0
        out["ids_engine_ms"] = ex["Statistics"]["EngineExecutionTimeInMillis"]
        out["scanned_mb"] = ex["Statistics"]["DataScannedInBytes"] / 1e6
        assert len(landed) == records and int(minutes["records"].astype(int).sum()) == records
        sent = pd.DataFrame({"ts": t_start + np.arange(records) * 3600 / records,
                             "request_id": ids, "status": 200})
        for col in ("ts", "landed_ts", "copies"):
            landed[col] = pd.to_numeric(landed[col])
        t0 = time.perf_counter()
        table = per_bucket(sent, landed, t_start, 60, 30.0)
        out["join_s"] = time.perf_counter() - t0
        assert int(table["found"].sum()) == records
        out["total_s"] = out["minutes_s"] + out["ids_s"] + out["join_s"]
        print(json.dumps({k: round(v, 2) for k, v in out.items()}), flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=80.0)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--skip", choices=["overhead", "query"], default=None)
    p.add_argument("--one-at-a-time", action="store_true",
                   help="load one instance after the other (default: all at once)")
    args = p.parse_args()
    if args.skip != "overhead":
        res = bench_overhead(args.rounds, args.seconds, args.rate,
                             together=not args.one_at_a_time)
        for k in CLIENTS:
            print(f"storefront CPU per request, logging on ({k} client) / off (median): "
                  f"{res[f'median_ratio_{k}']:.3f} (goal < 1.05)")
    if args.skip != "query":
        res = bench_query(args.records)
        print(f"completeness queries over {args.records} records: {res['total_s']:.1f} s "
              f"(goal < 10 s)")


if __name__ == "__main__":
    main()
