"""``peakready run [PLAN] [--target sandbox|aws] [--dry-run] [--baseline RUN_DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from peakready import runfolder
from peakready.awslag import AWS_SETTLE_S
from peakready.errors import EXIT_INTERRUPTED

DEFAULT_PLAN = Path("plans/sandbox-demo.yaml")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="a whole readiness run: load, faults, stop conditions, collection, verdict",
        description="Replay the plan's campaign traffic, land its faults on schedule while "
        "the load runs, watch stop conditions, collect what the infrastructure did, and "
        "analyse. Exit codes: 0 passed, 1 a check failed, 2 bad input (nothing started), "
        f"3 aborted by a stop condition, {EXIT_INTERRUPTED} interrupted (Ctrl-C; data kept and "
        "analysed).",
    )
    p.add_argument("plan", nargs="?", type=Path, default=DEFAULT_PLAN,
                   help=f"run plan (YAML); default {DEFAULT_PLAN}")
    p.add_argument("--target", choices=("sandbox", "aws"),
                   help="override the plan's target.kind")
    p.add_argument("--dry-run", action="store_true",
                   help="validate plan, profile, experiments, resources and permissions; "
                   "inject nothing, start no load")
    p.add_argument("--baseline", type=Path, metavar="RUN_DIR",
                   help="a previous run folder to compare against (regression check)")
    p.add_argument("--reports-dir", type=Path, default=runfolder.DEFAULT_REPORTS_DIR,
                   help="where the run folder is created (default: reports/)")
    p.add_argument("--settle-s", type=float, default=None,
                   help="seconds to wait before collecting metrics (CloudWatch lags 1-3 "
                   f"minutes on AWS; default: one metric period on the sandbox, {AWS_SETTLE_S:g} s "
                   "on aws)")
    p.add_argument("--plain", action="store_true",
                   help="plain progress lines even on a terminal")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from peakready.errors import BadInput
    from peakready.run.engine import RunOptions, execute

    if args.settle_s is not None and not 0 <= args.settle_s < float("inf"):
        raise BadInput(f"--settle-s: must be a number of seconds >= 0, got {args.settle_s:g}")
    if args.baseline is not None and not (args.baseline / runfolder.RUN_JSON).exists():
        raise BadInput(f"--baseline: {args.baseline} is not a run folder (no run.json)")
    try:
        return execute(RunOptions(plan_path=args.plan, target=args.target,
                                  dry_run=args.dry_run, baseline=args.baseline,
                                  reports_dir=args.reports_dir, settle_s=args.settle_s,
                                  plain=args.plain))
    except KeyboardInterrupt:  # the third Ctrl-C: forced; the target was still stopped
        return EXIT_INTERRUPTED
