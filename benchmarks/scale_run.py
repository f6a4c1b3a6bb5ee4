"""Run folders for the campaign-scale analysis benchmark (benchmarks/README.md, issue 15).

``generate`` writes ``bench_analysis.py``'s synthetic run (``analysis.synthetic``); at 100M
samples that takes about an hour here, so ``repeat`` makes an N-times-larger run from a
generated one instead: every sample repeated ``times`` times (sample k of a row:
``ts + k x 0.1 ms``, ``rt x (1 + (k - (times-1)/2) x 0.002)``, so percentiles move a little
and nothing is an exact duplicate), each source shard's copies sorted by ts into one output
shard of 200k-row row groups (the run stays in ts order, so a window's scan can skip row
groups), and the orders and their integrity lookups repeated under new ids. Metrics,
events, journals, plan and settings are copied: the run's timeline is the same, only
denser.

    python benchmarks/scale_run.py generate OUT --samples 10000000 [--seed 1] [--factor 1]
    python benchmarks/scale_run.py repeat SRC OUT --times 10
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW_GROUP = 200_000


def repeat(src: Path, out: Path, times: int) -> None:
    """``out``: ``src`` with every sample and order ``times`` times (module docstring)."""
    if out.exists():
        raise SystemExit(f"{out}: exists")
    shutil.copytree(src, out, ignore=shutil.ignore_patterns(
        "samples", "orders", "integrity", "figures", "verdict.json", "report.html",
        "summary.md", "junit.xml"))
    (out / "samples").mkdir()
    for i, shard in enumerate(sorted((src / "samples").glob("*.parquet"))):
        table = pq.read_table(shard)
        parts = []
        for k in range(times):
            part = table.set_column(table.schema.get_field_index("ts"), "ts",
                                    pc.add(table["ts"], k * 1e-4))
            scale = 1.0 + (k - (times - 1) / 2) * 0.002
            part = part.set_column(part.schema.get_field_index("rt_ms"), "rt_ms",
                                   pc.multiply(part["rt_ms"], scale))
            if "request_id" in part.column_names:
                part = part.set_column(part.schema.get_field_index("request_id"), "request_id",
                                       pc.binary_join_element_wise(
                                           part["request_id"].cast(pa.string()),
                                           pa.scalar(f"r{k}"), "-"))
            parts.append(part)
        big = pa.concat_tables(parts)
        big = big.take(pc.sort_indices(big, [("ts", "ascending")]))
        pq.write_table(big, out / "samples" / f"w0-{i:05d}.parquet", row_group_size=ROW_GROUP)
    _repeat_orders(src, out, times)


def _repeat_orders(src: Path, out: Path, times: int) -> None:
    """orders/*.jsonl and integrity/orders.parquet ``times`` times, ids suffixed ``-k``."""
    for sub in ("orders", "integrity"):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "orders").mkdir()
    for log in sorted((src / "orders").glob("*.jsonl")):
        lines = log.read_text().splitlines()
        with (out / "orders" / log.name).open("w") as fh:
            for k in range(times):
                fh.writelines(line.replace('", "ts"', f'-{k}", "ts"', 1) + "\n"
                              for line in lines)
    integrity = src / "integrity" / "orders.parquet"
    if integrity.exists():
        (out / "integrity").mkdir()
        table = pq.read_table(integrity)
        table = table.set_column(table.schema.get_field_index("order_id"), "order_id",
                                 table["order_id"].cast(pa.string()))
        with pq.ParquetWriter(out / "integrity" / "orders.parquet", table.schema) as writer:
            for k in range(times):
                ids = pc.binary_join_element_wise(table["order_id"], pa.scalar(str(k)), "-")
                writer.write_table(table.set_column(
                    table.schema.get_field_index("order_id"), "order_id", ids))


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("out", type=Path)
    gen.add_argument("--samples", type=int, default=10_000_000)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--factor", type=float, default=1.0)
    rep = sub.add_parser("repeat")
    rep.add_argument("src", type=Path)
    rep.add_argument("out", type=Path)
    rep.add_argument("--times", type=int, default=10)
    rep.add_argument("--orders-only", action="store_true",
                     help="redo only the orders and lookups of an existing OUT")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.cmd == "generate":
        sys.path.insert(0, str(Path(__file__).parent))
        import bench_analysis

        bench_analysis.generate(args.out, args.samples, args.seed, args.factor)
    elif args.orders_only:
        _repeat_orders(args.src, args.out, args.times)
    else:
        repeat(args.src, args.out, args.times)
    print(f"{args.cmd} {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
