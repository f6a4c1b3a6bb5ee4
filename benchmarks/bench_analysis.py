"""Analysis of 10 million samples with metrics and events: time and peak memory.

Generates a run folder (``analysis.synthetic``: 10M samples in 200k-row shards, three
faults, a scale-out, CloudWatch metrics and events, orders and their integrity file) and
then, each in a fresh process so peak RSS is its own:
1. baseline: read the sample columns analysis needs (pyarrow, dictionary-encoded strings);
2. ``analysis.analyze(run)``: the whole verdict, figures and reports;
3. the same with ``--baseline`` (a second run of the same size): regression included.
Prints the ratios against the baseline measured in the same run (this machine is shared).

    .venv/bin/python benchmarks/bench_analysis.py [--samples 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
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
    import pyarrow as pa, pyarrow.parquet as pq
    from analysis.load import CATEGORICAL, SAMPLE_COLUMNS
    tables = [pq.read_table(p, columns=SAMPLE_COLUMNS, read_dictionary=CATEGORICAL)
              for p in sorted(Path(run, "samples").glob("*.parquet"))]
    frame = pa.concat_tables(tables).unify_dictionaries().to_pandas()
    rows = len(frame)
else:
    import analysis
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
    args = [sys.executable, "-c", CHILD, mode, str(run)] + ([str(base)] if base else [])
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path, help="keep the generated run folders here")
    parser.add_argument("--no-baseline-run", action="store_true",
                        help="skip the analyze --baseline measurement")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        run, base = root / "run", root / "baseline"
        gen = generate(run, args.samples, seed=1)
        print(f"generated {args.samples:,} samples in {gen:.1f} s ({run})")
        read = child("read", run)
        full = child("analyze", run)
        rows = [("read sample columns (baseline)", read), ("analyze (verdict + reports)", full)]
        if not args.no_baseline_run:
            generate(base, args.samples, seed=2, factor=0.95)
            rows.append(("analyze --baseline (+ regression)", child("analyze", run, base)))
        print(f"\n{'step':<36}{'rows':>12}{'seconds':>10}{'x read':>8}{'peak MiB':>10}"
              f"{'x read':>8}")
        for label, r in rows:
            print(f"{label:<36}{r['rows']:>12,}{r['seconds']:>10.1f}"
                  f"{r['seconds'] / read['seconds']:>8.1f}{r['peak_rss_mib']:>10.0f}"
                  f"{r['peak_rss_mib'] / read['peak_rss_mib']:>8.1f}")
        verdict = json.loads((run / "verdict.json").read_text())
        print(f"\nverdict {verdict['verdict']}: {verdict['summary']}; report "
              f"{(run / 'report.html').stat().st_size / 1e6:.1f} MB")
        print(f"goal: < 60 s and < 4096 MiB -> analyze {full['seconds']:.1f} s, "
              f"{full['peak_rss_mib']:.0f} MiB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
