"""``peakready worker --master HOST:PORT``: a load worker for a master on another host."""

from __future__ import annotations

import argparse

from peakready.load.remote import run_worker


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "worker", help="a Locust worker for `peakready load/run --external-workers` elsewhere",
        description="Fetch the locustfile, profile, data files and settings from the "
        "master over Locust's own channel, then run as its Locust worker; samples are "
        "shipped to the master's run folder. Nothing shared but the network.")
    p.add_argument("--master", required=True, metavar="HOST:PORT",
                   help="the master's address (its --master-bind), e.g. 10.0.0.1:5557")
    p.add_argument("--workdir", default=".peakready-worker",
                   help="this worker's own folder: fetched files, spool, log "
                   "(default: %(default)s)")
    p.add_argument("--name", default="", help="the name the master records (default: host name)")
    p.add_argument("--wait", type=float, default=120.0,
                   help="seconds to keep asking a master that is not up yet (default: %(default)s)")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    run_worker(args.master, args.workdir, args.name, args.wait)  # execs Locust: no return
    return 0
