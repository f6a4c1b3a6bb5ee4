"""``peakready analyze RUN_DIR [--baseline RUN_DIR]``: (re)build verdict and reports."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="(re)build verdict.json, report.html, summary.md, junit.xml from a run folder",
        description="Evaluate the plan's checks on a run folder (also one killed half-way) and "
        "write verdict.json, report.html, summary.md, junit.xml and figures/. Exit codes: 0 "
        "passed, 1 a check failed (or the run is incomplete), 2 not a run folder or a bad "
        "plan, 3 the run was aborted by a stop condition.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder")
    p.add_argument("--baseline", type=Path, metavar="RUN_DIR",
                   help="a previous run folder: adds the regression check")
    p.add_argument("--json", action="store_true", help="print verdict.json to stdout")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    import json

    import analysis

    verdict = analysis.analyze(args.run_dir, args.baseline)
    if args.json:
        print(json.dumps(verdict, indent=2, default=str))
    else:
        s = verdict["summary"]
        print(f"{verdict['verdict'].upper()}: {verdict['headline']}")
        print(f"{s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped"
              + (f", {s['inconclusive']} inconclusive" if s["inconclusive"] else "")
              + f"; report: {args.run_dir / 'report.html'}")
    return int(verdict["exit_code"])
