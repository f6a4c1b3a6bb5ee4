"""``peakready k8s render PLAN``: manifests that run a plan's load with the Locust operator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from peakready.k8s.render import render_plan


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "k8s", help="Kubernetes: render the manifests to run a plan's load on a cluster",
        description="Render ConfigMaps (locustfile folder, profile), a run-folder volume and "
        "a LocustTest for the Locust Kubernetes operator (docs/load.md#kubernetes).")
    sub = p.add_subparsers(dest="k8s_command", metavar="COMMAND", required=True)
    r = sub.add_parser("render", help="write the manifests (YAML) for a plan")
    r.add_argument("plan", type=Path, help="run plan (YAML)")
    r.add_argument("--image", default="", help="image with peakready installed "
                   "(default: peakready:<version>)")
    r.add_argument("--host", default="", help="storefront URL (default: target.storefront_url)")
    r.add_argument("--out", type=Path, default=None,
                   help="write this file instead of standard output")
    r.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    text = yaml.safe_dump_all(render_plan(args.plan, args.image, args.host), sort_keys=False)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0
