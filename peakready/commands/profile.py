"""``peakready profile``: build traffic profiles (import from CloudWatch, show one)."""

from __future__ import annotations

import argparse

from peakready.profiles import load_profile


def register(subparsers) -> None:
    p = subparsers.add_parser("profile", help="campaign traffic profiles (import, show)")
    sub = p.add_subparsers(dest="profile_command", metavar="ACTION")

    imp = sub.add_parser(
        "import", help="a profile from AWS/ApplicationELB RequestCount of a past window",
        description="Reads RequestCount (Sum per period) with get_metric_data through the "
        "ordinary boto3 credential chain and writes a profile CSV t_s,rps.")
    imp.add_argument("--load-balancer", required=True,
                     help="LoadBalancer dimension, e.g. app/shop-alb/50dc6c495c0c9188")
    imp.add_argument("--target-group", help="TargetGroup dimension (optional)")
    imp.add_argument("--start", required=True, help="window start, ISO 8601 or epoch s")
    imp.add_argument("--end", required=True, help="window end, ISO 8601 or epoch s")
    imp.add_argument("--period", type=int, default=60, help="seconds per datapoint (60)")
    imp.add_argument("--region", default=None,
                     help="AWS region (default: the credential chain's, e.g. AWS_REGION)")
    imp.add_argument("--endpoint-url", default=None, help="e.g. the sandbox's AWS endpoint")
    imp.add_argument("--out", required=True, help="profile CSV to write")
    imp.set_defaults(func=handle_import)

    show = sub.add_parser("show", help="validate a profile and print its resolved points")
    show.add_argument("path")
    show.add_argument("--scale", type=float, default=1.0, help="rate multiplier (1.5 = +50%%)")
    show.add_argument("--speed", type=float, default=1.0,
                      help="time compression (10 = 10x faster)")
    show.set_defaults(func=handle_show)


def handle_import(args: argparse.Namespace) -> int:
    from peakready.load.cwimport import import_profile

    profile = import_profile(args.load_balancer, args.start, args.end, args.period, args.out,
                             target_group=args.target_group, region=args.region,
                             endpoint_url=args.endpoint_url)
    print(f"{args.out}: {len(profile.points)} points, {profile.duration_s:g} s, "
          f"peak {profile.peak_rps:g} rps, {profile.total_arrivals:.0f} requests")
    return 0


def handle_show(args: argparse.Namespace) -> int:
    profile = load_profile(args.path).scaled(args.scale).compressed(args.speed)
    print(profile.points.to_csv(index=False, float_format="%.6g"), end="")
    print(f"# {profile.duration_s:g} s, peak {profile.peak_rps:g} rps, "
          f"{profile.total_arrivals:.0f} requests")
    return 0
