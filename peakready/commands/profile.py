"""``peakready profile``: build traffic profiles (import from CloudWatch, show one)."""

from __future__ import annotations

import argparse
from pathlib import Path

from peakready.errors import BadInput
from peakready.profiles import from_request_counts, load_profile


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
    import boto3
    import botocore.exceptions

    from peakready.load.cwimport import parse_time, request_counts

    start, end = parse_time(args.start, "start"), parse_time(args.end, "end")
    if end <= start:
        raise BadInput("--end must be after --start")
    if args.period <= 0:
        raise BadInput(f"--period must be a positive number of seconds, got {args.period}")
    try:
        client = boto3.client("cloudwatch", region_name=args.region,
                              endpoint_url=args.endpoint_url)
        counts = request_counts(client, args.load_balancer, start, end, args.period,
                                args.target_group)
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.NoRegionError,
            botocore.exceptions.EndpointConnectionError) as exc:
        raise BadInput(f"CloudWatch: {exc}") from None
    except botocore.exceptions.ClientError as exc:
        raise BadInput(f"CloudWatch get_metric_data: {exc.response['Error'].get('Message', exc)}") from None
    profile = from_request_counts(counts, start, end, args.period)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# imported from AWS/ApplicationELB RequestCount LoadBalancer={args.load_balancer}"
                   f" {args.start}..{args.end}, period {args.period}s\n")
    with out.open("a") as fh:
        profile.points.to_csv(fh, index=False, float_format="%.6g")
    print(f"{out}: {len(profile.points)} points, {profile.duration_s:g} s, "
          f"peak {profile.peak_rps:g} rps, {profile.total_arrivals:.0f} requests")
    return 0


def handle_show(args: argparse.Namespace) -> int:
    profile = load_profile(args.path).scaled(args.scale).compressed(args.speed)
    print(profile.points.to_csv(index=False, float_format="%.6g"), end="")
    print(f"# {profile.duration_s:g} s, peak {profile.peak_rps:g} rps, "
          f"{profile.total_arrivals:.0f} requests")
    return 0
