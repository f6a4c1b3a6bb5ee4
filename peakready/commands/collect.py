"""``peakready collect RUN_DIR``: parse, call ``peakready.collect.recollect``, print."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from peakready.awslag import AWS_SETTLE_S
from peakready.errors import BadInput


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "collect",
        help="collect a run's CloudWatch metrics and events again (CloudWatch lags on AWS)",
        description="Collect the run window of RUN_DIR again into metrics.parquet and "
        "events.parquet (replaced atomically; the run's own abort/interrupt/phase events and "
        "the fault events from the chaos journals are kept). aws runs use the ordinary boto3 "
        "credential chain; a sandbox run can only be collected while its sandbox is up. Exit "
        "codes: 0 collected, 2 not a run folder, no credentials, or the sandbox is gone.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run folder")
    p.add_argument("--after-s", type=float, default=None, metavar="S",
                   help="collect this long after the run ended (default: what the run "
                   f"collected: one metric period on the sandbox, {AWS_SETTLE_S:g} s on AWS)")
    p.add_argument("--sandbox-state", type=Path, default=None, metavar="DIR",
                   help="the sandbox's state folder, when run.json does not record it "
                   "(e.g. a `peakready load` folder against `peakready sandbox up`)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    if args.after_s is not None and not args.after_s >= 0:
        raise BadInput(f"--after-s: must be a number >= 0, got {args.after_s:g}")
    from peakready.collect.recollect import recollect

    summary = recollect(args.run_dir, args.after_s, args.sandbox_state)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    window = summary["window"]
    print(f"collected {summary['metrics_rows']} metric datapoints ({summary['series']} series, "
          f"period {summary['period_s']} s) and {summary['events_rows']} events "
          f"{summary['events_by_kind']} for {window['end'] - window['start']:.0f} s of run "
          f"window into {args.run_dir}")
    for note in summary["notes"]:
        print(f"note: {note}")
    for warning in summary["warnings"][:10]:
        print(f"warning: {warning}")
    print(f"next: peakready analyze {args.run_dir}")
    return 0
