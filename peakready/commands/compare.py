"""``peakready compare BASE_RUN RUN``: baseline regression only."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="is RUN's latency or error rate really worse than BASE_RUN's?",
        description="Per endpoint: change in p50/p95/p99 and error rate with a block-bootstrap "
        "confidence interval, a practical margin and Holm correction; verdict pass / "
        "regression / inconclusive. Writes RUN/compare.json. Exit codes: 0 pass or "
        "inconclusive, 1 regression, 2 not a run folder.",
    )
    p.add_argument("base", type=Path, metavar="BASE_RUN", help="the baseline run folder")
    p.add_argument("run", type=Path, metavar="RUN", help="the run folder to judge")
    p.add_argument("--margin", type=float, help="practical margin for latency (default: the "
                   "plan's checks.regression.margin, else 0.10)")
    p.add_argument("--confidence", type=float, help="default: plan's, else 0.98")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from analysis.compare import COMPARE_JSON, compare_runs
    from peakready.errors import EXIT_CHECK_FAILED, EXIT_PASSED

    comparison = compare_runs(args.base, args.run, args.margin, args.confidence)
    if args.json:
        print((args.run / COMPARE_JSON).read_text())
    else:
        print(f"{comparison['verdict'].upper()} vs {comparison['baseline']} "
              f"(margin +{comparison['margin']:.0%}, {comparison['confidence']:.0%} confidence, "
              "Holm-corrected)"
              + (f" - baseline not comparable: {'; '.join(comparison['not_comparable'])}"
                 if comparison.get("not_comparable") else ""))
        for item in comparison["items"]:
            if item["verdict"] == "pass":
                continue
            change = f"{item['change']:+.1%}" if item["relative"] else \
                f"{item['change'] * 100:+.2f} pts"
            ci = (f" [{item['ci_low']:+.1%}, {item['ci_high']:+.1%}]"
                  if item["ci_low"] is not None and item["relative"] else "")
            print(f"  {item['verdict']:<12} {item['endpoint']} {item['metric']}: {change}{ci}")
    return EXIT_CHECK_FAILED if comparison["verdict"] == "regression" else EXIT_PASSED
