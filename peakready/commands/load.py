"""``peakready load``: replay a campaign profile against a storefront, into a run folder."""

from __future__ import annotations

import argparse

from peakready import runfolder
from peakready.load import LoadSettings, load_into_new_folder
from peakready.load.settings import DEFAULT_LOCUSTFILE, DEFAULT_MAX_USERS
from peakready.load.summary import format_summary, summarize


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "load", help="load only: replay a traffic profile (open model) into a run folder",
        description="Replay a campaign traffic profile (t_s,rps) as an arrival rate with "
        "Locust and record every request into reports/<run-id>/.")
    p.add_argument("--profile", required=True, help="profile CSV t_s,rps")
    p.add_argument("--host", required=True, help="storefront base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--scale", type=float, default=1.0, help="rate multiplier (1.5 = +50%%)")
    p.add_argument("--speed", type=float, default=1.0, help="time compression (10 = 10x faster)")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.add_argument("--locustfile", default=str(DEFAULT_LOCUSTFILE),
                   help="any Locust file; its wait_time pacing becomes arrival tokens "
                   "(default: %(default)s)")
    p.add_argument("--closed-model", action="store_true",
                   help="keep the locustfile's own pacing with a fixed user pool; the run is "
                   "labelled closed-model (coordinated omission possible)")
    p.add_argument("--users", type=int, default=None,
                   help="with --closed-model: the pool size (default: the profile's peak rps)")
    p.add_argument("--order-request", default="", metavar="NAME",
                   help="request whose response confirms an order, e.g. 'POST /api/checkout'")
    p.add_argument("--order-field", default="order_id", metavar="FIELD",
                   help="JSON field with the order id (dotted for nested; default: %(default)s)")
    p.add_argument("--workers", type=int, default=1,
                   help="1: one Locust process; N>=2: a master and N workers")
    p.add_argument("--master-bind", default="", metavar="HOST[:PORT]",
                   help="where the master listens (default 127.0.0.1; port 5557 with "
                   "--external-workers, else a free one)")
    p.add_argument("--external-workers", action="store_true",
                   help="start no worker here: wait for --workers N started elsewhere with "
                   "`peakready worker --master HOST:PORT` (or by Kubernetes)")
    p.add_argument("--worker-wait", type=float, default=120.0, metavar="S",
                   help="with --external-workers: how long to wait for them (default: "
                   "%(default)s s; then exit 2 naming the missing)")
    p.add_argument("--max-users", type=int, default=DEFAULT_MAX_USERS,
                   help="user cap per load process")
    p.add_argument("--locust-arg", action="append", default=[], metavar="ARG",
                   help="extra option for every Locust process, repeatable, "
                   "e.g. --locust-arg=--shopper-mix=normal")
    p.add_argument("--reports-dir", default=str(runfolder.DEFAULT_REPORTS_DIR),
                   help="where the run folder is created (default: %(default)s/)")
    p.add_argument("--label", default="load",
                   help="part of the run id: reports/<time>-<label>-<hex> (default: %(default)s)")
    p.add_argument("user_classes", nargs="*", help="Locust user classes to run (default: all)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    settings = LoadSettings(host=args.host, profile=args.profile, scale=args.scale,
                            speed=args.speed, duration_s=args.duration,
                            locustfile=args.locustfile, user_classes=list(args.user_classes),
                            workers=args.workers, max_users=args.max_users,
                            extra_args=list(args.locust_arg), closed_model=args.closed_model,
                            users=args.users, order_request=args.order_request,
                            order_field=args.order_field, master_bind=args.master_bind,
                            external_workers=args.external_workers,
                            worker_wait_s=args.worker_wait)
    rc, run_dir = load_into_new_folder(settings, args.reports_dir, args.label)
    print(format_summary(summarize(run_dir)))
    return rc
