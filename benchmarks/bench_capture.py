"""Sample shards: bytes per sample on disk and write CPU per sample, per parquet codec.

What ``peakready.load.capture.ShardWriter.flush`` does in the Locust process every
``--shard-seconds`` (2 s): rows (tuples) -> ``pa.Table.from_pydict`` -> ``pq.write_table``.
The rows look like a campaign run's: ts at the given rate with its intended start a few
ms before, 6 endpoints, response times as Locust reports them (full doubles), a few errors,
5,000 users, a fresh uuid4 hex ``request_id`` per request (the API-log key, the least
compressible column), the worker name. CPU is ``time.process_time`` of this process
around each flush (the GIL-holding work the Locust process pays), best of ``--repeat``.

    nice -n 10 .venv/bin/python benchmarks/bench_capture.py [--rows 2000] [--shards 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from peakready.load.capture import SHARD_OPTIONS
from peakready.runfolder_schema import SAMPLE_SCHEMA

DOUBLES = ["ts", "intended_ts", "rt_ms"]
CODECS: list[tuple[str, dict]] = [
    ("none", {"compression": "none"}),
    ("snappy", {"compression": "snappy"}),
    ("lz4", {"compression": "lz4"}),
    ("zstd (level 1: pyarrow's default, capture's)", {"compression": "zstd"}),
    ("zstd level 3", {"compression": "zstd", "compression_level": 3}),
    ("zstd level 9", {"compression": "zstd", "compression_level": 9}),
    ("gzip", {"compression": "gzip"}),
    ("zstd 1 + byte_stream_split doubles", {"compression": "zstd", "use_dictionary": [
        c for c in SAMPLE_SCHEMA.names if c not in DOUBLES], "use_byte_stream_split": DOUBLES}),
    ("zstd 1, request_id not dictionary", {"compression": "zstd", "use_dictionary": [
        c for c in SAMPLE_SCHEMA.names if c != "request_id"]}),
    ("both (capture.SHARD_OPTIONS)", SHARD_OPTIONS),
]
ENDPOINTS = [("GET", "/"), ("GET", "/api/products"), ("GET", "/api/products/[sku]"),
             ("GET", "/api/search"), ("POST", "/api/cart/items"), ("POST", "/api/checkout")]


def rows(n: int, t0: float, rng: np.random.Generator) -> list[tuple]:
    """``n`` sample tuples in schema order without ``worker`` (as ``ShardWriter.add`` gets
    them)."""
    ts = t0 + np.sort(rng.random(n)) * 2.0
    lag = rng.exponential(0.002, n)
    ep = rng.integers(0, len(ENDPOINTS), n)
    rt = rng.lognormal(np.log(30), 0.5, n)
    bad = rng.random(n) < 0.01
    users = rng.integers(0, 5000, n)
    out = []
    for i in range(n):
        m, name = ENDPOINTS[ep[i]]
        status = 503 if bad[i] else 200
        out.append((float(ts[i]), float(ts[i] - lag[i]), name, m, status, not bad[i],
                    float(rt[i]), int(800 + ep[i] * 300), "HTTPError 503" if bad[i] else "",
                    f"user-{users[i]}", "", uuid.uuid4().hex))
    return out


def flush(batch: list[tuple], path: Path, options: dict) -> float:
    """CPU seconds of one ShardWriter.flush with this codec."""
    started = time.process_time()
    columns = list(zip(*batch, strict=True))
    arrays = {name: columns[i] for i, name in enumerate(SAMPLE_SCHEMA.names[:-1])}
    arrays["worker"] = ["w0"] * len(batch)
    table = pa.Table.from_pydict(arrays, schema=SAMPLE_SCHEMA)
    pq.write_table(table, path, **options)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000, help="rows per shard (a worker's "
                        "2-s flush: 1,000 req/s per worker)")
    parser.add_argument("--shards", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    batches = [rows(args.rows, 1_764_000_000.0 + 2.0 * i, rng) for i in range(args.shards)]
    n = args.rows * args.shards
    print(f"{n:,} samples in {args.shards} shards of {args.rows:,}; load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'codec':<46}{'bytes/sample':>14}{'CPU us/sample':>15}{'x none CPU':>12}")
    base_cpu = None
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        for label, options in CODECS:
            best, size = float("inf"), 0
            for _ in range(args.repeat):
                cpu = 0.0
                for i, batch in enumerate(batches):
                    cpu += flush(batch, Path(tmp, f"{i}.parquet"), options)
                best = min(best, cpu)
                size = sum(Path(tmp, f"{i}.parquet").stat().st_size for i in range(len(batches)))
            base_cpu = base_cpu or best
            print(f"{label:<46}{size / n:>14.1f}{best / n * 1e6:>15.2f}{best / base_cpu:>12.2f}")


if __name__ == "__main__":
    main()
