"""Analysis at campaign scale (10M-100M samples with metrics and events): time, peak memory.

Generates a run folder (``analysis.synthetic``: samples in 200k-row shards, three faults, a
scale-out, CloudWatch metrics and events, orders and their integrity file), or reuses one
(``--run``), and then, each in a fresh process so peak RSS is its own:
1. baseline: one streaming pass over the sample columns analysis needs (pyarrow
   ``iter_batches``: what reading the run costs at least, with flat memory);
2. ``analysis.analyze(run)``: the whole verdict, figures and reports (``--engine``: auto,
   memory or duckdb; auto goes out of core from ``analysis.load.OUT_OF_CORE_ROWS``);
3. the same with ``--baseline`` (a second run of the same size): regression included.
Prints the ratios against the baseline measured in the same run (this machine is shared).

    nice -n 10 .venv/bin/python benchmarks/bench_analysis.py [--samples 10000000] [--keep DIR]
        [--run DIR] [--baseline-dir DIR] [--engine auto] [--no-baseline-run]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROFILE = [(0, 1000), (600, 1000), (1200, 2500), (3600, 2500), (4200, 1200), (5000, 1200)]
CHECKS = {
    "latency": [{"endpoint": "*", "phase": "*", "percentile": 95, "max_ms": 800},
                {"endpoint": "each", "phase": "peak", "percentile": 99, "max_ms": 2000}],
    "error_rate": [{"endpoint": "*", "phase": "*", "max": 0.02}],
    "recovery": {"window_s": 5, "windows": 3, "max_s": 60, "p95_ms": 800, "error_rate": 0.02},
    "scale_out": {"max_lag_s": 90},
    "error_budget": {"slo": 0.995, "period_days": 30, "max_burn_rate": 14.4},
    "time_to_detect": {"max_s": 60},
    "integrity": {"orders": True, "sessions": True},
    "capacity": {"p95_ms": 800, "error_rate": 0.01},
}

CHILD = r"""
import json, resource, sys, time
t = time.perf_counter()
mode, run, base = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
if mode == "read":
    from pathlib import Path
    import pyarrow.parquet as pq
    from analysis.load import SAMPLE_COLUMNS
    rows = 0
    for p in sorted(Path(run, "samples").glob("*.parquet")):
        for batch in pq.ParquetFile(p).iter_batches(columns=SAMPLE_COLUMNS):
            rows += batch.num_rows
else:
    import os
    import analysis
    if mode != "auto":
        os.environ["PEAKREADY_ANALYSIS_ENGINE"] = mode
    verdict = analysis.analyze(run, base)
    rows = verdict["requests"]
print(json.dumps({"seconds": time.perf_counter() - t, "rows": rows,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(path: Path, samples: int, seed: int, factor: float = 1.0) -> float:
    from analysis import synthetic

    arrivals = sum((t2 - t1) * (r1 + r2) / 2 for (t1, r1), (t2, r2)
                   in zip(PROFILE[:-1], PROFILE[1:], strict=True))
    scale = samples / arrivals
    spec = synthetic.Spec(
        seed=seed, profile=[(t, r * scale) for t, r in PROFILE], latency_factor=factor,
        phases=[{"name": "warm-up", "start_s": 0, "end_s": 600},
                {"name": "ramp", "start_s": 600, "end_s": 1200},
                {"name": "peak", "start_s": 1200, "end_s": 3600},
                {"name": "recovery", "start_s": 3600, "end_s": 5000}],
        faults=[synthetic.Fault("kill-web-instance", "instance", 1500, 1530, outage=False),
                synthetic.Fault("aurora-failover", "db", 2000, 2020),
                synthetic.Fault("cache-node-failover", "cache", 2800, 2805, outage=False)],
        scaling=[synthetic.Scaling(700, 720, 760, 770, to_n=6)],
        users=5000, session_loss_users=20, instances=3, checks=CHECKS, shard_rows=200_000)
    started = time.perf_counter()
    synthetic.write_run(path, spec)
    return time.perf_counter() - started


def child(mode: str, run: Path, base: Path | None = None) -> dict:
    """One measurement in a fresh process, with the load average before and after (the
    machine is shared: a number means little without it)."""
    args = [sys.executable, "-c", CHILD, mode, str(run)] + ([str(base)] if base else [])
    before = os.getloadavg()[0]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{mode} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["load"] = f"{before:.1f}-{os.getloadavg()[0]:.1f}"
    return out


def show(label: str, r: dict, read: dict) -> None:
    print(f"{label:<40}{r['rows']:>13,}{r['seconds']:>10.1f}"
          f"{r['seconds'] / read['seconds']:>8.1f}{r['peak_rss_mib']:>10.0f}"
          f"{r['peak_rss_mib'] / read['peak_rss_mib']:>8.1f}{r['load']:>12}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path, help="keep the generated run folders here")
    parser.add_argument("--run", type=Path, help="analyse this run folder (no generation)")
    parser.add_argument("--baseline-dir", type=Path, help="with --run: the baseline folder")
    parser.add_argument("--engine", choices=["auto", "memory", "duckdb"], default="auto")
    parser.add_argument("--no-baseline-run", action="store_true",
                        help="skip the analyze --baseline measurement")
    args = parser.parse_args()
    root = args.keep or (args.run.parent if args.run else
                         Path(tempfile.mkdtemp(prefix="bench-analysis-")))
    root.mkdir(parents=True, exist_ok=True)
    try:
        run, base = args.run or root / "run", args.baseline_dir or root / "baseline"
        if args.run is None:
            gen = generate(run, args.samples, seed=1)
            print(f"generated {args.samples:,} samples in {gen:.1f} s ({run})")
        print(f"\n{'step':<40}{'rows':>13}{'seconds':>10}{'x pass':>8}{'peak MiB':>10}"
              f"{'x pass':>8}{'load avg':>12}", flush=True)
        read = child("read", run)
        show("one pass over the samples (baseline)", read, read)
        full = child(args.engine, run)
        show(f"analyze [{args.engine}] (verdict + reports)", full, read)
        if not args.no_baseline_run:
            if args.baseline_dir is None:
                generate(base, args.samples, seed=2, factor=0.95)
            show("analyze --baseline (+ regression)", child(args.engine, run, base), read)
        verdict = json.loads((run / "verdict.json").read_text())
        print(f"\nverdict {verdict['verdict']}: {verdict['summary']}; engine "
              f"{verdict.get('engine')}; timeline {verdict.get('timeline_percentiles')}")
        print(f"goal: < 180 s and < 4096 MiB -> analyze {full['seconds']:.1f} s, "
              f"{full['peak_rss_mib']:.0f} MiB")
    finally:
        if args.keep is None and args.run is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
